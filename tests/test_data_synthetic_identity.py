"""The generated datasets are byte-identical to those of the code before the synthetic.py split.

The hashes below were computed on the original single-module ``bench/data/synthetic.py`` (commit
94d5451) for the parameters the suites use: ``tiny`` (300 x 120), the tests' small tiny (60 x 40),
``opaque-balanced`` (the opaque suite, 400 x 120) and plain ``opaque``. Any change to the generator's
draws, metadata or assembly changes them; bump the generator version if that is intended.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from bench.data.dataset import Dataset
from bench.data.synthetic import make_tiny

EXPECTED = {
    "tiny-300x120": (
        {"n_users": 300, "n_items": 120},
        "a7124becde176bde31e8b06dcc3a45537498f522682d781d9bb4e3dc1ebc9601",
    ),
    "tiny-60x40": (
        {"n_users": 60, "n_items": 40},
        "6ea29e6e1dbd5cc577c15214ca1b9654e73ebd9c6e9d569c1282e6ec7ac43498",
    ),
    "opaque-balanced-400x120": (
        {"n_users": 400, "n_items": 120, "opaque": True, "balanced_items": True},
        "ebb391508e7dd3baee3cc44bbf88bfa15224900bcbc5060edced72455d7f1fb0",
    ),
    "opaque-400x120": (
        {"n_users": 400, "n_items": 120, "opaque": True},
        "341e2348b9df5adc60825a8c8b71d51248ccaf11ddc437707c5cc9c558f7961c",
    ),
}


def digest(ds: Dataset) -> str:
    """sha256 over the interaction arrays (dtype + bytes) and every other field as canonical JSON."""
    h = hashlib.sha256()
    for arr in (ds.users, ds.items, ds.timestamps, ds.ratings):
        assert arr is not None
        h.update(arr.dtype.str.encode())
        h.update(arr.tobytes())
    fields = [
        ds.name,
        ds.user_ids,
        ds.item_ids,
        ds.titles,
        ds.genres,
        ds.years,
        ds.sha256,
        ds.source,
        ds.extra,
    ]
    h.update(json.dumps(fields, sort_keys=True, default=list).encode())
    return h.hexdigest()


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_generated_data_is_unchanged(case: str) -> None:
    params, expected = EXPECTED[case]
    assert digest(make_tiny(**params)) == expected
