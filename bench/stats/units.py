"""Resampling units: clustered instances (several per user), and the one dispatcher a board calls per table.

When a task has several instances per user (interest classification: 6 per user), the instances of a
user are not independent, so CIs and tests must resample USERS (clusters), not instances.

* A mean metric is a ratio of cluster sums: ``num_c = sum_{i in c} x_i``, ``den_c = n_c``,
  ``mean = sum_c num_c / sum_c den_c``; a ratio metric (F1) with per-instance parts ``(num_i, den_i)``
  has ``num_c = sum_{i in c} num_i``, ``den_c = sum_{i in c} den_i`` (:func:`cluster_parts`). Either way
  the ratio machinery of :mod:`bench.stats.ratio` applies to the per-cluster parts unchanged: the
  bootstrap (:func:`bench.stats.bootstrap_ci_ratio_many`) draws clusters with replacement and re-sums
  their parts, and the swap test (:func:`bench.stats.compare_all_pairs_ratio`) swaps the two systems'
  parts of a whole cluster (the systems are exchangeable within a user under H0). McNemar's test is
  not used in cluster mode: its discordant pairs are not independent.
* AUC: :func:`bench.stats.auc_bootstrap_ci_many` / :func:`bench.stats.compare_all_pairs_auc` draw
  clusters and weight every instance by its cluster's draw count (:mod:`bench.stats.auc`).

:func:`table_statistics` picks the path for one (task, metric) table. Without clusters, or when every
cluster holds one instance, it runs exactly the instance-level calls of the mean and ratio metrics
(same numbers as before clusters existed).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from bench.errors import UserError
from bench.stats._core import (
    _EPS64,
    _RTOL,
    Correction,
    Method,
    _bootstrap_counts,
    _check_confidence,
    _check_resamples,
    _check_seed,
    _chunks,
    _pair_index,
    _single_threaded_blas,
    _table_matrix,
    _unit_index,
)
from bench.stats.all_pairs import compare_all_pairs
from bench.stats.auc import _auc_stats
from bench.stats.ci import bootstrap_ci_many
from bench.stats.identical import _mark_identical
from bench.stats.multiple import adjust
from bench.stats.paired import PairedTest, _bootstrap_summary, _resolve_method
from bench.stats.ratio import (
    _parts,
    _ratio_table,
    _safe_ratio,
    bootstrap_ci_ratio_many,
    compare_all_pairs_ratio,
    ratio_value,
)

logger = logging.getLogger(__name__)

Kind = Literal["mean", "ratio", "auc"]
CLUSTER_RANDOMIZATION = "cluster_randomization"
CLUSTER_BOOTSTRAP = "cluster_bootstrap"


def cluster_parts(
    x_or_num: np.ndarray, den_or_none: np.ndarray | None, clusters: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster parts ``(num_c, den_c)`` of per-instance values (``den_or_none=None``) or ratio parts.

    Values ``x_i``: ``num_c = sum_{i in c} x_i`` and ``den_c = n_c`` (instances in cluster ``c``), so
    ``sum num_c / sum den_c = mean(x)``. Ratio parts ``(num_i, den_i)``: ``num_c = sum_{i in c} num_i``,
    ``den_c = sum_{i in c} den_i``, so the corpus ratio is unchanged. ``x_or_num`` (and ``den``) may be
    [n] or [m, n] (one row per system; the output is then [m, U]). Clusters are ordered by sorted id
    (first appearance when ids of mixed types cannot be sorted), whatever the order of the instances.
    """
    X = np.asarray(x_or_num, dtype=np.float64)
    if X.ndim not in (1, 2):
        raise UserError(f"cluster_parts needs [n] or [systems, n] values, got shape {X.shape}")
    n = X.shape[-1]
    unit_of, U = _unit_index(clusters, n)
    rows = X.reshape(-1, n)
    if den_or_none is None:
        D = np.broadcast_to(np.bincount(unit_of, minlength=U).astype(np.float64), (rows.shape[0], U))
    else:
        Dn = np.asarray(den_or_none, dtype=np.float64)
        if Dn.shape != X.shape:
            raise UserError(f"num and den must have the same shape, got {X.shape} and {Dn.shape}")
        D = np.stack([np.bincount(unit_of, weights=d, minlength=U) for d in Dn.reshape(-1, n)])
    N = np.stack([np.bincount(unit_of, weights=r, minlength=U) for r in rows]) if rows.size else D * 0
    shape = (U,) if X.ndim == 1 else (X.shape[0], U)
    return N.reshape(shape), np.array(D).reshape(shape)


