"""Classification metrics: accuracy, F1 of the positive class (contributions, ratio parts), ROC AUC."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

logger = logging.getLogger(__name__)


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
