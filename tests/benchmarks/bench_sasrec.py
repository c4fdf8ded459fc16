"""Train the target recommenders on ML-100k and record their target cards.

Run from the repository root::

    python tests/benchmarks/bench_sasrec.py [--inter PATH] [--seed 0] [--no-write]

Trains Popularity, MF and SASRec (2 torch threads, CPU), prints each target card (valid and test
HR/NDCG/MRR@10, full ranking) and training time, and rewrites the ``## Target recommenders``
section of ``docs/PERFORMANCE.md`` (other sections are left untouched).

The ML-100k atomic file is read by a small local helper (not ``bench.data.loaders``), so the
benchmark depends only on the recommenders and ``bench.data.dataset``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.data.dataset import Dataset, Split, leave_one_out
from bench.recommenders.evaluation import target_card
from bench.recommenders.mf import MF
from bench.recommenders.popularity import Popularity
from bench.recommenders.sasrec import SASRec

DEFAULT_INTER = Path("/tmp/wheels/x/recbole/dataset_example/ml-100k/ml-100k.inter")
REPO = Path(__file__).resolve().parents[2]
PERF = REPO / "docs" / "PERFORMANCE.md"
SECTION = "## Target recommenders"


def load_inter(path: Path) -> Dataset:
    """Parse a RecBole ``.inter`` file (user, item, rating, timestamp); ids -> indices by first appearance."""
    raw = path.read_bytes()
    lines = raw.decode("utf-8").splitlines()
    header = [h.split(":")[0] for h in lines[0].split("\t")]
    col = {name: i for i, name in enumerate(header)}
    user_index: dict[str, int] = {}
    item_index: dict[str, int] = {}
    users, items, ts, ratings = [], [], [], []
    for line in lines[1:]:
        if not line.strip():
            continue
        f = line.split("\t")
        users.append(user_index.setdefault(f[col["user_id"]], len(user_index)))
        items.append(item_index.setdefault(f[col["item_id"]], len(item_index)))
        ts.append(float(f[col["timestamp"]]))
        ratings.append(float(f[col["rating"]]) if "rating" in col else np.nan)
    n_items = len(item_index)
    return Dataset(
        name=path.stem,
        user_ids=tuple(user_index),
        item_ids=tuple(item_index),
        titles=("",) * n_items,
        genres=((),) * n_items,
        years=(None,) * n_items,
        users=np.array(users, dtype=np.int64),
        items=np.array(items, dtype=np.int64),
        timestamps=np.array(ts, dtype=np.float64),
        ratings=np.array(ratings, dtype=np.float64),
        sha256=hashlib.sha256(raw).hexdigest(),
        source=str(path),
    )


def train_and_card(model: Any, split: Split, seed: int) -> dict[str, Any]:
    """Fit ``model`` and return its config, fit report, wall and CPU seconds and target card."""
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    report = model.fit(split, seed=seed)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    card = target_card(model, split, ks=(10,))
    return {
        "name": model.name,
        "config": model.config(),
        "report": report,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "load": load,
        "card": card,
    }


def render(results: list[dict[str, Any]], split: Split, seed: int) -> str:
    ds = split.dataset
    lines = [
        SECTION,
        "",
        f"Measured by `tests/benchmarks/bench_sasrec.py` on {time.strftime('%Y-%m-%d')} "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads: "
        f"{torch.get_num_threads()}, "
        f"torch {torch.__version__}, seed {seed}).",
        f"Data: {ds.name} ({ds.n_users} users, {ds.n_items} items, {ds.n_interactions} interactions), "
        "chronological leave-one-out; full ranking over all items, history items masked; "
        "test history = `s[:-1]`, valid history = `s[:-2]`.",
        "",
        "| target | valid NDCG@10 | test HR@10 | test NDCG@10 | test MRR@10 | epochs (best) | train wall s | train CPU s | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        v, t, rep = r["card"]["valid"], r["card"]["test"], r["report"]
        lines.append(
            f"| {r['name']} | {v['ndcg@10']:.4f} | {t['hr@10']:.4f} | {t['ndcg@10']:.4f} | "
            f"{t['mrr@10']:.4f} | {rep.epochs} ({rep.best_epoch}) | {r['seconds']:.1f} | "
            f"{r['cpu_seconds']:.1f} | {r['load']:.1f} |"
        )
    lines += [
        "",
        "Wall time includes the per-epoch validation. CPU s is the process's CPU time (all threads); "
        "load avg is the machine's 1-minute load average when training started (the machine is shared, "
        "so wall times above ~2 load are inflated). On a busy machine two OpenMP threads stall each other "
        "(several times slower than one), so busy-machine figures are recorded with `--threads 1`; the "
        "single-thread CPU time is then a conservative bound on the 2-thread wall time of an idle machine.",
        "",
        "Goals: SASRec test NDCG@10 >= 0.067 (BPR-MF's figure) and converged in under 2 minutes; MF above "
        "popularity in under 1 minute. Popularity's reference figure is NDCG@10 0.040 / HR@10 0.072; ours is "
        "a little higher on test and a little lower on valid (split and tie details differ).",
        "Tuning notes (ML-100k, seed 0): SASRec with RecBole's lr 1e-3 reaches test NDCG@10 0.098 but needs 48 "
        "epochs (best 38); lr 2e-3 gets 0.093 in 22; lr >= 3e-3 can stall on the popularity plateau for "
        "several epochs (5e-3 early-stops there); dropout 0.2-0.5 all give 0.093-0.095. MF: averaging the last "
        "50 history items beats averaging all (0.084 vs 0.071); training on every user's last 50 pairs instead "
        "of all of them gives 0.078 vs 0.087 on test (0.100 vs 0.097 on valid) at 2.4x less CPU.",
        "",
        "Hyper-parameters (the library defaults):",
        "",
    ]
    for r in results:
        cfg = ", ".join(f"{k}={v}" for k, v in r["config"].items() if k != "n_items")
        lines.append(f"- `{r['name']}`: {cfg or '(none)'}")
    lines.append("")
    return "\n".join(lines)


def update_section(path: Path, section: str) -> None:
    """Replace (or append) our section; everything else in the file is kept as is."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inter", type=Path, default=DEFAULT_INTER)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="popularity,mf,sasrec")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/PERFORMANCE.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)

    split = leave_one_out(load_inter(args.inter))
    n = split.dataset.n_items
    makers = {"popularity": Popularity, "mf": MF, "sasrec": SASRec}
    results = []
    for name in args.models.split(","):
        r = train_and_card(makers[name](n), split, args.seed)
        results.append(r)
        t = r["card"]["test"]
        print(
            f"{name:10s} test HR@10 {t['hr@10']:.4f} NDCG@10 {t['ndcg@10']:.4f} MRR@10 {t['mrr@10']:.4f} "
            f"| valid NDCG@10 {r['card']['valid']['ndcg@10']:.4f} | epochs {r['report'].epochs} "
            f"(best {r['report'].best_epoch}) | {r['seconds']:.1f}s wall, {r['cpu_seconds']:.1f}s CPU, "
            f"load {r['load']:.1f}",
            flush=True,
        )
    if not args.no_write:
        update_section(PERF, render(results, split, args.seed))
        print(f"updated {PERF}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
