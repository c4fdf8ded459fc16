"""Tests for bench.stats tables: corrections, all pairs of a table, many tables, pairing checks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from bench import stats
from bench.errors import UserError

# --------------------------------------------------------------------------------------------------
# multiple comparisons
# --------------------------------------------------------------------------------------------------


def _holm_reference(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: (p[i], i))
    out = [0.0] * m
    for rank, i in enumerate(order):
        out[i] = min(1.0, max((m - r) * p[order[r]] for r in range(rank + 1)))
    return out


def _bh_reference(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: (p[i], i))
    out = [0.0] * m
    for rank, i in enumerate(order):
        out[i] = min(1.0, min(m * p[order[r]] / (r + 1) for r in range(rank, m)))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_holm_and_bh_match_references(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 40))
    p = np.concatenate([rng.uniform(0, 0.05, m // 3), rng.uniform(0, 1, m - m // 3)])
    p[: min(3, m)] = p[0]  # ties
    rng.shuffle(p)
    assert np.allclose(stats.holm(p), _holm_reference(list(p)))
    assert np.allclose(stats.benjamini_hochberg(p), _bh_reference(list(p)))
    assert np.allclose(stats.benjamini_hochberg(p), sps.false_discovery_control(p, method="bh"))
    assert np.allclose(stats.adjust(p, method="holm"), stats.holm(p))
    assert np.allclose(stats.adjust(p, method="bh"), stats.benjamini_hochberg(p))
    assert np.array_equal(stats.adjust(p, method="none"), p)
    q = stats.holm(p)
    assert np.all(np.diff(q[np.argsort(p, kind="stable")]) >= 0) and np.all(q <= 1)


def test_adjust_nan_and_errors() -> None:
    q = stats.holm([0.01, float("nan"), 0.04])
    assert math.isnan(q[1]) and q[0] == pytest.approx(0.02) and q[2] == pytest.approx(0.04)
    assert stats.holm([]).size == 0
    with pytest.raises(UserError, match="correction"):
        stats.adjust([0.1], method="bonferroni")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# all pairs of a table
# --------------------------------------------------------------------------------------------------


def _board(m: int, n: int, seed: int, binary: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    out = {}
    for k in range(m):
        x = np.clip(base + 0.03 * k + rng.normal(scale=0.2, size=n), 0, 1)
        out[f"sys{k:02d}"] = (x > 0.5).astype(float) if binary else x
    return out


@pytest.mark.parametrize("method", ["randomization", "bootstrap", "wilcoxon"])
def test_compare_all_pairs_equals_pairwise(method: str) -> None:
    scores = _board(6, 250, 0)
    res = stats.compare_all_pairs(scores, binary=False, method=method, resamples=2000, seed=4)  # type: ignore[arg-type]
    assert len(res) == 15
    names = sorted(scores)
    assert [(r.a, r.b) for r in res] == list(itertools.combinations(names, 2))
    for r in res:
        one = stats.paired_test(scores[r.a], scores[r.b], method=method, binary=False, resamples=2000, seed=4)  # type: ignore[arg-type]
        assert r.p_value == one.p_value
        assert r.diff == pytest.approx(one.diff, abs=1e-15)
        if method == "bootstrap":
            assert r.ci_low == pytest.approx(one.ci_low, abs=1e-13)
    assert np.allclose([r.p_adjusted for r in res], stats.holm([r.p_value for r in res]))


def test_compare_all_pairs_order_independent_and_binary() -> None:
    scores = _board(5, 300, 1)
    shuffled = {k: scores[k] for k in reversed(list(scores))}
    r1 = stats.compare_all_pairs(scores, binary=False, resamples=1500, seed=2)
    r2 = stats.compare_all_pairs(shuffled, binary=False, resamples=1500, seed=2)
    assert r1 == r2
    binary = _board(4, 300, 2, binary=True)
    rb = stats.compare_all_pairs(binary, binary=True, correction="bh")
    assert all(r.test == "mcnemar" for r in rb)
    for r in rb:
        assert r.p_value == stats.mcnemar_exact(binary[r.a], binary[r.b]).p_value
    assert np.allclose([r.p_adjusted for r in rb], stats.benjamini_hochberg([r.p_value for r in rb]))
    with pytest.raises(UserError, match="different numbers of instances"):
        stats.compare_all_pairs({"a": np.zeros(3), "b": np.zeros(4)}, binary=False)
    assert stats.compare_all_pairs({"a": np.zeros(3)}, binary=False) == []


def test_compare_tables_and_ci_tables_equal_per_table_calls() -> None:
    tables = {
        ("t1", "m"): _board(4, 200, 3),
        ("t2", "m"): _board(3, 200, 4),  # same n as t1: shares the resample matrices
        ("t3", "m"): _board(5, 150, 5),
        ("t4", "hit"): _board(3, 200, 6, binary=True),
    }
    binary = {k: k[1] == "hit" for k in tables}
    for method in ("auto", "bootstrap"):
        got = stats.compare_tables(tables, binary=binary, method=method, resamples=1000, seed=8)  # type: ignore[arg-type]
        assert list(got) == list(tables)
        for key, table in tables.items():
            one = stats.compare_all_pairs(table, binary=binary[key], method=method, resamples=1000, seed=8)  # type: ignore[arg-type]
            assert got[key] == one
    assert {r.test for r in stats.compare_tables(tables, binary=binary)[("t4", "hit")]} == {"mcnemar"}
    cis = stats.bootstrap_ci_tables(tables, resamples=1000, seed=8)
    for key, table in tables.items():
        for name, x in table.items():
            lo, hi = stats.bootstrap_ci(x, resamples=1000, seed=8)
            assert cis[key][name] == (pytest.approx(lo, abs=1e-13), pytest.approx(hi, abs=1e-13))


# --------------------------------------------------------------------------------------------------
# pairing
# --------------------------------------------------------------------------------------------------


def test_assert_paired() -> None:
    ids = [f"t/test/{i}/0" for i in range(10)]
    stats.assert_paired(ids, list(ids))
    with pytest.raises(UserError, match="2 of 10 ids differ"):
        stats.assert_paired(ids, ids[:3] + [ids[4], ids[3]] + ids[5:])
    with pytest.raises(UserError, match="1 ids only in the first list"):
        stats.assert_paired(ids, ids[:-1] + ["other"])
    with pytest.raises(UserError, match="1 of 10 ids differ"):
        stats.assert_paired(ids, ids[:-1])


def test_align_by_ids() -> None:
    ids_a = ["x", "y", "z"]
    a = np.array([1.0, 2.0, 3.0])
    ids_b = ["z", "x", "y"]
    b = np.array([30.0, 10.0, 20.0])
    assert np.array_equal(stats.align_by_ids(ids_a, a, ids_b, b), [10.0, 20.0, 30.0])
    with pytest.raises(UserError, match="id sets differ"):
        stats.align_by_ids(ids_a, a, ["z", "x", "w"], b)
    with pytest.raises(UserError, match="repeat"):
        stats.align_by_ids(ids_a, a, ["z", "z", "y"], b)
