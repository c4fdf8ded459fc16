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

Layout (one job per module; every name is re-exported here, ``from bench import metrics as M``):
:mod:`~bench.metrics.lists` (shared list conventions), :mod:`~bench.metrics.retrieval` (HR, NDCG, MRR),
:mod:`~bench.metrics.ordering` (graded NDCG, Kendall tau), :mod:`~bench.metrics.classification`
(accuracy, F1, AUC), :mod:`~bench.metrics.history` (HCR, precision, hallucination rate),
:mod:`~bench.metrics.info` (:data:`METRIC_INFO`).
"""

from __future__ import annotations

from bench.metrics.classification import (
    accuracy,
    auc,
    auc_contributions,
    f1,
    f1_contributions,
    f1_parts,
)
from bench.metrics.history import hallucination_rate, history_coverage, history_precision
from bench.metrics.info import METRIC_INFO
from bench.metrics.lists import HALLUCINATED
from bench.metrics.ordering import RECEXPLAINER_GAINS, graded_ndcg, kendall_tau
from bench.metrics.retrieval import hit_at_k, mrr_at_k, ndcg_at_k

__all__ = [
    "HALLUCINATED",
    "METRIC_INFO",
    "RECEXPLAINER_GAINS",
    "accuracy",
    "auc",
    "auc_contributions",
    "f1",
    "f1_contributions",
    "f1_parts",
    "graded_ndcg",
    "hallucination_rate",
    "history_coverage",
    "history_precision",
    "hit_at_k",
    "kendall_tau",
    "mrr_at_k",
    "ndcg_at_k",
]
