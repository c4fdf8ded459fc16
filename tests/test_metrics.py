"""Tests for bench.metrics against independent references (sklearn, scipy, brute force)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import kendalltau
from sklearn.metrics import f1_score, ndcg_score, roc_auc_score

from bench import metrics as M

# ---------------------------------------------------------------------------------------------
# brute-force references
# ---------------------------------------------------------------------------------------------


def _first_occurrences(ranked):
    """Reference dedupe written independently: keep first copy of each id, keep every -1."""
    out = []
    for i, x in enumerate(ranked):
        if x == -1 or x not in ranked[:i]:
            out.append(x)
    return out


def _hit_ref(ranked, rel, k):
    top = _first_occurrences(ranked)[:k]
    return float(any(x != -1 and x in rel for x in top))


def _mrr_ref(ranked, rel, k):
    top = _first_occurrences(ranked)[:k]
    for i, x in enumerate(top):
        if x != -1 and x in rel:
            return 1.0 / (i + 1)
    return 0.0


def _sklearn_ndcg(ranked, relevant, k):
    """ndcg via sklearn: ranked is a permutation of the whole catalog, scores strictly decreasing."""
    n = len(ranked)
    y_true = np.zeros((1, n))
    y_score = np.zeros((1, n))
    for p, item in enumerate(ranked):
        y_score[0, item] = n - p  # no ties
        y_true[0, item] = 1.0 if item in relevant else 0.0
    return ndcg_score(y_true, y_score, k=k)


# ---------------------------------------------------------------------------------------------
# hit / mrr / ndcg
# ---------------------------------------------------------------------------------------------


def test_hit_mrr_brute_force_random():
    rng = np.random.default_rng(0)
    for _ in range(300):
        length = int(rng.integers(0, 12))
        # small id range so duplicates happen often; -1 sprinkled in as hallucinations
        ranked = [int(x) for x in rng.integers(-1, 8, size=length)]
        rel = {int(x) for x in rng.choice(8, size=int(rng.integers(0, 4)), replace=False)}
        k = int(rng.integers(1, 15))
        assert M.hit_at_k(ranked, rel, k=k) == _hit_ref(ranked, rel, k)
        assert M.mrr_at_k(ranked, rel, k=k) == pytest.approx(_mrr_ref(ranked, rel, k))


def test_hit_mrr_hand_cases():
    # duplicates do not use up a slot: dedupe -> [5, 7], so 7 is at position 2
    assert M.hit_at_k([5, 5, 7], 7, k=2) == 1.0
    assert M.mrr_at_k([5, 5, 7], 7, k=2) == 0.5
    # each -1 keeps its slot
    assert M.hit_at_k([-1, -1, 7], 7, k=2) == 0.0
    assert M.mrr_at_k([-1, -1, 7], 7, k=3) == pytest.approx(1 / 3)
    # -1 never matches, even a -1 in the relevant set
    assert M.hit_at_k([-1], -1, k=1) == 0.0
    assert M.mrr_at_k([-1], {-1}, k=1) == 0.0
    # empty cases
    assert M.hit_at_k([], 3, k=5) == 0.0
    assert M.hit_at_k([1, 2], set(), k=5) == 0.0
    assert M.mrr_at_k([], {3}, k=5) == 0.0
    # k larger than list
    assert M.hit_at_k([1, 2, 3], 3, k=100) == 1.0
    assert M.mrr_at_k([1, 2, 3], [3], k=100) == pytest.approx(1 / 3)
    # numpy ints accepted as a single relevant id
    assert M.hit_at_k(np.array([4, 2]), np.int64(2), k=2) == 1.0
    with pytest.raises(ValueError):
        M.hit_at_k([1], 1, k=0)


@pytest.mark.parametrize("n_rel", [1, 2, 4])
@pytest.mark.parametrize("k", [1, 3, 5, 10, 20])
def test_ndcg_vs_sklearn(n_rel, k):
    rng = np.random.default_rng(100 * n_rel + k)
    n = 15
    for _ in range(20):
        ranked = [int(x) for x in rng.permutation(n)]
        relevant = {int(x) for x in rng.choice(n, size=n_rel, replace=False)}
        expected = _sklearn_ndcg(ranked, relevant, k)
        assert M.ndcg_at_k(ranked, relevant, k=k) == pytest.approx(expected, abs=1e-12)
        if n_rel == 1:
            (only,) = relevant
            assert M.ndcg_at_k(ranked, only, k=k) == pytest.approx(expected, abs=1e-12)


def test_ndcg_hand_cases():
    # one relevant at position 2: 1/log2(3)
    assert M.ndcg_at_k([9, 4, 1], 4, k=3) == pytest.approx(1 / math.log2(3))
    # IDCG over min(|R|, k): 3 relevant but k=1, hit at 1 -> perfect
    assert M.ndcg_at_k([1, 2, 3], {1, 7, 8}, k=1) == 1.0
    # duplicates removed before cut; -1 keeps its slot
    assert M.ndcg_at_k([3, 3, 4], {4}, k=2) == pytest.approx(1 / math.log2(3))
    assert M.ndcg_at_k([-1, 4], {4}, k=2) == pytest.approx(1 / math.log2(3))
    # repeated relevant item earns gain only once
    assert M.ndcg_at_k([4, 4], {4, 5}, k=2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # empty relevant set -> 0, empty ranking -> 0, k > len
    assert M.ndcg_at_k([1, 2], set(), k=2) == 0.0
    assert M.ndcg_at_k([], {1}, k=2) == 0.0
    assert M.ndcg_at_k([2, 1], {1}, k=50) == pytest.approx(1 / math.log2(3))


# ---------------------------------------------------------------------------------------------
# graded ndcg
# ---------------------------------------------------------------------------------------------


def _graded_ref(pred, true, gains):
    g = {item: gains[j] for j, item in enumerate(true)}
    dcg = sum(g.get(x, 0.0) / math.log2(p + 2) for p, x in enumerate(pred))
    idcg = sum(gains[j] / math.log2(j + 2) for j in range(len(true)))
    return dcg / idcg


def test_recexplainer_random_permutation_expectation():
    gains = (1000, 100, 10, 1, 0)
    true = [11, 22, 33, 44, 55]
    perms = list(itertools.permutations(true))
    assert len(perms) == 120
    # exact expectation by brute force, independent of the function under test
    expected = sum(_graded_ref(list(p), true, gains) for p in perms) / len(perms)
    assert 0.60 <= expected <= 0.62
    got_named = np.mean([M.graded_ndcg(list(p), true, gains="recexplainer") for p in perms])
    got_seq = np.mean([M.graded_ndcg(list(p), true, gains=gains) for p in perms])
    assert got_named == pytest.approx(expected, abs=1e-12)
    assert got_seq == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("gains", ["linear", "recexplainer"])
def test_graded_identity_and_reverse(gains):
    true = [3, 1, 4, 0, 2]
    assert M.graded_ndcg(true, true, gains=gains) == pytest.approx(1.0)
    scores = [M.graded_ndcg(list(p), true, gains=gains) for p in itertools.permutations(true)]
    assert max(scores) == pytest.approx(1.0)
    # reverse is the worst ordering (rearrangement inequality) and far below a random guess
    rev = M.graded_ndcg(true[::-1], true, gains=gains)
    assert rev == pytest.approx(min(scores))
    assert rev < np.mean(scores)
    assert rev < 0.75


@pytest.mark.parametrize("k", [None, 1, 3, 7])
def test_graded_linear_vs_sklearn(k):
    rng = np.random.default_rng(7 if k is None else k)
    n = 7
    for _ in range(30):
        true = [int(x) for x in rng.permutation(n)]
        pred = [int(x) for x in rng.permutation(n)]
        y_true = np.zeros((1, n))
        y_score = np.zeros((1, n))
        for j, item in enumerate(true):
            y_true[0, item] = n - j
        for p, item in enumerate(pred):
            y_score[0, item] = n - p
        expected = ndcg_score(y_true, y_score, k=k)
        assert M.graded_ndcg(pred, true, k=k, gains="linear") == pytest.approx(expected, abs=1e-12)


def test_graded_policies():
    true = [10, 20, 30]
    idcg = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    # -1 and foreign items get gain 0 but keep their slot
    shifted = 3 / math.log2(3) + 2 / math.log2(4) + 1 / math.log2(5)
    assert M.graded_ndcg([-1, 10, 20, 30], true) == pytest.approx(shifted / idcg)
    assert M.graded_ndcg([999, 10, 20, 30], true) == pytest.approx(shifted / idcg)
    # shorter prediction: missing positions contribute 0
    assert M.graded_ndcg([10], true) == pytest.approx(3 / idcg)
    # duplicates only count once
    assert M.graded_ndcg([10, 10, 20, 30], true) == pytest.approx(1.0)
    # k cuts both DCG and IDCG
    assert M.graded_ndcg([10, 30, 20], true, k=1) == pytest.approx(1.0)
    assert M.graded_ndcg([20, 10, 30], true, k=1) == pytest.approx(2 / 3)
    # empty / degenerate
    assert M.graded_ndcg([], true) == 0.0
    assert M.graded_ndcg([1], []) == 0.0
    # recexplainer table shorter than n: positions beyond get 0
    many = list(range(7))
    assert M.graded_ndcg(many, many, gains="recexplainer") == pytest.approx(1.0)
    assert M.graded_ndcg([5, 6], many, gains="recexplainer") == 0.0
    with pytest.raises(ValueError):
        M.graded_ndcg([1], [1], gains="nope")
    with pytest.raises(ValueError):
        M.graded_ndcg([1], [1, 1])
    with pytest.raises(ValueError):
        M.graded_ndcg([-1], [-1, 1])
    with pytest.raises(ValueError):
        M.kendall_tau([1], [1, 1])


# ---------------------------------------------------------------------------------------------
# kendall tau
# ---------------------------------------------------------------------------------------------


def _tau_ref(pred, true):
    pos = {x: p for p, x in enumerate(pred)}
    x = list(range(len(true)))
    y = [pos.get(item, len(pred)) for item in true]
    return kendalltau(x, y, variant="b").statistic


def test_kendall_vs_scipy_permutations():
    rng = np.random.default_rng(1)
    for n in (2, 3, 5, 10):
        for _ in range(30):
            true = [int(x) for x in rng.permutation(n) + 100]
            pred = [int(x) for x in rng.permutation(true)]
            assert M.kendall_tau(pred, true) == pytest.approx(_tau_ref(pred, true), abs=1e-12)


def test_kendall_vs_scipy_missing_items():
    rng = np.random.default_rng(2)
    for _ in range(200):
        n = int(rng.integers(3, 9))
        true = [int(x) for x in rng.permutation(n)]
        keep = int(rng.integers(1, n))  # at least one missing, at least one present
        pred = [int(x) for x in rng.permutation(true)[:keep]]
        expected = _tau_ref(pred, true)
        got = M.kendall_tau(pred, true)
        assert -1.0 <= got <= 1.0
        assert got == pytest.approx(expected, abs=1e-12)
        # -1 and foreign items in the prediction are ignored (relative order unchanged)
        noisy = [-1, *pred[:1], 999, *pred[1:]]
        assert M.kendall_tau(noisy, true) == pytest.approx(expected, abs=1e-12)


def test_kendall_policies():
    assert M.kendall_tau([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert M.kendall_tau([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)
    assert M.kendall_tau([1], [1]) == 0.0  # single candidate
    assert M.kendall_tau([], []) == 0.0
    assert M.kendall_tau([], [1, 2, 3]) == 0.0  # all tied (nothing recovered)
    assert M.kendall_tau([-1, 7], [1, 2, 3]) == 0.0
    # duplicates: first occurrence defines the position
    assert M.kendall_tau([1, 1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------


def test_accuracy():
    assert M.accuracy(1, 1) == 1.0
    assert M.accuracy(0, 1) == 0.0
    assert M.accuracy(-1, 0) == 0.0


def test_f1_vs_sklearn():
    rng = np.random.default_rng(3)
    for _ in range(60):
        n = int(rng.integers(1, 40))
        labels = rng.integers(0, 2, size=n)
        preds = rng.integers(0, 2, size=n)
        expected = f1_score(labels, preds, zero_division=0.0)
        c = M.f1_contributions(preds, labels)
        assert c.shape == (n,)
        assert c.mean() == pytest.approx(expected, abs=1e-12)
        assert M.f1(preds, labels) == pytest.approx(expected, abs=1e-12)


def test_f1_policies():
    # no positives anywhere -> 0
    assert M.f1([0, 0], [0, 0]) == 0.0
    assert np.array_equal(M.f1_contributions([0, 0], [0, 0]), np.zeros(2))
    assert M.f1([], []) == 0.0
    assert M.f1_contributions([], []).shape == (0,)
    # unparseable prediction (-1) counts as negative
    assert M.f1([-1, 1], [1, 1]) == pytest.approx(f1_score([1, 1], [0, 1]))
    with pytest.raises(ValueError):
        M.f1([1], [2])
    with pytest.raises(ValueError):
        M.f1([1, 0], [1])


def _auc_brute(scores, labels):
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    tot = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return tot / (len(pos) * len(neg))


def test_auc_vs_sklearn():
    rng = np.random.default_rng(4)
    for trial in range(60):
        n = int(rng.integers(2, 60))
        p_pos = [0.5, 0.1, 0.9][trial % 3]  # balanced and unbalanced
        labels = (rng.random(n) < p_pos).astype(int)
        labels[0], labels[1] = 0, 1  # both classes present
        # coarse scores half the time so ties are common
        scores = rng.integers(0, 4, size=n).astype(float) if trial % 2 else rng.random(n)
        expected = roc_auc_score(labels, scores)
        c = M.auc_contributions(scores, labels)
        assert abs(c.mean() - expected) < 1e-12
        assert M.auc(scores, labels) == pytest.approx(expected, abs=1e-12)
        # class means are each the AUC too
        assert c[labels == 1].mean() == pytest.approx(expected, abs=1e-12)
        assert c[labels == 0].mean() == pytest.approx(expected, abs=1e-12)
        assert np.all((c >= 0) & (c <= 1))


def test_auc_placements_brute_force():
    scores = [0.1, 0.4, 0.4, 0.8, 0.4, 0.2]
    labels = [0, 1, 0, 1, 1, 0]
    c = M.auc_contributions(scores, labels)
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    for s, y, ci in zip(scores, labels, c, strict=True):
        if y:
            ref = sum((s > q) + 0.5 * (s == q) for q in neg) / len(neg)
        else:
            ref = sum((p > s) + 0.5 * (p == s) for p in pos) / len(pos)
        assert ci == pytest.approx(ref, abs=1e-12)
    assert M.auc(scores, labels) == pytest.approx(_auc_brute(scores, labels))


def test_auc_policies():
    assert np.isnan(M.auc_contributions([0.1, 0.2], [1, 1])).all()
    assert np.isnan(M.auc([0.1, 0.2], [0, 0]))
    assert np.isnan(M.auc([], []))
    assert M.auc([0.3, 0.3], [0, 1]) == 0.5
    with pytest.raises(ValueError):
        M.auc([float("nan"), 0.1], [0, 1])
    with pytest.raises(ValueError):
        M.auc([0.1, 0.2], [0, 2])


# ---------------------------------------------------------------------------------------------
# history reconstruction
# ---------------------------------------------------------------------------------------------


def test_history_coverage():
    assert M.history_coverage([1, 2, 9], [1, 2, 3, 4]) == 0.5
    assert M.history_coverage([1, 1, 1], [1, 2]) == 0.5  # duplicates do not inflate coverage
    assert M.history_coverage([1, 2], [1, 1, 2]) == 1.0  # history counted as a set
    assert M.history_coverage([-1, -1], [1, 2]) == 0.0
    assert M.history_coverage([], [1]) == 0.0
    assert M.history_coverage([1], []) == 0.0


def test_history_precision():
    assert M.history_precision([1, 2, 9, 8], [1, 2, 3]) == 0.5
    assert M.history_precision([1, 1, 2], [1, 2]) == 1.0  # duplicates removed
    # each -1 is its own miss: distinct entries are {1, -1, -1}
    assert M.history_precision([1, -1, -1], [1, 2]) == pytest.approx(1 / 3)
    assert M.history_precision([], [1]) == 0.0
    assert M.history_precision([1], []) == 0.0


def test_hallucination_rate():
    assert M.hallucination_rate([1, -1, 2, -1]) == 0.5
    assert M.hallucination_rate([1, 1]) == 0.0
    assert M.hallucination_rate([-1]) == 1.0
    assert M.hallucination_rate([]) == 0.0


# ---------------------------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------------------------


def test_metric_info():
    families = {
        "hr",
        "ndcg",
        "mrr",
        "graded_ndcg",
        "kendall_tau",
        "accuracy",
        "f1",
        "auc",
        "hcr",
        "history_precision",
        "hallucination_rate",
    }
    assert set(M.METRIC_INFO) == families
    for info in M.METRIC_INFO.values():
        assert set(info) == {"higher_is_better", "binary", "description"}
        assert isinstance(info["description"], str) and info["description"]
    assert M.METRIC_INFO["hallucination_rate"]["higher_is_better"] is False
    assert {f for f, i in M.METRIC_INFO.items() if i["binary"]} == {"hr", "accuracy"}


def test_f1_parts_ratio_equals_f1() -> None:
    from bench.metrics import f1, f1_parts

    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.integers(0, 2, size=30)
        y = rng.integers(0, 2, size=30)
        num, den = f1_parts(p, y)
        expected = f1_score(y, p, zero_division=0.0)
        got = num.sum() / den.sum() if den.sum() else 0.0
        assert got == pytest.approx(expected, abs=1e-12)
        assert f1(p, y) == pytest.approx(expected, abs=1e-12)
