"""Confidence intervals: percentile bootstrap of the mean (one vector, many, many tables) and Wilson.

All bootstrap intervals use the multinomial count matrices of :func:`bench.stats._core._bootstrap_counts`,
which depend only on ``(seed, n, chunk)``: the same seed gives the same resamples for every vector.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats as _sps

from bench.errors import UserError
from bench.stats._core import (
    K,
    _check_confidence,
    _check_resamples,
    _check_seed,
    _resampled_means,
    _table_matrix,
    _vector,
)


def bootstrap_ci(
    x: np.ndarray, *, confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Resample ``r`` draws ``n`` instances with replacement (counts ``C[r, i]``); its mean is
    ``m_r = sum_i C[r, i] x_i / n``. With ``alpha = 1 - confidence`` the interval is
    ``(Q(alpha / 2), Q(1 - alpha / 2))`` where ``Q`` is the linear-interpolated empirical quantile of
    ``m_1..m_R``. ``n == 0`` gives ``(nan, nan)``; ``n == 1`` gives ``(x_0, x_0)``.

    Identical to ``bootstrap_ci_many(x[None, :], ...)[0]`` (same resample counts).
    """
    xv = _vector(x, "x")
    lo, hi = bootstrap_ci_many(xv[None, :], confidence=confidence, resamples=resamples, seed=seed)[0]
    return float(lo), float(hi)


def bootstrap_ci_many(
    X: np.ndarray, *, confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> np.ndarray:
    """Percentile bootstrap CIs of the mean for each row of ``X`` [m, n], over the *same* instances.

    One resample-count matrix ``C`` [R, n] (built chunk by chunk) serves every row:
    ``M = C @ X.T / n`` [R, m]; row ``k``'s interval is ``(Q_k(alpha/2), Q_k(1 - alpha/2))`` as in
    :func:`bootstrap_ci`. Returns an array [m, 2] of ``(low, high)``. NaN scores propagate.
    """
    conf = _check_confidence(confidence)
    R = _check_resamples(resamples)
    s = _check_seed(seed)
    Xm = np.asarray(X, dtype=np.float64)
    if Xm.ndim != 2:
        raise UserError(f"X must be a 2-D array [systems, instances], got shape {Xm.shape}")
    m, n = Xm.shape
    if n == 0:
        return np.full((m, 2), np.nan)
    if n == 1:
        return np.repeat(Xm, 2, axis=1)
    alpha = 1.0 - conf
    means = _resampled_means(Xm, resamples=R, seed=s)
    return np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0).T.copy()


def wilson_ci(
    successes: int | np.ndarray, n: int | np.ndarray, *, confidence: float = 0.95
) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion ``p = successes / n``.

    With ``z = Phi^-1(1 - alpha / 2)``:
    ``center = (p + z^2 / (2n)) / (1 + z^2 / n)``,
    ``half = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))``; the interval is
    ``(center - half, center + half)`` clipped to [0, 1]. ``n == 0`` gives ``(nan, nan)``.
    Scalars in, floats out; arrays broadcast.
    """
    conf = _check_confidence(confidence)
    k = np.asarray(successes, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    if np.any(nn < 0) or np.any(k < 0) or np.any(k > nn):
        raise UserError(f"wilson_ci needs 0 <= successes <= n, got successes={successes!r}, n={n!r}")
    z = float(_sps.norm.ppf(1.0 - (1.0 - conf) / 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / nn
        denom = 1.0 + z * z / nn
        center = (p + z * z / (2.0 * nn)) / denom
        half = z / denom * np.sqrt(p * (1.0 - p) / nn + z * z / (4.0 * nn * nn))
        lo = np.where(nn > 0, np.clip(center - half, 0.0, 1.0), np.nan)
        hi = np.where(nn > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def bootstrap_ci_tables(
    tables: Mapping[K, Mapping[str, np.ndarray]],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[K, dict[str, tuple[float, float]]]:
    """:func:`bootstrap_ci` of every system of every table; tables with equal ``n`` share one pass.

    Same formula and same numbers as :func:`bootstrap_ci` per vector (the count matrix depends only
    on ``(seed, n, chunk)``). Returns ``{table key: {system: (low, high)}}``.
    """
    groups: dict[int, list[tuple[K, list[str], np.ndarray]]] = {}
    for key, scores in tables.items():
        names, X = _table_matrix(key, scores)
        groups.setdefault(X.shape[1], []).append((key, names, X))
    found: dict[K, dict[str, tuple[float, float]]] = {}
    for group in groups.values():
        X = np.concatenate([x for _, _, x in group])
        cis = bootstrap_ci_many(X, confidence=confidence, resamples=resamples, seed=seed)
        row = 0
        for key, names, _x in group:
            found[key] = {k: (float(cis[row + q, 0]), float(cis[row + q, 1])) for q, k in enumerate(names)}
            row += len(names)
    return {key: found[key] for key in tables}
