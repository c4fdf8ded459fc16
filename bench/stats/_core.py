"""Shared machinery of :mod:`bench.stats`: validation, seeding, resample matrices, chunking, BLAS guard.

Every resample matrix is a pure function of ``(seed, purpose, n, chunk index)``
(:class:`numpy.random.SeedSequence` of ``[seed, crc32(purpose), n, chunk]``), so it does not depend on
*which* vectors are resampled: a whole table of systems shares one matrix per chunk. Chunks hold at
most ``_CHUNK_ELEMENTS`` random numbers (``rows = max(1, _CHUNK_ELEMENTS // n)``), which bounds memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Literal, TypeVar

import numpy as np

from bench import seeds
from bench.errors import UserError

Alternative = Literal["two-sided", "greater", "less"]
Method = Literal["auto", "randomization", "mcnemar", "bootstrap", "wilcoxon"]
Correction = Literal["holm", "bh", "none"]
K = TypeVar("K")

#: random numbers drawn per chunk (rows per chunk = max(1, _CHUNK_ELEMENTS // n)); depends on n only.
_CHUNK_ELEMENTS = 1 << 21
#: indices tallied per ``bincount`` call inside a chunk (small enough for the CPU cache).
_TALLY_ELEMENTS = 1 << 16
#: relative tie tolerance floor (see ``_tie_tolerance``).
_RTOL = 1e-12
_EPS64 = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------------------------------
# validation and seeding helpers
# --------------------------------------------------------------------------------------------------


def _rng(seed: int, purpose: str, n: int, chunk: int) -> np.random.Generator:
    """Generator for one chunk of resamples: :func:`bench.seeds.rng` ``(seed, purpose, n, chunk)``."""
    return seeds.rng(int(seed), purpose, int(n), int(chunk))


_BLAS_CONTROLLER: object | None = None


def _single_threaded_blas() -> contextlib.AbstractContextManager[object]:
    """Limit BLAS to one thread while resampling (restored on exit).

    The per-chunk matmuls are skinny ([rows, n] @ [n, m] with m ~ 20) and alternate with
    single-threaded random draws; idle BLAS worker threads spin and steal the core those draws need,
    which costs 1.5-2x on a 2-core machine. Uses ``threadpoolctl`` (a scikit-learn dependency) when
    installed; otherwise does nothing.
    """
    global _BLAS_CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")  # type: ignore[attr-defined]


def _chunks(n: int, resamples: int) -> Iterator[tuple[int, int]]:
    """Yield ``(chunk index, rows)``; rows per chunk depend on ``n`` only, the last chunk is cut."""
    per = max(1, _CHUNK_ELEMENTS // max(n, 1))
    done, c = 0, 0
    while done < resamples:
        rows = min(per, resamples - done)
        yield c, rows
        done += rows
        c += 1


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}", fix="use e.g. seed=0")
    return int(seed)


def _check_resamples(resamples: int) -> int:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise UserError(
            f"resamples must be a positive integer, got {resamples!r}", fix="use e.g. resamples=10000"
        )
    return int(resamples)


def _check_confidence(confidence: float) -> float:
    if not 0.0 < float(confidence) < 1.0:
        raise UserError(
            f"confidence must lie strictly between 0 and 1, got {confidence!r}", fix="use e.g. 0.95"
        )
    return float(confidence)


def _vector(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise UserError(f"{name} must be a 1-D vector of per-instance scores, got shape {arr.shape}")
    return arr


def _finite(X: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(X)):
        raise UserError(
            f"{what} contain NaN or infinite scores; paired tests need a score for every instance",
            fix="drop the failed instances from every system (same ids on both sides) or score them 0",
        )


def _pair(a: object, b: object) -> tuple[np.ndarray, np.ndarray]:
    av, bv = _vector(a, "a"), _vector(b, "b")
    if av.shape != bv.shape:
        raise UserError(
            f"paired score vectors have different lengths ({av.size} vs {bv.size})",
            fix="score both systems on the same instances; see bench.stats.align_by_ids",
        )
    _finite(av, "a")
    _finite(bv, "b")
    return av, bv


def _tie_tolerance(abs_sum: np.ndarray | float, n: int) -> np.ndarray | float:
    """Tie tolerance for sums: ``tau = max(1e-12, 4 n eps64) * sum_i (|a_i| + |b_i|)``.

    A length-``n`` float64 sum errs by at most ``n eps64 / 2 * sum |x_i|`` in any summation order;
    the resampled statistic ``sum(a) - 2 B.a - (sum(b) - 2 B.b)`` and the observed ``sum(d)`` together
    err by less than ``4 n eps64 * sum (|a_i| + |b_i|)``, so real-arithmetic ties always count as ties.
    """
    return max(_RTOL, 4.0 * n * _EPS64) * abs_sum


def _pair_index(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(left, right)`` of all pairs ``i < j`` of ``m`` systems, in lexicographic order."""
    left, right = np.triu_indices(m, k=1)
    return left.astype(np.intp), right.astype(np.intp)