@dataclass(frozen=True)
class TableStats:
    """Statistics of one (task, metric) table.

    Attributes:
        unit: what was resampled: ``"instance"``, or the cluster unit name (``"user"``).
        n_units: number of resampling units (instances, or clusters).
        n: number of instances.
        values: point value per system (mean, corpus ratio or AUC of the data).
        cis: percentile bootstrap CI per system.
        tests: every pair ``a < b`` (names sorted), ``diff = value_a - value_b``, with ``p_adjusted``.
    """

    unit: str
    n_units: int
    n: int
    values: dict[str, float]
    cis: dict[str, tuple[float, float]]
    tests: list[PairedTest]


def _cluster_bootstrap_tests(
    names: list[str], N: np.ndarray, D: np.ndarray, *, resamples: int, seed: int, confidence: float
) -> list[PairedTest]:
    """Paired cluster bootstrap of ratio differences (``method="bootstrap"`` in cluster mode).

    Counts ``C`` [R, U] over clusters (those of :func:`bench.stats.bootstrap_ci_ratio_many`);
    ``rho_rk = (C @ num_k)_r / (C @ den_k)_r`` (0 for a zero denominator), ``delta_r = rho_ra - rho_rb``;
    p-value and CI as :func:`bench.stats.paired_bootstrap`, tie tolerance
    ``max(1e-12, 4 U eps64) (max_r |rho_ra| + max_r |rho_rb|)``.
    """
    m, U = N.shape
    P = np.concatenate([N, D])
    rho = np.empty((resamples, m))
    start = 0
    with _single_threaded_blas():
        for c, rows in _chunks(U, resamples):
            Sm = _bootstrap_counts(seed, U, c, rows) @ P.T
            rho[start : start + rows] = _safe_ratio(Sm[:, :m], Sm[:, m:])
            start += rows
    left, right = _pair_index(m)
    r = _safe_ratio(N.sum(axis=1), D.sum(axis=1))
    big = np.abs(rho).max(axis=0)
    tau = max(_RTOL, 4.0 * U * _EPS64) * (big[left] + big[right])
    pv, lo, hi = _bootstrap_summary(rho[:, left] - rho[:, right], tau, confidence)
    return [
        PairedTest(
            CLUSTER_BOOTSTRAP,
            float(r[i] - r[j]),
            float(pv[q]),
            0,
            float(r[i] - r[j]),
            float(lo[q]),
            float(hi[q]),
            names[i],
            names[j],
        )
        for q, (i, j) in enumerate(zip(left, right, strict=True))
    ]


