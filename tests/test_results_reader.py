"""Unit tests of bench.results: the typed reader of results.json and the one comparability rule."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest

from bench.errors import UserError
from bench.results import MetricSpec, Run, check_comparable, load_results

SNAPSHOT = Path(__file__).parent / "snapshots" / "tiny-fast.results.json"


def results(**over: Any) -> dict[str, Any]:
    """A small, complete results.json dict: two tasks, two explainers."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "suite": "mini",
        "seed": 3,
        "alpha": 0.05,
        "correction": "holm",
        "dataset": {"name": "toy", "sha256": "d" * 64},
        "tasks": {
            "ranking": {
                "config_sha256": "a" * 64,
                "kind": "item_ranking",
                "main_metric": "ndcg@5",
                "n_instances": 4,
                "metrics": [
                    {"name": "ndcg@5", "higher_is_better": True, "binary": False},
                    {"name": "hallucination_rate", "higher_is_better": False},
                ],
            },
            "classify": {
                "config_sha256": "b" * 64,
                "metrics": [
                    {"name": "accuracy", "binary": True},
                    {"name": "f1", "ratio": True},
                    {"name": "auc", "auc": True},
                ],
            },
        },
        "results": [
            {"explainer": "x", "task": "ranking", "metric": "ndcg@5", "value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 4, "group": 1},
            {"explainer": "y", "task": "ranking", "metric": "ndcg@5", "value": float("nan"), "n": 4},
        ],
        "comparisons": [
            {"task": "ranking", "metric": "ndcg@5", "a": "x", "b": "y", "diff": 0.1, "test": "paired_randomization",
             "p_value": 0.2, "p_adjusted": 0.4, "significant": False},
        ],
        "claims": [{"claim": "x > y on ranking/ndcg@5", "verdict": "inconclusive", "p_adjusted": 0.4, "diff": 0.1}],
        "tolerances": {"ranking/ndcg@5": 0.02},
        "protocol": {"resampling_unit": {"ranking": "instance", "classify": "user"}},
    }  # fmt: skip
    data.update(over)
    return data


# ----------------------------------------------------------------------------------- reading


def test_reads_typed_fields() -> None:
    run = load_results(results())
    assert run.suite == "mini" and run.seed == 3 and run.alpha == 0.05 and run.correction == "holm"
    assert run.dataset.name == "toy" and run.dataset.sha256 == "d" * 64
    assert list(run.tasks) == ["ranking", "classify"]
    ranking = run.tasks["ranking"]
    assert ranking.config_sha256 == "a" * 64 and ranking.kind == "item_ranking" and ranking.n_instances == 4
    assert ranking.metric("hallucination_rate") == MetricSpec("hallucination_rate", higher_is_better=False)
    assert ranking.metric("nope") is None
    assert run.metric("classify", "accuracy") == MetricSpec("accuracy", binary=True)
    assert run.metric("classify", "f1").ratio and not run.metric("classify", "f1").auc
    assert run.metric("classify", "auc").auc
    assert run.metric("missing", "auc") is None
    assert run.results[0].key == ("x", "ranking", "ndcg@5")
    first = run.results[0]
    assert (first.value, first.ci_low, first.ci_high, first.n, first.group) == (0.5, 0.4, 0.6, 4, 1)
    assert math.isnan(run.results[1].value) and run.results[1].ci_low is None and run.results[1].group is None
    assert run.comparisons[0].p_adjusted == 0.4 and run.comparisons[0].significant is False
    assert run.claims[0].verdict == "inconclusive" and run.claims[0].note == ""
    assert run.tolerances == {"ranking/ndcg@5": 0.02}
    assert run.resampling_unit == {"ranking": "instance", "classify": "user"}
    assert run.source == "results.json" and run.raw["suite"] == "mini"


def test_run_is_frozen() -> None:
    run = load_results(results())
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.suite = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.tasks["ranking"].config_sha256 = "0"  # type: ignore[misc]


def test_optional_blocks_default() -> None:
    data = results()
    for key in ("seed", "alpha", "correction", "dataset", "comparisons", "claims", "tolerances", "protocol"):
        del data[key]
    run = load_results(data)
    assert run.seed is None and run.alpha is None and run.dataset.sha256 is None
    assert run.comparisons == () and run.claims == () and run.tolerances == {} and run.resampling_unit == {}


def test_reads_a_file_and_a_run_directory(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(results()))
    by_dir, by_file = load_results(tmp_path), load_results(tmp_path / "results.json")
    assert by_dir == by_file
    assert by_file.source == str(tmp_path / "results.json")


