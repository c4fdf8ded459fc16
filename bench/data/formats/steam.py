"""Steam reviews (Kang & McAuley 2018; RecExplainer's and LANE's Steam): format ``steam``.

A directory with ``steam_reviews.json[.gz]`` and optionally ``steam_games.json[.gz]``. Every line
of both is a **Python dict literal** (``u''`` strings, ``True``/``False``), read with
``ast.literal_eval`` — never ``eval`` (strict JSON lines are accepted too).

* a review needs ``username`` (the user; ``user_id`` when ``username`` is absent — only some
  reviews carry one), ``product_id`` (the item) and ``date`` (``YYYY-MM-DD``);
* **day-level times**: the timestamp is the date's midnight UTC in seconds, so a user's reviews of
  the same day tie. Same-day order rule: **file order** (the stable sort of
  ``Dataset.sequences``; in the published file a user's same-day reviews appear in crawl order);
* users and items are indexed in order of first appearance; interactions keep file order;
* ``steam_games`` is read after the reviews, only for products that occur in them: title =
  ``app_name`` (else ``title``), genres = ``genres``, year = the year of ``release_date``; a games
  line without ``id`` cannot be joined and is skipped (counted in the log); the first line of an
  ``id`` wins;
* ``sha256`` hashes the bytes of ``steam_reviews`` then ``steam_games``, as stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path

from bench.data.dataset import Dataset
from bench.data.downloads import source
from bench.data.formats.amazon import flat_strings
from bench.data.streaming import StreamBuilder, field, find_one, iter_lines, parse_json_or_literal
from bench.data.tables import parse_year
from bench.errors import DataError

log = logging.getLogger(__name__)

REVIEWS = ("steam_reviews.json.gz", "steam_reviews.json")
GAMES = ("steam_games.json.gz", "steam_games.json")
_EPOCH = dt.date(1970, 1, 1)
REVIEW_FIX = (
    "each line of steam_reviews is one dict literal with 'username', 'product_id' and 'date' "
    "('YYYY-MM-DD'); fix or remove the line, or fetch the file again"
)
GAMES_FIX = "each line of steam_games is one dict literal (with 'id' and 'app_name'); fix or remove the line"


def _day_seconds(value: object, path: Path, no: int) -> float:
    try:
        day = dt.date.fromisoformat(str(value).strip())
    except ValueError:
        shown = "missing" if value is None else f"{value!r} is not a YYYY-MM-DD date"
        raise DataError(f"'date' {shown}", where=f"{path}:{no}", fix=REVIEW_FIX) from None
    return float((day - _EPOCH).days * 86400)


def load(directory: Path, *, name: str | None = None) -> Dataset:
    """Read ``steam_reviews`` (+ ``steam_games``) from ``directory`` (rules in the module doc)."""
    reviews = find_one(directory, REVIEWS)
    if not reviews:
        raise DataError(
            f"no steam_reviews.json(.gz) in {directory}",
            fix="put steam_reviews.json.gz (and steam_games.json.gz) there (`recxbench data fetch steam`)",
        )
    review_path = reviews[0]
    hasher = hashlib.sha256()
    builder = StreamBuilder(ratings=False)
    for no, text in iter_lines(review_path, hasher):
        rec = parse_json_or_literal(text, review_path, no, fix=REVIEW_FIX)
        user_key = "username" if "username" in rec or "user_id" not in rec else "user_id"
        builder.add(
            field(rec, user_key, review_path, no, fix=REVIEW_FIX),
            field(rec, "product_id", review_path, no, fix=REVIEW_FIX),
            _day_seconds(rec.get("date"), review_path, no),
        )
    files = [review_path.name]
    meta: dict[str, tuple[str, tuple[str, ...], int | None]] = {}
    games = find_one(directory, GAMES)
    if games:
        games_path = games[0]
        files.append(games_path.name)
        skipped = 0
        for no, text in iter_lines(games_path, hasher):
            rec = parse_json_or_literal(text, games_path, no, fix=GAMES_FIX)
            gid = rec.get("id")
            if gid is None or not str(gid).strip():
                skipped += 1
                continue
            gid = str(gid).strip()
            if gid in builder.item_index and gid not in meta:
                title = rec.get("app_name") or rec.get("title") or ""
                title = " ".join(title.split()) if isinstance(title, str) else ""
                year = rec.get("release_date")
                meta[gid] = (title, flat_strings(rec.get("genres")), parse_year(str(year)) if year else None)
        if skipped:
            log.info("%s: %d lines without 'id' skipped (they cannot be joined)", games_path.name, skipped)
    else:
        log.warning("%s: no steam_games file, so items have no titles", directory)
    return builder.build(
        name=name or "steam",
        meta=meta,
        sha256=hasher.hexdigest(),
        source=directory,
        extra={"format": "steam", "files": files},
        empty=lambda: DataError(
            f"{review_path.name} has no reviews", where=f"{review_path}:1", fix="add review lines"
        ),
    )


def detect(directory: Path) -> bool:
    """Whether ``directory`` holds ``steam_reviews.json[.gz]``."""
    return bool(find_one(directory, REVIEWS))


SOURCE = source(
    "steam",
    load=load,
    detect=detect,
    description="Steam: steam_reviews.json[.gz] + steam_games.json[.gz] (Python literals); "
    "as a name: the cache of `recxbench data fetch steam`",
)
