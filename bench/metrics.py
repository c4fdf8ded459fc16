"""Per-sample metric kernels.

Every function here scores *one* sample (or, for F1 and AUC, returns per-sample contributions whose
mean is the corpus-level value), so that the stats layer can average, bootstrap and pair them
without knowing what they measure. They are pure numpy / plain Python with no I/O.

Conventions shared by all ranking kernels
-----------------------------------------
* Item ids are ints. ``-1`` (:data:`HALLUCINATED`) in a predicted list means "generated text that
  resolved to no catalog item"; it never matches anything, not even a ``-1`` in a reference list.
* Duplicates in a predicted list: only the first occurrence of an id counts. Lists are
  deduplicated keeping order *before* cutting at ``k``, so a repeated item neither earns a second
  gain nor uses up a slot. Each ``-1`` is a distinct wrong entry: ``-1`` entries are never merged,
  and each keeps its slot (a hallucinated answer costs a position).
* ``k`` larger than the list is allowed (the list is simply shorter than ``k``); ``k < 1`` raises.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterable, Sequence

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "HALLUCINATED",
    "METRIC_INFO",
    "RECEXPLAINER_GAINS",
    "accuracy",
    "auc",
    "auc_contributions",
    "f1",
    "f1_contributions",
    "graded_ndcg",
    "hallucination_rate",
    "history_coverage",
    "history_precision",
    "hit_at_k",
    "kendall_tau",
    "mrr_at_k",
    "ndcg_at_k",
]

logger = logging.getLogger(__name__)

#: Marker for a generated item that resolved to no catalog item; it never matches anything.
HALLUCINATED = -1

#: Position gains of the RecExplainer ranking protocol (best candidate first); positions past the
#: end of this tuple get gain 0.
RECEXPLAINER_GAINS: tuple[float, ...] = (1000.0, 100.0, 10.0, 1.0, 0.0)


METRIC_INFO: dict[str, dict] = {
    "hr": {
        "higher_is_better": True,
        "binary": True,
        "description": "Hit rate @k: 1 if any relevant item is in the deduplicated top-k, else 0.",
    },
    "ndcg": {
        "higher_is_better": True,
        "binary": False,
        "description": "Binary-relevance NDCG@k; IDCG over min(|R|, k) ideal positions (RecBole).",
    },
    "mrr": {
        "higher_is_better": True,
        "binary": False,
        "description": "Reciprocal rank of the first relevant item within the top-k, else 0.",
    },
    "graded_ndcg": {
        "higher_is_better": True,
        "binary": False,
        "description": "NDCG of a predicted candidate order, gains taken from each item's true position.",
    },
    "kendall_tau": {
        "higher_is_better": True,
        "binary": False,
        "description": "Kendall tau-b between predicted and true positions (missing items tied last).",
    },
    "accuracy": {
        "higher_is_better": True,
        "binary": True,
        "description": "1 if the predicted class equals the label, else 0.",
    },
    "f1": {
        "higher_is_better": True,
        "binary": False,
        "description": "F1 of the positive class, as per-sample contributions whose mean is F1.",
    },
    "auc": {
        "higher_is_better": True,
        "binary": False,
        "description": "ROC AUC, as DeLong placement values whose mean over all samples is the AUC.",
    },
    "hcr": {
        "higher_is_better": True,
        "binary": False,
        "description": "History coverage: share of distinct true history items recovered.",
    },
    "history_precision": {
        "higher_is_better": True,
        "binary": False,
        "description": "Share of distinct predicted entries (each -1 a separate miss) that are in the history.",
    },
    "hallucination_rate": {
        "higher_is_better": False,
        "binary": False,
        "description": "Share of predicted entries that resolved to no catalog item (-1).",
    },
}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _check_k(k: int) -> int:
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _dedupe(items: Iterable[int]) -> list[int]:
    """Keep the first occurrence of every id, in order; every ``-1`` is kept (each is its own miss)."""
    seen: set[int] = set()
    out: list[int] = []
    for raw in items:
        item = int(raw)
        if item == HALLUCINATED:
            out.append(item)
        elif item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _relevant_set(relevant: int | Collection[int]) -> set[int]:
    # A lone id is accepted for the common single-target case (next-item retrieval).
    items = {int(relevant)} if isinstance(relevant, (int, np.integer)) else {int(r) for r in relevant}
    # -1 never matches, so a -1 in the reference neither can be hit nor counts towards IDCG.
    items.discard(HALLUCINATED)
    return items


def _discounts(n: int) -> np.ndarray:
    """``1 / log2(p + 1)`` for 1-based positions ``p = 1..n``."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=float))


