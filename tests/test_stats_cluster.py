"""Tests for clustered instances (several per user) and bench.stats.table_statistics.

References are written here as plain loops: draw users with replacement, concatenate their instances,
recompute the mean / F1 / AUC.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from bench import stats
from bench.errors import UserError
from bench.metrics import f1_parts


def _users(n_users: int, per_user: int, seed: int) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(100, 100 + n_users), per_user)
    perm = rng.permutation(ids.size)  # instances of a user are not contiguous
    return ids[perm], rng


def _user_bootstrap(clusters: np.ndarray, stat, *, resamples: int, seed: int) -> np.ndarray:
    """Percentile 95 % CI of ``stat(instance indices)`` over users drawn with replacement (a loop)."""
    users = np.unique(clusters)
    members = [np.flatnonzero(clusters == u) for u in users]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(resamples):
        pick = rng.integers(0, users.size, users.size)
        vals.append(stat(np.concatenate([members[p] for p in pick])))
    return np.quantile(vals, [0.025, 0.975])


def _mw_auc(y: np.ndarray, s: np.ndarray) -> float:
    P, Q = int(y.sum()), int((1 - y).sum())
    if P == 0 or Q == 0:
        return 0.5  # the documented policy for a resample without one class
    return float((sps.rankdata(s)[y == 1].sum() - P * (P + 1) / 2.0) / (P * Q))


# --------------------------------------------------------------------------------------------------
# cluster_parts
# --------------------------------------------------------------------------------------------------


def test_cluster_parts_sums_per_sorted_cluster_id() -> None:
    clusters = np.array(["u2", "u1", "u2", "u3", "u1", "u2"])
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    num, den = stats.cluster_parts(x, None, clusters)
    assert num.tolist() == [7.0, 10.0, 4.0] and den.tolist() == [2.0, 3.0, 1.0]  # u1, u2, u3
    assert num.sum() / den.sum() == pytest.approx(x.mean())
    pn, pd = stats.cluster_parts(x, 2.0 * x, clusters)
    assert pn.tolist() == num.tolist() and pd.tolist() == (2.0 * num).tolist()
    both, dens = stats.cluster_parts(np.stack([x, -x]), None, clusters)
    assert both.shape == (2, 3) and both[1].tolist() == (-num).tolist() and dens.shape == (2, 3)
    mixed, _ = stats.cluster_parts(x, None, np.array([1, "a", 1, "b", "a", 1], dtype=object))
    assert mixed.tolist() == [10.0, 7.0, 4.0]  # unsortable ids: order of first appearance
    with pytest.raises(UserError, match="one id per instance"):
        stats.cluster_parts(x, None, clusters[:-1])


# --------------------------------------------------------------------------------------------------
# cluster CIs against a user-level bootstrap loop
# --------------------------------------------------------------------------------------------------


def test_cluster_ci_of_a_mean_matches_user_bootstrap_and_is_wider() -> None:
    clusters, rng = _users(150, 6, 0)
    user_effect = rng.normal(size=clusters.max() + 1)
    x = np.clip(0.5 + 0.2 * user_effect[clusters] + 0.1 * rng.normal(size=clusters.size), 0, 1)
    y = x + 0.02 * rng.normal(size=x.size)
    res = stats.table_statistics(kind="mean", values={"x": x, "y": y}, clusters=clusters, seed=3)
    flat = stats.table_statistics(kind="mean", values={"x": x, "y": y}, seed=3)
    assert res.unit == "user" and res.n_units == 150 and res.n == 900 and flat.unit == "instance"
    assert res.values["x"] == flat.values["x"] == pytest.approx(x.mean())
    lo, hi = res.cis["x"]
    ref = _user_bootstrap(clusters, lambda idx: x[idx].mean(), resamples=4000, seed=1)
    width = hi - lo
    assert lo == pytest.approx(ref[0], abs=0.04 * width)
    assert hi == pytest.approx(ref[1], abs=0.04 * width)
    flo, fhi = flat.cis["x"]
    assert width > 1.8 * (fhi - flo)  # ICC ~0.8, 6 per user: design effect ~sqrt(5)
    (t,) = res.tests
    assert t.test == "cluster_randomization" and t.n == 900 and (t.a, t.b) == ("x", "y")
    assert t.diff == pytest.approx(x.mean() - y.mean(), abs=1e-12)


def test_cluster_ci_of_f1_matches_user_bootstrap() -> None:
    clusters, rng = _users(120, 5, 1)
    labels = (rng.random(clusters.size) < 0.4).astype(int)
    skill = rng.random(clusters.max() + 1)  # per-user accuracy: errors cluster within users
    preds = np.where(rng.random(clusters.size) < 0.5 + 0.45 * skill[clusters], labels, 1 - labels)
    other = np.where(rng.random(clusters.size) < 0.8, labels, 1 - labels)
    parts = {"p": f1_parts(preds, labels), "q": f1_parts(other, labels)}
    res = stats.table_statistics(kind="ratio", parts=parts, clusters=clusters, seed=0)

    def f1(idx: np.ndarray) -> float:
        tp = np.sum((preds[idx] == 1) & (labels[idx] == 1))
        fp = np.sum((preds[idx] == 1) & (labels[idx] == 0))
        fn = np.sum((preds[idx] == 0) & (labels[idx] == 1))
        return 2 * tp / (2 * tp + fp + fn)

    assert res.values["p"] == pytest.approx(f1(np.arange(clusters.size)), abs=1e-12)
    ref = _user_bootstrap(clusters, f1, resamples=4000, seed=2)
    lo, hi = res.cis["p"]
    assert lo == pytest.approx(ref[0], abs=0.04 * (hi - lo))
    assert hi == pytest.approx(ref[1], abs=0.04 * (hi - lo))
    assert res.tests[0].test == "cluster_randomization" and res.tests[0].n == clusters.size


def test_cluster_ci_of_auc_matches_user_bootstrap_and_is_wider() -> None:
    clusters, rng = _users(100, 6, 2)
    users = clusters.max() + 1
    positive_rate = np.where(rng.random(users) < 0.5, 0.85, 0.15)  # users are mostly one class
    labels = (rng.random(clusters.size) < positive_rate[clusters]).astype(int)
    shift = rng.normal(size=users)  # user-level score shift, unrelated to the labels
    s = shift[clusters] + 0.6 * labels + 0.5 * rng.normal(size=clusters.size)
    res = stats.table_statistics(
        kind="auc", auc={"s": (s, labels), "t": (s + rng.normal(size=s.size), labels)}, clusters=clusters
    )
    flat = stats.table_statistics(kind="auc", auc={"s": (s, labels), "t": (s, labels)})
    assert res.unit == "user" and res.n_units == 100
    ref = _user_bootstrap(clusters, lambda idx: _mw_auc(labels[idx], s[idx]), resamples=3000, seed=4)
    lo, hi = res.cis["s"]
    assert lo == pytest.approx(ref[0], abs=0.05 * (hi - lo))
    assert hi == pytest.approx(ref[1], abs=0.05 * (hi - lo))
    flo, fhi = flat.cis["s"]
    assert hi - lo > 1.4 * (fhi - flo)
    assert res.tests[0].test == "auc_cluster_bootstrap" and res.tests[0].n == clusters.size


# --------------------------------------------------------------------------------------------------
# singleton clusters: exactly the instance level
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True])
def test_singleton_clusters_equal_the_instance_path(binary: bool) -> None:
    rng = np.random.default_rng(0)
    n = 300
    vals = {f"e{k}": rng.random(n) + 0.03 * k for k in range(4)}
    if binary:
        vals = {k: (v > 0.55).astype(float) for k, v in vals.items()}
    kw = {"resamples": 2_000, "seed": 5, "binary": binary}
    single = rng.permutation(n) * 7  # one id per instance, not in instance order
    a = stats.table_statistics(kind="mean", values=vals, clusters=single, **kw)
    b = stats.table_statistics(kind="mean", values=vals, **kw)
    assert a == b and a.unit == "instance" and a.n_units == n
    # ... which is exactly what the board computed before clusters existed
    names = sorted(vals)
    cis = stats.bootstrap_ci_many(np.stack([vals[k] for k in names]), resamples=2_000, seed=5)
    assert [b.cis[k] for k in names] == [tuple(r) for r in cis.tolist()]
    assert b.tests == stats.compare_all_pairs(vals, binary=binary, resamples=2_000, seed=5)
    labels = (rng.random(n) < 0.3).astype(int)
    parts = {k: f1_parts((v > 0.5).astype(int), labels) for k, v in vals.items()}
    r1 = stats.table_statistics(kind="ratio", parts=parts, clusters=single, **kw)
    r2 = stats.table_statistics(kind="ratio", parts=parts, **kw)
    assert r1 == r2 and r2.tests == stats.compare_all_pairs_ratio(parts, resamples=2_000, seed=5)
    auc = {k: (v, labels) for k, v in vals.items()}
    a1 = stats.table_statistics(kind="auc", auc=auc, clusters=single, **kw)
    assert a1 == stats.table_statistics(kind="auc", auc=auc, **kw) and a1.tests[0].test == "auc_bootstrap"


def test_cluster_machinery_with_singletons_reproduces_instance_numbers() -> None:
    """The per-cluster ratio route itself, fed singleton clusters, gives the instance-level numbers."""
    rng = np.random.default_rng(1)
    X = rng.random((3, 250))
    num, den = stats.cluster_parts(X, None, np.arange(250))
    np.testing.assert_allclose(
        stats.bootstrap_ci_ratio_many(num, den, resamples=3_000, seed=2),
        stats.bootstrap_ci_many(X, resamples=3_000, seed=2),
        rtol=0,
        atol=1e-12,
    )
    via_parts = stats.compare_all_pairs_ratio(
        {k: (num[k], den[k]) for k in range(3)}, resamples=3_000, seed=2
    )
    direct = stats.compare_all_pairs({k: X[k] for k in range(3)}, binary=False, resamples=3_000, seed=2)
    assert [t.p_value for t in via_parts] == [t.p_value for t in direct]


# --------------------------------------------------------------------------------------------------
# null simulations: the cluster test holds its level, the naive instance test does not
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True])
def test_cluster_test_holds_alpha_where_the_instance_test_over_rejects(binary: bool) -> None:
    rng = np.random.default_rng(7 + binary)
    sims, n_users, per = 200, 40, 6
    clusters = np.repeat(np.arange(n_users), per)
    p_cluster, p_naive = [], []
    for s in range(sims):
        # the two systems are exchangeable within a user, but each has its own per-user offset
        base = rng.normal(size=clusters.size)
        ga, gb = rng.normal(size=n_users), rng.normal(size=n_users)
        a = base + 1.5 * ga[clusters] + 0.5 * rng.normal(size=clusters.size)
        b = base + 1.5 * gb[clusters] + 0.5 * rng.normal(size=clusters.size)
        if binary:
            a, b = (a > 0).astype(float), (b > 0).astype(float)
        kw = {"kind": "mean", "values": {"a": a, "b": b}, "binary": binary, "resamples": 400, "seed": s}
        p_cluster.append(stats.table_statistics(clusters=clusters, **kw).tests[0].p_value)
        p_naive.append(stats.table_statistics(**kw).tests[0].p_value)
    p_cluster, p_naive = np.array(p_cluster), np.array(p_naive)
    rate = float(np.mean(p_cluster <= 0.05))
    assert 0.015 <= rate <= 0.10  # alpha = 0.05, 200 simulations: SE 0.015
    assert 0.4 < float(np.mean(p_cluster)) < 0.6  # roughly uniform
    assert float(np.mean(p_naive <= 0.05)) > 0.25  # McNemar / sign-flip over instances: far too many


# --------------------------------------------------------------------------------------------------
# identical pairs, methods, errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clustered", [False, True])
def test_identical_pairs_get_p_one_and_leave_the_holm_family(clustered: bool) -> None:
    clusters, rng = _users(60, 5, 3)
    base = rng.random(clusters.size)
    vals = {
        "a": base,
        "b": base.copy(),  # same answers as a
        "c": np.clip(base + 0.05 + 0.1 * rng.normal(size=base.size), 0, 1),
        "d": np.clip(base - 0.02 + 0.1 * rng.normal(size=base.size), 0, 1),
    }
    kw = {"kind": "mean", "values": vals, "resamples": 2_000, "seed": 0}
    if clustered:
        kw["clusters"] = clusters
    full = stats.table_statistics(**kw)
    res = stats.table_statistics(identical=[("b", "a"), ("x", "y")], **kw)  # unknown names: ignored
    (ab,) = [t for t in res.tests if (t.a, t.b) == ("a", "b")]
    assert ab.test == "identical_predictions" and ab.diff == 0.0 and ab.p_value == ab.p_adjusted == 1.0
    assert ab.n == base.size and ab.to_json()["p_value"] == 1.0
    others = [t for t in res.tests if (t.a, t.b) != ("a", "b")]
    before = [t for t in full.tests if (t.a, t.b) != ("a", "b")]
    assert [t.p_value for t in others] == [t.p_value for t in before]
    assert [t.p_adjusted for t in others] == list(stats.holm([t.p_value for t in before]))
    assert res.cis == full.cis
    none = stats.table_statistics(identical=[("x", "y")], **kw)
    assert none == full


def test_cluster_bootstrap_method_and_binary_cluster_tests() -> None:
    clusters, rng = _users(80, 4, 4)
    a = (rng.random(clusters.size) < 0.7).astype(float)
    b = (rng.random(clusters.size) < 0.5).astype(float)
    kw = {"kind": "mean", "values": {"a": a, "b": b}, "clusters": clusters, "resamples": 3_000, "seed": 1}
    auto = stats.table_statistics(binary=True, **kw).tests[0]
    assert auto.test == "cluster_randomization" and auto.ci_low is None  # no McNemar on clusters
    boot = stats.table_statistics(method="bootstrap", **kw).tests[0]
    assert boot.test == "cluster_bootstrap" and boot.n == clusters.size
    assert boot.ci_low < boot.diff < boot.ci_high and boot.p_adjusted == boot.p_value
    assert boot.diff == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    assert boot.p_value < 0.01 and auto.p_value < 0.01


def test_table_statistics_input_errors() -> None:
    x = np.ones(5)
    with pytest.raises(UserError, match="unknown statistics kind"):
        stats.table_statistics(kind="median", values={"a": x})  # type: ignore[arg-type]
    with pytest.raises(UserError, match="needs values="):
        stats.table_statistics(kind="mean")
    with pytest.raises(UserError, match="needs parts="):
        stats.table_statistics(kind="ratio", values={"a": x})
    with pytest.raises(UserError, match="numbers of instances"):
        stats.table_statistics(kind="mean", values={"a": x, "b": np.ones(4)})
    with pytest.raises(UserError, match="unknown paired test"):
        stats.table_statistics(kind="mean", values={"a": x}, method="t-test")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="identical pairs"):
        stats.table_statistics(kind="mean", values={"a": x, "b": x}, identical=[("a",)])  # type: ignore[list-item]
