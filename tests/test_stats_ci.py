"""Tests for the bench.stats confidence intervals (percentile bootstrap, Wilson)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps

from bench import stats
from bench.errors import UserError

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
