"""Benchmark: bench.llm scoring vs EleutherAI lm-evaluation-harness (run as a script, not collected by pytest).

    python tests/benchmarks/bench_lmeval.py [--model smollm2-135m|tiny-random|DIR] [--n 200]
        [--repeats 3] [--lm-eval-batch-sizes 16,32] [--batch-size 16] [--no-write]

Scores the same multiple-choice item-ranking questions (built from MovieLens-100k titles, seeded)
with the same model through

(a) lm-eval's ``hf`` backend: a local JSON task defined in a temporary YAML
    (``output_type: multiple_choice``, ``dataset_path: json`` + ``dataset_kwargs.data_files``),
    run with ``lm_eval.simple_evaluate(..., log_samples=True)`` on a preloaded ``HFLM``; and
(b) ``bench.llm.score_continuations(backbone, prompts, continuations)``,

interleaved (bench.llm, then lm-eval at each batch size, ``--repeats`` times), and reports the
instances/s of each (best of the repeats), their ratio, and the largest ``|Δ log-likelihood|``
over all (question, choice) pairs. It also checks that both score exactly the same token ids.
Results go into the ``## lm-eval comparison`` section of ``docs/PERFORMANCE.md`` (only that
section is replaced); ``--no-write`` skips the file.

Conventions aligned: the prompt is plain text ending in ``"Answer:"`` and each choice is a title;
lm-eval builds ``(prompt, target_delimiter + title)`` with ``target_delimiter: " "`` and bench.llm
gets ``" " + title``. lm-eval's causal split (``encode(ctx + cont)[len(encode(ctx)):]``) and
bench.llm's (``encode(cont)`` on its own) give the same ids here because the GPT-2-style
pre-tokeniser never merges across the space that starts each answer; the script verifies it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import os
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# The converted SmolLM2 checkpoint lives in the default cache; no network is needed or wanted.
os.environ.pop("RECXBENCH_HOME", None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DOC = ROOT / "docs" / "PERFORMANCE.md"
SECTION = "lm-eval comparison"
DEFAULT_ITEMS = Path.home() / ".cache" / "recxbench" / "datasets" / "ml-100k" / "ml-100k.item"
TASK_NAME = "recx_mc_rank"
LETTERS = "ABCDEFGHIJ"


def require_lm_eval() -> Any:
    try:
        import lm_eval  # noqa: F401
        from lm_eval.models.huggingface import HFLM  # noqa: F401
    except ImportError as exc:
        sys.exit(
            f"lm-evaluation-harness is not installed ({exc}).\n"
            "Install it into this environment with:  pip install lm-eval"
        )
    return lm_eval


# --------------------------------------------------------------------------- instances


def read_items(path: Path) -> list[tuple[str, set[str]]]:
    """(title, genres) of each item in a RecBole ``.item`` file, duplicates of a title dropped."""
    if not path.is_file():
        sys.exit(f"no item file at {path} (fetch ml-100k with recxbench first, or pass --items)")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    header = lines[0].split("\t")
    col = {name.split(":")[0]: i for i, name in enumerate(header)}
    seen: set[str] = set()
    items = []
    for line in lines[1:]:
        fields = line.split("\t")
        if len(fields) < len(header):
            fields += [""] * (len(header) - len(fields))
        title = " ".join(fields[col["movie_title"]].split())
        if not title or title in seen:
            continue
        seen.add(title)
        genres = set(fields[col["class"]].split()) if "class" in col else set()
        items.append((title, genres))
    return items


def build_instances(
    items: list[tuple[str, set[str]]], *, n: int, history: int, choices: int, seed: int
) -> list[dict[str, Any]]:
    """``n`` questions: a watched history, ``choices`` candidate titles, gold = most genre overlap."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        picked = rng.sample(items, history + choices)
        watched, cands = picked[:history], picked[history:]
        liked = set().union(*(g for _, g in watched))
        gold = max(range(choices), key=lambda k: (len(cands[k][1] & liked), -k))
        options = "\n".join(f"{LETTERS[k]}) {t}" for k, (t, _) in enumerate(cands))
        query = (
            f"A user watched: {'; '.join(t for t, _ in watched)}.\n"
            "Which of these would the recommender suggest first?\n"
            f"{options}\nAnswer:"
        )
        out.append({"id": i, "query": query, "choices": [t for t, _ in cands], "gold": gold})
    return out


