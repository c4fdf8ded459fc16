"""The runner and its stages, unit by unit, on a small generated dataset with a popularity target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.config import load_suite
from bench.errors import UserError
from bench.runner import instantiate_explainers, instantiate_tasks
from bench.stages import split_users, stage_data, stage_explainers, stage_instances, stage_target
from bench.state import PARTS, RunState

SUITE = """
suite: unit
seed: 3
dataset: {name: tiny, params: {n_users: 80, n_items: 40}}
target: {name: popularity}
users: {align_train: 0.5, align_valid: 0.2, align_test: 0.3}
tasks: [item_ranking, interest_classification]
explainers: [random, popularity]
stats: {resamples: 200}
"""


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "unit.yaml"
    path.write_text(SUITE, encoding="utf-8")
    return path


def _state(suite_file: Path, out: Path, *overrides: str) -> RunState:
    suite = load_suite(str(suite_file), overrides=list(overrides))
    state = RunState(suite=suite, out=out, device="cpu")
    state.tasks = instantiate_tasks(suite)
    return state


def _through_instances(state: RunState) -> RunState:
    stage_data(state)
    stage_target(state)
    stage_instances(state)
    return state


def test_user_parts_are_disjoint_seeded_and_capped(suite_file: Path, tmp_path: Path) -> None:
    state = _state(suite_file, tmp_path / "a")
    stage_data(state)
    parts = split_users(state)
    n = len(state.split.users)
    sizes = {p: len(parts[p]) for p in PARTS}
    assert sizes == {
        "align_train": round(n * 0.5),
        "align_valid": round(n * 0.2),
        "align_test": round(n * 0.3),
    }
    rows = np.concatenate([parts[p] for p in PARTS])
    assert len(set(rows.tolist())) == len(rows)  # disjoint
    again = split_users(state)
    assert all(np.array_equal(parts[p], again[p]) for p in PARTS)  # same seed, same split
    other = _state(suite_file, tmp_path / "b", "seed=4")
    stage_data(other)
    assert not np.array_equal(split_users(other)["align_test"], parts["align_test"])
    capped = _state(suite_file, tmp_path / "c", "users.max_test=5")
    stage_data(capped)
    capped_parts = split_users(capped)
    assert len(capped_parts["align_test"]) == 5
    assert set(capped_parts["align_test"].tolist()) <= set(parts["align_test"].tolist())


def test_stages_cache_and_say_so(suite_file: Path, tmp_path: Path) -> None:
    first = _through_instances(_state(suite_file, tmp_path))
    assert set(first.cache_events.values()) == {"built"}
    assert {k for k in first.cache_events} == {"target"} | {
        f"instances:{t}/{p}" for t in first.tasks for p in PARTS
    }
    second = _through_instances(_state(suite_file, tmp_path))
    assert second.cache_events == {k: "reused" for k in first.cache_events}
    for t in first.tasks:
        for p in PARTS:
            assert [i.to_json() for i in first.instances[t][p]] == [
                i.to_json() for i in second.instances[t][p]
            ]
    # a different seed is a different key: built again, not reused
    third = _through_instances(_state(suite_file, tmp_path, "seed=4"))
    assert third.cache_events["target"] == "built"


def test_explainer_stage_answers_what_each_explainer_supports(suite_file: Path, tmp_path: Path) -> None:
    state = _through_instances(_state(suite_file, tmp_path))
    explainers = instantiate_explainers(state.suite)
    stage_explainers(state, explainers, progress=False)
    for label in ("random", "popularity"):
        assert set(state.predictions[label]) == set(state.tasks)
        for t, preds in state.predictions[label].items():
            assert [p.instance_id for p in preds] == [i.instance_id for i in state.instances[t]["align_test"]]
        assert state.cache_events[f"explainer:{label}"] == "built"
    again = _state(suite_file, tmp_path)
    _through_instances(again)
    stage_explainers(again, instantiate_explainers(again.suite), progress=False)
    assert again.cache_events["explainer:random"] == "reused"
    assert again.predictions["random"] == state.predictions["random"]


def test_a_task_listed_twice_is_a_user_error(suite_file: Path) -> None:
    suite = load_suite(str(suite_file), overrides=["tasks=[item_ranking, item_ranking]"])
    with pytest.raises(UserError, match="listed twice"):
        instantiate_tasks(suite)


def test_bad_explainer_parameters_are_a_user_error(suite_file: Path) -> None:
    suite = load_suite(str(suite_file), overrides=["explainers=[{name: random, params: {nope: 1}}]"])
    with pytest.raises(UserError, match="bad parameters for explainer 'random'"):
        instantiate_explainers(suite)


def test_the_suite_backbone_goes_only_to_llm_explainers(suite_file: Path) -> None:
    suite = load_suite(
        str(suite_file), overrides=["backbone=tiny-random", "explainers=[random, zero-shot-llm]"]
    )
    out = instantiate_explainers(suite)
    assert "backbone" not in out["random"].params
    assert out["zero-shot-llm"].params["backbone"] == "tiny-random"