def _table_matrix(key: object, scores: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Names sorted and their score vectors stacked [m, n]; all must have the same length."""
    names = sorted(scores)
    vecs = [_vector(scores[k], f"scores[{k!r}]") for k in names]
    n = vecs[0].size if vecs else 0
    bad = [k for k, v in zip(names, vecs, strict=True) if v.size != n]
    if bad:
        raise UserError(
            f"systems have different numbers of instances ({n} for {names[0]!r}, "
            f"{vecs[names.index(bad[0])].size} for {bad[0]!r})",
            where=None if key is None else str(key),
            fix="score all systems on the same instances; see bench.stats.align_by_ids",
        )
    return names, (np.stack(vecs) if vecs else np.zeros((0, 0)))


# --------------------------------------------------------------------------------------------------
# resample matrices (shared by every vector of the same length)
# --------------------------------------------------------------------------------------------------


def _bootstrap_counts(seed: int, n: int, chunk: int, rows: int) -> np.ndarray:
    """Multinomial resample counts ``C[r, i]`` = times instance ``i`` is drawn in resample ``r``.

    Each row is ``n`` indices drawn uniformly with replacement, tallied by ``bincount`` (float64).
    """
    rng = _rng(seed, "bootstrap", n, chunk)
    idx = rng.integers(0, n, size=(rows, n), dtype=np.int64)
    counts = np.empty((rows, n), dtype=np.float64)
    step = max(1, _TALLY_ELEMENTS // max(n, 1))  # tally a few rows at a time: stays in cache
    offsets = np.arange(step, dtype=np.int64)[:, None] * n
    for r0 in range(0, rows, step):
        block = idx[r0 : r0 + step]
        block += offsets[: block.shape[0]]
        counts[r0 : r0 + step] = np.bincount(block.ravel(), minlength=block.size).reshape(block.shape)
    return counts


def _flip_bits(seed: int, n: int, chunk: int, rows: int) -> np.ndarray:
    """Random flip indicators ``B[r, i]`` in {0, 1} (float64); sign ``s_ri = 1 - 2 B_ri``."""
    rng = _rng(seed, "randomization", n, chunk)
    packed = rng.integers(0, 256, size=(rows, (n + 7) // 8), dtype=np.uint8)
    return np.unpackbits(packed, axis=1, count=n).astype(np.float64)


def _resampled_means(X: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap means ``M[r, k] = sum_i C[r, i] X[k, i] / n`` for every row of ``X``: shape [R, m]."""
    m, n = X.shape
    out = np.empty((resamples, m), dtype=np.float64)
    start = 0
    with _single_threaded_blas():
        for c, rows in _chunks(n, resamples):
            counts = _bootstrap_counts(seed, n, c, rows)
            np.matmul(counts, X.T, out=out[start : start + rows])
            start += rows
    out /= n
    return out


def _unit_index(clusters: object, n: int, *, where: str | None = None) -> tuple[np.ndarray, int]:
    """``(unit_of, U)``: the resampling unit ``0..U-1`` of each of ``n`` instances.

    ``clusters=None`` makes every instance its own unit (``unit_of = arange(n)``). Otherwise units are
    the distinct cluster ids in sorted order (``numpy.unique``), or in order of first appearance when
    the ids cannot be sorted (mixed types); either way a pure function of the ids, and sorted order
    does not depend on the order of the instances.
    """
    if clusters is None:
        return np.arange(n, dtype=np.intp), n
    ids = np.asarray(clusters)
    if ids.ndim != 1 or ids.size != n:
        raise UserError(
            f"clusters must be a 1-D vector with one id per instance ({n}), got shape {ids.shape}",
            where=where,
            fix="pass e.g. the user id of every instance, in the order of the score vectors",
        )
    try:
        _, inv = np.unique(ids, return_inverse=True)
    except TypeError:  # ids of mixed types: number them in order of first appearance
        first: dict[object, int] = {}
        inv = np.array([first.setdefault(v, len(first)) for v in ids.tolist()], dtype=np.intp)
    inv = np.asarray(inv, dtype=np.intp).reshape(-1)
    return inv, int(inv.max()) + 1 if n else 0
