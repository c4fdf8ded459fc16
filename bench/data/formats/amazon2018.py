"""Amazon reviews, 2018 release (Ni et al., "amazon_v2"; RecExplainer's Games and Movies): ``amazon-2018``.

A directory with ``<Category>[_5].json[.gz]`` — strict JSON lines with ``reviewerID``, ``asin``,
``overall``, ``unixReviewTime`` (also ``reviewTime``, ``summary``, ``reviewText``, ``verified``,
``vote``, ``style``, ``image``, not read) — and optionally ``meta_<Category>.json[.gz]``, strict
JSON lines with ``asin``, ``title``, ``category`` (a list), ``main_cat``, ``brand``, ... A line that
is not strict JSON is an error (a Python-literal line means a 2014 file: use ``amazon-2014``).
Shared rules: :mod:`bench.data.formats.amazon`.
"""

from __future__ import annotations

from bench.data.formats.amazon import AmazonLayout, amazon_source, flat_strings
from bench.data.streaming import parse_json

LAYOUT = AmazonLayout(
    format="amazon-2018",
    review_prefix="",
    parse_review=parse_json,
    parse_meta=parse_json,
    review_fix="each line of an Amazon 2018 reviews file is one JSON object with reviewerID, asin, "
    "unixReviewTime (and overall); fix or remove the line, or fetch the file again "
    "(Python-literal lines are the 2014 release: set dataset.format=amazon-2014)",
    meta_fix="each line of an Amazon 2018 meta file is one JSON object with at least asin (and title); "
    "fix or remove the line (Python-literal lines are the 2014 release: set dataset.format=amazon-2014)",
    genres=lambda rec: flat_strings(rec.get("category")),
    example="Video_Games_5.json.gz and meta_Video_Games.json.gz",
)


SOURCE = amazon_source(
    LAYOUT,
    description="Amazon 2018 reviews: <Cat>[_5].json[.gz] + meta_<Cat>.json[.gz] (JSON lines)",
)
