"""Attribute-scoring throughput (guided-embedding): items per second on ML-100k with SmolLM2-135M.

Usage::

    python tests/benchmarks/bench_attributes.py [--items 40] [--threads 1] [--attributes movies]
                                                [--batch-size 8] [--dtype float32]

Scores the ``--items`` most interacted ML-100k items into a temporary cache (so nothing is read from
the shared cache and nothing is written to it), after a warm-up of 2 items, and prints items/s,
tokens per item (instruction prefix, item part, attribute suffixes) and the load average before and
after. Needs the cached ML-100k and SmolLM2 checkpoint (``~/.cache/recxbench`` or ``RECXBENCH_HOME``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    from bench.data.loaders import load_dataset
    from bench.llm.attributes import AttributeScorer, ItemText, load_attributes
    from bench.llm.backbone import load_backbone

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--attributes", default="movies")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--dtype", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    home = Path(os.environ.get("RECXBENCH_HOME", Path.home() / ".cache" / "recxbench"))
    ds = load_dataset(home / "datasets" / "ml-100k", name="ml-100k")
    backbone = load_backbone("smollm2-135m", device="cpu", dtype=args.dtype)
    items = [ItemText(t, y, tuple(g)) for t, y, g in zip(ds.titles, ds.years, ds.genres, strict=True)]
    pop = np.bincount(np.concatenate(ds.sequences()), minlength=ds.n_items)
    order = [int(i) for i in np.argsort(-pop, kind="stable")[: args.items + 2]]
    with tempfile.TemporaryDirectory() as tmp:
        scorer = AttributeScorer(
            backbone,
            load_attributes(args.attributes),
            items,
            directory=Path(tmp),
            batch_size=args.batch_size,
        )
        scorer.score(order[:2])  # warm-up
        shared = len(getattr(scorer, "shared_ids", []) or [])
        parts = [scorer.prompt_parts(i) for i in order[2:]]
        item_tok = float(np.mean([len(p) for p, _ in parts]))
        suffix_tok = float(np.mean([len(s) for _, ss in parts for s in ss]))
        m = len(scorer.attributes.attributes)
        load0 = Path("/proc/loadavg").read_text().split()[:3]
        t0 = time.perf_counter()
        scorer.score(order[2:])
        dt = time.perf_counter() - t0
        load1 = Path("/proc/loadavg").read_text().split()[:3]
    n = args.items
    sys.stdout.write(
        f"{n} items x {m} attributes ({args.attributes}), {args.threads} thread(s), "
        f"dtype {backbone.dtype}, batch {args.batch_size}: {dt:.1f} s, {n / dt:.2f} items/s\n"
        f"tokens: shared prefix {shared}, item part {item_tok:.1f}, attribute suffix {suffix_tok:.1f} "
        f"-> {item_tok + m * suffix_tok:.0f} computed per item\n"
        f"load average before {' '.join(load0)}, after {' '.join(load1)}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
