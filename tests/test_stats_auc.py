"""Tests for bench.stats AUC statistics: against scikit-learn, an independent DeLong, and a brute-force bootstrap.

The DeLong implementation below (Sun & Xu 2014, "Fast implementation of DeLong's algorithm") shares no
code with bench: mid-ranks from scipy, structural components, their covariance.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from bench import stats
from bench.errors import UserError
from bench.metrics import auc_contributions
from bench.stats import _core
from bench.stats import auc_kernel as auc_mod

Z975 = float(sps.norm.ppf(0.975))


def delong(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs [k] and their DeLong covariance [k, k] for score rows [k, n] (fast DeLong, Sun & Xu 2014).

    With ``m`` positives and ``q`` negatives, mid-ranks ``tx`` within positives, ``ty`` within
    negatives and ``tz`` within all: ``AUC = (sum tz_pos / m - (m + 1) / 2) / q``, structural
    components ``V10 = (tz_pos - tx) / q`` (positives) and ``V01 = 1 - (tz_neg - ty) / m``
    (negatives), ``Cov = S10 / m + S01 / q`` with ``S`` the sample covariances of the components.
    """
    S = np.atleast_2d(np.asarray(scores, dtype=float))
    y = np.asarray(labels) == 1
    pos, neg = S[:, y], S[:, ~y]
    m, q = pos.shape[1], neg.shape[1]
    tx = sps.rankdata(pos, axis=1)
    ty = sps.rankdata(neg, axis=1)
    tz = sps.rankdata(np.hstack([pos, neg]), axis=1)
    aucs = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2.0) / q
    v10 = (tz[:, :m] - tx) / q
    v01 = 1.0 - (tz[:, m:] - ty) / m
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / q
    return aucs, cov


