"""The resampled-AUC kernel: the weighted AUC of every system in every bootstrap resample.

Used by :mod:`bench.stats.auc` (CIs and paired tests of a table of AUCs).

The AUC is not a mean of independent per-instance terms: the DeLong placement values whose mean is the
AUC (:func:`bench.metrics.auc_contributions`) share the class sizes and the other class's scores, so
resampling them as if independent gives intervals about half as wide as they should be. Here every
resample re-weights the instances and recomputes the AUC.

Weighted AUC. With instance weights ``w_i >= 0`` (bootstrap draw counts), labels ``y_i`` in {0, 1} and
``psi(a, b) = 1[a > b] + 1/2 1[a = b]`` (ties count one half, as in the Mann-Whitney U statistic):

``U_w = sum_{i: y_i = 1} sum_{j: y_j = 0} w_i w_j psi(s_i, s_j)``,
``W+ = sum_{y_i = 1} w_i``, ``W- = sum_{y_j = 0} w_j``, ``AUC_w = U_w / (W+ W-)``,

which is exactly ``sklearn.metrics.roc_auc_score`` of the data set in which instance ``i`` appears
``w_i`` times. With all ``w_i = 1`` it is the AUC of the data.

Degenerate resamples: a resample with ``W+ = 0`` or ``W- = 0`` (no positive or no negative drawn) has
no AUC; it is given ``AUC = 0.5`` (no discrimination). Redrawing is not an option (the draws are a
fixed function of the seed), and dropping the resample would make ``R`` differ between systems; 0.5
makes the paired difference of every pair 0 in that resample, which can only make a test more
conservative. With ``P`` positives among ``n`` independent instances the chance is
``(1 - P / n)^n + (P / n)^n`` per resample (``< 1e-9`` once both classes have 21 instances of 100), so
it does not happen in practice; with few clusters holding all of one class it can.

Clusters. ``unit_of[i]`` is the resampling unit (user) of instance ``i``; a resample draws ``U`` units
with replacement (counts ``C[r, u]`` from :func:`bench.stats._core._bootstrap_counts` with ``n = U``)
and gives every instance its unit's count, ``w_ri = C[r, unit_of[i]]``. Without clusters the units are
the instances (``unit_of = arange(n)``), and the counts are the very matrices of
:func:`bench.stats.bootstrap_ci_many` for the same seed and ``n``.

Kernel (O(R n) per system, no R x P x Q products). Per system, once: sort the negatives by score
(``t = 0..Q-1``), and for every positive ``i`` find ``lo_i = #{neg: s_j < s_i}`` and
``hi_i = #{neg: s_j <= s_i}`` by binary search. With ``N_r(c) = sum_{t < c} w_r(neg_t)`` (the weight of
the ``c`` lowest negatives in resample ``r``):

``2 U_r = sum_{i pos} w_ri (N_r(lo_i) + N_r(hi_i))``, ``W-_r = (total weight)_r - W+_r``.

Per block of ``_BLOCK`` resamples the unit weights are laid out [units, resamples] (uint8 while the
in-block sums fit, else int16), the sorted
negatives' weights gathered into blocks of ``_SCAN`` and scanned with ``_SCAN - 1`` long vector
additions (numpy's ``cumsum`` down a column is several times slower), the block offsets added only
where a positive looks them up, and the sum over positives is one ``einsum``. Everything is integer
arithmetic (int32, or int64 when a resample's total weight could overflow it), so ``2U_r`` is exact
and ``AUC_r = 2U_r / (2 W+_r W-_r)`` is the correctly rounded quotient of exact integers: resamples
whose AUCs tie in real arithmetic give bitwise equal floats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bench.errors import UserError
from bench.stats._core import _bootstrap_counts, _chunks, _single_threaded_blas

#: negatives per scan block (the in-block prefix sums are ``_SCAN - 1`` long vector additions).
_SCAN = 16
#: resamples per column block of the [units, resamples] weight layout (keeps a system's arrays in cache).
_BLOCK = 128
#: largest in-block prefix sum kept in uint8 or int16, and largest 2U kept in int32 (else int64).
_UINT8_MAX = int(np.iinfo(np.uint8).max)
_INT16_MAX = int(np.iinfo(np.int16).max)
_INT32_MAX = int(np.iinfo(np.int32).max)


# --------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------


def _labels01(labels: object, n: int, what: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.size != n:
        raise UserError(f"{what}: labels must be a 1-D vector of {n} 0/1 values, got shape {y.shape}")
    if y.dtype != bool:
        yf = y.astype(np.float64)
        if not np.all((yf == 0) | (yf == 1)):
            raise UserError(f"{what}: labels must be 0/1 (1 = positive)", fix="binarise the labels first")
        y = yf == 1
    return y


def _auc_table(
    scores: Mapping[str, object] | np.ndarray, labels: object
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(names, S [m, n] float64, Y [m, n] bool)``; ``labels`` is one [n] vector, [m, n], or per system.

    ``scores`` is a mapping name -> scores (names sorted) or an [m, n] array (names ``"0".."m-1"``);
    ``labels`` a shared [n] vector, an [m, n] array, or a mapping name -> labels.
    """
    if isinstance(scores, Mapping):
        names = sorted(scores)
        rows = [np.asarray(scores[k], dtype=np.float64) for k in names]
    else:
        arr = np.asarray(scores, dtype=np.float64)
        if arr.ndim != 2:
            raise UserError(f"scores must be a 2-D array [systems, instances], got shape {arr.shape}")
        names = [str(k) for k in range(arr.shape[0])]
        rows = list(arr)
    n = rows[0].size if rows else 0
    for k, r in zip(names, rows, strict=True):
        if r.ndim != 1 or r.size != n:
            raise UserError(
                f"systems have different numbers of instances ({n} for {names[0]!r}, {r.size} for {k!r})",
                fix="score all systems on the same instances; see bench.stats.align_by_ids",
            )
        if not np.all(np.isfinite(r)):
            raise UserError(
                f"AUC scores of {k!r} contain NaN or infinite values",
                fix="drop the failed instances from every system (same ids on both sides)",
            )
    S = np.stack(rows) if rows else np.zeros((0, 0))
    if isinstance(labels, Mapping):
        missing = [k for k in names if k not in labels]
        if missing:
            raise UserError(f"no labels for system {missing[0]!r}")
        Y = np.stack([_labels01(labels[k], n, f"labels[{k!r}]") for k in names]) if names else S != S
    else:
        lab = np.asarray(labels)
        if lab.ndim == 2:
            if lab.shape != S.shape:
                raise UserError(f"labels must be [n] or [systems, n] = {S.shape}, got shape {lab.shape}")
            Y = np.stack([_labels01(r, n, "labels") for r in lab]) if names else S != S
        else:
            Y = np.broadcast_to(_labels01(lab, n, "labels"), S.shape)
    return names, S, Y


