"""sasrec-guided against plain SASRec on ML-100k: the guided-embedding paper's recommender claim, small.

Run from the repository root (ML-100k and SmolLM2 cached)::

    python tests/benchmarks/bench_sasrec_guided.py [--seeds 0 1 2] [--score N] [--threads 1] [--out FILE]

1. The attribute scores come from the shared cache of :class:`bench.llm.attributes.AttributeScorer`
   (SmolLM2-135M, ``tasks/attributes/movies.yaml``); ``--score N`` first scores up to ``N`` missing
   items, most interacted first. Items without scores get the neutral vector (z = 0); the table says
   how many items had scores. The cache file is copied, so a scorer running meanwhile changes nothing.
2. Per seed, SASRec and sasrec-guided (same hyper-parameters, same split, same seed) are trained on the
   train split with early stopping on valid NDCG@10, then ranked on test: full ranking over all items,
   the user's earlier items masked (the target card's protocol).
3. Per user, HR@10, NDCG@10 and MRR@10 are averaged over the seeds; guided − plain is tested across
   users with the paired randomization (sign-flip) test of :mod:`bench.stats` (10,000 resamples).

Prints a Markdown table (and writes it to ``--out`` when given) with the load average next to it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.data.dataset import leave_one_out
from bench.data.loaders import load_dataset
from bench.hashing import sha256_file
from bench.recommenders.evaluation import scores_with_exclusions, target_ranks
from bench.recommenders.sasrec import SASRec
from bench.recommenders.sasrec_guided import SASRecGuided
from bench.stats.paired import paired_randomization

METRICS = ("hr@10", "ndcg@10", "mrr@10")


def per_user(model, split) -> dict[str, np.ndarray]:
    """Per-user test HR@10, NDCG@10, MRR@10 (history = train + valid item, masked)."""
    hs = [np.append(h, v) for h, v in zip(split.train, split.valid, strict=True)]
    tg = np.asarray(split.test, dtype=np.int64)
    ranks = np.empty(len(hs), dtype=np.int64)
    for s in range(0, len(hs), 256):
        sc = scores_with_exclusions(model, hs[s : s + 256], hs[s : s + 256], keep=tg[s : s + 256])
        ranks[s : s + 256] = target_ranks(sc, tg[s : s + 256])
    hit = ranks < 10
    return {
        "hr@10": hit.astype(float),
        "ndcg@10": np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0),
        "mrr@10": np.where(hit, 1.0 / (ranks + 1.0), 0.0),
    }


def attribute_file(
    dataset, score: int, batch_size: int, *, device: str = "cpu", dtype: str | None = None
) -> Path:
    from bench.llm.attributes import AttributeScorer, ItemText, load_attributes
    from bench.llm.backbone import load_backbone

    backbone = load_backbone("smollm2-135m", device=device, dtype=dtype)  # dtype: part of the cache key
    items = [
        ItemText(t, y, tuple(g))
        for t, y, g in zip(dataset.titles, dataset.years, dataset.genres, strict=True)
    ]
    scorer = AttributeScorer(backbone, load_attributes("movies"), items, batch_size=batch_size, save_every=16)
    if score > 0:
        pop = np.bincount(np.concatenate(dataset.sequences()), minlength=dataset.n_items)
        done = set(scorer.cached_items())
        order = [int(i) for i in np.argsort(-pop, kind="stable") if int(i) not in done][:score]
        scorer.score(order)
    if not scorer.path.is_file():
        sys.exit(f"no attribute scores cached at {scorer.path}: run with --score N")
    snap = Path(tempfile.mkdtemp(prefix="sasrec-guided-")) / "attributes.npz"
    shutil.copyfile(scorer.path, snap)
    return snap


def coverage(dataset, path: Path) -> float:
    """Share of all interactions whose item has attribute scores."""
    with np.load(path) as z:
        scored = z["items"].astype(np.int64)
    pop = np.bincount(np.concatenate(dataset.sequences()), minlength=dataset.n_items)
    return float(pop[scored].sum() / pop.sum())


def table(args, ds, split, per, epochs, seconds, n_scored, path, t_all, seeds) -> str:
    """The Markdown table of the seeds finished so far."""
    lines = [
        f"ML-100k, test split, full ranking (earlier items masked), {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
        f"attribute scores for {n_scored} of {ds.n_items} items, {100 * coverage(ds, path):.1f} % of all interactions "
        "(SmolLM2-135M, movies list, most interacted items first; the others neutral); "
        f"paired randomization test across {len(split.test)} users on the per-user mean over seeds.",
        "",
        "| model | "
        + " | ".join(f"{m} (mean ± sd over seeds)" for m in METRICS)
        + " | best epoch | train s |",
        "|---|" + "---|" * (len(METRICS) + 2),
    ]
    for name in per:
        cells = []
        for m in METRICS:
            means = [float(v.mean()) for v in per[name][m]]
            cells.append(f"{np.mean(means):.4f} ± {np.std(means):.4f}")
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {np.mean(epochs[name]):.1f} | {np.mean(seconds[name]):.0f} |"
        )
    lines += [
        "",
        "| metric | guided − plain | relative | p (paired randomization, two-sided) |",
        "|---|---|---|---|",
    ]
    for m in METRICS:
        a = np.mean(per["sasrec-guided"][m], axis=0)
        b = np.mean(per["sasrec"][m], axis=0)
        t = paired_randomization(a, b, resamples=10_000, seed=0)
        rel = (a.mean() - b.mean()) / b.mean() if b.mean() else float("nan")
        lines.append(f"| {m} | {a.mean() - b.mean():+.4f} | {100 * rel:+.1f} % | {t.p_value:.4f} |")
    lines += [
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.threads} torch thread(s), CPU; "
        f"load average at the end {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; total {time.perf_counter() - t_all:.0f} s; "
        f"attribute file sha256 {sha256_file(path)[:16]}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="none: only score (--score)")
    ap.add_argument("--score", type=int, default=0, help="score up to N missing items first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--device", default="cpu", help="where the LLM scores missing items (auto, cpu, cuda)")
    ap.add_argument(
        "--dtype",
        default=None,
        help="the LLM's dtype (default: bfloat16 on CUDA, float32 on CPU; part of the cache key)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    home = Path(os.environ.get("RECXBENCH_HOME", Path.home() / ".cache" / "recxbench"))
    ds = load_dataset(home / "datasets" / "ml-100k", name="ml-100k")
    split = leave_one_out(ds)
    path = attribute_file(ds, args.score, args.batch_size, device=args.device, dtype=args.dtype)
    per: dict[str, dict[str, list[np.ndarray]]] = {
        "sasrec": {m: [] for m in METRICS},
        "sasrec-guided": {m: [] for m in METRICS},
    }
    seconds: dict[str, list[float]] = {"sasrec": [], "sasrec-guided": []}
    epochs: dict[str, list[int]] = {"sasrec": [], "sasrec-guided": []}
    n_scored = 0
    t_all = time.perf_counter()
    for seed in args.seeds:
        for name in ("sasrec", "sasrec-guided"):
            model = (
                SASRec(ds.n_items)
                if name == "sasrec"
                else SASRecGuided(ds.n_items, attribute_scores=str(path))
            )
            if name == "sasrec-guided":
                n_scored = model.n_scored
            t0 = time.perf_counter()
            rep = model.fit(split, seed=seed, disable_progress=True)
            seconds[name].append(time.perf_counter() - t0)
            epochs[name].append(rep.best_epoch)
            for m, v in per_user(model, split).items():
                per[name][m].append(v)
            logging.info(
                "seed %d %s: %s", seed, name, {m: round(float(per[name][m][-1].mean()), 4) for m in METRICS}
            )
        text = table(
            args,
            ds,
            split,
            per,
            epochs,
            seconds,
            n_scored,
            path,
            t_all,
            args.seeds[: len(seconds["sasrec-guided"])],
        )
        sys.stdout.write(text + "\n")
        if args.out:  # after every seed: a run cut short still leaves its table
            args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