# ---------------------------------------------------------------------------------------------
# top-k retrieval metrics (binary relevance)
# ---------------------------------------------------------------------------------------------


def hit_at_k(ranked: Sequence[int], relevant: int | Collection[int], *, k: int) -> float:
    """Hit rate at ``k``.

    ``HR@k = 1[ R ∩ dedupe(ranked)[:k] ≠ ∅ ]`` where ``R`` is the relevant set.

    ``ranked`` is deduplicated keeping order before the cut (each ``-1`` kept as a distinct miss).
    Empty ``ranked`` or empty ``R`` → 0.0.
    """
    k = _check_k(k)
    rel = _relevant_set(relevant)
    return 1.0 if any(item in rel for item in _dedupe(ranked)[:k]) else 0.0


def ndcg_at_k(ranked: Sequence[int], relevant: int | Collection[int], *, k: int) -> float:
    """Binary-relevance NDCG at ``k`` (RecBole convention).

    ``DCG@k = Σ_{p=1..k} rel_p / log2(p + 1)`` with ``rel_p = 1[ranked_p ∈ R]`` over the
    deduplicated ``ranked`` list; ``IDCG@k = Σ_{p=1..min(|R|, k)} 1 / log2(p + 1)``;
    ``NDCG@k = DCG@k / IDCG@k``.

    Empty relevant set ``R`` → 0.0 (nothing can be retrieved, so nothing is credited).
    """
    k = _check_k(k)
    rel = _relevant_set(relevant)
    if not rel:
        return 0.0
    top = _dedupe(ranked)[:k]
    hits = np.fromiter((item in rel for item in top), dtype=float, count=len(top))
    dcg = float(hits @ _discounts(len(top)))
    idcg = float(_discounts(min(len(rel), k)).sum())
    return dcg / idcg


def mrr_at_k(ranked: Sequence[int], relevant: int | Collection[int], *, k: int) -> float:
    """Reciprocal rank at ``k``.

    ``MRR@k = 1 / p*`` where ``p*`` is the 1-based position of the first relevant item in the
    deduplicated ``ranked[:k]``; 0.0 if there is none (including empty ``ranked`` or empty ``R``).
    """
    k = _check_k(k)
    rel = _relevant_set(relevant)
    for pos, item in enumerate(_dedupe(ranked)[:k], start=1):
        if item in rel:
            return 1.0 / pos
    return 0.0


# ---------------------------------------------------------------------------------------------
# candidate-ordering metrics
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# classification metrics
# ---------------------------------------------------------------------------------------------


def accuracy(pred: int, label: int) -> float:
    """``1[pred == label]``."""
    return 1.0 if int(pred) == int(label) else 0.0


