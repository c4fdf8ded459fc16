"""Statistics for explainer boards: confidence intervals, paired tests, corrections, ranks, claims.

Every score vector is *per instance*: ``a[i]`` and ``b[i]`` are two explainers' scores on the same
teacher instance ``i`` (check with :func:`assert_paired` / :func:`align_by_ids`). All resampling is
vectorised numpy, processed in chunks of at most ``_CHUNK_ELEMENTS`` (2^18) random numbers so memory
stays bounded (about 6 MB per chunk while n <= 2^18, 24 bytes per instance beyond), and seeded with
:class:`numpy.random.SeedSequence` from ``(seed, crc32(purpose), n, chunk index)`` only. So:

* the same inputs give the same random draws on every machine (no salted ``hash()``);
* the resample matrices do not depend on *which* vectors are tested, so a whole table of explainers
  shares one resample matrix per chunk (:func:`bootstrap_ci_many`, :func:`compare_all_pairs`) and the
  result equals testing each vector / pair on its own with the same seed.

Floating-point sums may differ in the last bits between BLAS builds; comparisons against an observed
statistic therefore use a tie tolerance (see :func:`paired_randomization`) so that exact ties in real
arithmetic (integer or grid-valued metrics) are always counted as ties.

Notation: ``n`` instances, ``R`` resamples, ``d_i = a_i - b_i``, ``mean(v) = sum_i v_i / n``.
"""

from __future__ import annotations

import logging
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

import numpy as np
from scipy import stats as _sps

from bench.errors import UserError

logger = logging.getLogger(__name__)

Alternative = Literal["two-sided", "greater", "less"]
Method = Literal["auto", "randomization", "mcnemar", "bootstrap", "wilcoxon"]
Correction = Literal["holm", "bh", "none"]
K = TypeVar("K")

#: random numbers drawn per chunk (rows per chunk = max(1, _CHUNK_ELEMENTS // n)); depends on n only.
_CHUNK_ELEMENTS = 1 << 18
#: relative tie tolerance floor (see ``_tie_tolerance``).
_RTOL = 1e-12
_EPS64 = float(np.finfo(np.float64).eps)

__all__ = [
    "Claim",
    "PairedTest",
    "adjust",
    "align_by_ids",
    "assert_paired",
    "benjamini_hochberg",
    "bootstrap_ci",
    "bootstrap_ci_many",
    "bootstrap_ci_tables",
    "compare_all_pairs",
    "compare_tables",
    "comparison_index",
    "evaluate_claim",
    "holm",
    "mcnemar_exact",
    "mean_rank",
    "paired_bootstrap",
    "paired_randomization",
    "paired_test",
    "parse_claim",
    "rank_groups",
    "ranked_task_counts",
    "wilcoxon_signed_rank",
    "wilson_ci",
]


# --------------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Claim:
    """A claim ``"A > B on task/metric"`` (``op`` is ``">"`` or ``"<"``; ``">"`` means *A is better*)."""

    a: str
    b: str
    op: str
    task: str
    metric: str
    text: str


# --------------------------------------------------------------------------------------------------
# validation and seeding helpers
# --------------------------------------------------------------------------------------------------


def _key(purpose: str) -> int:
    """Stable 32-bit key of a string (``zlib.crc32``; Python's ``hash()`` is salted per process)."""
    return zlib.crc32(purpose.encode("utf-8"))


