"""Tests for bench.stats against independent references (SciPy, brute force, exact enumeration)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps

from bench import stats
from bench.errors import UserError
from bench.stats import PairedTest

# --------------------------------------------------------------------------------------------------
# randomization test
# --------------------------------------------------------------------------------------------------


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


@pytest.mark.parametrize(
    ("n", "shift", "kind"),
    [(40, 0.15, "normal"), (120, 0.05, "laplace"), (60, 0.0, "normal"), (80, 0.3, "binary")],
)
def test_randomization_matches_scipy_permutation_test(n: int, shift: float, kind: str) -> None:
    rng = np.random.default_rng(n)
    if kind == "binary":
        a = (rng.random(n) < 0.5 + shift / 2).astype(float)
        b = (rng.random(n) < 0.5).astype(float)
    else:
        draw = rng.normal if kind == "normal" else rng.laplace
        b = draw(size=n)
        a = b + shift + 0.5 * draw(size=n)
    R = 20_000
    ours = stats.paired_randomization(a, b, resamples=R, seed=3)
    ref = sps.permutation_test(
        (a, b),
        _mean_diff,
        permutation_type="samples",
        n_resamples=R,
        vectorized=True,
        alternative="two-sided",
        random_state=np.random.default_rng(11),
    )
    assert abs(ours.p_value - ref.pvalue) < 0.02
    assert ours.diff == pytest.approx(a.mean() - b.mean())
    assert ours.statistic == pytest.approx(abs(a.mean() - b.mean()))
    assert ours.n == n and ours.test == "randomization"


def _exact_count(d: np.ndarray, tol: float) -> tuple[int, int]:
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    t = signs @ d
    return int(np.count_nonzero(np.abs(t) >= abs(d.sum()) - tol)), signs.shape[0]


@pytest.mark.parametrize("case", ["integers", "grid", "continuous"])
def test_randomization_matches_exact_enumeration(case: str) -> None:
    rng = np.random.default_rng(7)
    n = 12
    if case == "integers":
        a, b = rng.integers(0, 5, n).astype(float), rng.integers(0, 4, n).astype(float)
    elif case == "grid":  # 0.1-multiples: many real-arithmetic ties that float sums break
        a, b = rng.integers(0, 10, n) / 10.0, rng.integers(0, 8, n) / 10.0
    else:
        b = rng.normal(size=n)
        a = b + 0.4 + rng.normal(size=n)
    d = a - b
    if case == "continuous":
        count, total = _exact_count(d, 1e-9)
    else:  # exact integer arithmetic
        scale = 1 if case == "integers" else 10
        count, total = _exact_count(np.round(d * scale), 0.5)
    p_exact = count / total
    R = 40_000
    ours = stats.paired_randomization(a, b, resamples=R, seed=1)
    se = math.sqrt(p_exact * (1 - p_exact) / R)
    assert abs(ours.p_value - p_exact) <= 4 * se + 2 / R


def test_randomization_ties_and_alternatives() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0])
    zero = stats.paired_randomization(a, a, resamples=500)
    assert zero.p_value == 1.0 and zero.diff == 0.0
    rng = np.random.default_rng(0)
    b = rng.normal(size=200)
    a = b + 0.3 + rng.normal(scale=0.5, size=200)
    two = stats.paired_randomization(a, b, resamples=5000)
    greater = stats.paired_randomization(a, b, resamples=5000, alternative="greater")
    less = stats.paired_randomization(a, b, resamples=5000, alternative="less")
    assert greater.p_value <= two.p_value < 0.01
    assert less.p_value > 0.99
    empty = stats.paired_randomization(np.array([]), np.array([]))
    assert math.isnan(empty.p_value)
    with pytest.raises(UserError):
        stats.paired_randomization(a, b[:-1])
    with pytest.raises(UserError):
        stats.paired_randomization(a, b, seed=-1)


def test_randomization_deterministic_and_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    b = rng.normal(size=300)
    a = b + 0.1 + rng.normal(size=300)
    r1 = stats.paired_randomization(a, b, resamples=3000, seed=9)
    assert stats.paired_randomization(a, b, resamples=3000, seed=9) == r1
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 300 * 7)  # 7 rows a chunk, last one cut
    r2 = stats.paired_randomization(a, b, resamples=3000, seed=9)
    assert abs(r2.p_value - r1.p_value) < 0.04


# --------------------------------------------------------------------------------------------------
# McNemar, Wilcoxon, paired bootstrap
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_mcnemar_matches_binomtest(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    a = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(float)
    b = np.where(rng.random(n) < 0.7, a, 1 - a) if seed % 2 else (rng.random(n) < 0.5).astype(float)
    n01 = int(np.sum((a == 0) & (b == 1)))
    n10 = int(np.sum((a == 1) & (b == 0)))
    res = stats.mcnemar_exact(a, b)
    assert res.p_value == pytest.approx(sps.binomtest(n10, n01 + n10, 0.5).pvalue, rel=1e-9, abs=1e-12)
    assert res.statistic == min(n01, n10)
    assert res.diff == pytest.approx(a.mean() - b.mean())


def test_mcnemar_edge_cases() -> None:
    a = np.array([1, 0, 1, 1])
    assert stats.mcnemar_exact(a, a).p_value == 1.0
    with pytest.raises(UserError, match="0/1"):
        stats.mcnemar_exact(np.array([0.5, 1.0]), np.array([0.0, 1.0]))


@pytest.mark.parametrize("n", [8, 30, 200])
def test_wilcoxon_matches_scipy(n: int) -> None:
    rng = np.random.default_rng(n)
    b = rng.normal(size=n)
    a = b + 0.3 + rng.normal(size=n)
    a[:2] = b[:2]  # zero differences are dropped
    ref = sps.wilcoxon(a - b, zero_method="wilcox")
    res = stats.wilcoxon_signed_rank(a, b)
    assert res.p_value == pytest.approx(ref.pvalue)
    assert res.statistic == pytest.approx(ref.statistic)
    assert stats.wilcoxon_signed_rank(a, a).p_value == 1.0


def test_paired_bootstrap() -> None:
    rng = np.random.default_rng(2)
    b = rng.normal(size=400)
    a = b + 0.2 + rng.normal(size=400)
    res = stats.paired_bootstrap(a, b, resamples=4000, seed=4, confidence=0.9)
    lo, hi = stats.bootstrap_ci(a - b, resamples=4000, seed=4, confidence=0.9)  # same resample counts
    assert res.ci_low == pytest.approx(lo, abs=1e-12) and res.ci_high == pytest.approx(hi, abs=1e-12)
    assert res.ci_low < res.diff < res.ci_high
    assert res.p_value < 0.05 and res.test == "bootstrap"
    same = stats.paired_bootstrap(a, a, resamples=1000)
    assert same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0
    null = stats.paired_bootstrap(b, rng.permutation(b), resamples=2000)
    assert 0.0 <= null.p_value <= 1.0


def test_paired_test_dispatch() -> None:
    a = np.array([1, 1, 0, 1, 0, 1, 1, 1.0])
    b = np.array([0, 1, 0, 0, 0, 0, 1, 0.0])
    assert stats.paired_test(a, b, binary=True).test == "mcnemar"
    assert stats.paired_test(a, b, binary=False, resamples=100).test == "randomization"
    assert stats.paired_test(a, b, method="wilcoxon", binary=False).test == "wilcoxon"
    assert stats.paired_test(a, b, method="bootstrap", binary=False, resamples=100).ci_low is not None
    with pytest.raises(UserError, match="unknown paired test"):
        stats.paired_test(a, b, method="ttest", binary=False)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# confidence intervals
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dist", ["normal", "exponential", "binary"])
def test_bootstrap_ci_matches_scipy(dist: str) -> None:
    rng = np.random.default_rng(1)
    n = 250
    x = {
        "normal": rng.normal(size=n),
        "exponential": rng.exponential(size=n),
        "binary": (rng.random(n) < 0.3).astype(float),
    }[dist]
    lo, hi = stats.bootstrap_ci(x, resamples=10_000, seed=0)
    ref = sps.bootstrap(
        (x,), np.mean, method="percentile", n_resamples=10_000, random_state=np.random.default_rng(3)
    ).confidence_interval
    se = x.std() / math.sqrt(n)
    assert abs(lo - ref.low) < 0.15 * se
    assert abs(hi - ref.high) < 0.15 * se


def test_bootstrap_ci_determinism_and_edges() -> None:
    x = np.random.default_rng(0).normal(size=100)
    assert stats.bootstrap_ci(x, seed=5, resamples=2000) == stats.bootstrap_ci(x, seed=5, resamples=2000)
    assert stats.bootstrap_ci(x, seed=5, resamples=2000) != stats.bootstrap_ci(x, seed=6, resamples=2000)
    assert all(math.isnan(v) for v in stats.bootstrap_ci(np.array([])))
    assert stats.bootstrap_ci(np.array([0.25])) == (0.25, 0.25)
    lo, hi = stats.bootstrap_ci(np.full(50, 2.0), resamples=500)
    assert lo == pytest.approx(2.0) and hi == pytest.approx(2.0)
    with pytest.raises(UserError):
        stats.bootstrap_ci(x, confidence=1.5)


def test_bootstrap_ci_many_equals_single() -> None:
    X = np.random.default_rng(0).random((5, 333))
    many = stats.bootstrap_ci_many(X, resamples=3000, seed=2)
    assert many.shape == (5, 2)
    for k in range(5):
        lo, hi = stats.bootstrap_ci(X[k], resamples=3000, seed=2)
        assert many[k, 0] == pytest.approx(lo, abs=1e-13) and many[k, 1] == pytest.approx(hi, abs=1e-13)


def _wilson_reference(k: int, n: int, conf: float) -> tuple[float, float]:
    """Wilson bounds = roots of (k/n - p)^2 = z^2 p (1 - p) / n (score-test inversion)."""
    z = sps.norm.ppf(0.5 + conf / 2)
    ph = k / n

    def f(p: float) -> float:
        return (ph - p) ** 2 - z * z * p * (1 - p) / n

    tiny = 1e-15  # f(ph) = 0 at ph in {0, 1}: bracket the other root only
    lo = 0.0 if k == 0 else optimize.brentq(f, 0.0, ph - tiny if k == n else ph, xtol=1e-14)
    hi = 1.0 if k == n else optimize.brentq(f, ph + tiny if k == 0 else ph, 1.0, xtol=1e-14)
    return lo, hi


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (50, 100), (99, 100), (7, 7), (412, 5000)])
def test_wilson_ci(k: int, n: int) -> None:
    lo, hi = stats.wilson_ci(k, n, confidence=0.9)
    rlo, rhi = _wilson_reference(k, n, 0.9)
    assert lo == pytest.approx(rlo, abs=1e-9) and hi == pytest.approx(rhi, abs=1e-9)


def test_wilson_ci_edges_and_arrays() -> None:
    assert all(math.isnan(v) for v in stats.wilson_ci(0, 0))
    lo, hi = stats.wilson_ci(np.array([1, 2]), np.array([4, 4]))
    assert lo.shape == (2,) and np.all(lo < hi)
    with pytest.raises(UserError):
        stats.wilson_ci(5, 3)


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


def test_paired_tests_reject_nan() -> None:
    a = np.array([0.1, np.nan, 0.3])
    with pytest.raises(UserError, match="NaN"):
        stats.paired_randomization(a, np.zeros(3))
    with pytest.raises(UserError, match="NaN"):
        stats.compare_all_pairs({"x": a, "y": np.zeros(3)}, binary=False)
