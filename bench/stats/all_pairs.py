"""All-pairs comparisons of a table of systems (one task and metric), or of many tables at once.

Tables with the same number of instances share one resample matrix per chunk (the matrices depend
only on ``(seed, n, chunk)``), so every result equals the pair-by-pair test with the same seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from bench.stats._core import (
    Correction,
    K,
    Method,
    _check_confidence,
    _check_resamples,
    _check_seed,
    _finite,
    _pair_index,
    _resampled_means,
    _table_matrix,
    _tie_tolerance,
)
from bench.stats.multiple import adjust
from bench.stats.paired import (
    PairedTest,
    _bootstrap_summary,
    _randomization_counts,
    _resolve_method,
    paired_test,
)

#: pairs per block when the bootstrap differences [R, pairs] are summarised (bounds memory).
_PAIR_BLOCK = 256


def _shared_pass(
    group: list[tuple[K, list[str], np.ndarray]], kind: str, *, resamples: int, seed: int, confidence: float
) -> dict[K, list[PairedTest]]:
    """All pairs of several tables with the same ``n`` in one pass over shared resample matrices.

    The systems of every table are stacked into one matrix; pairs are formed within each table only.
    """
    X = np.concatenate([x for _, _, x in group])
    n = X.shape[1]
    left_parts, right_parts, offset = [], [], 0
    for _, names, _x in group:
        i, j = _pair_index(len(names))
        left_parts.append(i + offset)
        right_parts.append(j + offset)
        offset += len(names)
    left, right = np.concatenate(left_parts), np.concatenate(right_parts)
    diffs = X[left].mean(axis=1) - X[right].mean(axis=1)
    if kind == "randomization":
        counts, t_obs = _randomization_counts(
            X, left, right, resamples=resamples, seed=seed, alternative="two-sided"
        )
        pv = (counts + 1) / (resamples + 1)
        stat = np.abs(t_obs / n)
        lo = hi = np.full(left.size, np.nan)
    else:
        M = _resampled_means(X, resamples=resamples, seed=seed)
        tau = _tie_tolerance(np.abs(X[left]).sum(axis=1) + np.abs(X[right]).sum(axis=1), n) / n
        pv, lo, hi = np.empty(left.size), np.empty(left.size), np.empty(left.size)
        for s0 in range(0, left.size, _PAIR_BLOCK):
            blk = slice(s0, s0 + _PAIR_BLOCK)
            pv[blk], lo[blk], hi[blk] = _bootstrap_summary(
                M[:, left[blk]] - M[:, right[blk]], tau[blk], confidence
            )
        stat = diffs
    out: dict[K, list[PairedTest]] = {}
    start = 0
    for key, names, _x in group:
        i, j = _pair_index(len(names))
        rows = []
        for q, (ii, jj) in enumerate(zip(i, j, strict=True), start=start):
            ci = (None, None) if kind == "randomization" else (float(lo[q]), float(hi[q]))
            rows.append(
                PairedTest(kind, float(diffs[q]), float(pv[q]), n, float(stat[q]), *ci, names[ii], names[jj])
            )
        out[key] = rows
        start += i.size
    return out


def compare_tables(
    tables: Mapping[K, Mapping[str, np.ndarray]],
    *,
    binary: bool | Mapping[K, bool],
    method: Method = "auto",
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    correction: Correction = "holm",
) -> dict[K, list[PairedTest]]:
    """:func:`compare_all_pairs` for many tables (e.g. every task/metric of a board) at once.

    Tables with the same number of instances ``n`` that use the randomization or bootstrap test share
    one resample matrix per chunk (the matrices depend only on ``(seed, n, chunk)``), so the result
    equals calling :func:`compare_all_pairs` table by table, at a fraction of the cost. ``binary`` is
    one flag for all tables or a mapping per table key. The ``correction`` family is each table.
    """
    R = _check_resamples(resamples)
    s = _check_seed(seed)
    conf = _check_confidence(confidence)
    results: dict[K, list[PairedTest]] = {}
    shared: dict[tuple[str, int], list[tuple[K, list[str], np.ndarray]]] = {}
    for key, scores in tables.items():
        is_binary = bool(binary[key] if isinstance(binary, Mapping) else binary)
        kind = _resolve_method(method, is_binary)
        names, X = _table_matrix(key, scores)
        _finite(X, f"scores of {key!r}" if key != "" else "scores")
        n = X.shape[1]
        if len(names) < 2:
            results[key] = []
        elif (kind == "randomization" and n > 0) or (kind == "bootstrap" and n > 1):
            shared.setdefault((kind, n), []).append((key, names, X))
        else:
            left, right = _pair_index(len(names))
            results[key] = [
                _with(
                    paired_test(
                        X[i], X[j], method=kind, binary=is_binary, resamples=R, seed=s, confidence=conf
                    ),
                    a=names[i],
                    b=names[j],
                )
                for i, j in zip(left, right, strict=True)
            ]
    for (kind, _n), group in shared.items():
        results.update(_shared_pass(group, kind, resamples=R, seed=s, confidence=conf))
    out: dict[K, list[PairedTest]] = {}
    for key in tables:
        adj = adjust(np.array([r.p_value for r in results[key]]), method=correction)
        out[key] = [_with(r, p_adjusted=float(q)) for r, q in zip(results[key], adj, strict=True)]
    return out


def compare_all_pairs(
    scores: Mapping[str, np.ndarray],
    *,
    binary: bool,
    method: Method = "auto",
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    correction: Correction = "holm",
) -> list[PairedTest]:
    """Test every pair of systems of one table (one task and metric) exactly once.

    Systems are sorted by name; pair ``(a, b)`` with ``a < b`` is tested as ``a`` minus ``b``
    (``diff = mean(a) - mean(b)``). For ``randomization`` one sign matrix per chunk serves all pairs:
    ``B @ X.T`` over the m systems, then column differences ``s . x_a - s . x_b = s . d`` (see
    :func:`paired_randomization`); for ``bootstrap`` one count matrix per chunk does. Both matrices
    depend only on ``(seed, n, chunk)``, so each result equals the pair-by-pair call with the same
    seed, and the order of ``scores`` does not matter. ``p_adjusted`` holds the ``correction``
    (:func:`adjust`) over the ``m (m - 1) / 2`` p-values of the table.
    """
    return compare_tables(
        {"": scores},
        binary=binary,
        method=method,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        correction=correction,
    )[""]


def _with(r: PairedTest, **changes: object) -> PairedTest:
    return replace(r, **changes)
