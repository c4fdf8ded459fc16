"""Amazon reviews, 2014 release (McAuley et al.; LANE's Beauty): format ``amazon-2014``.

A directory with ``reviews_<Category>[_5].json[.gz]`` (one JSON object a line: ``reviewerID``,
``asin``, ``overall``, ``unixReviewTime``, ...) and optionally ``meta_<Category>.json[.gz]``, whose
lines are **Python literals** (``{'asin': '...', 'title': u'...', 'categories': [[...]]}``), read
with ``ast.literal_eval`` — never ``eval``. Review lines may be Python literals too (the 2014 "loose
JSON"): strict JSON is tried first. Shared rules: :mod:`bench.data.formats.amazon`.
"""

from __future__ import annotations

from bench.data.formats.amazon import AmazonLayout, amazon_source, flat_strings
from bench.data.streaming import parse_json_or_literal

LAYOUT = AmazonLayout(
    format="amazon-2014",
    review_prefix="reviews_",
    parse_review=parse_json_or_literal,
    parse_meta=parse_json_or_literal,
    review_fix="each line of an Amazon 2014 reviews file is one object with reviewerID, asin, "
    "unixReviewTime (and overall); fix or remove the line, or fetch the file again",
    meta_fix="each line of an Amazon 2014 meta file is one dict literal with at least 'asin' "
    "(and 'title'); fix or remove the line, or fetch the file again",
    genres=lambda rec: flat_strings(rec.get("categories")),
    example="reviews_Beauty_5.json.gz and meta_Beauty.json.gz",
)


SOURCE = amazon_source(
    LAYOUT,
    description="Amazon 2014 reviews: reviews_<Cat>[_5].json[.gz] + meta_<Cat>.json[.gz] (Python literals)",
)
