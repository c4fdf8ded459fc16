"""Paired tests of two score vectors on the same instances, and their result record :class:`PairedTest`.

Tests: sign-flip randomization, exact McNemar, paired bootstrap, Wilcoxon signed-rank; :func:`paired_test`
dispatches. Notation: ``n`` instances, ``R`` resamples, ``d_i = a_i - b_i``, ``mean(v) = sum_i v_i / n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _sps

from bench.errors import UserError
from bench.stats._core import (
    Alternative,
    Method,
    _check_confidence,
    _check_resamples,
    _check_seed,
    _chunks,
    _flip_bits,
    _pair,
    _resampled_means,
    _single_threaded_blas,
    _tie_tolerance,
)


@dataclass(frozen=True)
class PairedTest:
    """Result of one paired test of ``a`` against ``b`` on the same ``n`` instances.

    Attributes:
        test: ``"randomization"``, ``"mcnemar"``, ``"bootstrap"`` or ``"wilcoxon"``.
        diff: ``mean(a) - mean(b)``.
        p_value: the unadjusted p-value.
        n: number of paired instances.
        statistic: the test statistic (see each test), or ``None``.
        ci_low, ci_high: confidence interval of ``diff`` (bootstrap only).
        a, b: system names (set by :func:`compare_all_pairs`).
        p_adjusted: p-value after the multiple-comparison correction of its table
            (set by :func:`compare_all_pairs`; ``None`` when not corrected).
    """

    test: str
    diff: float
    p_value: float
    n: int
    statistic: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    a: str | None = None
    b: str | None = None
    p_adjusted: float | None = None

    @property
    def p(self) -> float:
        """``p_adjusted`` when set, else ``p_value``."""
        return self.p_value if self.p_adjusted is None else self.p_adjusted

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (non-finite floats become ``None``)."""

        def clean(v: object) -> object:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {k: clean(getattr(self, k)) for k in self.__dataclass_fields__}


# --------------------------------------------------------------------------------------------------
# paired tests
# --------------------------------------------------------------------------------------------------


def _check_alternative(alternative: str) -> str:
    if alternative not in ("two-sided", "greater", "less"):
        raise UserError(f"unknown alternative {alternative!r}", fix="use 'two-sided', 'greater' or 'less'")
    return alternative


