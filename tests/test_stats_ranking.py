"""Tests for bench.stats significance tiers, mean ranks and claims."""

from __future__ import annotations

import itertools

import pytest

from bench import stats
from bench.errors import UserError
from bench.stats import PairedTest

# --------------------------------------------------------------------------------------------------
# ranks and claims
# --------------------------------------------------------------------------------------------------


def _pt(a: str, b: str, diff: float, p: float) -> PairedTest:
    return PairedTest("randomization", diff, p, 100, abs(diff), a=a, b=b, p_adjusted=p)


def _example() -> tuple[dict[str, float], list[PairedTest]]:
    means = {"A": 0.9, "B": 0.85, "C": 0.6, "D": 0.58, "E": 0.2}
    sig = {("A", "C"), ("A", "D"), ("A", "E"), ("B", "E"), ("C", "E"), ("D", "E")}
    comps = [
        _pt(x, y, means[x] - means[y], 0.001 if (x, y) in sig else 0.3)
        for x, y in itertools.combinations(sorted(means), 2)
    ]
    return means, comps


def test_rank_groups() -> None:
    means, comps = _example()
    # A leads group 1, B is not significantly worse -> 1; C leads group 2 with D; E alone -> 3.
    assert stats.rank_groups(means, comps) == {"A": 1, "B": 1, "C": 2, "D": 2, "E": 3}
    lower = stats.rank_groups(means, comps, higher_is_better=False)
    assert lower == {"E": 1, "D": 2, "C": 2, "B": 2, "A": 3}
    assert stats.rank_groups({**means, "F": float("nan")}, comps)["E"] == 3
    with pytest.raises(UserError, match="no comparison"):
        stats.rank_groups({**means, "G": 0.1}, comps)


def test_mean_rank() -> None:
    ranks = {"t1": {"A": 1, "B": 2, "C": 3}, "t2": {"A": 2, "B": 1}, "t3": {"A": 1, "C": None}}
    mr = stats.mean_rank(ranks)
    assert mr == {"A": pytest.approx(4 / 3), "B": 1.5, "C": 3.0}
    assert list(mr) == ["A", "B", "C"]
    assert stats.ranked_task_counts(ranks) == {"A": 3, "B": 2, "C": 1}


def test_parse_claim() -> None:
    c = stats.parse_claim("lime (k=5) > random on item_ranking/ndcg@10")
    assert (c.a, c.b, c.op, c.task, c.metric) == ("lime (k=5)", "random", ">", "item_ranking", "ndcg@10")
    assert stats.parse_claim("A<B on t/m").op == "<"
    for bad in ["A >> B on t/m", "A > B", "A > B on t", "A = B on t/m", "A > A on t/m", ""]:
        with pytest.raises(UserError, match="A > B on task/metric"):
            stats.parse_claim(bad)


def test_evaluate_claim_verdicts() -> None:
    means, comps = _example()
    lookup = stats.comparison_index({("t", "m"): comps})
    verdict = {
        text: stats.evaluate_claim(stats.parse_claim(text), lookup)["verdict"]
        for text in ["A > C on t/m", "C > A on t/m", "A < C on t/m", "A > B on t/m", "E < D on t/m"]
    }
    assert verdict == {
        "A > C on t/m": "supported",
        "C > A on t/m": "refuted",  # stored as (A, C): diff is negated
        "A < C on t/m": "refuted",
        "A > B on t/m": "inconclusive",
        "E < D on t/m": "supported",
    }
    out = stats.evaluate_claim(stats.parse_claim("C > A on t/m"), lookup)
    assert out["diff"] == pytest.approx(means["C"] - means["A"]) and out["p_adjusted"] == 0.001
    # lower is better: '>' means smaller, so A (larger) is worse than C
    low = stats.evaluate_claim(stats.parse_claim("A > C on t/m"), lookup, higher_is_better={"m": False})
    assert low["verdict"] == "refuted"
    call = stats.evaluate_claim(stats.parse_claim("A > C on t/m"), lambda *k: lookup.get(k))
    assert call["verdict"] == "supported"
    with pytest.raises(UserError, match="no comparison"):
        stats.evaluate_claim(stats.parse_claim("A > Z on t/m"), lookup)
