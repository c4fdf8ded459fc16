"""History reconstruction metrics: coverage (HCR), precision, hallucination rate."""

from __future__ import annotations

from collections.abc import Sequence

from bench.metrics.lists import HALLUCINATED, _dedupe


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
