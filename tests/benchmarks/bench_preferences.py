"""Forced-format preference extraction (LANE) on ML-100k with SmolLM2-135M: the share of users with
five usable preferences, repairs and drops, and the time per user.

Run on demand: ``python tests/benchmarks/bench_preferences.py [USERS] [MAX_TITLES] [BATCH]``
(``USERS`` 0 = all 943). It uses :class:`bench.llm.preferences.PreferenceExtractor` (the template
``tasks/prompts/lane_preferences.j2``, the KV-cached forced-JSON decoder, one torch thread) with
a temporary cache, so every user is extracted; the figures go to ``docs/LANE.md``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main(users: int = 30, max_titles: int = 20, batch: int = 16) -> None:
    import torch

    from bench.data.dataset import leave_one_out
    from bench.data.resolve import resolve_dataset
    from bench.llm.backbone import load_backbone
    from bench.llm.preferences import PreferenceExtractor, summary

    torch.set_num_threads(1)
    ds = resolve_dataset("ml-100k")
    split = leave_one_out(ds)
    backbone = load_backbone("smollm2-135m", device="cpu")
    n = len(split.train) if users <= 0 else users
    histories = [[ds.titles[i] for i in split.train[row][-max_titles:]] for row in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        ex = PreferenceExtractor(backbone, max_titles=max_titles, batch_size=batch, cache_root=Path(tmp))
        t0 = time.perf_counter()
        prefs = ex.extract(histories)
        dt = time.perf_counter() - t0
        again = PreferenceExtractor(backbone, max_titles=max_titles, batch_size=batch, cache_root=Path(tmp))
        again.extract(histories)
    s = summary(prefs)
    print(
        f"users {n}, last {max_titles} titles, batch {batch}: five usable {s['five_usable']}/{n} "
        f"({s['five_usable_share']:.1%}); values repaired {s['repaired']}/{s['values']}, dropped "
        f"{s['dropped']}, unusable {s['unusable']}; {dt:.1f} s ({dt / n:.2f} s/user); rerun: "
        f"{again.hits} hits, {again.misses} misses; load {os.getloadavg()[0]:.2f}"
    )
    for p in prefs[:4]:
        print(p.values, p.usable)


if __name__ == "__main__":
    main(*(int(x) for x in sys.argv[1:4]))