def test_reads_the_committed_snapshot() -> None:
    run = load_results(SNAPSHOT)
    assert run.suite == "tiny" and len(run.tasks) == 5
    assert len(run.results) == 104 and len(run.comparisons) == 174 and len(run.claims) == 2
    assert run.metric("interest_classification", "accuracy").binary
    assert run.resampling_unit["interest_classification"] == "user"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "results must be a JSON object"),
        ({"suite": "x", "tasks": {}, "results": []}, "not a recxbench results.json"),
        (results(schema_version=2), "unsupported schema_version 2 (expected 1)"),
        ({"schema_version": 1, "results": []}, "missing key 'tasks'"),
        ({"schema_version": 1, "tasks": {}}, "missing key 'results'"),
        (results(results=[{"explainer": "x", "value": 1.0}]), "results[0] lacks task, metric"),
        (results(results={"x": 1}), "results must be a list"),
        (results(tasks=["ranking"]), "tasks must be a JSON object"),
        (results(results=[{"explainer": "x", "task": "t", "metric": "m", "value": "high"}]), "results[0].value must be a number"),
        (results(tasks={"t": {"metrics": [{"higher_is_better": True}]}}), "tasks.t.metrics[0] must be an object with a name"),
    ],
)  # fmt: skip
def test_bad_results_are_one_line_user_errors(data: Any, message: str) -> None:
    with pytest.raises(UserError) as err:
        load_results(data, where="results[1]")
    assert message in str(err.value)
    assert str(err.value).startswith("results[1]: ")
    assert "\n" not in str(err.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no results.json"):
        load_results(tmp_path)
    with pytest.raises(UserError, match="no such file"):
        load_results(tmp_path / "nope.json")
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON") as err:
        load_results(tmp_path)
    assert str(tmp_path / "results.json") in str(err.value)


# ----------------------------------------------------------------------------------- comparability


def _pair(**change: Any) -> tuple[Run, Run]:
    other = copy.deepcopy(results())
    other.update(change)
    return load_results(results(), where="a.json"), load_results(other, where="b.json")


def test_same_runs_are_comparable_on_all_tasks() -> None:
    a, b = _pair(seed=9)
    assert check_comparable([a, b]) == ("classify", "ranking")
    assert check_comparable([a, b], paired=True) == ("classify", "ranking")
    assert check_comparable([a]) == ("classify", "ranking")


def test_a_changed_task_config_is_incomparable_both_ways() -> None:
    other = results()
    other["tasks"]["ranking"]["config_sha256"] = "0" * 64
    a, b = load_results(results(), where="a.json"), load_results(other, where="b.json")
    for paired, fix in ((True, "refresh the baseline"), (False, "separate pages")):
        with pytest.raises(UserError) as err:
            check_comparable([a, b], paired=paired, names=["the run", "the baseline"])
        text = str(err.value)
        assert "task 'ranking' is configured differently in the run and the baseline" in text
        assert "(config hash aaaaaaaaaaaa vs 000000000000)" in text
        assert text.startswith("b.json:tasks.ranking.config_sha256: ") and fix in text


def test_a_missing_config_hash_differs_from_a_present_one() -> None:
    other = results()
    del other["tasks"]["classify"]["config_sha256"]
    with pytest.raises(UserError, match="'classify' is configured differently"):
        check_comparable([results(), other], paired=True)


def test_task_sets_board_needs_equal_paired_needs_common() -> None:
    fewer = results()
    del fewer["tasks"]["classify"]
    a, b = load_results(results(), where="a.json"), load_results(fewer, where="b.json")
    with pytest.raises(
        UserError, match=r"run 2 has a different task set than run 1 \(differs in: classify\)"
    ):
        check_comparable([a, b], names=["run 1", "run 2"])
    assert check_comparable([a, b], paired=True) == ("ranking",)


def test_no_task_in_common_is_incomparable() -> None:
    other = results(tasks={"history": {"config_sha256": "c" * 64}})
    with pytest.raises(UserError, match="no task in common"):
        check_comparable([results(), other], paired=True)
    with pytest.raises(UserError, match="different task set"):
        check_comparable([results(), other])


def test_datasets_must_match_only_when_paired() -> None:
    a, b = _pair(dataset={"name": "toy", "sha256": "e" * 64})
    with pytest.raises(UserError) as err:
        check_comparable([a, b], paired=True, names=["the run", "the baseline"])
    assert "the run and the baseline use different datasets" in str(err.value)
    assert str(err.value).startswith("b.json:dataset.sha256: ")
    assert check_comparable([a, b]) == ("classify", "ranking")  # a board may span datasets


def test_differently_named_suites_warn(caplog: pytest.LogCaptureFixture) -> None:
    a, b = _pair(suite="mini-copy")
    with caplog.at_level(logging.WARNING, logger="bench.results"):
        check_comparable([a, b], paired=True)
    assert "differently named suites" in caplog.text and "mini-copy" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bench.results"):
        check_comparable(list(_pair(seed=1)))
    assert caplog.text == ""


def test_third_run_is_checked_and_dicts_are_accepted() -> None:
    bad = results()
    bad["tasks"]["classify"]["config_sha256"] = "f" * 64
    with pytest.raises(
        UserError, match=r"^results\[2\]:tasks\.classify\.config_sha256: .*results\[0\] and results\[2\]"
    ):
        check_comparable([results(), results(seed=2), bad])
    with pytest.raises(UserError, match="no runs"):
        check_comparable([])
