"""The masking rule: f reads the shown window, and the user's whole prior history is excluded.

RecExplainer sets every history item before the context item to -inf. With window-only masking,
items the user rated before the window could become f's "next item" (11 of 30 retrieval labels on
the old quick board). These tests build every task's instances on generated data and check that no
teacher item (retrieval label, ranking candidate, classification / explanation item) is an item of
the user's prior interactions, that ``f``'s inputs are still the window, and that the target card's
teacher view uses the same rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench import registry
from bench.data.dataset import leave_one_out
from bench.data.synthetic import make_tiny
from bench.recommenders.evaluation import evaluate_full_ranking, scores_with_exclusions, teacher_view
from bench.tasks.base import BuildInput, TaskSpec, check_unseen, teacher_scores


class PopTarget:
    """A deterministic target: item popularity plus a small bonus for items after the last one.

    With short windows and long histories, popular items the user rated *before* the window are
    exactly what window-only masking would return as f's top-1.
    """

    name = "pop"

    def __init__(self, split) -> None:  # type: ignore[no-untyped-def]
        self.n_items = split.dataset.n_items
        self.pop = split.item_popularity.astype(np.float32)

    def scores(self, histories, *, mask_history: bool = True) -> np.ndarray:  # type: ignore[no-untyped-def]
        out = np.tile(self.pop, (len(histories), 1))
        for r, h in enumerate(histories):
            if len(h):
                out[r, (int(h[-1]) + 1) % self.n_items] += 0.5
            if mask_history:
                out[r, list(h)] = -np.inf
        return out

    def user_embeddings(self, histories) -> np.ndarray:  # type: ignore[no-untyped-def]
        return np.zeros((len(histories), 2), dtype=np.float32)

    def item_embeddings(self) -> np.ndarray:
        return np.zeros((self.n_items, 2), dtype=np.float32)


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    split = leave_one_out(make_tiny(n_users=80, n_items=60, seed=3))
    return split, PopTarget(split)


MAIN = {
    "next_item_retrieval": "hr@1",
    "item_ranking": "kendall_tau",
    "interest_classification": "accuracy",
    "explanation_rubric": "rubric",
}


def _task(kind: str, **params):  # type: ignore[no-untyped-def]
    return registry.task_kinds.get(kind)(TaskSpec(kind, kind, 1, "", params, MAIN[kind]))


KINDS = {
    "next_item_retrieval": {"history_len": 3},
    "item_ranking": {"history_len": 3},
    "interest_classification": {"history_len": 3, "pairs_per_user": 3},
    "explanation_rubric": {"history_len": 3, "max_users": 20},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("part", ["align_train", "align_test"])
def test_no_teacher_item_is_a_prior_interaction(setup, kind: str, part: str) -> None:  # type: ignore[no-untyped-def]
    split, target = setup
    task = _task(kind, **KINDS[kind])
    inp = BuildInput(
        split=split,
        target=target,
        rows=np.arange(len(split.users)),
        part=part,
        rng=np.random.default_rng(0),
        contexts_per_user=3,
    )
    insts = task.build(inp)
    assert insts and check_unseen(task, split, insts) == 0
    rows = {int(u): r for r, u in enumerate(split.users)}
    for inst in insts:
        prior = split.train[rows[inst.user]][: inst.meta["prefix_len"]].tolist()
        assert tuple(prior[-3:]) == inst.history  # f reads (and the explainer sees) the window only
        items = list(inst.candidates) + (list(inst.label) if kind == "next_item_retrieval" else [])
        assert not set(items) & set(prior), (inst.key, items)


def test_window_only_masking_would_leak(setup) -> None:  # type: ignore[no-untyped-def]
    """The fixture is one where the old rule fails: the check is able to fail."""
    split, target = setup
    task = _task("next_item_retrieval", history_len=3)
    insts = task.build(
        BuildInput(
            split=split,
            target=target,
            rows=np.arange(len(split.users)),
            part="align_test",
            rng=np.random.default_rng(0),
        )
    )
    rows = {int(u): r for r, u in enumerate(split.users)}
    old = target.scores([list(i.history) for i in insts])  # window-only masking
    leaks = sum(
        int(np.argmax(row)) in set(split.train[rows[i.user]].tolist())
        for i, row in zip(insts, old, strict=True)
    )
    assert leaks > len(insts) // 4


def test_scores_with_exclusions_is_window_input_full_mask(setup) -> None:  # type: ignore[no-untyped-def]
    split, target = setup
    full = [split.train[r] for r in range(5)]
    window = [h[-2:] for h in full]
    got = scores_with_exclusions(target, window, full)
    want = target.scores(window, mask_history=False)
    for r, h in enumerate(full):
        want[r, h] = -np.inf
    np.testing.assert_array_equal(got, want)


def test_teacher_scores_match_the_card_rule(setup) -> None:  # type: ignore[no-untyped-def]
    split, target = setup
    task = _task("next_item_retrieval", history_len=4)
    inp = BuildInput(
        split=split, target=target, rows=np.arange(6), part="align_test", rng=np.random.default_rng(0)
    )
    ctxs = task.contexts(inp)
    got = teacher_scores(target, ctxs)
    want = scores_with_exclusions(target, [c.history for c in ctxs], [c.known for c in ctxs])
    np.testing.assert_array_equal(got, want)
    # the card's teacher view: same exclusions, the window as input; the full card reads everything
    view = teacher_view(target, split, window=4)
    histories = [np.append(h, v) for h, v in zip(split.train, split.valid, strict=True)]
    assert view == evaluate_full_ranking(target, histories, split.test, window=4, keep_target=False)
    assert set(view) == {"hr@10", "ndcg@10", "mrr@10"}