def delong_ci(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    a, c = delong(scores, labels)
    se = float(np.sqrt(c[0, 0]))
    return float(a[0]) - Z975 * se, float(a[0]) + Z975 * se


def delong_paired_p(a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> float:
    aucs, c = delong(np.stack([a, b]), labels)
    z = (aucs[0] - aucs[1]) / np.sqrt(c[0, 0] + c[1, 1] - 2.0 * c[0, 1])
    return float(2.0 * sps.norm.sf(abs(z)))


def mann_whitney_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """``(rank sum of the positives - P (P + 1) / 2) / (P Q)`` with mid-ranks (fast; equals roc_auc_score)."""
    y = np.asarray(labels) == 1
    P, Q = int(y.sum()), int((~y).sum())
    return float((sps.rankdata(scores)[y].sum() - P * (P + 1) / 2.0) / (P * Q))


def _binary_data(n: int, effect: float, seed: int, rate: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    return rng.normal(size=n) + effect * y, y


# --------------------------------------------------------------------------------------------------
# the AUC of the data and of every resample
# --------------------------------------------------------------------------------------------------


def test_independent_delong_matches_sklearn() -> None:
    s, y = _binary_data(300, 0.7, 0)
    aucs, cov = delong(np.stack([s, np.round(s, 1)]), y)
    assert mann_whitney_auc(y, np.round(s, 1)) == pytest.approx(roc_auc_score(y, np.round(s, 1)), abs=1e-12)
    assert aucs[0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert aucs[1] == pytest.approx(roc_auc_score(y, np.round(s, 1)), abs=1e-12)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


@pytest.mark.parametrize("digits", [None, 1, 0])  # None: no ties; 0: heavy ties
def test_auc_point_matches_sklearn(digits: int | None) -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.3).astype(int)
    scores = {f"s{k}": rng.normal(size=500) + 0.3 * k * y for k in range(4)}
    if digits is not None:
        scores = {k: np.round(v, digits) for k, v in scores.items()}
    res = stats.table_statistics(kind="auc", auc={k: (v, y) for k, v in scores.items()}, resamples=50)
    for k, v in scores.items():
        assert res.values[k] == pytest.approx(roc_auc_score(y, v), abs=1e-12)
        assert res.values[k] == pytest.approx(float(np.mean(auc_contributions(v, y))), abs=1e-12)
    t = res.tests[0]
    assert (t.a, t.b) == ("s0", "s1")
    assert t.diff == pytest.approx(roc_auc_score(y, scores["s0"]) - roc_auc_score(y, scores["s1"]), abs=1e-12)


@pytest.mark.parametrize("clustered", [False, True])
@pytest.mark.parametrize("width", ["uint8", "int16", "int64"])
def test_every_resampled_auc_equals_sklearn_on_the_repeated_instances(
    clustered: bool, width: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resample r's AUC is roc_auc_score of the data with instance i repeated w_ri times (exactly)."""
    n, R, seed = 120, 45, 4
    rng = np.random.default_rng(1)
    y = rng.random(n) < 0.35
    S = np.stack([np.round(rng.normal(size=n) + y, 1), rng.normal(size=n), rng.integers(0, 3, n) + 0.5 * y])
    clusters = rng.integers(0, 30, n) if clustered else None
    unit_of, U = _core._unit_index(clusters, n)
    monkeypatch.setattr(_core, "_CHUNK_ELEMENTS", U * 19)  # 19 resamples a chunk, the last one cut
    monkeypatch.setattr(auc_mod, "_BLOCK", 8)  # several column blocks per chunk, the last one cut
    monkeypatch.setattr(auc_mod, "_SCAN", 4)  # several scan blocks
    if width != "uint8":  # force the wider kernels
        monkeypatch.setattr(auc_mod, "_UINT8_MAX", 0)
    if width == "int64":
        monkeypatch.setattr(auc_mod, "_INT16_MAX", 0)
        monkeypatch.setattr(auc_mod, "_INT32_MAX", 0)
    A = auc_mod._resampled_auc(S, np.broadcast_to(y, S.shape), unit_of, U, resamples=R, seed=seed)
    row = 0
    for c, rows in _core._chunks(U, R):
        counts = _core._bootstrap_counts(seed, U, c, rows)
        for r in range(rows):
            idx = np.repeat(np.arange(n), counts[r, unit_of].astype(int))
            for k in range(S.shape[0]):
                assert A[row, k] == pytest.approx(roc_auc_score(y[idx], S[k, idx]), abs=1e-12)
            row += 1
    assert row == R


def test_resample_without_a_positive_gets_auc_one_half() -> None:
    """Policy: W+ = 0 or W- = 0 in a resample -> AUC 0.5 (here 2 positives among 12: ~19% of resamples)."""
    y = np.zeros(12, dtype=int)
    y[[3, 7]] = 1
    s = np.arange(12.0)
    A = auc_mod._resampled_auc(s[None], y[None].astype(bool), np.arange(12), 12, resamples=400, seed=0)
    counts = _core._bootstrap_counts(0, 12, 0, 400)
    none = counts[:, [3, 7]].sum(axis=1) == 0
    assert 30 < none.sum() < 130
    assert np.all(A[none, 0] == 0.5)


# --------------------------------------------------------------------------------------------------
# confidence intervals against DeLong and a brute-force bootstrap
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("effect", "rate"), [(0.0, 0.5), (0.6, 0.5), (1.2, 0.3), (2.5, 0.5)])
def test_bootstrap_ci_agrees_with_delong(effect: float, rate: float) -> None:
    s, y = _binary_data(400, effect, 10, rate)
    lo, hi = stats.auc_bootstrap_ci_many(s[None, :], y, resamples=10_000, seed=1)[0]
    dlo, dhi = delong_ci(s, y)
    assert lo == pytest.approx(dlo, abs=0.01)
    assert hi == pytest.approx(dhi, abs=0.01)
    assert 0.85 < (hi - lo) / (dhi - dlo) < 1.15


def test_random_scores_interval_is_not_half_as_wide() -> None:
    """The reviewer's case: random scores. Bootstrapping placement values gives ~half DeLong's width."""
    s, y = _binary_data(400, 0.0, 2)
    dlo, dhi = delong_ci(s, y)
    lo, hi = stats.auc_bootstrap_ci_many(s[None, :], y, resamples=10_000, seed=0)[0]
    olo, ohi = stats.bootstrap_ci_many(auc_contributions(s, y)[None, :], resamples=10_000, seed=0)[0]
    assert (hi - lo) >= 0.8 * (dhi - dlo)
    assert (ohi - olo) <= 0.6 * (dhi - dlo)  # the old way: about 0.5


def test_bootstrap_ci_agrees_with_brute_force_loop() -> None:
    """A separate rng, draws of indices, the AUC recomputed per resample: quantiles agree within MC error."""
    s, y = _binary_data(150, 0.8, 5)
    s = np.round(s, 1)  # with ties
    rng = np.random.default_rng(123)
    ref = []
    while len(ref) < 3000:
        idx = rng.integers(0, s.size, s.size)
        if 0 < y[idx].sum() < s.size:
            ref.append(mann_whitney_auc(y[idx], s[idx]))
    qlo, qhi = np.quantile(ref, [0.025, 0.975])
    lo, hi = stats.auc_bootstrap_ci_many(s[None, :], y, resamples=10_000, seed=9)[0]
    assert lo == pytest.approx(qlo, abs=0.012)
    assert hi == pytest.approx(qhi, abs=0.012)


# --------------------------------------------------------------------------------------------------
# paired tests against DeLong's paired z-test
# --------------------------------------------------------------------------------------------------


def _correlated_pair(n: int, ea: float, eb: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(int)
    shared = rng.normal(size=n)  # both systems see the same instance difficulty: correlated AUCs
    a = ea * y + shared + 0.7 * rng.normal(size=n)
    b = eb * y + shared + 0.7 * rng.normal(size=n)
    return a, b, y


@pytest.mark.parametrize(
    ("ea", "eb", "seed"), [(0.6, 0.6, 1), (0.6, 0.6, 2), (0.7, 0.5, 3), (0.7, 0.5, 5), (0.8, 0.5, 4)]
)
def test_paired_bootstrap_p_agrees_with_delong(ea: float, eb: float, seed: int) -> None:
    a, b, y = _correlated_pair(400, ea, eb, seed)
    t = stats.compare_all_pairs_auc({"a": a, "b": b}, y, resamples=10_000, seed=seed)[0]
    p_delong = delong_paired_p(a, b, y)
    assert t.test == "auc_bootstrap" and (t.a, t.b) == ("a", "b") and t.n == 400
    assert t.diff == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert t.p_value == pytest.approx(p_delong, abs=0.02 + 0.1 * p_delong)
    assert t.ci_low < t.diff < t.ci_high
    assert (t.ci_low > 0 or t.ci_high < 0) == (t.p_value < 0.05) or abs(t.p_value - 0.05) < 0.01


def test_clear_difference_and_null() -> None:
    a, b, y = _correlated_pair(400, 1.0, 0.4, 7)
    clear = stats.compare_all_pairs_auc({"a": a, "b": b}, y, resamples=10_000, seed=0)[0]
    assert clear.p_value < 0.001 and delong_paired_p(a, b, y) < 0.001
    same = stats.compare_all_pairs_auc({"a": a, "b": a.copy()}, y, resamples=2_000, seed=0)[0]
    assert same.diff == 0.0 and same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0


def test_table_shares_resamples_and_matches_pairwise_calls() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.4).astype(int)
    scores = {f"e{k}": np.round(rng.normal(size=200) + 0.2 * k * y, 1) for k in range(4)}
    kw = {"resamples": 3_000, "seed": 11}
    table = stats.compare_all_pairs_auc(dict(reversed(list(scores.items()))), y, correction="none", **kw)
    assert [(t.a, t.b) for t in table] == [(a, b) for a in sorted(scores) for b in sorted(scores) if a < b]
    for t in table:
        alone = stats.compare_all_pairs_auc({t.a: scores[t.a], t.b: scores[t.b]}, y, **kw)[0]
        assert (alone.p_value, alone.ci_low, alone.ci_high, alone.diff) == (
            t.p_value,
            t.ci_low,
            t.ci_high,
            t.diff,
        )
    holm = stats.compare_all_pairs_auc(scores, y, **kw)
    assert [t.p_adjusted for t in holm] == list(stats.holm([t.p_value for t in table]))
    cis = stats.auc_bootstrap_ci_many(np.stack([scores[k] for k in sorted(scores)]), y, **kw)
    ts = stats.table_statistics(kind="auc", auc={k: (v, y) for k, v in scores.items()}, **kw)
    assert ts.unit == "instance" and ts.n_units == ts.n == 200
    assert [ts.cis[k] for k in sorted(scores)] == [tuple(r) for r in cis.tolist()]
    assert ts.tests == holm
    again = stats.table_statistics(kind="auc", auc={k: (v, y) for k, v in scores.items()}, **kw)
    assert again == ts
    for t in ts.tests:
        assert set(t.to_json()) >= {"a", "b", "diff", "p_value", "p_adjusted", "n"}


def test_single_class_system_gives_nan_and_leaves_the_family() -> None:
    s, y = _binary_data(100, 1.0, 0)
    labels = {"a": y, "b": y, "c": np.zeros(100, dtype=int)}
    res = stats.table_statistics(
        kind="auc", auc={k: (s + 0.1 * i, labels[k]) for i, k in enumerate("abc")}, resamples=500
    )
    assert np.isnan(res.values["c"]) and all(np.isnan(res.cis["c"]))
    ab, ac, bc = res.tests
    assert np.isnan(ac.p_value) and np.isnan(bc.p_value) and np.isnan(ac.p_adjusted)
    assert ab.p_adjusted == ab.p_value  # a family of one


def test_identical_auc_pairs_are_not_tested() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.5).astype(int)
    a = rng.normal(size=300) + y
    scores = {"a": a, "a_copy": a.copy(), "b": rng.normal(size=300) + 0.8 * y, "c": rng.normal(size=300)}
    full = stats.compare_all_pairs_auc(scores, y, resamples=2_000, seed=0)
    marked = stats.compare_all_pairs_auc(scores, y, resamples=2_000, seed=0, identical=[("a_copy", "a")])
    (same,) = [t for t in marked if {t.a, t.b} == {"a", "a_copy"}]
    assert same.test == "identical_predictions" and same.diff == 0.0
    assert same.p_value == same.p_adjusted == 1.0
    rest = [t for t in full if {t.a, t.b} != {"a", "a_copy"}]
    rest_marked = [t for t in marked if {t.a, t.b} != {"a", "a_copy"}]
    assert [t.p_value for t in rest_marked] == [t.p_value for t in rest]
    assert [t.p_adjusted for t in rest_marked] == list(stats.holm([t.p_value for t in rest]))


def test_auc_input_errors() -> None:
    s, y = _binary_data(20, 1.0, 0)
    with pytest.raises(UserError, match="0/1"):
        stats.auc_bootstrap_ci_many(s[None], y + 1, resamples=10)
    with pytest.raises(UserError, match="NaN"):
        stats.compare_all_pairs_auc({"a": np.where(y, np.nan, s), "b": s}, y, resamples=10)
    with pytest.raises(UserError, match="numbers of instances"):
        stats.compare_all_pairs_auc({"a": s, "b": s[:-1]}, y, resamples=10)
    with pytest.raises(UserError, match="one id per instance"):
        stats.auc_bootstrap_ci_many(s[None], y, clusters=np.arange(5), resamples=10)
    with pytest.raises(UserError, match="needs auc="):
        stats.table_statistics(kind="auc", values={"a": s})
