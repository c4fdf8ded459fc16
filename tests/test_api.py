"""bench.api: boards as tidy DataFrames, equal to results.json and the samples files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")

from bench.api import load_run  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "baselines" / "quick"


def test_results_frame_equals_results_json() -> None:
    board = load_run(BASELINE)
    raw = json.loads((BASELINE / "results.json").read_text(encoding="utf-8"))
    assert len(board.results) == len(raw["results"])
    for row, r in zip(board.results.to_dict("records"), raw["results"], strict=True):
        assert row["run"] == "quick"
        for k in ("explainer", "task", "metric", "n", "access"):
            assert row[k] == r[k]
        for k in ("value", "ci_low", "ci_high"):
            assert row[k] == pytest.approx(r[k], nan_ok=True) if r[k] is not None else pd.isna(row[k])
    assert len(board.comparisons) == len(raw["comparisons"])
    assert list(board.comparisons["p_adjusted"]) == [c["p_adjusted"] for c in raw["comparisons"]]


def test_samples_frame_equals_the_samples_files_and_means_the_results() -> None:
    board = load_run(BASELINE)
    path = BASELINE / "samples" / "random" / "item_ranking.jsonl"
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    got = board.samples.query("explainer == 'random' and task == 'item_ranking' and metric == 'ndcg@5'")
    assert list(got["instance_id"]) == [s["instance_id"] for s in lines]
    assert list(got["value"]) == [s["scores"]["ndcg@5"] for s in lines]
    # every reported value is the mean of its per-sample scores
    means = board.samples.groupby(["explainer", "task", "metric"])["value"].mean()
    for r in board.results.to_dict("records"):
        if (r["explainer"], r["task"], r["metric"]) in means.index and r["metric"] != "auc":
            assert means[(r["explainer"], r["task"], r["metric"])] == pytest.approx(r["value"], abs=1e-9)


def test_several_runs_stack_with_a_run_column() -> None:
    board = load_run({"a": BASELINE, "b": BASELINE}, samples=False)
    assert set(board.results["run"]) == {"a", "b"} and board.samples.empty
    assert len(board.results) == 2 * len(load_run(BASELINE, samples=False).results)


def test_the_readme_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S)
    assert block, "README: the pandas example is marked <!-- api-example -->"
    monkeypatch.chdir(ROOT)
    exec(compile(block.group(1), "README.md", "exec"), {})  # noqa: S102
