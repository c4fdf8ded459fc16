"""Claims ``"A > B on task/metric"``: parsing, and judging them against the paired comparisons."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from bench.errors import UserError
from bench.stats.paired import PairedTest


@dataclass(frozen=True)
class Claim:
    """A claim ``"A > B on task/metric"`` (``op`` is ``">"`` or ``"<"``; ``">"`` means *A is better*)."""

    a: str
    b: str
    op: str
    task: str
    metric: str
    text: str


_CLAIM_FORM = "'A > B on task/metric' (or '<'), e.g. 'lime > random on item_ranking/ndcg@10'"
_CLAIM_RE = re.compile(
    r"^\s*(?P<a>[^<>]+?)\s*(?P<op>[<>])\s*(?P<b>[^<>]+?)\s+on\s+(?P<task>[^\s/]+)/(?P<metric>\S+)\s*$"
)


def parse_claim(text: str) -> Claim:
    """Parse ``"A > B on task/metric"`` (``>``: A is better than B; ``<``: A is worse).

    System names may contain spaces but not ``<`` or ``>``; task and metric contain no spaces and
    the task no ``/``. Raises :class:`UserError` on any other form.
    """
    m = _CLAIM_RE.match(text) if isinstance(text, str) else None
    if m is None or m["a"] == m["b"]:
        raise UserError(f"cannot parse claim {text!r}", fix=f"write claims as {_CLAIM_FORM}")
    return Claim(m["a"].strip(), m["b"].strip(), m["op"], m["task"], m["metric"], text)


ComparisonLookup = (
    Mapping[tuple[str, str, str, str], PairedTest] | Callable[[str, str, str, str], PairedTest | None]
)


def comparison_index(
    tables: Mapping[tuple[str, str], Iterable[PairedTest]],
) -> dict[tuple[str, str, str, str], PairedTest]:
    """Index ``{(task, metric): compare_all_pairs(...)}`` as ``{(task, metric, a, b): test}``."""
    return {(task, metric, t.a, t.b): t for (task, metric), ts in tables.items() for t in ts}  # type: ignore[misc]


def _lookup(lookup: ComparisonLookup, key: tuple[str, str, str, str]) -> PairedTest | None:
    if isinstance(lookup, Mapping):
        return lookup.get(key)
    return lookup(*key)


def evaluate_claim(
    claim: Claim,
    comparison_lookup: ComparisonLookup,
    *,
    alpha: float = 0.05,
    higher_is_better: bool | Mapping[str, bool] = True,
) -> dict[str, object]:
    """Judge a claim against the paired comparison of its two systems on its task and metric.

    ``comparison_lookup`` maps ``(task, metric, a, b)`` to a :class:`PairedTest` (a mapping, e.g. from
    :func:`comparison_index`, or a callable returning ``None`` when absent); a test stored as
    ``(b, a)`` is used with its ``diff`` negated. ``higher_is_better`` is a bool or a mapping from
    ``"task/metric"`` or ``metric`` to bool (default True).

    ``diff = mean(A) - mean(B)``, ``q`` = the adjusted p-value (``p_value`` when unadjusted).
    ``A better`` means ``diff > 0`` for higher-is-better metrics and ``diff < 0`` for lower-is-better
    ones (so ``">"`` always means *better*, i.e. smaller for a lower-is-better metric).
    Verdict: ``supported`` if ``q < alpha`` and the claimed system is better; ``refuted`` if
    ``q < alpha`` and it is worse; ``inconclusive`` otherwise.
    """
    key = (claim.task, claim.metric, claim.a, claim.b)
    t = _lookup(comparison_lookup, key)
    sign = 1.0
    if t is None:
        t = _lookup(comparison_lookup, (claim.task, claim.metric, claim.b, claim.a))
        sign = -1.0
    if t is None:
        raise UserError(
            f"no comparison of {claim.a!r} and {claim.b!r} on {claim.task}/{claim.metric}",
            where=f"claim {claim.text!r}",
            fix="check the system, task and metric names against the board",
        )
    if isinstance(higher_is_better, Mapping):
        hib = bool(
            higher_is_better.get(f"{claim.task}/{claim.metric}", higher_is_better.get(claim.metric, True))
        )
    else:
        hib = bool(higher_is_better)
    diff = sign * t.diff
    q = t.p
    a_better = diff > 0 if hib else diff < 0
    a_worse = diff < 0 if hib else diff > 0
    claimed_better = claim.op == ">"
    if q < alpha and ((a_better and claimed_better) or (a_worse and not claimed_better)):
        verdict = "supported"
    elif q < alpha and (a_better or a_worse):
        verdict = "refuted"
    else:
        verdict = "inconclusive"
    return {"claim": claim.text, "verdict": verdict, "p_adjusted": float(q), "diff": float(diff)}