# --------------------------------------------------------------------------------------------------
# the kernel
# --------------------------------------------------------------------------------------------------


def _auc_point(s: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float:
    """``AUC_w`` of one system (all ``w = 1`` by default); NaN when ``W+ W- = 0``.

    Same formula as the kernel: ``2U = sum_{pos} w_i (N(lo_i) + N(hi_i))`` with ``N`` the prefix sums
    of the sorted negatives' weights.
    """
    w = np.ones(s.size) if w is None else np.asarray(w, dtype=np.float64)
    neg = np.flatnonzero(~y)
    neg = neg[np.argsort(s[neg], kind="stable")]
    pos = np.flatnonzero(y)
    N = np.concatenate([[0.0], np.cumsum(w[neg])])
    lo = np.searchsorted(s[neg], s[pos], side="left")
    hi = np.searchsorted(s[neg], s[pos], side="right")
    wp, wn = float(w[pos].sum()), float(N[-1])
    if wp * wn == 0:
        return math.nan
    return float((w[pos] * (N[lo] + N[hi])).sum() / (2.0 * wp * wn))


@dataclass
class _Prep:
    """One system's sort, precomputed once: see :func:`_prepare`."""

    gather: np.ndarray  # [_SCAN * K] unit of each sorted negative, scan layout, padded with the zero row
    blocks: int  # K scan blocks
    slots: int  # G distinct places (lo, hi) of the positives among the negatives
    ties: bool  # some positive ties a negative (lo != hi)
    row: np.ndarray  # [G] (or [2G] with ties: lo then hi) scan row of N(lo); the zero row when lo = 0
    blk: np.ndarray  # the same, scan block of the offset of N(lo); K (a zero offset) when lo = 0
    slot: np.ndarray  # [P] slot of each positive (in the order of the positives)


def _prepare(s: np.ndarray, y: np.ndarray, unit_of: np.ndarray, zero_row: int) -> _Prep:
    """Sort the negatives and place every positive among them.

    The sorted negatives ``t = 0..Q-1`` are padded to ``K * _SCAN`` (padding reads ``zero_row``, a row
    of zero weights) and laid out so that ``t = k _SCAN + j`` sits at row ``j K + k``: then the rows
    ``j = 0.._SCAN-1`` of ``X.reshape(_SCAN, K * b)`` are long contiguous vectors and the running sum
    over ``j`` is ``_SCAN - 1`` vector additions, giving the prefix sum inside each block of
    ``_SCAN`` negatives. ``N(c)`` (the weight of the ``c`` lowest negatives, ``t = c - 1``) is then
    that in-block sum at row ``(t % _SCAN) K + t // _SCAN`` plus the exclusive offset of block
    ``t // _SCAN``; ``c = 0`` points at a zero row and a zero offset. Positives with the same
    ``(lo, hi)`` share a slot, so each distinct place is looked up once.
    """
    neg = np.flatnonzero(~y)
    neg = neg[np.argsort(s[neg], kind="stable")]
    pos = np.flatnonzero(y)
    Q = neg.size
    K = max(1, -(-Q // _SCAN))
    padded = np.full(K * _SCAN, zero_row, dtype=np.intp)
    padded[:Q] = unit_of[neg]
    lo = np.searchsorted(s[neg], s[pos], side="left")
    hi = np.searchsorted(s[neg], s[pos], side="right")
    places, slot = np.unique(np.stack([lo, hi], axis=1), axis=0, return_inverse=True)

    def where(count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, some = count - 1, count > 0
        return np.where(some, (t % _SCAN) * K + t // _SCAN, _SCAN * K), np.where(some, t // _SCAN, K)

    ties = bool(np.any(lo != hi))
    row, blk = where(places.T.ravel() if ties else places[:, 0])
    return _Prep(
        gather=padded.reshape(K, _SCAN).T.ravel(),
        blocks=K,
        slots=places.shape[0],
        ties=ties,
        row=row,
        blk=blk,
        slot=np.asarray(slot, dtype=np.intp).reshape(-1),
    )


def _resampled_auc(
    S: np.ndarray, Y: np.ndarray, unit_of: np.ndarray, n_units: int, *, resamples: int, seed: int
) -> np.ndarray:
    """``A[r, k]`` = weighted AUC of system ``k`` in bootstrap resample ``r`` (units drawn): [R, m].

    Rows of systems with a single class in the data are NaN. See the module docstring.
    """
    m, n = S.shape
    out = np.full((resamples, m), np.nan)
    live = [k for k in range(m) if 0 < int(Y[k].sum()) < n]
    if not live:
        return out
    preps = {k: _prepare(S[k], Y[k], unit_of, n_units) for k in live}
    groups: dict[bytes, np.ndarray] = {}  # systems with the same labels share their positives' weights
    label_of = {k: groups.setdefault(np.packbits(Y[k]).tobytes(), unit_of[Y[k]]) for k in live}
    sizes = np.bincount(unit_of, minlength=n_units).astype(np.float64)  # instances per unit
    start = 0
    with _single_threaded_blas():
        for c, rows in _chunks(n_units, resamples):
            counts = _bootstrap_counts(seed, n_units, c, rows)  # [rows, U]
            total = counts @ sizes  # resampled instances per resample (exact integers)
            # in-block prefix sums <= _SCAN * max count; N(c), 2U and its terms <= total^2 / 2
            top = _SCAN * float(counts.max())
            wdt = np.uint8 if top <= _UINT8_MAX else np.int16 if top <= _INT16_MAX else np.int64
            vdt = np.int32 if float(total.max()) ** 2 / 2 * 1.01 < _INT32_MAX else np.int64
            for b0 in range(0, rows, _BLOCK):
                b1 = min(rows, b0 + _BLOCK)
                W = np.zeros((n_units + 1, b1 - b0), dtype=wdt)  # last row: zero weights
                W[:n_units] = counts[b0:b1].T
                _auc_block(W, preps, label_of, total[b0:b1], vdt, out[start + b0 : start + b1])
            start += rows
    return out


def _auc_block(
    W: np.ndarray,
    preps: dict[int, _Prep],
    label_of: dict[int, np.ndarray],
    total: np.ndarray,
    vdt: type,
    out: np.ndarray,
) -> None:
    """AUCs of one block of ``b`` resamples (unit weights ``W`` [U + 1, b]) for every prepared system."""
    b = W.shape[1]
    # every index below is in range by construction; take(mode="clip") skips the bounds checks (2-3x faster)
    shared: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for k, p in preps.items():
        pos_units = label_of[k]
        if id(pos_units) not in shared:
            wp = W.take(pos_units, axis=0, mode="clip").astype(vdt)  # [P, b]
            w_pos = wp.sum(axis=0, dtype=np.int64).astype(np.float64)
            denom = 2.0 * w_pos * (total - w_pos)  # 2 W+ W-
            shared[id(pos_units)] = (wp, denom, denom > 0)
        wp, denom, good = shared[id(pos_units)]
        K = p.blocks
        X = np.empty((_SCAN * K + 1, b), dtype=W.dtype)
        X[-1] = 0
        W.take(p.gather, axis=0, out=X[:-1], mode="clip")
        rows = X[:-1].reshape(_SCAN, K * b)
        for j in range(1, _SCAN):  # in-block prefix sums: _SCAN - 1 long vector additions
            np.add(rows[j - 1], rows[j], out=rows[j])
        offset = np.zeros((K + 1, b), dtype=vdt)  # exclusive block offsets; row K (c = 0) stays 0
        if K > 1:
            running = np.cumsum(rows[_SCAN - 1].reshape(K, b)[:-1].T, axis=1, dtype=vdt)  # [b, K - 1]
            offset[1:K] = running.T
        V = offset.take(p.blk, axis=0, mode="clip")  # N(lo) (and N(hi)) of every slot
        V += X.take(p.row, axis=0, mode="clip")
        if p.ties:  # N(lo) + N(hi): tied negatives count 1/2
            V = V[: p.slots] + V[p.slots :]
        else:
            V *= 2
        u2 = np.einsum("pb,pb->b", V.take(p.slot, axis=0, mode="clip"), wp)  # 2 U
        out[:, k] = np.where(good, u2 / np.where(good, denom, 1.0), 0.5)
