"""LANE preference extraction on ML-100k windows of the kind the `lane` explainer meets.

Draws ``--histories`` windows of ``--window`` consecutive titles (a seeded pick of users, each
window the last ``window`` items of a seeded prefix of the user's training sequence, as the tasks'
teacher contexts are built), extracts preferences with the suite's LLM into a fresh cache, and
prints: the share of windows with five usable preferences, repaired / dropped / unusable counts,
seconds per window (and the load average), a sample of values with their flags, and how often a
usable value names a genre of its own window (ML-100k genre labels, never shown to the LLM)
against a window of another user (a check that the preferences depend on the titles).

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_lane_preferences.py --histories 120
    ... --params '{"mode": "free"}'          # any PreferenceExtractor keyword (default: lane.yaml's)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

import torch

#: ML-100k genre label -> words that name it in a preference
GENRE_WORDS = {
    "Action": ["action"],
    "Adventure": ["adventure"],
    "Animation": ["animation", "animated", "cartoon"],
    "Children's": ["children", "family", "kids"],
    "Comedy": ["comedy", "comedies", "comic", "humor", "humour", "funny"],
    "Crime": ["crime", "gangster", "heist", "mafia", "detective"],
    "Documentary": ["documentary", "documentaries"],
    "Drama": ["drama", "dramas"],
    "Fantasy": ["fantasy"],
    "Film-Noir": ["noir"],
    "Horror": ["horror", "slasher", "monster"],
    "Musical": ["musical", "musicals", "music"],
    "Mystery": ["mystery", "mysteries", "whodunit"],
    "Romance": ["romance", "romantic", "love"],
    "Sci-Fi": ["sci", "science", "space", "futuristic", "alien", "aliens"],
    "Thriller": ["thriller", "thrillers", "suspense"],
    "War": ["war", "military", "battle"],
    "Western": ["western", "westerns", "cowboy"],
}


def windows(ds, split, n: int, window: int, seed: int) -> list[list[int]]:
    from bench import seeds

    rng = seeds.rng(seed, "bench", "lane-preferences")
    users = rng.permutation(len(split.train))[:n]
    out = []
    for u in users:
        seq = [int(x) for x in split.train[int(u)]]
        end = int(rng.integers(min(len(seq), window), len(seq) + 1))
        out.append(seq[max(0, end - window) : end])
    return out


def genre_hits(values, usable, genres) -> tuple[int, int]:
    """(usable values naming a genre of ``genres``, usable values)."""
    words = {w for g in genres for w in GENRE_WORDS.get(g, [])}
    hit = n = 0
    for v, ok in zip(values, usable):
        if ok:
            n += 1
            hit += bool(words & set(re.findall(r"[a-z]+", v.lower())))
    return hit, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--histories", type=int, default=120)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default=None, help="backbone dtype (bfloat16 checks the GPU path on CPU)")
    ap.add_argument("--params", default="{}", help="JSON of PreferenceExtractor keywords")
    ap.add_argument("--show", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from bench.data.dataset import leave_one_out
    from bench.data.resolve import resolve_dataset
    from bench.explainers.lane import extractor_params, load_lane_defaults
    from bench.llm.backbone import load_backbone
    from bench.llm.preferences import PreferenceExtractor, summary

    ds = resolve_dataset("ml-100k")
    split = leave_one_out(ds)
    wins = windows(ds, split, args.histories, args.window, args.seed)
    backbone = load_backbone("smollm2-135m", device="cpu", dtype=args.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        ex = PreferenceExtractor(
            backbone,
            cache_root=Path(tmp),
            **{**extractor_params(load_lane_defaults()), **json.loads(args.params)},
        )
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        prefs = ex.extract([[ds.titles[i] for i in w] for w in wins])
        secs = time.perf_counter() - t0
        load1 = os.getloadavg()[0]
    for w, p in list(zip(wins, prefs))[: args.show]:
        print(" | ".join(ds.titles[i] for i in w))
        print("    ->", "; ".join(f"{v}{'' if ok else ' [x]'}" for v, ok in zip(p.values, p.usable)))
    own = [genre_hits(p.values, p.usable, {g for i in w for g in ds.genres[i]}) for w, p in zip(wins, prefs)]
    other_w = wins[1:] + wins[:1]
    other = [
        genre_hits(p.values, p.usable, {g for i in w for g in ds.genres[i]}) for w, p in zip(other_w, prefs)
    ]
    share = lambda h: round(sum(a for a, _ in h) / max(1, sum(b for _, b in h)), 3)  # noqa: E731
    print(json.dumps(summary(prefs)))
    print(
        json.dumps(
            {
                "params": json.loads(args.params),
                "dtype": backbone.dtype,
                "seconds": round(secs, 1),
                "seconds_per_history": round(secs / len(wins), 2),
                "loadavg_start_end": [load0, load1],
                "genre_hit_own_window": share(own),
                "genre_hit_other_window": share(other),
                "distinct_values": len({v.lower() for p in prefs for v in p.values}),
            }
        )
    )


if __name__ == "__main__":
    main()
