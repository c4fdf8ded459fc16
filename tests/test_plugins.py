"""Plugins: a new explainer and a new task kind, each one file, need no edit anywhere else.

* ``plugins/always_first.py`` — an explainer that answers ranking only; every other task is n/a.
* ``plugins/genre_count.py`` — a task kind with its own answer type (``Count``); every built-in
  explainer is n/a for it, and a plugin explainer that implements ``count`` answers it.

The end-to-end versions (through ``recxbench run --plugin``) live with the CLI tests.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from plugins.always_first import AlwaysFirst
from plugins.genre_count import Count, GenreCounter

from bench import registry
from bench.access import blind
from bench.answers import Permutation, YesNo
from bench.data.dataset import leave_one_out
from bench.data.synthetic import make_tiny
from bench.explainers.base import Explainer
from bench.tasks.base import BuildInput, Task, TaskSpec
from bench.types import Instance

MAIN = {
    "next_item_retrieval": "hr@5",
    "item_ranking": "ndcg@5",
    "interest_classification": "accuracy",
    "history_reconstruction": "hcr",
    "explanation_rubric": "rubric",
    "genre_count": "exact",
}


def _task(kind: str) -> Task:
    return registry.task_kinds.get(kind)(TaskSpec(kind, kind, 1, "", {}, main_metric=MAIN[kind]))


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task]:
    return {kind: _task(kind) for kind in MAIN}


def _builtin_explainers() -> list[Explainer]:
    names = [
        n for n in registry.explainers.names() if registry.explainers.get(n).__module__.startswith("bench.")
    ]
    assert {"random", "target-oracle", "surrogate-tree", "recexplainer-h"} <= set(names)
    return [registry.explainers.get(n)() for n in names]


# -- a new explainer --------------------------------------------------------------------------------


def test_always_first_is_registered_and_answers_ranking_only(tasks) -> None:
    assert registry.explainers.get("always-first") is AlwaysFirst
    expl = AlwaysFirst()
    assert {k for k, t in tasks.items() if expl.supports(t)} == {"item_ranking"}
    insts = [Instance(f"i{j}", "item_ranking", -1, (1, 2), None, candidates=(7, 3, j + 10)) for j in range(3)]
    preds = expl.answer(tasks["item_ranking"], insts)
    assert [p.instance_id for p in preds] == ["i0", "i1", "i2"]
    assert [p.output for p in preds] == [[7, 3, 10], [7, 3, 11], [7, 3, 12]]
    assert all(p.raw == "as shown" and p.parse_ok and p.score is None for p in preds)
    with pytest.raises(RuntimeError, match="always-first.*interest_classification"):
        expl.answer(tasks["interest_classification"], insts)


# -- a new task kind with a new answer type ---------------------------------------------------------


def test_no_builtin_explainer_answers_the_new_task_kind(tasks) -> None:
    for expl in _builtin_explainers():
        assert not expl.supports(tasks["genre_count"]), expl.name
        # ... while every one of them still answers something it did before
        assert any(expl.supports(t) for k, t in tasks.items() if k != "genre_count"), expl.name


def test_a_method_of_the_same_name_is_not_enough() -> None:
    """An answer method the base class does not know is claimed explicitly (``supports``), so an
    unrelated helper that happens to share its name never answers a new task by accident."""

    class HasCount(AlwaysFirst):
        def count(self, task, instances):  # an unrelated helper
            raise AssertionError("never called")

    assert not HasCount().supports(_task("genre_count"))


def test_a_plugin_explainer_answers_the_new_task_through_answer(tasks) -> None:
    ds = make_tiny(n_users=40, n_items=30)
    split = leave_one_out(ds)
    task = tasks["genre_count"]
    inp = BuildInput(
        split=split,
        target=None,
        rows=np.arange(len(split.users)),
        part="align_test",
        rng=np.random.default_rng(0),
    )  # type: ignore[arg-type]
    insts = task.build(inp)
    assert len(insts) > 20 and {i.label for i in insts} != {insts[0].label}  # varied counts
    shown = [blind(i, task, "behavior") for i in insts]
    assert all(s.meta == {"genre": i.meta["genre"]} and s.label is None for s, i in zip(shown, insts))

    expl = GenreCounter()
    assert expl.supports(task) and not expl.supports(tasks["item_ranking"])
    expl.fit({}, SimpleNamespace(dataset=ds))  # type: ignore[arg-type]
    preds = expl.answer(task, shown)
    assert [p.output for p in preds] == [i.label for i in insts]
    scores = task.score(insts, preds)
    assert scores["exact"].mean() == 1.0 and scores["abs_error"].sum() == 0.0


# -- the one dispatch checks what comes back --------------------------------------------------------


class _Broken(Explainer):
    name = "broken"

    def fit(self, train, ctx) -> None:
        pass

    def rank(self, task, instances):
        return [YesNo(True) for _ in instances]  # the wrong answer type

    def classify(self, task, instances):
        return [YesNo(True)]  # one answer, whatever the number of instances


def test_answer_refuses_a_wrong_type_or_count(tasks) -> None:
    insts = [Instance(f"i{j}", "t", -1, (1,), None, candidates=(2, 3)) for j in range(2)]
    with pytest.raises(
        RuntimeError, match=r"'broken' answered task 'item_ranking' with YesNo, not Permutation"
    ):
        _Broken().answer(tasks["item_ranking"], insts)
    with pytest.raises(
        RuntimeError, match=r"'broken' returned 1 answers for 2 instances of task 'interest_classification'"
    ):
        _Broken().answer(tasks["interest_classification"], insts)


def test_answers_convert_to_the_prediction_records_of_before() -> None:
    """The typed answers give exactly the records the samples files held before them."""
    from bench.answers import ItemList, RankedItems, Text
    from bench.types import Prediction

    assert RankedItems(np.array([3, -1]), raw="a || b").to_prediction("x") == Prediction(
        "x", [3, -1], raw="a || b"
    )
    assert Permutation((2, 1), raw="r", parse_ok=False).to_prediction("x") == Prediction(
        "x", [2, 1], "r", False
    )
    assert YesNo(np.bool_(True), score=0.25).to_prediction("x") == Prediction("x", 1, score=0.25)
    assert ItemList([]).to_prediction("x") == Prediction("x", [], parse_ok=True)
    assert Text("Yes: because").to_prediction("x") == Prediction("x", "Yes: because", raw="Yes: because")
    assert Count(4).to_prediction("x") == Prediction("x", 4)
