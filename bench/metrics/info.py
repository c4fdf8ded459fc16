"""What each metric family means: direction, whether per-sample scores are 0/1, a one-line description."""

from __future__ import annotations

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