def _rng(seed: int, purpose: str, n: int, chunk: int) -> np.random.Generator:
    """Generator for one chunk: ``SeedSequence([seed, crc32(purpose), n, chunk])``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _key(purpose), int(n), int(chunk)]))


def _chunks(n: int, resamples: int) -> Iterator[tuple[int, int]]:
    """Yield ``(chunk index, rows)``; rows per chunk depend on ``n`` only, the last chunk is cut."""
    per = max(1, _CHUNK_ELEMENTS // max(n, 1))
    done, c = 0, 0
    while done < resamples:
        rows = min(per, resamples - done)
        yield c, rows
        done += rows
        c += 1


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}", fix="use e.g. seed=0")
    return int(seed)


def _check_resamples(resamples: int) -> int:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise UserError(
            f"resamples must be a positive integer, got {resamples!r}", fix="use e.g. resamples=10000"
        )
    return int(resamples)


def _check_confidence(confidence: float) -> float:
    if not 0.0 < float(confidence) < 1.0:
        raise UserError(
            f"confidence must lie strictly between 0 and 1, got {confidence!r}", fix="use e.g. 0.95"
        )
    return float(confidence)


def _vector(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise UserError(f"{name} must be a 1-D vector of per-instance scores, got shape {arr.shape}")
    return arr


def _finite(X: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(X)):
        raise UserError(
            f"{what} contain NaN or infinite scores; paired tests need a score for every instance",
            fix="drop the failed instances from every system (same ids on both sides) or score them 0",
        )


def _pair(a: object, b: object) -> tuple[np.ndarray, np.ndarray]:
    av, bv = _vector(a, "a"), _vector(b, "b")
    if av.shape != bv.shape:
        raise UserError(
            f"paired score vectors have different lengths ({av.size} vs {bv.size})",
            fix="score both systems on the same instances; see bench.stats.align_by_ids",
        )
    _finite(av, "a")
    _finite(bv, "b")
    return av, bv


def _tie_tolerance(abs_sum: np.ndarray | float, n: int) -> np.ndarray | float:
    """Tie tolerance for sums: ``tau = max(1e-12, 4 n eps64) * sum_i (|a_i| + |b_i|)``.

    A length-``n`` float64 sum errs by at most ``n eps64 / 2 * sum |x_i|`` in any summation order;
    the resampled statistic ``sum(a) - 2 B.a - (sum(b) - 2 B.b)`` and the observed ``sum(d)`` together
    err by less than ``4 n eps64 * sum (|a_i| + |b_i|)``, so real-arithmetic ties always count as ties.
    """
    return max(_RTOL, 4.0 * n * _EPS64) * abs_sum


# --------------------------------------------------------------------------------------------------
# resample matrices (shared by every vector of the same length)
# --------------------------------------------------------------------------------------------------


def _bootstrap_counts(seed: int, n: int, chunk: int, rows: int) -> np.ndarray:
    """Multinomial resample counts ``C[r, i]`` = times instance ``i`` is drawn in resample ``r``.

    Each row is ``n`` indices drawn uniformly with replacement, tallied by ``bincount`` (float64).
    """
    rng = _rng(seed, "bootstrap", n, chunk)
    idx = rng.integers(0, n, size=(rows, n), dtype=np.int64)
    idx += (np.arange(rows, dtype=np.int64) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)


def _flip_bits(seed: int, n: int, chunk: int, rows: int) -> np.ndarray:
    """Random flip indicators ``B[r, i]`` in {0, 1} (float64); sign ``s_ri = 1 - 2 B_ri``."""
    rng = _rng(seed, "randomization", n, chunk)
    packed = rng.integers(0, 256, size=(rows, (n + 7) // 8), dtype=np.uint8)
    return np.unpackbits(packed, axis=1, count=n).astype(np.float64)


def _resampled_means(X: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap means ``M[r, k] = sum_i C[r, i] X[k, i] / n`` for every row of ``X``: shape [R, m]."""
    m, n = X.shape
    out = np.empty((resamples, m), dtype=np.float64)
    start = 0
    for c, rows in _chunks(n, resamples):
        counts = _bootstrap_counts(seed, n, c, rows)
        np.matmul(counts, X.T, out=out[start : start + rows])
        start += rows
    out /= n
    return out


# --------------------------------------------------------------------------------------------------
# confidence intervals
# --------------------------------------------------------------------------------------------------


