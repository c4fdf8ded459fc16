"""Top-k retrieval metrics with binary relevance: HR@k, NDCG@k, MRR@k."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from bench.metrics.lists import _check_k, _dedupe, _discounts, _relevant_set


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
