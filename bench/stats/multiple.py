"""Multiple-comparison corrections: Holm (family-wise error) and Benjamini-Hochberg (false discovery)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bench.errors import UserError
from bench.stats._core import Correction


def _finite_sorted(pvalues: Iterable[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.asarray(list(pvalues) if not isinstance(pvalues, np.ndarray) else pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise UserError(f"p-values must be a 1-D vector, got shape {p.shape}")
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    return p, ok, order


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm step-down adjustment (controls the family-wise error rate).

    With the ``m`` non-NaN p-values sorted ``p_(1) <= ... <= p_(m)``:
    ``q_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``. Returned in input order; NaN stays NaN.
    """
    p, ok, order = _finite_sorted(pvalues)
    out = np.full(p.shape, np.nan)
    m = order.size
    if m:
        scaled = (m - np.arange(m)) * p[order]
        out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def benjamini_hochberg(pvalues: Iterable[float]) -> np.ndarray:
    """Benjamini-Hochberg step-up adjustment (controls the false discovery rate).

    With the ``m`` non-NaN p-values sorted ``p_(1) <= ... <= p_(m)``:
    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)``. Returned in input order; NaN stays NaN.
    """
    p, ok, order = _finite_sorted(pvalues)
    out = np.full(p.shape, np.nan)
    m = order.size
    if m:
        scaled = m * p[order] / np.arange(1, m + 1)
        out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out


def adjust(pvalues: Iterable[float], *, method: Correction = "holm") -> np.ndarray:
    """Adjust a family of p-values: ``"holm"`` (:func:`holm`), ``"bh"`` (:func:`benjamini_hochberg`)
    or ``"none"`` (``q_i = p_i``)."""
    if method == "holm":
        return holm(pvalues)
    if method == "bh":
        return benjamini_hochberg(pvalues)
    if method == "none":
        return np.array(list(pvalues) if not isinstance(pvalues, np.ndarray) else pvalues, dtype=np.float64)
    raise UserError(f"unknown p-value correction {method!r}", fix="use 'holm', 'bh' or 'none'")
