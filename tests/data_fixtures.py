"""Small files in the exact formats of the papers' datasets, written by the tests (gzipped or not)."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path


def write_lines(path: Path, lines: list[str], *, gz: bool) -> Path:
    """Write ``lines`` (one record each) to ``path`` (+ ``.gz`` when ``gz``); returns the file."""
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)
    return path


def amazon2018(
    directory: Path, reviews: list[dict], meta: list[dict], *, gz: bool = True, category: str = "Video_Games"
) -> Path:
    """An Amazon 2018 category directory: ``<Cat>_5.json`` + ``meta_<Cat>.json`` (strict JSON lines)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_lines(directory / f"{category}_5.json", [json.dumps(r) for r in reviews], gz=gz)
    write_lines(directory / f"meta_{category}.json", [json.dumps(m) for m in meta], gz=gz)
    return directory


def review(user: str, item: str, time: int, rating: float = 5.0) -> dict:
    """A 2018-style review with the fields the real files carry."""
    return {
        "overall": rating,
        "verified": True,
        "reviewTime": "01 1, 2015",
        "reviewerID": user,
        "asin": item,
        "style": {"Format:": " Video Game"},
        "reviewerName": f"name of {user}",
        "reviewText": 'Fun, with a "quote" and unicode: caf\u00e9',
        "summary": "ok",
        "unixReviewTime": time,
        "vote": "2",
    }


def py_literal(d: dict) -> str:
    """A Python-2-style dict literal (``u''`` strings), as the 2014 meta and Steam files write them."""

    def lit(v: object) -> str:
        if isinstance(v, str):
            return "u" + repr(v)
        if isinstance(v, dict):
            return "{" + ", ".join(f"{lit(k)}: {lit(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(lit(x) for x in v) + "]"
        return repr(v)

    return lit(d)


def games_like(
    directory: Path, *, n_users: int = 60, n_items: int = 40, seed: int = 1, gz: bool = True
) -> Path:
    """A random Amazon-2018 Video Games directory big enough to survive a 5-core and run a suite:
    every user reviews 12-20 items (a few without a title, a few duplicate pairs)."""
    rng = random.Random(seed)
    reviews = []
    t = 1_400_000_000
    for u in range(n_users):
        items = rng.sample(range(n_items), rng.randint(12, 20))
        for i in items:
            t += rng.randint(1, 5000)
            reviews.append(review(f"A{u:04d}", f"B{i:05d}", t, float(rng.randint(1, 5))))
        reviews.append(review(f"A{u:04d}", f"B{items[0]:05d}", t + 10))  # a duplicate pair
    meta = [
        {"asin": f"B{i:05d}", "title": "" if i % 13 == 7 else f"Game {i}", "category": ["Video Games", "PC"]}
        for i in range(n_items)
    ]
    return amazon2018(directory, reviews, meta, gz=gz)
