"""Significance tiers within a table and mean ranks across tasks."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping

import numpy as np

from bench.errors import UserError
from bench.stats.paired import PairedTest

logger = logging.getLogger(__name__)


def _pair_lookup(
    comparisons: Iterable[PairedTest] | Mapping[tuple[str, str], PairedTest],
) -> dict[tuple[str, str], PairedTest]:
    items = comparisons.values() if isinstance(comparisons, Mapping) else comparisons
    table: dict[tuple[str, str], PairedTest] = {}
    for t in items:
        if t.a is None or t.b is None:
            raise UserError("comparison without system names", fix="use the output of compare_all_pairs")
        table[(t.a, t.b)] = t
        table[(t.b, t.a)] = t
    return table


def rank_groups(
    means: Mapping[str, float],
    comparisons: Iterable[PairedTest] | Mapping[tuple[str, str], PairedTest],
    *,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> dict[str, int]:
    """Group systems into significance tiers; group 1 is best.

    Rule: sort the systems best-first by mean (ties by name). The best remaining system ``L`` leads
    group ``g``; every remaining system ``S`` with ``mean(S) == mean(L)`` or ``q(L, S) >= alpha``
    (``q`` = ``p_adjusted`` when set, else ``p_value``), i.e. not significantly worse than ``L``, joins
    group ``g``. Remove the group and repeat with ``g + 1``. Systems with a NaN mean get no group.
    Raises :class:`UserError` when a needed comparison is missing.
    """
    table = _pair_lookup(comparisons)
    valid = [k for k, v in means.items() if not math.isnan(float(v))]
    sign = -1.0 if higher_is_better else 1.0
    remaining = sorted(valid, key=lambda k: (sign * float(means[k]), k))
    groups: dict[str, int] = {}
    g = 1
    while remaining:
        leader, rest = remaining[0], remaining[1:]
        groups[leader] = g
        keep: list[str] = []
        for sys_ in rest:
            if float(means[sys_]) == float(means[leader]):
                groups[sys_] = g
                continue
            t = table.get((leader, sys_))
            if t is None:
                raise UserError(
                    f"no comparison between {leader!r} and {sys_!r}",
                    fix="pass the output of compare_all_pairs for the same table",
                )
            if t.p >= alpha:
                groups[sys_] = g
            else:
                keep.append(sys_)
        remaining = keep
        g += 1
    return groups


def _rank_values(per_task_ranks: Mapping[str, Mapping[str, float | None]]) -> dict[str, list[float]]:
    vals: dict[str, list[float]] = {}
    for ranks in per_task_ranks.values():
        for sys_, r in ranks.items():
            vals.setdefault(sys_, [])
            if r is not None and not math.isnan(float(r)):
                vals[sys_].append(float(r))
    return vals


def mean_rank(per_task_ranks: Mapping[str, Mapping[str, float | None]]) -> dict[str, float]:
    """Mean rank of each system over the tasks where it has a rank.

    ``mean_rank(S) = sum_{t in T_S} rank_t(S) / |T_S|`` where ``T_S`` are the tasks in which ``S``
    has a non-missing rank (missing = absent, ``None`` or NaN: not applicable, skipped). Systems with
    ``|T_S| = 0`` get NaN. Sorted best (lowest) first; :func:`ranked_task_counts` gives ``|T_S|``.
    """
    vals = _rank_values(per_task_ranks)
    out = {k: (float(np.mean(v)) if v else math.nan) for k, v in vals.items()}
    logger.debug("mean rank over tasks counted: %s", {k: len(v) for k, v in vals.items()})
    return dict(sorted(out.items(), key=lambda kv: (math.isnan(kv[1]), kv[1], kv[0])))


def ranked_task_counts(per_task_ranks: Mapping[str, Mapping[str, float | None]]) -> dict[str, int]:
    """``|T_S|``: how many tasks counted towards each system's :func:`mean_rank`."""
    return {k: len(v) for k, v in _rank_values(per_task_ranks).items()}