def _binary_labels(labels: Sequence[int], *, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return arr.astype(int)


def f1_contributions(preds: Sequence[int], labels: Sequence[int]) -> np.ndarray:
    """Per-sample contributions to the F1 of the positive class (label 1).

    F1 = 2TP / (2TP + FP + FN) is not a mean of per-sample scores, so sample ``i`` gets
    ``c_i = n · 2·1[pred_i = 1 ∧ label_i = 1] / (2TP + FP + FN)``, which makes ``mean(c) = F1``.
    The contributions depend on the whole batch (they are not independent per sample).

    Policies: a prediction other than 1 (e.g. an unparseable ``-1``) counts as negative;
    labels must be 0/1. If ``2TP + FP + FN == 0`` (no positive predicted nor present) F1 is 0.0, so
    all contributions are 0 (sklearn's ``zero_division=0.0``). Empty input → empty array.
    """
    p = np.asarray(preds).astype(int) == 1
    y = _binary_labels(labels, name="labels") == 1
    if p.shape != y.shape:
        raise ValueError(f"preds and labels differ in length ({p.size} vs {y.size})")
    n = p.size
    tp_mask = p & y
    tp = int(tp_mask.sum())
    fp = int((p & ~y).sum())
    fn = int((~p & y).sum())
    denom = 2 * tp + fp + fn
    if denom == 0:
        return np.zeros(n, dtype=float)
    return tp_mask.astype(float) * (2.0 * n / denom)


def f1_parts(preds: Sequence[int], labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """F1 as a ratio of per-sample sums: ``F1 = Σ num_i / Σ den_i``.

    ``num_i = 2·1[pred_i = 1 ∧ label_i = 1]`` and ``den_i = num_i + 1[pred_i = 1 ∧ label_i = 0] +
    1[pred_i ≠ 1 ∧ label_i = 1]`` (so ``Σ den = 2TP + FP + FN``). Resampling instances and recomputing
    ``Σ num / Σ den`` is exactly recomputing F1 on the resample, which is how the statistics treat F1
    (ratio bootstrap and ratio randomization) instead of averaging the dependent contributions.
    """
    p = np.asarray(preds).astype(int) == 1
    y = _binary_labels(labels, name="labels") == 1
    if p.shape != y.shape:
        raise ValueError(f"preds and labels differ in length ({p.size} vs {y.size})")
    num = 2.0 * (p & y)
    den = num + (p & ~y) + (~p & y)
    return num.astype(float), den.astype(float)


def f1(preds: Sequence[int], labels: Sequence[int]) -> float:
    """F1 of the positive class: ``2TP / (2TP + FP + FN)``; 0.0 when the denominator is 0 or input empty."""
    c = f1_contributions(preds, labels)
    return float(c.mean()) if c.size else 0.0


def auc_contributions(scores: Sequence[float], labels: Sequence[int]) -> np.ndarray:
    """DeLong placement values, whose mean over all samples is the ROC AUC.

    With ``P`` positives and ``N`` negatives and ``ψ(a, b) = 1[a > b] + 0.5·1[a = b]``:
    a positive ``i`` gets ``c_i = (1/N) Σ_neg ψ(s_i, s_n)``; a negative ``j`` gets
    ``c_j = (1/P) Σ_pos ψ(s_p, s_j)``. Both class means equal the AUC, hence so does the mean over
    all samples, whatever the class balance.

    Computed in O(n log n) from mid-ranks: for a positive, ``Σ_neg ψ = rank_all - rank_pos``; for a
    negative, ``Σ_pos ψ = P - (rank_all - rank_neg)``, where ``rank_*`` are average ranks within all
    samples / within the sample's own class.

    Policy: if only one class is present (or input is empty) the AUC is undefined → all-NaN array.
    NaN scores raise ``ValueError``.
    """
    s = np.asarray(scores, dtype=float)
    y = _binary_labels(labels, name="labels")
    if s.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"scores and labels must be 1-D of equal length ({s.size} vs {y.size})")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = int(s.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        logger.debug("AUC undefined with %d positives and %d negatives", n_pos, n_neg)
        return np.full(s.size, np.nan)

    rank_all = rankdata(s)
    out = np.empty(s.size, dtype=float)
    # Mid-rank among all minus mid-rank among own class = number of other-class samples below,
    # with ties counted one half.
    out[pos] = (rank_all[pos] - rankdata(s[pos])) / n_neg
    out[~pos] = 1.0 - (rank_all[~pos] - rankdata(s[~pos])) / n_pos
    return out


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """ROC AUC = ``P(s_pos > s_neg) + 0.5·P(s_pos = s_neg)``; NaN if only one class is present."""
    c = auc_contributions(scores, labels)
    return float(c.mean()) if c.size else float("nan")


# ---------------------------------------------------------------------------------------------
# history reconstruction metrics
# ---------------------------------------------------------------------------------------------


def history_coverage(predicted: Sequence[int], history: Sequence[int]) -> float:
    """History coverage ratio (HCR).

    ``HCR = |set(predicted) ∩ set(history)| / |set(history)|``: the share of distinct true history
    items recovered. ``-1`` never matches. Empty history → 0.0.
    """
    hist = {int(h) for h in history}
    hist.discard(HALLUCINATED)
    if not hist:
        return 0.0
    return len(hist.intersection(int(p) for p in predicted)) / len(hist)


def history_precision(predicted: Sequence[int], history: Sequence[int]) -> float:
    """History precision.

    ``precision = |set(predicted) ∩ set(history)| / |dedupe(predicted)|`` where ``dedupe`` keeps one
    copy of each real id but every ``-1`` as its own wrong entry, i.e. the fraction of distinct
    predicted entries that are true history items. Empty prediction → 0.0.
    """
    pred = _dedupe(predicted)
    if not pred:
        return 0.0
    hist = {int(h) for h in history}
    hist.discard(HALLUCINATED)
    return sum(1 for p in pred if p in hist) / len(pred)


def hallucination_rate(predicted: Sequence[int]) -> float:
    """``#{entries == -1} / len(predicted)`` over the raw (not deduplicated) list; empty → 0.0."""
    if len(predicted) == 0:
        return 0.0
    return sum(1 for p in predicted if int(p) == HALLUCINATED) / len(predicted)
