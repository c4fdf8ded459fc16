"""ROC AUC of a table of systems: bootstrap CIs and paired bootstrap tests that RECOMPUTE the AUC.

The AUC is not a mean of independent per-instance terms: the DeLong placement values whose mean is the
AUC (:func:`bench.metrics.auc_contributions`) share the class sizes and the other class's scores, so
resampling them as if independent gives intervals about half as wide as they should be. Here every
resample re-weights the instances (or the users of ``clusters``) and recomputes the AUC; the weighted
AUC, the treatment of degenerate resamples and the O(R n) kernel are described in
:mod:`bench.stats.auc_kernel`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from bench.stats._core import (
    _EPS64,
    Correction,
    _check_confidence,
    _check_resamples,
    _check_seed,
    _pair_index,
    _unit_index,
)
from bench.stats.auc_kernel import _auc_point, _auc_table, _resampled_auc
from bench.stats.identical import _mark_identical
from bench.stats.multiple import adjust
from bench.stats.paired import PairedTest, _bootstrap_summary

#: tie tolerance of resampled AUC differences (equal reals give equal floats; see bench.stats.auc_kernel).
_AUC_TAU = 4.0 * _EPS64

AUC_TEST = "auc_bootstrap"
AUC_CLUSTER_TEST = "auc_cluster_bootstrap"


@dataclass(frozen=True)
class _AucStats:
    names: list[str]
    values: np.ndarray  # [m] AUC of the data (NaN: one class only)
    cis: np.ndarray  # [m, 2]
    tests: list[PairedTest]
    n: int
    n_units: int


def _auc_stats(
    scores: Mapping[str, object] | np.ndarray,
    labels: object,
    *,
    clusters: object = None,
    confidence: float,
    resamples: int,
    seed: int,
    correction: Correction,
    identical: Collection[tuple[str, str]] = (),
    want_tests: bool = True,
    want_cis: bool = True,
) -> _AucStats:
    """CIs and all-pairs tests of a table of AUCs from ONE pass over the resamples."""
    conf = _check_confidence(confidence)
    R = _check_resamples(resamples)
    s = _check_seed(seed)
    names, S, Y = _auc_table(scores, labels)
    m, n = S.shape
    unit_of, U = _unit_index(clusters, n)
    values = np.array([_auc_point(S[k], Y[k]) for k in range(m)]) if n else np.full(m, math.nan)
    alpha = 1.0 - conf
    A = _resampled_auc(S, Y, unit_of, U, resamples=R, seed=s) if n and m else np.full((R, m), np.nan)
    cis = np.full((m, 2), np.nan)
    if want_cis and n:
        ok = ~np.isnan(values)
        if ok.any():
            cis[ok] = np.quantile(A[:, ok], [alpha / 2.0, 1.0 - alpha / 2.0], axis=0).T
    tests: list[PairedTest] = []
    if want_tests:
        left, right = _pair_index(m)
        diffs = values[left] - values[right]
        pv, lo, hi = (np.full(left.size, math.nan) for _ in range(3))
        ok = ~np.isnan(diffs)
        if ok.any():
            li, ri = left[ok], right[ok]
            p_, l_, h_ = [], [], []
            for s0 in range(0, li.size, 256):
                d = A[:, li[s0 : s0 + 256]] - A[:, ri[s0 : s0 + 256]]
                res = _bootstrap_summary(d, np.full(d.shape[1], _AUC_TAU), conf)
                p_.append(res[0])
                l_.append(res[1])
                h_.append(res[2])
            pv[ok], lo[ok], hi[ok] = np.concatenate(p_), np.concatenate(l_), np.concatenate(h_)
        adj = adjust(pv, method=correction)
        name = AUC_CLUSTER_TEST if n > U else AUC_TEST
        tests = [
            PairedTest(
                name,
                float(diffs[q]),
                float(pv[q]),
                n,
                float(diffs[q]),
                float(lo[q]),
                float(hi[q]),
                a=names[i],
                b=names[j],
                p_adjusted=float(adj[q]),
            )
            for q, (i, j) in enumerate(zip(left, right, strict=True))
        ]
        tests = _mark_identical(tests, identical, correction)
    return _AucStats(names, values, cis, tests, n, U)


def auc_bootstrap_ci_many(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    clusters: np.ndarray | None = None,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> np.ndarray:
    """Percentile bootstrap CIs of the ROC AUC of each row of ``scores`` [m, n]: returns [m, 2].

    ``labels`` is the 0/1 vector [n] shared by all rows (or [m, n]); ``clusters`` (optional, one id
    per instance) makes the users the resampling units. Resample ``r`` draws ``U`` units with
    replacement (``U = n`` instances without clusters; the count matrices of
    :func:`bench.stats.bootstrap_ci_many` for the same seed and ``U``), gives each instance its
    unit's draw count ``w_ri`` and recomputes ``AUC_rk = U_w / (W+ W-)`` (ties count 1/2; 0.5 for a
    resample without a positive or a negative); row ``k``'s interval is
    ``(Q_k(alpha / 2), Q_k(1 - alpha / 2))``, ``Q_k`` the linear-interpolated quantile of
    ``AUC_1k..AUC_Rk``, ``alpha = 1 - confidence``. A row with one class only gives ``(nan, nan)``.
    All rows share the weights of each resample. O(R n) per row; see the module docstring.
    """
    return _auc_stats(
        scores,
        labels,
        clusters=clusters,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        correction="none",
        want_tests=False,
    ).cis


def compare_all_pairs_auc(
    scores: Mapping[str, np.ndarray],
    labels: np.ndarray | Mapping[str, np.ndarray],
    *,
    clusters: np.ndarray | None = None,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    correction: Correction = "holm",
    identical: Collection[tuple[str, str]] = (),
) -> list[PairedTest]:
    """Paired bootstrap test of the AUC difference of every pair of systems (one task and metric).

    Systems are sorted by name; pair ``(a, b)`` with ``a < b`` has ``diff = AUC_a - AUC_b`` on the full
    data. Both systems are re-weighted by the SAME resample ``r`` (instances, or the users of
    ``clusters``, drawn with replacement as in :func:`auc_bootstrap_ci_many`), giving
    ``delta_r = AUC_a,r - AUC_b,r``. Two-sided ``p = min(1, 2 min(#{delta_r <= tau}, #{delta_r >= -tau})
    / R)`` with ``tau = 4 eps64`` (resampled AUCs are correctly rounded quotients of exact integers, so a
    real tie is an exact float tie), and the percentile CI of the difference is
    ``(Q(alpha / 2), Q(1 - alpha / 2))`` of the ``delta_r`` (as :func:`bench.stats.paired_bootstrap`).
    ``test`` is ``"auc_bootstrap"``, or ``"auc_cluster_bootstrap"`` when units are clusters;
    ``statistic = diff``; ``n`` is the number of instances. ``p_adjusted`` by ``correction`` over the
    table's pairs, except pairs listed in ``identical`` (see :func:`bench.stats.table_statistics`):
    those get ``p = 1`` and leave the family. A system with one class only gives NaN diffs and p-values
    (left out of the correction).
    """
    return _auc_stats(
        scores,
        labels,
        clusters=clusters,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        correction=correction,
        identical=identical,
        want_cis=False,
    ).tests
