"""Candidate-ordering metrics: graded NDCG of a predicted order, Kendall tau-b."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bench.metrics.lists import HALLUCINATED, _check_k, _dedupe, _discounts

#: end of this tuple get gain 0.
RECEXPLAINER_GAINS: tuple[float, ...] = (1000.0, 100.0, 10.0, 1.0, 0.0)


def _gain_vector(n: int, gains: Sequence[float] | str) -> np.ndarray:
    """Gain of the item at each 0-based true position ``j = 0..n-1``."""
    if isinstance(gains, str):
        if gains == "linear":
            return np.arange(n, 0, -1, dtype=float)  # n, n-1, ..., 1
        if gains == "recexplainer":
            gains = RECEXPLAINER_GAINS
        else:
            raise ValueError(f"unknown gains scheme {gains!r}; use 'linear', 'recexplainer' or a sequence")
    table = np.asarray(gains, dtype=float)
    if table.ndim != 1:
        raise ValueError("gains must be a 1-D sequence of numbers")
    # True positions past the end of the table get gain 0 (e.g. a 5-entry table for 7 candidates).
    out = np.zeros(n, dtype=float)
    m = min(n, table.size)
    out[:m] = table[:m]
    return out


def _true_positions(true_order: Sequence[int]) -> dict[int, int]:
    pos: dict[int, int] = {}
    for j, raw in enumerate(true_order):
        item = int(raw)
        # The reference order comes from data, so a -1 or a repeat there is a bug, not a model error.
        if item == HALLUCINATED:
            raise ValueError("true_order contains -1 (no catalog item)")
        if item in pos:
            raise ValueError(f"true_order contains item {item} twice")
        pos[item] = j
    return pos


def graded_ndcg(
    predicted_order: Sequence[int],
    true_order: Sequence[int],
    *,
    k: int | None = None,
    gains: Sequence[float] | str = "linear",
) -> float:
    """NDCG of a predicted ordering of candidates, graded by each item's true position.

    With ``n = len(true_order)`` and ``g(x) = gains[j]`` for the item ``x`` at 0-based true position
    ``j``: ``DCG = Σ_{p=1..K} g(pred_p) / log2(p + 1)`` over the deduplicated predicted order,
    ``IDCG = Σ_{p=1..K} gains[p-1] / log2(p + 1)`` over the true order, ``NDCG = DCG / IDCG``,
    with ``K = k`` (or all positions when ``k is None``). For a table that is not non-increasing
    the gains are sorted descending for IDCG, so NDCG never exceeds 1.

    Gain schemes: ``"linear"`` → ``gains[j] = n - j`` (best ``n`` … worst ``1``);
    ``"recexplainer"`` → ``(1000, 100, 10, 1, 0)``; or any explicit sequence. True positions past the
    end of an explicit table get gain 0.

    Policies: items not in ``true_order`` (including ``-1``) get gain 0 but keep their slot; repeated
    items only score at their first occurrence; if ``predicted_order`` is shorter than the true order
    the missing positions contribute 0. ``IDCG == 0`` (empty true order, or all-zero gains) → 0.0.
    """
    if k is not None:
        k = _check_k(k)
    true_pos = _true_positions(true_order)
    n = len(true_pos)
    gain_of_pos = _gain_vector(n, gains)

    pred = _dedupe(predicted_order)
    cut_pred = len(pred) if k is None else min(len(pred), k)
    cut_true = n if k is None else min(n, k)

    pred_gains = np.array(
        [gain_of_pos[true_pos[x]] if x in true_pos else 0.0 for x in pred[:cut_pred]], dtype=float
    )
    dcg = float(pred_gains @ _discounts(cut_pred))
    # The true order is the ideal order only if gains are non-increasing; sort so an odd explicit
    # table cannot make IDCG smaller than an achievable DCG.
    ideal = np.sort(gain_of_pos)[::-1][:cut_true]
    idcg = float(ideal @ _discounts(cut_true))
    if idcg <= 0.0:
        return 0.0
    return dcg / idcg


def kendall_tau(predicted_order: Sequence[int], true_order: Sequence[int]) -> float:
    """Kendall τ-b between predicted and true positions of the true-order items.

    For the ``n`` items of ``true_order`` let ``x_i`` be the true position and ``y_i`` the position in
    the deduplicated predicted order. With ``s(a) = sign(a)`` and sums over pairs ``i < j``:
    ``τ_b = Σ s(x_i - x_j)·s(y_i - y_j) / sqrt( Σ |s(x_i - x_j)| · Σ |s(y_i - y_j)| )``,
    i.e. ``(C - D) / sqrt((n0 - n1)(n0 - n2))``.

    Policies: items of ``true_order`` missing from the prediction are all placed after the last
    predicted item, tied with one another; predicted items not in ``true_order`` (and ``-1``) are
    ignored. Fewer than two candidates, or all predicted positions tied (e.g. nothing recovered)
    → 0.0 (no ordering information, scored as chance rather than NaN). Result lies in [-1, 1].
    """
    true_pos = _true_positions(true_order)
    n = len(true_pos)
    if n < 2:
        return 0.0
    pred_pos: dict[int, int] = {}
    for p, item in enumerate(_dedupe(predicted_order)):
        if item in true_pos:
            pred_pos.setdefault(item, p)
    missing_rank = len(predicted_order)  # after every real position, shared by all missing items
    items = list(true_pos)
    x = np.array([true_pos[i] for i in items], dtype=float)
    y = np.array([pred_pos.get(i, missing_rank) for i in items], dtype=float)

    # Candidate lists are small (tens of items), so the O(n^2) sign matrices are cheap and exact.
    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(n, k=1)
    sx, sy = sx[iu], sy[iu]
    denom = math.sqrt(float(np.abs(sx).sum()) * float(np.abs(sy).sum()))
    if denom == 0.0:
        return 0.0
    tau = float((sx * sy).sum()) / denom
    return min(1.0, max(-1.0, tau))
