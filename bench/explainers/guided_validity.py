"""The attribute validity card: do the LLM's attribute scores mean what their names say?

For each attribute that the attribute list maps to a metadata value of the run's dataset (e.g. on
ML-100k ``humour -> Comedy``), over the scored catalog items::

    AUC = P(score_i > score_j | i has the genre, j has not) + ½ P(score_i = score_j)

(:func:`bench.metrics.auc`), with a 95 % percentile bootstrap CI over items
(:func:`bench.stats.auc_bootstrap_ci_many`, the AUC recomputed per resample). 0.5 = the attribute
carries no information about the genre for this backbone; the card lets a reader see whether the
attributes an explanation names mean anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench import metrics as M
from bench.stats.auc import auc_bootstrap_ci_many

#: bootstrap resamples of the card's CIs (the card is provenance, not a scored metric)
RESAMPLES = 2000


def validity_card(
    dataset: Any, attributes: Any, raw: np.ndarray, items: Sequence[int], *, seed: int = 0
) -> dict[str, Any] | None:
    """``{"dataset", "attributes", "n_items", "rows": [{attribute, metadata, auc, ci_low, ci_high, positives}]}``
    or ``None`` when the attribute list maps nothing for this dataset (or nothing was scored)."""
    mapping = attributes.validity.get(dataset.name) or {}
    items = [int(i) for i in items]
    if not mapping or len(items) < 2:
        return None
    names = attributes.names
    rows = []
    for attr, value in mapping.items():
        labels = np.asarray([int(value in dataset.genres[i]) for i in items], dtype=np.int64)
        scores = raw[items, names.index(attr)].astype(np.float64)
        pos = int(labels.sum())
        row: dict[str, Any] = {
            "attribute": attr,
            "metadata": value,
            "positives": pos,
            "auc": None,
            "ci_low": None,
            "ci_high": None,
        }
        if 0 < pos < len(items):
            row["auc"] = round(M.auc(scores.tolist(), labels.tolist()), 4)
            lo, hi = auc_bootstrap_ci_many(scores[None, :], labels, resamples=RESAMPLES, seed=seed)[0]
            row["ci_low"], row["ci_high"] = round(float(lo), 4), round(float(hi), 4)
        rows.append(row)
    return {
        "dataset": dataset.name,
        "attributes": attributes.name,
        "n_items": len(items),
        "metric": "ROC AUC of the attribute score at predicting the metadata value over the scored items (95 % bootstrap CI over items)",
        "rows": rows,
    }