def table_statistics(
    *,
    kind: Kind,
    values: Mapping[str, np.ndarray] | None = None,
    binary: bool = False,
    parts: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    auc: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    clusters: np.ndarray | None = None,
    identical: Collection[tuple[str, str]] = (),
    method: Method = "auto",
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    correction: Correction = "holm",
    unit_name: str = "user",
) -> TableStats:
    """CIs and all-pairs tests of one (task, metric) table; the one call a board makes per table.

    Data by ``kind`` (systems are the keys of that mapping, sorted by name; all over the same ``n``
    instances, in the same order as ``clusters``):

    * ``"mean"``: ``values[system]`` per-instance scores; value ``mean(x)``.
    * ``"ratio"``: ``parts[system] = (num, den)`` per-instance parts; value ``sum num / sum den``
      (0 when ``sum den = 0``), e.g. F1 from :func:`bench.metrics.f1_parts`.
    * ``"auc"``: ``auc[system] = (scores, labels)``; value the ROC AUC (ties 1/2), NaN with one class.

    Units: ``clusters`` (one id per instance, e.g. the user) makes the clusters the resampling units
    when some cluster holds more than one instance (``unit = unit_name``, ``n_units = U``); otherwise
    (``None``, or all clusters singletons) the units are the instances (``unit = "instance"``).

    Instance level (exactly the calls a board made before clusters existed):
    ``"mean"``: :func:`bench.stats.bootstrap_ci_many` + :func:`bench.stats.compare_all_pairs` (``method``:
    ``"auto"`` = McNemar if ``binary`` else sign-flip randomization); ``"ratio"``:
    :func:`bench.stats.bootstrap_ci_ratio_many` + :func:`bench.stats.compare_all_pairs_ratio` (swap
    test whatever ``method``).

    Cluster level, ``"mean"`` and ``"ratio"``: parts per cluster (:func:`cluster_parts`; a mean is the
    ratio ``sum_c sum_{i in c} x_i / sum_c n_c``), CIs by :func:`bench.stats.bootstrap_ci_ratio_many`
    over clusters, tests by the cluster swap test :func:`bench.stats.compare_all_pairs_ratio` over
    clusters (``test="cluster_randomization"``; used for ``method`` ``"auto"``, ``"randomization"``,
    ``"mcnemar"`` and ``"wilcoxon"``, since McNemar and Wilcoxon assume independent instances), or
    with ``method="bootstrap"`` a paired cluster bootstrap of the difference
    (``test="cluster_bootstrap"``, with a CI).

    ``"auc"`` (either level): :func:`bench.stats.auc_bootstrap_ci_many` and the paired bootstrap of
    :func:`bench.stats.compare_all_pairs_auc` from one shared pass (``method`` is not used).

    ``identical``: pairs of systems whose answers are the same on every instance. They are not tested
    (``test="identical_predictions"``, ``diff = 0``, ``p_value = p_adjusted = 1``) and leave the
    multiple-comparison family: the other pairs' ``p_adjusted`` is ``correction`` over them alone.
    Every test has ``n`` = number of instances.
    """
    if kind not in ("mean", "ratio", "auc"):
        raise UserError(f"unknown statistics kind {kind!r}", fix="use 'mean', 'ratio' or 'auc'")
    conf = _check_confidence(confidence)
    R = _check_resamples(resamples)
    s = _check_seed(seed)
    _resolve_method(method, bool(binary))  # validates the name
    data = {"mean": values, "ratio": parts, "auc": auc}[kind]
    if data is None:
        arg = {"mean": "values", "ratio": "parts", "auc": "auc"}[kind]
        raise UserError(f"table_statistics(kind={kind!r}) needs {arg}=")

    if kind == "auc":
        names = sorted(data)
        scores = {k: data[k][0] for k in names}
        labels = {k: data[k][1] for k in names}
        n = np.asarray(scores[names[0]]).size if names else 0
        unit_of, U = _unit_index(clusters, n)
        st = _auc_stats(
            scores,
            labels,
            clusters=None if n == U else unit_of,
            confidence=conf,
            resamples=R,
            seed=s,
            correction=correction,
            identical=identical,
        )
        return TableStats(
            "instance" if n == U else unit_name,
            U,
            n,
            {k: float(v) for k, v in zip(names, st.values, strict=True)},
            {k: (float(lo), float(hi)) for k, (lo, hi) in zip(names, st.cis, strict=True)},
            st.tests,
        )

    if kind == "mean":
        names, X = _table_matrix(None, data)  # type: ignore[arg-type]
        n = X.shape[1]
        point = {k: float(np.mean(x)) if n else math.nan for k, x in zip(names, X, strict=True)}
    else:
        names, Nm, Dm = _ratio_table(data)  # type: ignore[arg-type]
        n = Nm.shape[1]
        point = {k: ratio_value(a, b) for k, a, b in zip(names, Nm, Dm, strict=True)}
    unit_of, U = _unit_index(clusters, n)

    if n == U:  # instance level: the pre-cluster calls, unchanged
        if kind == "mean":
            cis = bootstrap_ci_many(X, confidence=conf, resamples=R, seed=s)
            tests = compare_all_pairs(
                data,  # type: ignore[arg-type]
                binary=binary,
                method=method,
                resamples=R,
                seed=s,
                confidence=conf,
                correction=correction,
            )
        else:
            cis = bootstrap_ci_ratio_many(Nm, Dm, confidence=conf, resamples=R, seed=s)
            tests = compare_all_pairs_ratio(data, resamples=R, seed=s, correction=correction)  # type: ignore[arg-type]
        unit = "instance"
    else:
        if kind == "mean":
            Nc, Dc = cluster_parts(X, None, unit_of)
        else:
            _parts(Nm, Dm, ndim=2, what="parts")
            Nc, Dc = cluster_parts(Nm, Dm, unit_of)
        Dc = np.ascontiguousarray(Dc)
        cis = bootstrap_ci_ratio_many(Nc, Dc, confidence=conf, resamples=R, seed=s)
        if method == "bootstrap":
            tests = _cluster_bootstrap_tests(names, Nc, Dc, resamples=R, seed=s, confidence=conf)
            adj = adjust(np.array([t.p_value for t in tests]), method=correction)
            tests = [replace(t, p_adjusted=float(q)) for t, q in zip(tests, adj, strict=True)]
        else:
            if method in ("mcnemar", "wilcoxon") or (method == "auto" and binary):
                logger.debug("clustered table: cluster swap test instead of %s", method)
            parts_c = {k: (Nc[q], Dc[q]) for q, k in enumerate(names)}
            tests = compare_all_pairs_ratio(parts_c, resamples=R, seed=s, correction=correction)
            tests = [replace(t, test=CLUSTER_RANDOMIZATION) for t in tests]
        tests = [replace(t, n=n) for t in tests]
        unit = unit_name
    tests = _mark_identical(tests, identical, correction)
    return TableStats(
        unit,
        U,
        n,
        point,
        {k: (float(lo), float(hi)) for k, (lo, hi) in zip(names, cis, strict=True)},
        tests,
    )