def write_task(directory: Path, instances: list[dict[str, Any]]) -> Path:
    data = directory / "instances.jsonl"
    data.write_text("".join(json.dumps(x) + "\n" for x in instances), encoding="utf-8")
    # Field names (not Jinja) for text/choices/target, so nothing is re-rendered or stripped.
    (directory / f"{TASK_NAME}.yaml").write_text(
        f"task: {TASK_NAME}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    test: {json.dumps(str(data))}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: query\n"
        "doc_to_choice: choices\n"
        "doc_to_target: gold\n"
        'target_delimiter: " "\n'
        "num_fewshot: 0\n"
        "metric_list:\n"
        "  - metric: acc\n"
        "    aggregation: mean\n"
        "    higher_is_better: true\n",
        encoding="utf-8",
    )
    return directory


# --------------------------------------------------------------------------- the two systems


class LmEvalRunner:
    """One preloaded HFLM (per batch size) and a TaskManager on the temporary task folder."""

    def __init__(self, checkpoint: str, task_dir: Path) -> None:
        from lm_eval.tasks import TaskManager

        self.checkpoint = checkpoint
        self.task_manager = TaskManager(include_path=str(task_dir), include_defaults=False)
        self.models: dict[int, Any] = {}
        self.core_s = 0.0

    def model(self, batch_size: int) -> Any:
        if batch_size not in self.models:
            from lm_eval.models.huggingface import HFLM

            lm = HFLM(pretrained=self.checkpoint, dtype="float32", device="cpu", batch_size=batch_size)
            inner = lm.loglikelihood

            def timed_loglikelihood(requests: Any, *args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return inner(requests, *args, **kwargs)
                finally:
                    self.core_s += time.perf_counter() - t0

            lm.loglikelihood = timed_loglikelihood  # simple_evaluate looks it up on the instance
            self.models[batch_size] = lm
        return self.models[batch_size]

    def run(
        self, batch_size: int, ids: list[int]
    ) -> tuple[dict[str, float], dict[int, list[float]], dict[int, list[tuple[str, str]]]]:
        """``simple_evaluate`` on the questions ``ids`` (lm-eval's ``samples=`` selection)."""
        import lm_eval

        lm = self.model(batch_size)
        self.core_s = 0.0
        c0, t0 = time.process_time(), time.perf_counter()
        res = lm_eval.simple_evaluate(
            model=lm,
            tasks=[TASK_NAME],
            task_manager=self.task_manager,
            num_fewshot=0,
            samples={TASK_NAME: list(ids)},
            log_samples=True,
            bootstrap_iters=0,
            cache_requests=False,
            verbosity="WARNING",
        )
        timing = {
            "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0,
            "core_wall_s": self.core_s,
        }
        scores: dict[int, list[float]] = {}
        args: dict[int, list[tuple[str, str]]] = {}
        for s in res["samples"][TASK_NAME]:
            doc_id = int(s["doc"]["id"]) if "id" in s["doc"] else int(s["doc_id"])
            scores[doc_id] = [float(r[0]) for r in s["filtered_resps"]]
            args[doc_id] = [tuple(a) for a in s["arguments"]]
        if sorted(scores) != sorted(ids):
            raise RuntimeError(f"lm-eval scored questions {sorted(scores)[:5]}…, expected {sorted(ids)[:5]}…")
        return timing, scores, args


def run_bench(
    backbone: Any, prompts: list[str], conts: list[list[str]], batch_size: int
) -> tuple[dict[str, float], list[list[float]]]:
    from bench.llm import score_continuations

    c0, t0 = time.process_time(), time.perf_counter()
    out = score_continuations(backbone, prompts, conts, batch_size=batch_size)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}, out


