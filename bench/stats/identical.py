"""Pairs of a table that are not tested: two systems with identical answers (or identical values).

Such a pair gets ``test="identical_predictions"``, ``diff = 0`` and ``p = 1``, and it leaves the
multiple-comparison family of its table. Shared by the AUC path (:mod:`bench.stats.auc`) and the
per-table dispatcher (:mod:`bench.stats.units`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

import numpy as np

from bench.errors import UserError
from bench.stats._core import Correction
from bench.stats.multiple import adjust
from bench.stats.paired import PairedTest

IDENTICAL_TEST = "identical_predictions"


def _identical_set(identical: Collection[tuple[str, str]]) -> set[frozenset[str]]:
    out: set[frozenset[str]] = set()
    for pair in identical:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise UserError(
                f"identical pairs must be (name, name) tuples, got {pair!r}",
                fix="pass e.g. identical=[('explainer_a', 'explainer_b')]",
            )
        if pair[0] != pair[1]:
            out.add(frozenset((str(pair[0]), str(pair[1]))))
    return out


def _mark_identical(
    tests: list[PairedTest], identical: Collection[tuple[str, str]], correction: Correction
) -> list[PairedTest]:
    """Replace the tests of ``identical`` pairs and re-adjust the others without them.

    A pair ``{a, b}`` listed in ``identical`` (either order; pairs naming a system that is not in the
    table are ignored) is not tested: ``test="identical_predictions"``, ``diff = 0``,
    ``p_value = p_adjusted = 1``, no statistic and no CI. The ``correction`` family of the table is the
    remaining pairs: their ``p_adjusted = adjust(their p_values)``. When no listed pair is in the
    table the tests are returned unchanged.
    """
    same = _identical_set(identical)
    hit = [frozenset((t.a or "", t.b or "")) in same for t in tests]
    if not any(hit):
        return tests
    rest = [t for t, h in zip(tests, hit, strict=True) if not h]
    adj = iter(adjust(np.array([t.p_value for t in rest], dtype=np.float64), method=correction))
    return [
        PairedTest(IDENTICAL_TEST, 0.0, 1.0, t.n, None, a=t.a, b=t.b, p_adjusted=1.0)
        if h
        else replace(t, p_adjusted=float(next(adj)))
        for t, h in zip(tests, hit, strict=True)
    ]
