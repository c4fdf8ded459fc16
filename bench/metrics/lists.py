"""The list conventions shared by the ranking and history kernels (see :mod:`bench.metrics`).

``-1`` (:data:`HALLUCINATED`) never matches; duplicates count once (each ``-1`` is its own miss); ``k``
must be a positive integer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np

#: Marker for a generated item that resolved to no catalog item; it never matches anything.
HALLUCINATED = -1


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
