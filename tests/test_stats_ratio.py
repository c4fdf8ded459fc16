"""Tests for bench.stats ratio metrics (F1 and friends) against scikit-learn and exact enumeration."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from sklearn.metrics import f1_score

from bench import stats
from bench.errors import UserError
from bench.metrics import f1_parts
from bench.stats import _core


def _system(labels: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """Predictions that agree with ``labels`` with probability ``accuracy``."""
    wrong = rng.random(labels.size) >= accuracy
    return np.where(wrong, 1 - labels, labels)


def _f1_board(
    m: int, n: int, seed: int, positive_rate: float = 0.4
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < positive_rate).astype(int)
    return labels, {f"sys{k}": _system(labels, 0.6 + 0.08 * k, rng) for k in range(m)}


# --------------------------------------------------------------------------------------------------
# ratio value and bootstrap CI
# --------------------------------------------------------------------------------------------------


def test_ratio_value_matches_sklearn_and_zero_policy() -> None:
    labels, preds = _f1_board(4, 80, 0)
    for p in preds.values():
        assert stats.ratio_value(*f1_parts(p, labels)) == f1_score(labels, p, zero_division=0)
    negatives = np.zeros(10, dtype=int)  # no positive label, no positive prediction: 0 / 0 -> 0
    assert stats.ratio_value(*f1_parts(negatives, negatives)) == 0.0
    assert stats.ratio_value(np.array([]), np.array([])) == 0.0
    with pytest.raises(UserError, match=">= 0"):
        stats.ratio_value(np.ones(3), np.array([1.0, -1.0, 1.0]))
    with pytest.raises(UserError, match="NaN"):
        stats.ratio_value(np.array([1.0, np.nan]), np.ones(2))
    with pytest.raises(UserError, match="same shape"):
        stats.ratio_value(np.ones(3), np.ones(4))


@pytest.mark.parametrize("positive_rate", [0.4, 0.03])  # 0.03: many resamples without any positive
def test_bootstrap_ci_ratio_equals_naive_sklearn_loop(
    positive_rate: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    n, R, seed = 70, 160, 5
    monkeypatch.setattr(_core, "_CHUNK_ELEMENTS", n * 37)  # 37 resamples a chunk, the last one cut
    labels, preds = _f1_board(3, n, 2, positive_rate)
    names = sorted(preds)
    parts = [f1_parts(preds[k], labels) for k in names]
    got = stats.bootstrap_ci_ratio_many(
        np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]), resamples=R, seed=seed
    )
    # the naive way: draw the same resample indices as bootstrap_ci_many and recompute F1 with sklearn
    f1s = np.empty((R, len(names)))
    r = 0
    for c, rows in _core._chunks(n, R):
        idx = _core._rng(seed, "bootstrap", n, c).integers(0, n, size=(rows, n), dtype=np.int64)
        for row in idx:
            for k, name in enumerate(names):
                f1s[r, k] = f1_score(labels[row], preds[name][row], zero_division=0)
            r += 1
    assert r == R
    want = np.quantile(f1s, [0.025, 0.975], axis=0).T
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    if positive_rate < 0.1:
        assert np.any(f1s == 0.0)  # the zero-denominator policy was exercised


def test_bootstrap_ci_ratio_perfect_and_degenerate_systems() -> None:
    labels, _ = _f1_board(1, 60, 3)
    perfect = f1_parts(labels, labels)  # all predictions correct, 24+ positives: F1 = 1 on every resample
    wrong = f1_parts(1 - labels, labels)  # every prediction wrong: F1 = 0 on every resample
    empty = f1_parts(np.zeros(60, int), np.zeros(60, int))  # 0 / 0 on every resample -> 0
    num, den = (np.stack([p[i] for p in (perfect, wrong, empty)]) for i in (0, 1))
    ci = stats.bootstrap_ci_ratio_many(num, den, resamples=2000, seed=1)
    assert ci.tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    assert np.isnan(stats.bootstrap_ci_ratio_many(np.zeros((2, 0)), np.zeros((2, 0)))).all()
    one = stats.bootstrap_ci_ratio_many(np.array([[2.0], [0.0]]), np.array([[4.0], [0.0]]))
    assert one.tolist() == [[0.5, 0.5], [0.0, 0.0]]


def test_bootstrap_ci_ratio_uses_the_mean_resamples_and_is_deterministic() -> None:
    X = np.random.default_rng(4).random((3, 250))
    # den = 1: the ratio is the mean, and the same count matrices give the same CI as bootstrap_ci_many
    ratio = stats.bootstrap_ci_ratio_many(X, np.ones_like(X), resamples=3000, seed=7)
    np.testing.assert_allclose(ratio, stats.bootstrap_ci_many(X, resamples=3000, seed=7), rtol=0, atol=1e-13)
    labels, preds = _f1_board(2, 150, 6)
    num, den = (np.stack([f1_parts(p, labels)[i] for p in preds.values()]) for i in (0, 1))
    a = stats.bootstrap_ci_ratio_many(num, den, resamples=1500, seed=3)
    assert np.array_equal(a, stats.bootstrap_ci_ratio_many(num, den, resamples=1500, seed=3))
    assert not np.array_equal(a, stats.bootstrap_ci_ratio_many(num, den, resamples=1500, seed=4))
    assert np.all(a[:, 0] <= [stats.ratio_value(num[k], den[k]) for k in range(2)])
    with pytest.raises(UserError, match="same shape"):
        stats.bootstrap_ci_ratio_many(num, den[:, :-1])
    with pytest.raises(UserError):
        stats.bootstrap_ci_ratio_many(num, den, confidence=1.0)


# --------------------------------------------------------------------------------------------------
# ratio randomization test
# --------------------------------------------------------------------------------------------------


def _exact_p(na: np.ndarray, da: np.ndarray, nb: np.ndarray, db: np.ndarray) -> float:
    """Exact swap-test p-value over all 2^n swap vectors, in rational arithmetic."""

    def ratio(num: list[Fraction], den: list[Fraction]) -> Fraction:
        return sum(num, Fraction(0)) / sum(den, Fraction(0)) if sum(den) != 0 else Fraction(0)

    fa, ga, fb, gb = ([Fraction(float(v)) for v in x] for x in (na, da, nb, db))
    t = abs(ratio(fa, ga) - ratio(fb, gb))
    hits = 0
    for swap in itertools.product((False, True), repeat=len(fa)):
        num_a = [fb[i] if s else fa[i] for i, s in enumerate(swap)]
        den_a = [gb[i] if s else ga[i] for i, s in enumerate(swap)]
        num_b = [fa[i] if s else fb[i] for i, s in enumerate(swap)]
        den_b = [ga[i] if s else gb[i] for i, s in enumerate(swap)]
        hits += abs(ratio(num_a, den_a) - ratio(num_b, den_b)) >= t
    return hits / 2 ** len(fa)


_ZERO_DEN = (  # hand-made F1 parts: swapping instances 0, 1, 7 only leaves system a with 0 / 0
    np.array([2, 0, 0, 0, 0, 2, 0, 0.0]),
    np.array([2, 1, 0, 0, 0, 2, 0, 1.0]),
    np.array([0, 0, 2, 0, 0, 2, 0, 0.0]),
    np.array([0, 0, 2, 1, 1, 2, 1, 0.0]),
)


@pytest.mark.parametrize("case", ["f1", "f1_sparse", "zero_den", "continuous"])
def test_ratio_randomization_matches_exact_enumeration(case: str) -> None:
    if case == "zero_den":
        na, da, nb, db = _ZERO_DEN
    elif case == "continuous":  # weighted-precision-like parts: 0 <= num <= den
        rng = np.random.default_rng(11)
        da, db = rng.random(10), rng.random(10)
        na, nb = da * (rng.random(10) < 0.8), db * (rng.random(10) < 0.4)
    else:  # F1 parts: integer sums, many real-arithmetic ties (p_exact 0.53 vs 0.41 without them)
        seed, n, rate, acc = (21, 10, 0.5, (0.8, 0.6)) if case == "f1" else (15, 9, 0.15, (0.85, 0.7))
        rng = np.random.default_rng(seed)
        labels = (rng.random(n) < rate).astype(int)
        na, da = f1_parts(_system(labels, acc[0], rng), labels)
        nb, db = f1_parts(_system(labels, acc[1], rng), labels)
    n = na.size
    p_exact = _exact_p(na, da, nb, db)
    res = stats.compare_all_pairs_ratio({"a": (na, da), "b": (nb, db)}, resamples=40_000, seed=2)
    assert len(res) == 1
    (r,) = res
    assert abs(r.p_value - p_exact) < 0.01  # Monte-Carlo SD <= 0.0025
    assert r.test == "randomization" and r.n == n and (r.a, r.b) == ("a", "b")
    assert r.diff == pytest.approx(stats.ratio_value(na, da) - stats.ratio_value(nb, db), abs=1e-15)
    assert r.statistic == abs(r.diff) and r.ci_low is None and r.p_adjusted == r.p_value


def test_ratio_randomization_identical_systems() -> None:
    labels, preds = _f1_board(2, 200, 8)
    same = f1_parts(preds["sys0"], labels)
    res = stats.compare_all_pairs_ratio(
        {"x": same, "y": (same[0].copy(), same[1].copy()), "z": f1_parts(preds["sys1"], labels)},
        resamples=3000,
    )
    by_pair = {(r.a, r.b): r for r in res}
    assert by_pair[("x", "y")].p_value == 1.0 and by_pair[("x", "y")].diff == 0.0
    assert by_pair[("x", "y")].p_adjusted == 1.0
    # continuous parts too: every resample ties the observed 0 difference
    rng = np.random.default_rng(0)
    parts = (rng.random(300), rng.random(300) + 0.5)
    assert stats.compare_all_pairs_ratio({"a": parts, "b": parts}, resamples=500)[0].p_value == 1.0


def test_ratio_randomization_deterministic_and_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    labels, preds = _f1_board(5, 300, 9)
    parts = {k: f1_parts(p, labels) for k, p in preds.items()}
    r1 = stats.compare_all_pairs_ratio(parts, resamples=2000, seed=3)
    assert len(r1) == 10
    assert [(r.a, r.b) for r in r1] == list(itertools.combinations(sorted(parts), 2))
    assert stats.compare_all_pairs_ratio(parts, resamples=2000, seed=3) == r1
    shuffled = {k: parts[k] for k in reversed(list(parts))}
    assert stats.compare_all_pairs_ratio(shuffled, resamples=2000, seed=3) == r1
    assert [r.p_value for r in stats.compare_all_pairs_ratio(parts, resamples=2000, seed=4)] != [
        r.p_value for r in r1
    ]
    for r in r1:  # the table pass equals the two-system call (same flip bits)
        (one,) = stats.compare_all_pairs_ratio({r.a: parts[r.a], r.b: parts[r.b]}, resamples=2000, seed=3)
        assert (one.p_value, one.diff) == (r.p_value, r.diff)
    np.testing.assert_allclose([r.p_adjusted for r in r1], stats.holm([r.p_value for r in r1]))
    bh = stats.compare_all_pairs_ratio(parts, resamples=2000, seed=3, correction="bh")
    np.testing.assert_allclose([r.p_adjusted for r in bh], stats.benjamini_hochberg([r.p_value for r in r1]))
    monkeypatch.setattr(_core, "_CHUNK_ELEMENTS", 300 * 7)  # 7 rows a chunk, pair blocks of 2
    r2 = stats.compare_all_pairs_ratio(parts, resamples=2000, seed=3)
    assert max(abs(a.p_value - b.p_value) for a, b in zip(r1, r2, strict=True)) < 0.06


@pytest.mark.parametrize("case", ["continuous", "grid"])
def test_ratio_randomization_with_unit_denominators_is_the_mean_test(case: str) -> None:
    rng = np.random.default_rng(12)
    n = 120
    if case == "grid":  # many real-arithmetic ties
        scores = {f"s{k}": rng.integers(0, 5, n) / 4.0 for k in range(4)}
    else:
        scores = {f"s{k}": rng.normal(size=n) + 0.1 * k for k in range(4)}
    ones = np.ones(n)
    ratio = stats.compare_all_pairs_ratio({k: (v, ones) for k, v in scores.items()}, resamples=3000, seed=6)
    mean = stats.compare_all_pairs(scores, binary=False, method="randomization", resamples=3000, seed=6)
    assert [r.p_value for r in ratio] == [r.p_value for r in mean]
    np.testing.assert_allclose([r.diff for r in ratio], [r.diff for r in mean], rtol=0, atol=1e-14)


def test_ratio_randomization_edges_and_errors() -> None:
    assert stats.compare_all_pairs_ratio({}) == []
    assert stats.compare_all_pairs_ratio({"a": (np.ones(3), np.ones(3))}) == []
    empty = stats.compare_all_pairs_ratio({"a": (np.zeros(0), np.zeros(0)), "b": (np.zeros(0), np.zeros(0))})
    assert len(empty) == 1 and np.isnan(empty[0].p_value) and empty[0].n == 0
    with pytest.raises(UserError, match="different numbers of instances"):
        stats.compare_all_pairs_ratio({"a": (np.ones(3), np.ones(3)), "b": (np.ones(4), np.ones(4))})
    with pytest.raises(UserError, match="pair"):
        stats.compare_all_pairs_ratio({"a": np.ones(3), "b": np.ones(3)})  # type: ignore[dict-item]
    with pytest.raises(UserError, match=">= 0"):
        stats.compare_all_pairs_ratio({"a": (np.ones(2), -np.ones(2)), "b": (np.ones(2), np.ones(2))})
    with pytest.raises(UserError, match="correction"):
        stats.compare_all_pairs_ratio({"a": (np.ones(2), np.ones(2))}, correction="bonferroni")  # type: ignore[arg-type]
