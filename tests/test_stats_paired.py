"""Tests for the paired tests of bench.stats against SciPy, brute force and exact enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from bench import stats
from bench.errors import UserError
from bench.stats import _core

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
    monkeypatch.setattr(_core, "_CHUNK_ELEMENTS", 300 * 7)  # 7 rows a chunk, last one cut
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


def test_paired_tests_reject_nan() -> None:
    a = np.array([0.1, np.nan, 0.3])
    with pytest.raises(UserError, match="NaN"):
        stats.paired_randomization(a, np.zeros(3))
    with pytest.raises(UserError, match="NaN"):
        stats.compare_all_pairs({"x": a, "y": np.zeros(3)}, binary=False)
