"""Benchmark: the streaming Amazon-2018 loader on a large synthetic review file (a script, not a test).

    python tests/benchmarks/bench_stream_loader.py [--size-mb 1024] [--gzip] [--dir DIR] [--keep]

Writes ``<DIR>/Video_Games_5.json[.gz]`` — strict JSON review lines shaped like the 2018 release
(about 480 bytes a line, review text included) — up to ``--size-mb`` MB of uncompressed text, and a
``meta_Video_Games.json`` with a title for every item; then loads the directory with
``format=amazon-2018`` in a **fresh child process** and reports its peak RSS
(``resource.getrusage``), the RSS right after the imports (the floor), seconds, lines/s and MB/s.
Copy the figures into docs/PERFORMANCE.md by hand (say what the machine was doing).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "Bought this for my son and he has been playing it every day since. " * 3,
    "The controls take a while to get used to, but the story is great and the music is lovely. " * 2,
    "Arrived quickly, works as described. Not much else to say, five stars from me. " * 3,
    "Disappointing sequel: shorter campaign, more microtransactions and a clunky menu system. " * 2,
]


def write_reviews(
    path: Path, *, size_mb: int, gz: bool, users: int, items: int, seed: int
) -> tuple[int, int]:
    """Write review lines until ``size_mb`` MB of text; returns (lines, bytes on disk)."""
    rng = random.Random(seed)
    target = size_mb * 1024 * 1024
    written = lines = 0
    t = 1_300_000_000
    with gzip.open(path, "wb", compresslevel=1) if gz else path.open("wb") as out:
        while written < target:
            chunk = []
            for _ in range(10_000):
                t += rng.randint(0, 60)
                rec = {
                    "overall": float(rng.randint(1, 5)),
                    "verified": True,
                    "reviewTime": "05 3, 2014",
                    "reviewerID": f"A{rng.randrange(users):013d}",
                    "asin": f"B{rng.randrange(items):09d}",
                    "style": {"Format:": " Video Game"},
                    "reviewerName": "Some Reviewer",
                    "reviewText": TEXTS[rng.randrange(len(TEXTS))],
                    "summary": "Worth it",
                    "unixReviewTime": t,
                }
                chunk.append(json.dumps(rec))
            data = ("\n".join(chunk) + "\n").encode()
            out.write(data)
            written += len(data)
            lines += len(chunk)
    return lines, path.stat().st_size


def child(directory: str) -> None:
    """Load ``directory`` and print one JSON line of figures (runs in a fresh process)."""
    sys.path.insert(0, str(ROOT))
    from bench.data.loaders import load_dataset

    floor_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    ds = load_dataset(directory, format="amazon-2018")
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(
        json.dumps(
            {
                "seconds": seconds,
                "interactions": ds.n_interactions,
                "users": ds.n_users,
                "items": ds.n_items,
                "titled": sum(1 for t in ds.titles if t),
                "rss_after_imports_mb": floor_kb / 1024,
                "peak_rss_mb": peak_kb / 1024,
            }
        )
        + "\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--size-mb", type=int, default=1024, help="uncompressed review text to write (default 1024)"
    )
    ap.add_argument("--gzip", action="store_true", help="write the reviews gzipped (level 1)")
    ap.add_argument("--users", type=int, default=400_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--dir", help="where to write (default: a temporary directory, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="recx-stream-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        reviews = directory / ("Video_Games_5.json.gz" if args.gzip else "Video_Games_5.json")
        start = time.perf_counter()
        lines, on_disk = write_reviews(
            reviews, size_mb=args.size_mb, gz=args.gzip, users=args.users, items=args.items, seed=0
        )
        with (directory / "meta_Video_Games.json").open("w", encoding="utf-8") as meta:
            for i in range(args.items):
                meta.write(
                    json.dumps({"asin": f"B{i:09d}", "title": f"Game {i}", "category": ["Video Games"]})
                    + "\n"
                )
        wrote = time.perf_counter() - start
        sys.stdout.write(
            f"wrote {lines:,} review lines, {args.size_mb} MB of text, {on_disk / 2**20:,.0f} MB on disk "
            f"({'gzip' if args.gzip else 'plain'}) in {wrote:.0f} s\n"
        )
        sys.stdout.flush()
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(directory)], capture_output=True, text=True, check=True
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        sys.stdout.write(
            f"loaded {r['interactions']:,} interactions ({r['users']:,} users, {r['items']:,} items, "
            f"{r['titled']:,} titled) in {r['seconds']:.1f} s: {lines / r['seconds']:,.0f} lines/s, "
            f"{args.size_mb / r['seconds']:.1f} MB/s of text\n"
            f"peak RSS {r['peak_rss_mb']:.0f} MB (after imports {r['rss_after_imports_mb']:.0f} MB; "
            f"file text {args.size_mb} MB)\n"
        )
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
