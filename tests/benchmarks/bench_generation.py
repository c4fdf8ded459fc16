"""Benchmark: CPU generation and scoring throughput of bench.llm on SmolLM2-135M (a script, not a test).

    python tests/benchmarks/bench_generation.py [--model smollm2-135m] [--n 40] [--batch-sizes 8,20,40]

Times, on ``--n`` MovieLens-100k prompts shaped like the quick suite's (5 history titles, chat
template): ranking answers (greedy, 64 new tokens, stop at a blank line), retrieval (title-
constrained beam search, 3 beams), and yes/no classification scoring (6 questions per history, so
prompts share long starts). Prints one line per setting; copy the figures into
docs/PERFORMANCE.md by hand (the machine's load matters, so say what it was).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=40, help="prompts per task (default 40)")
    ap.add_argument("--batch-sizes", default="8,20,40")
    ap.add_argument("--threads", default="1", help="comma-separated step thread counts to try")
    args = ap.parse_args()

    import torch

    from bench.data.resolve import resolve_dataset
    from bench.llm.backbone import load_backbone
    from bench.llm.chat import format_prompt
    from bench.llm.generation import generate
    from bench.llm.scoring import score_continuations
    from bench.llm.trie import TitleTrie

    ds = resolve_dataset("ml-100k")
    bb = load_backbone(args.model, device="cpu", dtype="float32")
    rng = random.Random(0)
    titles = [t for t in ds.titles if t]

    def history() -> str:
        return "; ".join(rng.sample(titles, 5))

    head = "A user interacted with these items, oldest first: "
    ranking = [
        format_prompt(
            bb,
            f"{head}{history()}. Order the following candidates from the one the recommender likes best "
            f"for this user to the one it likes least: {'; '.join(rng.sample(titles, 5))}. "
            "Reply with the titles separated by '; '.",
        )
        for _ in range(args.n)
    ]
    retrieval = [
        format_prompt(
            bb,
            f"{head}{history()}. Which single item would the recommender suggest to them next? Reply with its title only.",
        )
        for _ in range(args.n)
    ]
    histories = [history() for _ in range(max(1, args.n // 6))]
    classification = [
        format_prompt(
            bb,
            f'{head}{h}. Would the recommender suggest the item "{rng.choice(titles)}" to this user? Answer Yes or No.',
        )
        for h in histories
        for _ in range(6)
    ]
    trie = TitleTrie.build(bb.tokenizer, titles)
    print(
        f"{args.model}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load avg {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    t0 = time.perf_counter()
    score_continuations(bb, classification, [["Yes", "No"]] * len(classification), batch_size=24)
    print(
        f"classification: {len(classification)} yes/no prompts scored in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    for threads in [int(x) for x in args.threads.split(",")]:
        for bs in [int(x) for x in args.batch_sizes.split(",")]:
            t0 = time.perf_counter()
            generate(bb, ranking, max_new_tokens=64, batch_size=bs, stop=("\n\n",), cpu_threads=threads)
            t_rank = time.perf_counter() - t0
            t0 = time.perf_counter()
            generate(
                bb,
                retrieval,
                num_beams=3,
                num_return_sequences=3,
                batch_size=max(1, bs // 2),
                constraint=trie,
                cpu_threads=threads,
            )
            t_ret = time.perf_counter() - t0
            print(
                f"batch {bs}, step threads {threads}: ranking {args.n} in {t_rank:.1f} s, "
                f"retrieval (beam 3, constrained) {args.n} in {t_ret:.1f} s; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