def token_agreement(
    lm: Any, backbone: Any, prompts: list[str], conts: list[list[str]]
) -> tuple[int, int, list[str]]:
    """How many (prompt, answer) pairs lm-eval and bench.llm turn into the same (ctx, cont) ids."""
    from bench.llm.chat import encode_continuation, encode_prompt

    tok = backbone.tokenizer
    same = total = 0
    examples: list[str] = []
    for p, cs in zip(prompts, conts, strict=True):
        ours_ctx = encode_prompt(tok, p)
        for c in cs:
            theirs_ctx, theirs_cont = lm._encode_pair(p, c)
            ok = list(theirs_ctx) == ours_ctx and list(theirs_cont) == encode_continuation(tok, c)
            same += ok
            total += 1
            if not ok and len(examples) < 3:
                examples.append(repr(c))
    return same, total, examples


# --------------------------------------------------------------------------- report


def write_section(text: str) -> None:
    """Replace (or append) only the ``## lm-eval comparison`` section, re-reading the file first."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    old = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n"
    section = f"## {SECTION}\n\n" + text.strip() + "\n"
    pattern = re.compile(rf"^## {re.escape(SECTION)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _m: section + "\n", old, count=1).rstrip() + "\n"
    else:
        new = old.rstrip() + "\n\n" + section
    DOC.write_text(new, encoding="utf-8")


def fmt_load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model", default="smollm2-135m", help="smollm2-135m (default), tiny-random, or an HF model dir"
    )
    ap.add_argument("--n", type=int, default=200, help="questions (default 200)")
    ap.add_argument("--choices", type=int, default=5)
    ap.add_argument("--history", type=int, default=9, help="watched titles per question")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (best-of-N is reported)")
    ap.add_argument("--chunk", type=int, default=40, help="questions per back-to-back chunk (default 40)")
    ap.add_argument("--batch-size", type=int, default=16, help="bench.llm batch size")
    ap.add_argument("--lm-eval-batch-sizes", default="16,32", help="comma-separated; the best is reported")
    ap.add_argument("--items", type=Path, default=DEFAULT_ITEMS)
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/PERFORMANCE.md")
    args = ap.parse_args()
    if not 1 <= args.choices <= len(LETTERS):
        ap.error(f"--choices must be in 1..{len(LETTERS)}")
    lm_eval = require_lm_eval()

    import torch
    import transformers

    logging.basicConfig(level=logging.WARNING)
    for name in ("lm_eval", "lm-eval", "datasets", "transformers", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    try:
        import datasets

        datasets.disable_progress_bars()
    except Exception:  # noqa: BLE001
        pass

    from bench.llm.backbone import load_backbone

    load_before = os.getloadavg()
    items = read_items(args.items)
    instances = build_instances(items, n=args.n, history=args.history, choices=args.choices, seed=args.seed)
    prompts = [x["query"] for x in instances]
    conts = [[" " + t for t in x["choices"]] for x in instances]
    n_pairs = sum(len(c) for c in conts)

    backbone = load_backbone(
        args.model,
        device="cpu",
        dtype="float32",
        titles=[t for t, _ in items] if args.model == "tiny-random" else None,
    )
    checkpoint = backbone.info["checkpoint"]
    lm_bs = [int(x) for x in args.lm_eval_batch_sizes.split(",") if x.strip()]
    print(
        f"model {args.model} ({checkpoint}), {args.n} questions × {args.choices} choices, "
        f"torch threads {torch.get_num_threads()}, load avg {fmt_load(load_before)}",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="bench_lmeval_") as tmp:
        runner = LmEvalRunner(checkpoint, write_task(Path(tmp), instances))
        for bs in lm_bs:
            runner.model(bs)
        lm0 = runner.model(lm_bs[0])
        same, total, bad = token_agreement(lm0, backbone, prompts, conts)
        prompt_tokens = [len(lm0.tok_encode(p)) for p in prompts]
        cont_tokens = [
            len(lm0._encode_pair(p, c)[1]) for p, cs in zip(prompts, conts, strict=True) for c in cs
        ]
        print(f"token ids identical for {same}/{total} (prompt, choice) pairs {bad or ''}", flush=True)

        # One pass = all n questions through bench.llm and through lm-eval at one batch size, in
        # chunks of --chunk questions: each chunk goes through both systems back to back (bench.llm
        # first on even chunks, lm-eval first on odd ones), so the two see the same (shifting) load
        # of this shared machine. Times are summed over the chunks of a pass.
        chunks = [list(range(i, min(i + args.chunk, args.n))) for i in range(0, args.n, args.chunk)]
        bench_runs: list[dict[str, float]] = []
        lm_runs: dict[int, list[dict[str, float]]] = {bs: [] for bs in lm_bs}
        bench_scores: list[list[float]] = [[] for _ in range(args.n)]
        lm_scores: dict[int, dict[int, list[float]]] = {bs: {} for bs in lm_bs}
        lm_args: dict[int, list[tuple[str, str]]] = {}
        passes = 0
        for rep in range(args.repeats):
            for bs in lm_bs:
                passes += 1
                b_tot = dict.fromkeys(("wall_s", "cpu_s"), 0.0)
                l_tot = dict.fromkeys(("wall_s", "cpu_s", "core_wall_s"), 0.0)
                for c, ids in enumerate(chunks):
                    for system in ("bench", "lm") if c % 2 == 0 else ("lm", "bench"):
                        gc.collect()
                        if system == "bench":
                            timing, out = run_bench(
                                backbone, [prompts[i] for i in ids], [conts[i] for i in ids], args.batch_size
                            )
                            for i, row in zip(ids, out, strict=True):
                                bench_scores[i] = row
                            for k in b_tot:
                                b_tot[k] += timing[k]
                        else:
                            timing, got, got_args = runner.run(bs, ids)
                            lm_scores[bs].update(got)
                            lm_args.update(got_args)
                            for k in l_tot:
                                l_tot[k] += timing[k]
                bench_runs.append(b_tot)
                lm_runs[bs].append(l_tot)
                print(
                    f"pass {passes} (rep {rep + 1}/{args.repeats}): bench.llm bs={args.batch_size} "
                    f"{b_tot['wall_s']:.1f} s wall / {b_tot['cpu_s']:.1f} s CPU; lm-eval bs={bs} "
                    f"{l_tot['wall_s']:.1f} s wall ({l_tot['core_wall_s']:.1f} s in loglikelihood) / "
                    f"{l_tot['cpu_s']:.1f} s CPU; paired ratio {l_tot['wall_s'] / b_tot['wall_s']:.2f}x; "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    load_after = os.getloadavg()

    # Arguments lm-eval built must be exactly ours.
    args_match = all(
        lm_args[i] == list(zip([p] * len(c), c, strict=True))
        for i, (p, c) in enumerate(zip(prompts, conts, strict=True))
    )
    diffs = {
        bs: max(abs(a - b) for i in range(args.n) for a, b in zip(bench_scores[i], sc[i], strict=True))
        for bs, sc in lm_scores.items()
    }
    max_diff = max(diffs.values())

    def argmax(row: list[float]) -> int:
        return max(range(len(row)), key=row.__getitem__)

    lm_first = [lm_scores[lm_bs[0]][i] for i in range(args.n)]
    bench_acc = sum(argmax(s) == x["gold"] for s, x in zip(bench_scores, instances, strict=True)) / args.n
    lm_acc = sum(argmax(s) == x["gold"] for s, x in zip(lm_first, instances, strict=True)) / args.n
    agree_argmax = sum(argmax(s) == argmax(t) for s, t in zip(bench_scores, lm_first, strict=True))

    best_bench = min(r["wall_s"] for r in bench_runs)
    best_bench_cpu = min(r["cpu_s"] for r in bench_runs)
    best_lm = {bs: min(r["wall_s"] for r in runs) for bs, runs in lm_runs.items()}
    best_lm_core = {bs: min(r["core_wall_s"] for r in runs) for bs, runs in lm_runs.items()}
    best_lm_cpu = {bs: min(r["cpu_s"] for r in runs) for bs, runs in lm_runs.items()}
    top_bs = min(best_lm, key=best_lm.get)
    ips_bench = args.n / best_bench
    ips_lm = args.n / best_lm[top_bs]
    ratio = ips_bench / ips_lm
    ratio_core = best_lm_core[top_bs] / best_bench
    ratio_cpu = best_lm_cpu[top_bs] / best_bench_cpu
    # Pass k of bench.llm ran chunk by chunk beside the k-th lm-eval pass (batch sizes in turn).
    lm_passes = [lm_runs[bs][r] for r in range(args.repeats) for bs in lm_bs]
    pass_bs = [bs for _ in range(args.repeats) for bs in lm_bs]
    paired = [lm["wall_s"] / b["wall_s"] for lm, b in zip(lm_passes, bench_runs, strict=True)]
    paired_cpu = [lm["cpu_s"] / b["cpu_s"] for lm, b in zip(lm_passes, bench_runs, strict=True)]

    print()
    print(f"bench.llm : {ips_bench:.3f} inst/s (best {best_bench:.1f} s of {len(bench_runs)} passes)")
    for bs in lm_bs:
        print(
            f"lm-eval bs={bs}: {args.n / best_lm[bs]:.3f} inst/s (best {best_lm[bs]:.1f} s of {args.repeats}; "
            f"{best_lm_core[bs]:.1f} s in loglikelihood)"
        )
    print(
        f"ratio (wall, best of each): {ratio:.2f}x   [loglikelihood only: {ratio_core:.2f}x, "
        f"CPU time: {ratio_cpu:.2f}x; paired per pass: " + ", ".join(f"{x:.2f}" for x in paired) + "]"
    )
    print(
        f"max |Δ loglik| over {n_pairs} pairs: {max_diff:.3g}  (per lm-eval batch size: "
        + ", ".join(f"{bs}: {d:.3g}" for bs, d in diffs.items())
        + ")"
    )
    print(
        f"lm-eval arguments identical: {args_match}; token ids identical: {same}/{total}; "
        f"argmax agrees on {agree_argmax}/{args.n}; acc lm-eval {lm_acc:.3f}, bench.llm {bench_acc:.3f}"
    )
    print(f"load average before {fmt_load(load_before)}, after {fmt_load(load_after)}")

    if args.no_write:
        return
    goal_speed = ratio >= 2.0
    goal_diff = max_diff <= 1e-4
    lm_rows = "\n".join(
        f"| lm-eval {lm_eval.__version__} `hf`, batch_size={bs} | {args.n / best_lm[bs]:.3f} | "
        f"{best_lm[bs]:.0f} s | {best_lm_core[bs]:.0f} s | {best_lm_cpu[bs]:.0f} s |"
        for bs in lm_bs
    )
    pass_rows = "\n".join(
        f"| {k + 1} | {bs} | {b['wall_s']:.0f} s / {b['cpu_s']:.0f} s | {lm['wall_s']:.0f} s / {lm['cpu_s']:.0f} s "
        f"| {r:.2f}× / {rc:.2f}× |"
        for k, (bs, b, lm, r, rc) in enumerate(
            zip(pass_bs, bench_runs, lm_passes, paired, paired_cpu, strict=True)
        )
    )
    text = f"""
