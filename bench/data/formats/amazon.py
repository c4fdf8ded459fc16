"""What the two Amazon review formats share: find the files, stream the reviews, then the metadata.

``amazon-2014`` (:mod:`.amazon2014`) and ``amazon-2018`` (:mod:`.amazon2018`) differ in file names,
in how a line is written (JSON or Python literal) and in the category field; each passes an
:class:`AmazonLayout` to :func:`load_amazon`.

Rules (both formats):

* one category per directory: one reviews file (gzipped or not, detected by magic bytes) and
  optionally its ``meta_<Category>`` file;
* a review needs ``reviewerID`` (user), ``asin`` (item) and ``unixReviewTime`` (seconds);
  ``overall`` (1-5) becomes the rating when present. Other fields are not read;
* users and items are indexed in order of first appearance in the reviews; interactions keep file
  order (``Dataset.sequences`` breaks equal times by it);
* the metadata file is read after the reviews and only the items that occur in the reviews are
  kept (memory stays bounded by the reviews); the first line of an ``asin`` wins (the 2018 meta
  files repeat some items). Title = ``title`` with whitespace runs collapsed, ``""`` when missing
  or empty; genres = the category list (flattened, duplicates dropped); no year (Amazon dates are
  unreliable);
* ``sha256`` hashes the bytes of the reviews file then the meta file, as stored (compressed or not).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data.dataset import Dataset
from bench.data.sources import DatasetSource
from bench.data.streaming import StreamBuilder, field, find_one, iter_lines, number
from bench.errors import DataError

log = logging.getLogger(__name__)

Parser = Callable[..., dict[str, Any]]
SUFFIXES = (".json.gz", ".jsonl.gz", ".json", ".jsonl")


@dataclass(frozen=True)
class AmazonLayout:
    """How one Amazon release writes its files.

    Attributes:
        format: the registered format name (``amazon-2014``).
        review_prefix: prefix of the reviews file (``"reviews_"``; ``""`` for 2018).
        parse_review, parse_meta: line parsers (see :mod:`bench.data.streaming`).
        review_fix, meta_fix: the ``fix`` of an error on a reviews / meta line.
        genres: the category list of a meta record.
        example: example file names, for messages.
    """

    format: str
    review_prefix: str
    parse_review: Parser
    parse_meta: Parser
    review_fix: str
    meta_fix: str
    genres: Callable[[dict[str, Any]], tuple[str, ...]]
    example: str


def _strip_suffix(name: str) -> str:
    for s in SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


def category_of(review_file: str, prefix: str) -> str:
    """``reviews_Beauty_5.json.gz`` -> ``Beauty``; ``Video_Games_5.json.gz`` -> ``Video_Games``."""
    stem = _strip_suffix(review_file)
    if prefix and stem.startswith(prefix):
        stem = stem[len(prefix) :]
    return stem[:-2] if stem.endswith("_5") else stem


def _patterns(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}*{s}" for s in SUFFIXES)


def review_files(directory: Path, layout: AmazonLayout) -> list[Path]:
    """Candidate reviews files of ``directory`` for ``layout``."""
    # SOURCE.json: the provenance record `recxbench data fetch` writes next to the files
    exclude = ("meta_", "steam_", "SOURCE.") + (() if layout.review_prefix else ("reviews_",))
    return find_one(directory, _patterns(layout.review_prefix), exclude=exclude)


def find_files(directory: Path, layout: AmazonLayout) -> tuple[Path, Path | None]:
    """The reviews file and its meta file (None when absent) of ``directory``."""
    reviews = review_files(directory, layout)
    if not reviews:
        raise DataError(
            f"no {layout.format} reviews file in {directory}",
            fix=f"put the category's files there, e.g. {layout.example}",
        )
    if len(reviews) > 1:
        raise DataError(
            f"several reviews files in {directory}: {', '.join(p.name for p in reviews)}",
            fix="keep one category per directory (its reviews file and its meta_ file)",
        )
    category = category_of(reviews[0].name, layout.review_prefix)
    metas = find_one(directory, tuple(f"meta_{category}{s}" for s in SUFFIXES))
    if not metas:
        metas = find_one(directory, _patterns("meta_"))
        if len(metas) > 1:
            raise DataError(
                f"no meta_{category}.json(.gz) but several other meta files in {directory}",
                fix=f"name the metadata file meta_{category}.json.gz, or keep one category per directory",
            )
    return reviews[0], (metas[0] if metas else None)


def _title(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def load_amazon(directory: Path, *, name: str | None, layout: AmazonLayout) -> Dataset:
    """Stream the reviews then the metadata of ``directory`` into a Dataset (rules in the module doc)."""
    review_path, meta_path = find_files(directory, layout)
    hasher = hashlib.sha256()
    builder = StreamBuilder(ratings=True)
    rfix = layout.review_fix
    for no, text in iter_lines(review_path, hasher):
        rec = layout.parse_review(text, review_path, no, fix=rfix)
        rating = number(rec, "overall", review_path, no, fix=rfix) if "overall" in rec else None
        builder.add(
            field(rec, "reviewerID", review_path, no, fix=rfix),
            field(rec, "asin", review_path, no, fix=rfix),
            number(rec, "unixReviewTime", review_path, no, fix=rfix),
            rating,
        )
    files = [review_path.name]
    meta: dict[str, tuple[str, tuple[str, ...], int | None]] = {}
    if meta_path is None:
        log.warning(
            "%s: no meta_ file, so items have no titles (recipes that need titles drop them)", directory
        )
    else:
        files.append(meta_path.name)
        wanted = builder.item_index
        for no, text in iter_lines(meta_path, hasher):
            rec = layout.parse_meta(text, meta_path, no, fix=layout.meta_fix)
            asin = field(rec, "asin", meta_path, no, fix=layout.meta_fix)
            if asin in wanted and asin not in meta:
                meta[asin] = (_title(rec.get("title")), layout.genres(rec), None)
    log.info(
        "%s: %d reviews, %d users, %d items (%d with metadata)",
        review_path.name,
        len(builder),
        len(builder.user_index),
        len(builder.item_index),
        len(meta),
    )
    return builder.build(
        name=name or category_of(review_path.name, layout.review_prefix),
        meta=meta,
        sha256=hasher.hexdigest(),
        source=directory,
        extra={"format": layout.format, "files": files},
        empty=lambda: DataError(
            f"{review_path.name} has no reviews", where=f"{review_path}:1", fix="add review lines"
        ),
    )


def flat_strings(value: Any) -> tuple[str, ...]:
    """Strings of a (possibly nested) list, stripped, empty and repeated ones dropped, in order."""
    out: dict[str, None] = {}

    def walk(v: Any) -> None:
        if isinstance(v, str):
            s = " ".join(v.split())
            if s:
                out.setdefault(s, None)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(value)
    return tuple(out)


def amazon_source(layout: AmazonLayout, *, description: str) -> DatasetSource:
    """The registry record of one Amazon release: :func:`load_amazon` with ``layout``, detected by
    its reviews files (:func:`review_files`)."""

    def load(directory: Path, *, name: str | None = None) -> Dataset:
        return load_amazon(directory, name=name, layout=layout)

    def detect(directory: Path) -> bool:
        return bool(review_files(directory, layout))

    return DatasetSource(load=load, detect=detect, description=description)