def bootstrap_ci(
    x: np.ndarray, *, confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Resample ``r`` draws ``n`` instances with replacement (counts ``C[r, i]``); its mean is
    ``m_r = sum_i C[r, i] x_i / n``. With ``alpha = 1 - confidence`` the interval is
    ``(Q(alpha / 2), Q(1 - alpha / 2))`` where ``Q`` is the linear-interpolated empirical quantile of
    ``m_1..m_R``. ``n == 0`` gives ``(nan, nan)``; ``n == 1`` gives ``(x_0, x_0)``.

    Identical to ``bootstrap_ci_many(x[None, :], ...)[0]`` (same resample counts).
    """
    xv = _vector(x, "x")
    lo, hi = bootstrap_ci_many(xv[None, :], confidence=confidence, resamples=resamples, seed=seed)[0]
    return float(lo), float(hi)


def bootstrap_ci_many(
    X: np.ndarray, *, confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> np.ndarray:
    """Percentile bootstrap CIs of the mean for each row of ``X`` [m, n], over the *same* instances.

    One resample-count matrix ``C`` [R, n] (built chunk by chunk) serves every row:
    ``M = C @ X.T / n`` [R, m]; row ``k``'s interval is ``(Q_k(alpha/2), Q_k(1 - alpha/2))`` as in
    :func:`bootstrap_ci`. Returns an array [m, 2] of ``(low, high)``. NaN scores propagate.
    """
    conf = _check_confidence(confidence)
    R = _check_resamples(resamples)
    s = _check_seed(seed)
    Xm = np.asarray(X, dtype=np.float64)
    if Xm.ndim != 2:
        raise UserError(f"X must be a 2-D array [systems, instances], got shape {Xm.shape}")
    m, n = Xm.shape
    if n == 0:
        return np.full((m, 2), np.nan)
    if n == 1:
        return np.repeat(Xm, 2, axis=1)
    alpha = 1.0 - conf
    means = _resampled_means(Xm, resamples=R, seed=s)
    return np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0).T.copy()


def wilson_ci(
    successes: int | np.ndarray, n: int | np.ndarray, *, confidence: float = 0.95
) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion ``p = successes / n``.

    With ``z = Phi^-1(1 - alpha / 2)``:
    ``center = (p + z^2 / (2n)) / (1 + z^2 / n)``,
    ``half = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))``; the interval is
    ``(center - half, center + half)`` clipped to [0, 1]. ``n == 0`` gives ``(nan, nan)``.
    Scalars in, floats out; arrays broadcast.
    """
    conf = _check_confidence(confidence)
    k = np.asarray(successes, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    if np.any(nn < 0) or np.any(k < 0) or np.any(k > nn):
        raise UserError(f"wilson_ci needs 0 <= successes <= n, got successes={successes!r}, n={n!r}")
    z = float(_sps.norm.ppf(1.0 - (1.0 - conf) / 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / nn
        denom = 1.0 + z * z / nn
        center = (p + z * z / (2.0 * nn)) / denom
        half = z / denom * np.sqrt(p * (1.0 - p) / nn + z * z / (4.0 * nn * nn))
        lo = np.where(nn > 0, np.clip(center - half, 0.0, 1.0), np.nan)
        hi = np.where(nn > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


# --------------------------------------------------------------------------------------------------
# paired tests
# --------------------------------------------------------------------------------------------------


def _check_alternative(alternative: str) -> str:
    if alternative not in ("two-sided", "greater", "less"):
        raise UserError(f"unknown alternative {alternative!r}", fix="use 'two-sided', 'greater' or 'less'")
    return alternative


def _pair_index(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(left, right)`` of all pairs ``i < j`` of ``m`` systems, in lexicographic order."""
    left, right = np.triu_indices(m, k=1)
    return left.astype(np.intp), right.astype(np.intp)


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


def _table_matrix(key: object, scores: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Names sorted and their score vectors stacked [m, n]; all must have the same length."""
    names = sorted(scores)
    vecs = [_vector(scores[k], f"scores[{k!r}]") for k in names]
    n = vecs[0].size if vecs else 0
    bad = [k for k, v in zip(names, vecs, strict=True) if v.size != n]
    if bad:
        raise UserError(
            f"systems have different numbers of instances ({n} for {names[0]!r}, "
            f"{vecs[names.index(bad[0])].size} for {bad[0]!r})",
            where=None if key is None else str(key),
            fix="score all systems on the same instances; see bench.stats.align_by_ids",
        )
    return names, (np.stack(vecs) if vecs else np.zeros((0, 0)))


#: pairs per block when the bootstrap differences [R, pairs] are summarised (bounds memory).
_PAIR_BLOCK = 256


def _shared_pass(
    group: list[tuple[K, list[str], np.ndarray]], kind: str, *, resamples: int, seed: int, confidence: float
) -> dict[K, list[PairedTest]]:
    """All pairs of several tables with the same ``n`` in one pass over shared resample matrices.

    The systems of every table are stacked into one matrix; pairs are formed within each table only.
    """
    X = np.concatenate([x for _, _, x in group])
    n = X.shape[1]
    left_parts, right_parts, offset = [], [], 0
    for _, names, _x in group:
        i, j = _pair_index(len(names))
        left_parts.append(i + offset)
        right_parts.append(j + offset)
        offset += len(names)
    left, right = np.concatenate(left_parts), np.concatenate(right_parts)
    diffs = X[left].mean(axis=1) - X[right].mean(axis=1)
    if kind == "randomization":
        counts, t_obs = _randomization_counts(
            X, left, right, resamples=resamples, seed=seed, alternative="two-sided"
        )
        pv = (counts + 1) / (resamples + 1)
        stat = np.abs(t_obs / n)
        lo = hi = np.full(left.size, np.nan)
    else:
        M = _resampled_means(X, resamples=resamples, seed=seed)
        tau = _tie_tolerance(np.abs(X[left]).sum(axis=1) + np.abs(X[right]).sum(axis=1), n) / n
        pv, lo, hi = np.empty(left.size), np.empty(left.size), np.empty(left.size)
        for s0 in range(0, left.size, _PAIR_BLOCK):
            blk = slice(s0, s0 + _PAIR_BLOCK)
            pv[blk], lo[blk], hi[blk] = _bootstrap_summary(
                M[:, left[blk]] - M[:, right[blk]], tau[blk], confidence
            )
        stat = diffs
    out: dict[K, list[PairedTest]] = {}
    start = 0
    for key, names, _x in group:
        i, j = _pair_index(len(names))
        rows = []
        for q, (ii, jj) in enumerate(zip(i, j, strict=True), start=start):
            ci = (None, None) if kind == "randomization" else (float(lo[q]), float(hi[q]))
            rows.append(
                PairedTest(kind, float(diffs[q]), float(pv[q]), n, float(stat[q]), *ci, names[ii], names[jj])
            )
        out[key] = rows
        start += i.size
    return out


def compare_tables(
    tables: Mapping[K, Mapping[str, np.ndarray]],
    *,
    binary: bool | Mapping[K, bool],
    method: Method = "auto",
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    correction: Correction = "holm",
) -> dict[K, list[PairedTest]]:
    """:func:`compare_all_pairs` for many tables (e.g. every task/metric of a board) at once.

    Tables with the same number of instances ``n`` that use the randomization or bootstrap test share
    one resample matrix per chunk (the matrices depend only on ``(seed, n, chunk)``), so the result
    equals calling :func:`compare_all_pairs` table by table, at a fraction of the cost. ``binary`` is
    one flag for all tables or a mapping per table key. The ``correction`` family is each table.
    """
    R = _check_resamples(resamples)
    s = _check_seed(seed)
    conf = _check_confidence(confidence)
    results: dict[K, list[PairedTest]] = {}
    shared: dict[tuple[str, int], list[tuple[K, list[str], np.ndarray]]] = {}
    for key, scores in tables.items():
        is_binary = bool(binary[key] if isinstance(binary, Mapping) else binary)
        kind = _resolve_method(method, is_binary)
        names, X = _table_matrix(key, scores)
        _finite(X, f"scores of {key!r}" if key != "" else "scores")
        n = X.shape[1]
        if len(names) < 2:
            results[key] = []
        elif (kind == "randomization" and n > 0) or (kind == "bootstrap" and n > 1):
            shared.setdefault((kind, n), []).append((key, names, X))
        else:
            left, right = _pair_index(len(names))
            results[key] = [
                _with(
                    paired_test(
                        X[i], X[j], method=kind, binary=is_binary, resamples=R, seed=s, confidence=conf
                    ),
                    a=names[i],
                    b=names[j],
                )
                for i, j in zip(left, right, strict=True)
            ]
    for (kind, _n), group in shared.items():
        results.update(_shared_pass(group, kind, resamples=R, seed=s, confidence=conf))
    out: dict[K, list[PairedTest]] = {}
    for key in tables:
        adj = adjust(np.array([r.p_value for r in results[key]]), method=correction)
        out[key] = [_with(r, p_adjusted=float(q)) for r, q in zip(results[key], adj, strict=True)]
    return out


def compare_all_pairs(
    scores: Mapping[str, np.ndarray],
    *,
    binary: bool,
    method: Method = "auto",
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    correction: Correction = "holm",
) -> list[PairedTest]:
    """Test every pair of systems of one table (one task and metric) exactly once.

    Systems are sorted by name; pair ``(a, b)`` with ``a < b`` is tested as ``a`` minus ``b``
    (``diff = mean(a) - mean(b)``). For ``randomization`` one sign matrix per chunk serves all pairs:
    ``B @ X.T`` over the m systems, then column differences ``s . x_a - s . x_b = s . d`` (see
    :func:`paired_randomization`); for ``bootstrap`` one count matrix per chunk does. Both matrices
    depend only on ``(seed, n, chunk)``, so each result equals the pair-by-pair call with the same
    seed, and the order of ``scores`` does not matter. ``p_adjusted`` holds the ``correction``
    (:func:`adjust`) over the ``m (m - 1) / 2`` p-values of the table.
    """
    return compare_tables(
        {"": scores},
        binary=binary,
        method=method,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        correction=correction,
    )[""]


def bootstrap_ci_tables(
    tables: Mapping[K, Mapping[str, np.ndarray]],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[K, dict[str, tuple[float, float]]]:
    """:func:`bootstrap_ci` of every system of every table; tables with equal ``n`` share one pass.

    Same formula and same numbers as :func:`bootstrap_ci` per vector (the count matrix depends only
    on ``(seed, n, chunk)``). Returns ``{table key: {system: (low, high)}}``.
    """
    groups: dict[int, list[tuple[K, list[str], np.ndarray]]] = {}
    for key, scores in tables.items():
        names, X = _table_matrix(key, scores)
        groups.setdefault(X.shape[1], []).append((key, names, X))
    found: dict[K, dict[str, tuple[float, float]]] = {}
    for group in groups.values():
        X = np.concatenate([x for _, _, x in group])
        cis = bootstrap_ci_many(X, confidence=confidence, resamples=resamples, seed=seed)
        row = 0
        for key, names, _x in group:
            found[key] = {k: (float(cis[row + q, 0]), float(cis[row + q, 1])) for q, k in enumerate(names)}
            row += len(names)
    return {key: found[key] for key in tables}


def _with(r: PairedTest, **changes: object) -> PairedTest:
    return replace(r, **changes)


# --------------------------------------------------------------------------------------------------
# pairing checks
# --------------------------------------------------------------------------------------------------


def assert_paired(ids_a: Sequence[str], ids_b: Sequence[str], *, where: str | None = None) -> None:
    """Raise :class:`UserError` unless ``ids_a`` and ``ids_b`` are the same ids in the same order.

    The message counts the positions whose ids differ (``#{i : ids_a[i] != ids_b[i]}`` plus the
    length difference) and says whether the two lists are the same multiset in another order.
    """
    la, lb = list(ids_a), list(ids_b)
    if la == lb:
        return
    common = min(len(la), len(lb))
    differ = sum(1 for x, y in zip(la, lb, strict=False) if x != y) + abs(len(la) - len(lb))
    first = next((i for i in range(common) if la[i] != lb[i]), common)
    ca, cb = Counter(la), Counter(lb)
    only_a, only_b = sum((ca - cb).values()), sum((cb - ca).values())
    if only_a == 0 and only_b == 0:
        detail = "same ids in a different order"
        fix = "reorder one side with bench.stats.align_by_ids before testing"
    else:
        detail = f"{only_a} ids only in the first list, {only_b} only in the second"
        fix = "score both systems on the same instances (same split, same filters)"
    shown = (
        f"first at position {first}: {la[first]!r} vs {lb[first]!r}"
        if first < common
        else f"first at position {first} (one list ends there)"
    )
    raise UserError(
        f"instance ids are not paired: {differ} of {max(len(la), len(lb))} ids differ "
        f"({len(la)} vs {len(lb)} ids; {detail}; {shown})",
        where=where,
        fix=fix,
    )


def align_by_ids(
    ids_a: Sequence[str], a: np.ndarray, ids_b: Sequence[str], b: np.ndarray, *, where: str | None = None
) -> np.ndarray:
    """Return ``b`` reordered so that ``result[i]`` belongs to instance ``ids_a[i]``.

    Raises :class:`UserError` when the two id sets differ, an id repeats, or an id list and its
    score vector have different lengths.
    """
    av, bv = np.asarray(a), np.asarray(b)
    if len(ids_a) != len(av) or len(ids_b) != len(bv):
        raise UserError(
            f"id list and scores have different lengths ({len(ids_a)} ids / {len(av)} scores, "
            f"{len(ids_b)} ids / {len(bv)} scores)",
            where=where,
        )
    pos = {k: i for i, k in enumerate(ids_b)}
    if len(pos) != len(ids_b) or len(set(ids_a)) != len(ids_a):
        raise UserError("instance ids repeat, so scores cannot be aligned by id", where=where)
    missing = [k for k in ids_a if k not in pos]
    if missing or len(ids_a) != len(ids_b):
        extra = len(set(ids_b) - set(ids_a))
        raise UserError(
            f"instance id sets differ: {len(missing)} ids only in the first list, {extra} only in the "
            f"second (e.g. {(missing or sorted(set(ids_b) - set(ids_a)))[0]!r})",
            where=where,
            fix="score both systems on the same instances (same split, same filters)",
        )
    return bv[np.fromiter((pos[k] for k in ids_a), dtype=np.intp, count=len(ids_a))]


# --------------------------------------------------------------------------------------------------
# multiple comparisons
# --------------------------------------------------------------------------------------------------


def _finite_sorted(pvalues: Iterable[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.asarray(list(pvalues) if not isinstance(pvalues, np.ndarray) else pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise UserError(f"p-values must be a 1-D vector, got shape {p.shape}")
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    return p, ok, order


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm step-down adjustment (controls the family-wise error rate).

    With the ``m`` non-NaN p-values sorted ``p_(1) <= ... <= p_(m)``:
    ``q_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``. Returned in input order; NaN stays NaN.
    """
    p, ok, order = _finite_sorted(pvalues)
    out = np.full(p.shape, np.nan)
    m = order.size
    if m:
        scaled = (m - np.arange(m)) * p[order]
        out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def benjamini_hochberg(pvalues: Iterable[float]) -> np.ndarray:
    """Benjamini-Hochberg step-up adjustment (controls the false discovery rate).

    With the ``m`` non-NaN p-values sorted ``p_(1) <= ... <= p_(m)``:
    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)``. Returned in input order; NaN stays NaN.
    """
    p, ok, order = _finite_sorted(pvalues)
    out = np.full(p.shape, np.nan)
    m = order.size
    if m:
        scaled = m * p[order] / np.arange(1, m + 1)
        out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out


def adjust(pvalues: Iterable[float], *, method: Correction = "holm") -> np.ndarray:
    """Adjust a family of p-values: ``"holm"`` (:func:`holm`), ``"bh"`` (:func:`benjamini_hochberg`)
    or ``"none"`` (``q_i = p_i``)."""
    if method == "holm":
        return holm(pvalues)
    if method == "bh":
        return benjamini_hochberg(pvalues)
    if method == "none":
        return np.array(list(pvalues) if not isinstance(pvalues, np.ndarray) else pvalues, dtype=np.float64)
    raise UserError(f"unknown p-value correction {method!r}", fix="use 'holm', 'bh' or 'none'")


# --------------------------------------------------------------------------------------------------
# ranks
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# claims
# --------------------------------------------------------------------------------------------------

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
