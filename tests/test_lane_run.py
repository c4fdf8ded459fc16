"""`lane` and `lane-shuffled-preferences` end to end through the CLI on the tiny random Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main

SUITE = """
suite: tiny-lane
backbone: tiny-random
dataset: {name: tiny, params: {n_users: 60, n_items: 40}}
target: {name: sasrec, params: {epochs: 3, patience: 2}}
tasks: [next_item_retrieval, item_ranking, interest_classification, history_reconstruction, explanation_rubric]
task_params:
  explanation_rubric: {judge: tiny-random, max_users: 3, cf_random_draws: 2}
explainers:
  - random
  - name: lane
    params: &lane {encoder: tiny, max_value_tokens: 4, explain_max_tokens: 4, explain_analyses: 2, epochs: 5, patience: 2, max_train_histories: 40}
  - name: lane-shuffled-preferences
    params: *lane
stats: {resamples: 200}
"""


@pytest.fixture(scope="module")
def lane_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lane")
    suite = root / "tiny-lane.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    out = root / "run"
    with pytest.MonkeyPatch.context() as mp:  # preferences and encodings cached in a private home
        mp.setenv("RECXBENCH_HOME", str(root / "home"))
        assert main(["-q", "run", str(suite), "--out", str(out)]) == 0
        # a rerun into a new directory extracts nothing again: every history is a cache hit
        assert main(["-q", "run", str(suite), "--out", str(root / "rerun")]) == 0
    return out


def test_lane_rows_on_the_board(lane_run: Path) -> None:
    res = json.loads((lane_run / "results.json").read_text())
    rows = {(r["explainer"], r["task"], r["metric"]) for r in res["results"]}
    for name in ("lane", "lane-shuffled-preferences"):
        for task, metric in (
            ("next_item_retrieval", "hr@10"),
            ("item_ranking", "ndcg@5"),
            ("interest_classification", "accuracy"),
            ("interest_classification", "auc"),
            ("explanation_rubric", "rubric"),
            ("explanation_rubric", "decision_correct"),
        ):
            assert (name, task, metric) in rows, (name, task, metric)
        assert (name, "history_reconstruction", "recall@10") not in rows  # the history is hidden: n/a


def test_preference_counts_and_cache_reuse_in_results(lane_run: Path) -> None:
    res = json.loads((lane_run / "results.json").read_text())
    info = res["explainers"]["lane"]
    prefs = info["preferences"]
    assert prefs["histories"] > 0 and 0.0 <= prefs["five_usable_share"] <= 1.0
    assert {"repaired", "dropped", "unusable"} <= set(prefs)
    assert info["head"]["epochs"] >= 1 and info["shuffled_preferences"] is False
    # the ablation reuses the head lane trained (same key), and every preference lane extracted
    shuffled = res["explainers"]["lane-shuffled-preferences"]
    assert shuffled["head"]["reused"] is True and shuffled["shuffled_preferences"] is True
    rerun = json.loads((lane_run.parent / "rerun" / "results.json").read_text())
    cache = rerun["explainers"]["lane"]["preferences"]["cache"]
    assert cache["misses"] == 0 and cache["hits"] > 0


def test_lane_explanations_state_the_step3_decision(lane_run: Path) -> None:
    rows = [
        json.loads(x)
        for x in (lane_run / "samples" / "lane" / "explanation_rubric.jsonl").read_text().splitlines()
    ]
    assert rows
    for r in rows:
        text = r["prediction"]
        assert "Step1:" in text and "Step3:\nInteraction probability: " in text and "Step4:" in text
        level = text.split("Interaction probability: ")[-1].split("\n")[0]
        assert level in ("Low", "Medium", "High")
        expected = {"High": 1, "Low": 0}.get(level)
        assert r["stated_decision"] == expected
        assert r["scores"]["decision_correct"] == float(expected == r["label"])


def test_the_shuffled_ablation_answers_differently(lane_run: Path) -> None:
    def scores(label: str) -> dict[str, float]:
        path = lane_run / "samples" / label / "interest_classification.jsonl"
        return {r["instance_id"]: r["confidence"] for r in map(json.loads, path.read_text().splitlines())}

    lane, shuffled = scores("lane"), scores("lane-shuffled-preferences")
    assert lane.keys() == shuffled.keys()
    assert any(abs(lane[k] - shuffled[k]) > 1e-6 for k in lane)