def _randomization_counts(
    X: np.ndarray, left: np.ndarray, right: np.ndarray, *, resamples: int, seed: int, alternative: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sign-flip exceedance counts for the pairs ``(X[left[p]], X[right[p]])``; returns ``(counts, t_obs)``.

    Per chunk, with flip indicators ``B`` [rows, n] and ``s = 1 - 2B``:
    ``s . x_k = sum(x_k) - 2 (B @ X.T)[:, k]``; the pair statistic is ``t = s . x_left - s . x_right``
    (= ``s . d``). One matmul over the m systems serves all pairs.
    """
    n = X.shape[1]
    D = X[left] - X[right]
    t_obs = D.sum(axis=1)
    tau = _tie_tolerance(np.abs(X[left]).sum(axis=1) + np.abs(X[right]).sum(axis=1), n)
    totals = X.sum(axis=1)
    counts = np.zeros(left.size, dtype=np.int64)
    with _single_threaded_blas():
        for c, rows in _chunks(n, resamples):
            Y = _flip_bits(seed, n, c, rows) @ X.T
            Y *= -2.0
            Y += totals
            T = Y[:, left] - Y[:, right]
            if alternative == "two-sided":
                counts += np.count_nonzero(np.abs(T) >= np.abs(t_obs) - tau, axis=0)
            elif alternative == "greater":
                counts += np.count_nonzero(t_obs - tau <= T, axis=0)
            else:
                counts += np.count_nonzero(t_obs + tau >= T, axis=0)
    return counts, t_obs


def paired_randomization(
    a: np.ndarray,
    b: np.ndarray,
    *,
    resamples: int = 10_000,
    seed: int = 0,
    alternative: Alternative = "two-sided",
) -> PairedTest:
    """Paired sign-flip (Fisher randomization) test of ``mean(a - b) = 0``.

    Under the null each ``d_i = a_i - b_i`` is equally likely to have either sign. For ``R`` random
    sign vectors ``s_r`` in {-1, +1}^n (fair, independent) let ``t_r = sum_i s_ri d_i`` and
    ``t = sum_i d_i``. The exceedance count is

    * two-sided: ``c = #{r : |t_r| >= |t| - tau}`` (statistic ``|mean(d)|``),
    * greater:   ``c = #{r : t_r >= t - tau}`` (statistic ``mean(d)``),
    * less:      ``c = #{r : t_r <= t + tau}`` (statistic ``mean(d)``),

    with tie tolerance ``tau = max(1e-12, 4 n eps64) * sum_i (|a_i| + |b_i|)`` (a relative tolerance
    of 1e-12, widened for large ``n`` to cover float64 rounding). ``p = (c + 1) / (R + 1)``.
    The sign matrix depends only on ``(seed, n, chunk)``, so :func:`compare_all_pairs` gives the same
    p-values. ``n == 0`` gives ``diff = p = nan``.
    """
    av, bv = _pair(a, b)
    R = _check_resamples(resamples)
    s = _check_seed(seed)
    alt = _check_alternative(alternative)
    n = av.size
    if n == 0:
        return PairedTest("randomization", math.nan, math.nan, 0, None)
    X = np.stack([av, bv])
    counts, t_obs = _randomization_counts(
        X, np.array([0]), np.array([1]), resamples=R, seed=s, alternative=alt
    )
    diff = float(t_obs[0] / n)
    stat = abs(diff) if alt == "two-sided" else diff
    return PairedTest("randomization", float(av.mean() - bv.mean()), (int(counts[0]) + 1) / (R + 1), n, stat)


def _binary(av: np.ndarray, name: str) -> np.ndarray:
    if not np.all((av == 0) | (av == 1)):
        raise UserError(
            f"McNemar's test needs 0/1 scores, but {name} has other values",
            fix="use method='randomization' for non-binary metrics",
        )
    return av.astype(bool)


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Exact McNemar test for paired 0/1 outcomes.

    Discordant counts ``n01 = #{a_i = 0, b_i = 1}``, ``n10 = #{a_i = 1, b_i = 0}``. Under the null
    ``n10 ~ Binom(n01 + n10, 1/2)``; ``p = min(1, 2 * P[Binom(n01 + n10, 1/2) <= min(n01, n10)])``
    (``p = 1`` when ``n01 + n10 = 0``). Statistic: ``min(n01, n10)``.
    """
    av, bv = _pair(a, b)
    ab, bb = _binary(av, "a"), _binary(bv, "b")
    n = av.size
    n01 = int(np.count_nonzero(~ab & bb))
    n10 = int(np.count_nonzero(ab & ~bb))
    k = min(n01, n10)
    p = 1.0 if n01 + n10 == 0 else min(1.0, 2.0 * float(_sps.binom.cdf(k, n01 + n10, 0.5)))
    diff = float(av.mean() - bv.mean()) if n else math.nan
    return PairedTest("mcnemar", diff, p, n, float(k))


def _bootstrap_summary(
    diffs: np.ndarray, tau: np.ndarray, conf: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p-values and percentile CIs from resampled mean differences ``diffs`` [R, pairs]."""
    R = diffs.shape[0]
    le = np.count_nonzero(diffs <= tau, axis=0) / R
    ge = np.count_nonzero(diffs >= -tau, axis=0) / R
    p = np.clip(2.0 * np.minimum(le, ge), 0.0, 1.0)
    alpha = 1.0 - conf
    lo, hi = np.quantile(diffs, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    return p, lo, hi


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    *,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedTest:
    """Paired bootstrap of the mean difference, with a percentile CI and a two-sided p-value.

    Resample ``r`` draws instances with replacement (counts ``C[r, i]``, the same counts as
    :func:`bootstrap_ci`); ``delta_r = sum_i C[r, i] (a_i - b_i) / n``. Then
    ``p = min(1, 2 * min(#{delta_r <= 0} / R, #{delta_r >= 0} / R))`` (zero up to the tie tolerance
    ``tau / n`` of :func:`paired_randomization`), and the CI of ``mean(a) - mean(b)`` is
    ``(Q(alpha / 2), Q(1 - alpha / 2))`` of the ``delta_r``. Statistic: ``mean(a) - mean(b)``.
    """
    av, bv = _pair(a, b)
    R = _check_resamples(resamples)
    s = _check_seed(seed)
    conf = _check_confidence(confidence)
    n = av.size
    if n == 0:
        return PairedTest("bootstrap", math.nan, math.nan, 0, None, math.nan, math.nan)
    diff = float(av.mean() - bv.mean())
    if n == 1:
        return PairedTest("bootstrap", diff, 1.0 if diff == 0 else 0.0, 1, diff, diff, diff)
    M = _resampled_means(np.stack([av, bv]), resamples=R, seed=s)
    tau = np.array([_tie_tolerance(float(np.abs(av).sum() + np.abs(bv).sum()), n) / n])
    p, lo, hi = _bootstrap_summary(M[:, [0]] - M[:, [1]], tau, conf)
    return PairedTest("bootstrap", diff, float(p[0]), n, diff, float(lo[0]), float(hi[0]))


def wilcoxon_signed_rank(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Wilcoxon signed-rank test on ``d = a - b`` (``scipy.stats.wilcoxon``, ``zero_method="wilcox"``).

    Zero differences are dropped; with ranks ``rk_i`` of ``|d_i|`` among the rest the statistic is
    ``W = min(sum_{d_i > 0} rk_i, sum_{d_i < 0} rk_i)`` and the two-sided p-value comes from SciPy
    (exact for small samples, normal approximation otherwise). All-zero differences give ``p = 1``.
    """
    av, bv = _pair(a, b)
    n = av.size
    if n == 0:
        return PairedTest("wilcoxon", math.nan, math.nan, 0, None)
    d = av - bv
    diff = float(av.mean() - bv.mean())
    if not np.any(d != 0):
        return PairedTest("wilcoxon", diff, 1.0, n, 0.0)
    res = _sps.wilcoxon(d, zero_method="wilcox")
    return PairedTest("wilcoxon", diff, float(res.pvalue), n, float(res.statistic))


def _resolve_method(method: str, binary: bool) -> str:
    if method == "auto":
        return "mcnemar" if binary else "randomization"
    if method not in ("randomization", "mcnemar", "bootstrap", "wilcoxon"):
        raise UserError(
            f"unknown paired test {method!r}",
            fix="use one of 'auto', 'randomization', 'mcnemar', 'bootstrap', 'wilcoxon'",
        )
    return method


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    method: Method = "auto",
    binary: bool,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedTest:
    """Run one paired test; ``method="auto"`` is McNemar for binary metrics, randomization otherwise.

    See :func:`paired_randomization`, :func:`mcnemar_exact`, :func:`paired_bootstrap` and
    :func:`wilcoxon_signed_rank` for the formulas.
    """
    m = _resolve_method(method, binary)
    if m == "randomization":
        return paired_randomization(a, b, resamples=resamples, seed=seed)
    if m == "mcnemar":
        return mcnemar_exact(a, b)
    if m == "bootstrap":
        return paired_bootstrap(a, b, resamples=resamples, seed=seed, confidence=confidence)
    return wilcoxon_signed_rank(a, b)
