"""Ratio metrics (F1 and friends): confidence intervals and paired tests that resample the *parts*.

A ratio metric is a corpus ratio ``r = sum_i num_i / sum_i den_i`` of per-instance parts, e.g. F1 with
``num_i = 2 1[tp_i]`` and ``den_i = 2 1[tp_i] + 1[fp_i] + 1[fn_i]`` (:func:`bench.metrics.f1_parts`), so
``r = 2TP / (2TP + FP + FN)``. Per-instance "contributions" ``num_i / mean(den)`` share the corpus
denominator and are not independent, so averaging them under resampling is wrong; here every resample
re-sums the parts and recomputes the ratio, which is exactly recomputing F1 on the resampled instances.

Zero-denominator policy: ``r = 0`` whenever ``sum den = 0`` (scikit-learn's ``zero_division=0``: F1 with
no positive label and no positive prediction is 0), for the observed data and for every resample.
Parts must be finite with ``den_i >= 0``, so a (resampled) denominator is 0 only when all its terms are.

The resample matrices are those of the mean statistics, drawn from ``(seed, n, chunk)`` only: bootstrap
counts ``C`` [R, n] as in :func:`bench.stats.bootstrap_ci_many` and flip bits ``B`` [R, n] as in
:func:`bench.stats.paired_randomization`; the same seed gives the same resamples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

import bench.stats._core as _core
from bench.errors import UserError
from bench.stats._core import (
    _EPS64,
    _RTOL,
    Correction,
    _bootstrap_counts,
    _check_confidence,
    _check_resamples,
    _check_seed,
    _chunks,
    _flip_bits,
    _pair_index,
    _single_threaded_blas,
)
from bench.stats.multiple import adjust
from bench.stats.paired import PairedTest

RatioParts = tuple[np.ndarray, np.ndarray]


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den``, and 0 where ``den == 0`` (the zero-denominator policy)."""
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _parts(num: object, den: object, *, ndim: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate ratio parts: float64, the same shape with ``ndim`` axes, finite, ``den >= 0``."""
    N = np.asarray(num, dtype=np.float64)
    D = np.asarray(den, dtype=np.float64)
    if N.ndim != ndim or N.shape != D.shape:
        raise UserError(
            f"{what}: num and den must be {ndim}-D arrays of the same shape, got {N.shape} and {D.shape}",
            fix="pass the per-instance parts of the ratio, e.g. bench.metrics.f1_parts(preds, labels)",
        )
    if not (np.all(np.isfinite(N)) and np.all(np.isfinite(D))):
        raise UserError(
            f"{what}: ratio parts contain NaN or infinite values",
            fix="drop the failed instances from every system (same ids on both sides)",
        )
    if np.any(D < 0):
        raise UserError(f"{what}: ratio denominators must be >= 0 per instance")
    return N, D


def ratio_value(num: np.ndarray, den: np.ndarray) -> float:
    """The corpus ratio ``r = sum_i num_i / sum_i den_i``; ``0.0`` when ``sum_i den_i = 0``.

    The zero policy matches ``sklearn.metrics.f1_score(..., zero_division=0)`` for F1 parts
    (also for ``n = 0``).
    """
    N, D = _parts(num, den, ndim=1, what="ratio_value")
    return float(_safe_ratio(N.sum(), D.sum()))


def bootstrap_ci_ratio_many(
    num: np.ndarray,
    den: np.ndarray,
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> np.ndarray:
    """Percentile bootstrap CIs of the ratio ``sum num_k / sum den_k`` for each row ``k`` of [m, n] parts.

    Resample ``r`` draws ``n`` instances with replacement (counts ``C[r, i]``, the *same* count matrix
    as :func:`bench.stats.bootstrap_ci_many` for this ``seed`` and ``n``) and recomputes the ratio
    ``rho_rk = (C @ num_k)_r / (C @ den_k)_r`` (0 where the resampled denominator is 0). With
    ``alpha = 1 - confidence`` row ``k``'s interval is ``(Q_k(alpha / 2), Q_k(1 - alpha / 2))``, ``Q_k``
    the linear-interpolated empirical quantile of ``rho_1k..rho_Rk``. One matmul per chunk serves all
    rows (``C @ [num; den].T``). Returns [m, 2] of ``(low, high)``; ``n == 0`` gives NaN and ``n == 1``
    gives ``(r_k, r_k)``.
    """
    conf = _check_confidence(confidence)
    R = _check_resamples(resamples)
    s = _check_seed(seed)
    N, D = _parts(num, den, ndim=2, what="bootstrap_ci_ratio_many")
    m, n = N.shape
    if n == 0:
        return np.full((m, 2), np.nan)
    if n == 1:
        return np.repeat(_safe_ratio(N, D), 2, axis=1)
    P = np.concatenate([N, D])  # [2m, n]: numerators, then denominators
    ratios = np.empty((R, m), dtype=np.float64)
    start = 0
    with _single_threaded_blas():
        for c, rows in _chunks(n, R):
            S = _bootstrap_counts(s, n, c, rows) @ P.T  # [rows, 2m]
            ratios[start : start + rows] = _safe_ratio(S[:, :m], S[:, m:])
            start += rows
    alpha = 1.0 - conf
    return np.quantile(ratios, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0).T.copy()


def _ratio_table(parts: Mapping[str, RatioParts]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names sorted and their parts stacked as ``num`` [m, n] and ``den`` [m, n]."""
    names = sorted(parts)
    nums, dens = [], []
    for k in names:
        pair = parts[k]
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise UserError(f"parts[{k!r}] must be a (num, den) pair of per-instance vectors")
        N, D = _parts(pair[0], pair[1], ndim=1, what=f"parts[{k!r}]")
        if nums and N.size != nums[0].size:
            raise UserError(
                f"systems have different numbers of instances ({nums[0].size} for {names[0]!r}, "
                f"{N.size} for {k!r})",
                fix="score all systems on the same instances; see bench.stats.align_by_ids",
            )
        nums.append(N)
        dens.append(D)
    if not nums:
        return names, np.zeros((0, 0)), np.zeros((0, 0))
    return names, np.stack(nums), np.stack(dens)


def _ratio_randomization_counts(
    N: np.ndarray, D: np.ndarray, left: np.ndarray, right: np.ndarray, *, resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Swap-test exceedance counts of the pairs ``(left[p], right[p])``; returns ``(counts, diffs)``.

    Per chunk, with flip bits ``B`` [rows, n] and parts ``P = [N; D]`` [2m, n], one matmul
    ``[B; 1 - B] @ P.T`` gives the swapped (``B @ x``) and kept (``(1 - B) @ x``) sums of every system;
    a pair's resampled sums are ``Num_a' = (1 - B) @ num_a + B @ num_b`` (``= sum num_a + B @ (num_b -
    num_a)``) and likewise for ``Den_a'``, ``Num_b'``, ``Den_b'``. Written as sums of non-negative terms
    they have no cancellation, and an all-zero denominator is exactly 0.
    """
    m, n = N.shape
    r = _safe_ratio(N.sum(axis=1), D.sum(axis=1))
    diffs = r[left] - r[right]
    t_obs = np.abs(diffs)
    base = np.abs(r[left]) + np.abs(r[right])
    rtol = max(_RTOL, 4.0 * n * _EPS64)
    P = np.concatenate([N, D])
    counts = np.zeros(left.size, dtype=np.int64)
    with _single_threaded_blas():
        for c, rows in _chunks(n, resamples):
            B = _flip_bits(seed, n, c, rows)
            Y = np.concatenate([B, 1.0 - B]) @ P.T  # [2 rows, 2m]
            swapped, kept = Y[:rows], Y[rows:]
            step = max(1, _core._CHUNK_ELEMENTS // rows)  # pairs per block: bounds the [rows, pairs] arrays
            for p0 in range(0, left.size, step):
                li, ri = left[p0 : p0 + step], right[p0 : p0 + step]
                ra = _safe_ratio(kept[:, li] + swapped[:, ri], kept[:, m + li] + swapped[:, m + ri])
                rb = _safe_ratio(kept[:, ri] + swapped[:, li], kept[:, m + ri] + swapped[:, m + li])
                T = np.abs(ra - rb)
                tau = rtol * (base[p0 : p0 + step] + np.abs(ra) + np.abs(rb))
                counts[p0 : p0 + step] += np.count_nonzero(t_obs[p0 : p0 + step] - tau <= T, axis=0)
    return counts, diffs


def compare_all_pairs_ratio(
    parts: Mapping[str, RatioParts],
    *,
    resamples: int = 10_000,
    seed: int = 0,
    correction: Correction = "holm",
) -> list[PairedTest]:
    """Paired randomization test of every pair of systems on a ratio metric (one task and metric).

    ``parts[system] = (num, den)``, per-instance vectors over the same ``n`` instances. Systems are
    sorted by name; pair ``(a, b)`` with ``a < b`` has ``diff = r_a - r_b`` with ``r = sum num / sum den``.
    Under H0 the two systems' outputs on an instance are exchangeable, so resample ``s`` swaps instance
    ``i``'s parts ``(num_ai, den_ai) <-> (num_bi, den_bi)`` when ``B[s, i] = 1`` (fair independent bits,
    the flip-bit matrices of :func:`bench.stats.paired_randomization`):

    ``Num_a' = sum num_a + B @ (num_b - num_a)``, ``Den_a' = sum den_a + B @ (den_b - den_a)``,
    ``Num_b' = sum num_b - B @ (num_b - num_a)``, ``Den_b' = sum den_b - B @ (den_b - den_a)``,

    ``T_s = |Num_a' / Den_a' - Num_b' / Den_b'|`` (a ratio with a zero denominator is 0) and
    ``t = |r_a - r_b|``. The count is ``c = #{s : T_s >= t - tau_s}`` with tie tolerance
    ``tau_s = max(1e-12, 4 n eps64) * (|r_a| + |r_b| + |r_a'| + |r_b'|)`` (covers float64 rounding of
    the non-negative sums and the divisions, so real-arithmetic ties, common with integer parts, count
    as ties), and ``p = (c + 1) / (R + 1)``. Results have ``test="randomization"``, ``statistic = |diff|``,
    no CI, and ``p_adjusted`` by ``correction`` (:func:`bench.stats.adjust`) over the table's
    ``m (m - 1) / 2`` pairs. ``n == 0`` gives ``diff = p = nan``. One matmul per chunk serves all pairs;
    each result equals the two-system call with the same seed, whatever the order of ``parts``.
    """
    R = _check_resamples(resamples)
    s = _check_seed(seed)
    names, N, D = _ratio_table(parts)
    m, n = N.shape
    left, right = _pair_index(m)
    if left.size == 0 or n == 0:
        diffs = pv = np.full(left.size, math.nan)
    else:
        counts, diffs = _ratio_randomization_counts(N, D, left, right, resamples=R, seed=s)
        pv = (counts + 1) / (R + 1)
    adj = adjust(pv, method=correction)
    return [
        PairedTest(
            "randomization",
            float(diffs[q]),
            float(pv[q]),
            n,
            None if n == 0 else abs(float(diffs[q])),
            a=names[i],
            b=names[j],
            p_adjusted=float(adj[q]),
        )
        for q, (i, j) in enumerate(zip(left, right, strict=True))
    ]
