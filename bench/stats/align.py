"""Pairing checks: are two score vectors about the same instances, in the same order?"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from bench.errors import UserError


def assert_paired(ids_a: Sequence[str], ids_b: Sequence[str], *, where: str | None = None) -> None:
    """Raise :class:`UserError` unless ``ids_a`` and ``ids_b`` are the same ids in the same order.

    The message counts the positions whose ids differ (``#{i : ids_a[i] != ids_b[i]}`` plus the
    length difference) and says whether the two lists are the same multiset in another order.
    """
    la, lb = list(ids_a), list(ids_b)
    if la == lb:
        return
    common = min(len(la), len(lb))
    differ = sum(1 for x, y in zip(la, lb, strict=False) if x != y) + abs(len(la) - len(lb))
    first = next((i for i in range(common) if la[i] != lb[i]), common)
    ca, cb = Counter(la), Counter(lb)
    only_a, only_b = sum((ca - cb).values()), sum((cb - ca).values())
    if only_a == 0 and only_b == 0:
        detail = "same ids in a different order"
        fix = "reorder one side with bench.stats.align_by_ids before testing"
    else:
        detail = f"{only_a} ids only in the first list, {only_b} only in the second"
        fix = "score both systems on the same instances (same split, same filters)"
    shown = (
        f"first at position {first}: {la[first]!r} vs {lb[first]!r}"
        if first < common
        else f"first at position {first} (one list ends there)"
    )
    raise UserError(
        f"instance ids are not paired: {differ} of {max(len(la), len(lb))} ids differ "
        f"({len(la)} vs {len(lb)} ids; {detail}; {shown})",
        where=where,
        fix=fix,
    )


def align_by_ids(
    ids_a: Sequence[str], a: np.ndarray, ids_b: Sequence[str], b: np.ndarray, *, where: str | None = None
) -> np.ndarray:
    """Return ``b`` reordered so that ``result[i]`` belongs to instance ``ids_a[i]``.

    Raises :class:`UserError` when the two id sets differ, an id repeats, or an id list and its
    score vector have different lengths.
    """
    av, bv = np.asarray(a), np.asarray(b)
    if len(ids_a) != len(av) or len(ids_b) != len(bv):
        raise UserError(
            f"id list and scores have different lengths ({len(ids_a)} ids / {len(av)} scores, "
            f"{len(ids_b)} ids / {len(bv)} scores)",
            where=where,
        )
    pos = {k: i for i, k in enumerate(ids_b)}
    if len(pos) != len(ids_b) or len(set(ids_a)) != len(ids_a):
        raise UserError("instance ids repeat, so scores cannot be aligned by id", where=where)
    missing = [k for k in ids_a if k not in pos]
    if missing or len(ids_a) != len(ids_b):
        extra = len(set(ids_b) - set(ids_a))
        raise UserError(
            f"instance id sets differ: {len(missing)} ids only in the first list, {extra} only in the "
            f"second (e.g. {(missing or sorted(set(ids_b) - set(ids_a)))[0]!r})",
            where=where,
            fix="score both systems on the same instances (same split, same filters)",
        )
    return bv[np.fromiter((pos[k] for k in ids_a), dtype=np.intp, count=len(ids_a))]