`python tests/benchmarks/bench_lmeval.py` scores the same {args.n} multiple-choice item-ranking
questions ({args.choices} candidate MovieLens-100k titles each after a history of {args.history} watched titles,
seed {args.seed}; {n_pairs} (question, choice) pairs; prompts {min(prompt_tokens)}-{max(prompt_tokens)} tokens,
mean {sum(prompt_tokens) / len(prompt_tokens):.0f}; titles {min(cont_tokens)}-{max(cont_tokens)} tokens, mean
{sum(cont_tokens) / len(cont_tokens):.1f}) with the same model ({args.model}, float32, CPU) through
EleutherAI lm-evaluation-harness and through `bench.llm.score_continuations`. Each pass runs all
{args.n} questions through both systems in chunks of {args.chunk}, each chunk through both back to back
(order alternating), so both see the same load; {args.repeats} passes per lm-eval batch size,
bench.llm in every pass. Instances/s from the best pass of each.

| system | instances/s | wall, best | in `loglikelihood` | CPU (all threads), best |
|---|---|---|---|---|
| `bench.llm.score_continuations`, batch_size={args.batch_size} | **{ips_bench:.3f}** | {best_bench:.0f} s | | {best_bench_cpu:.0f} s |
{lm_rows}

* Throughput ratio bench.llm / lm-eval (best of each; lm-eval's best batch size {top_bs}): **{ratio:.2f}×**
  wall ({ratio_core:.2f}× against lm-eval's `loglikelihood` calls alone, {ratio_cpu:.2f}× in CPU time).
  Goal ≥ 2×: {"met" if goal_speed else "**missed**"}.
* Largest |Δ log-likelihood| over all {n_pairs} pairs: **{max_diff:.2g}** (float32).
  Goal ~1e-4: {"met" if goal_diff else "**missed**"}. Both systems score the same token ids for
  {same}/{total} pairs; the (context, continuation) arguments lm-eval built equal ours: {args_match};
  the top-scored choice agrees on {agree_argmax}/{args.n} questions (accuracy against the
  genre-overlap "gold": lm-eval {lm_acc:.3f}, bench.llm {bench_acc:.3f}).

Every pass (bench.llm and lm-eval ran chunk by chunk side by side):

| pass | lm-eval batch_size | bench.llm wall / CPU | lm-eval wall / CPU | lm-eval ÷ bench.llm, wall / CPU |
|---|---|---|---|---|
{pass_rows}

Measured {dt.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} CPU cores, torch
{torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}, Python
{platform.python_version()}, lm-eval {lm_eval.__version__}; load average (1/5/15 min)
{fmt_load(load_before)} before, {fmt_load(load_after)} after (a load near the core count means other
jobs shared the machine; the paired per-pass ratios are then the figures to trust).
lm-eval settings: `HFLM(pretrained=<checkpoint dir>, dtype="float32", device="cpu", batch_size=…)`,
loaded once and passed to `simple_evaluate(tasks=["{TASK_NAME}"], samples={{task: chunk ids}},
num_fewshot=0, log_samples=True, bootstrap_iters=0)` with
`TaskManager(include_path=<tmp dir>, include_defaults=False)`; the task YAML has
`output_type: multiple_choice`, `dataset_path: json`, `dataset_kwargs.data_files`,
`doc_to_text: query` (the prompt, ending in `Answer:`), `doc_to_choice: choices` (the titles),
`target_delimiter: " "`; HFLM's logits cache (`logits_cache=True`, the default) is on. bench.llm gets
the same prompts and `" " + title` as continuations. lm-eval's per-pair log-likelihoods are read
from `samples[task][k]["filtered_resps"]`.

Why bench.llm is faster: lm-eval runs one forward pass over prompt + continuation for every
(question, choice) pair, so each question's prompt is encoded {args.choices} times and the full
`sequence × vocabulary` logits are computed and log-softmaxed at every position; bench.llm runs
each prompt once (keeping only its last position's logits), scores every continuation's first token
from those logits, and runs the remaining continuation tokens against a copy of the prompt's KV
cache, so a question costs about one prompt pass plus a few tokens per choice (a one-token
continuation needs no extra pass at all). lm-eval's logits cache only helps when every choice is a
single token, which titles are not.
"""
    write_section(text)
    print(f"wrote the '## {SECTION}' section of {DOC}")


if __name__ == "__main__":
    main()
