"""End to end through the CLI on the generated ``tiny`` dataset, plus every user-error path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main

SNAPSHOTS = Path(__file__).parent / "snapshots"

FAST = [
    "--set", "dataset.params.n_users=150",
    "--set", "target.params.epochs=8",
    "--set", "stats.resamples=1000",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["-q", "run", "tiny", "--out", str(out), *FAST]) == 0
    return out


def _results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def test_run_directory_contract(tiny_run: Path) -> None:
    for name in (
        "manifest.json",
        "results.json",
        "leaderboard.html",
        "leaderboard.md",
        "results.csv",
        "results.tex",
    ):
        assert (tiny_run / name).exists(), name
    res = _results(tiny_run)
    assert res["schema_version"] == 1
    assert res["dataset"]["name"] == "tiny" and res["dataset"]["users"] == 150
    assert {"hr@10", "ndcg@10", "mrr@10"} <= set(res["target"]["test"])
    expl = {r["explainer"] for r in res["results"]}
    assert expl == {"random", "popularity", "item-prior", "target-oracle", "surrogate-tree"}
    # every row has a CI and n; every pair of every (task, metric) is compared
    for r in res["results"]:
        assert r["n"] > 0 and r["ci_low"] <= r["value"] + 1e-12 <= r["ci_high"] + 2e-12
    per_table: dict = {}
    for r in res["results"]:
        per_table.setdefault((r["task"], r["metric"]), set()).add(r["explainer"])
    n_pairs = sum(len(v) * (len(v) - 1) // 2 for v in per_table.values())
    assert len(res["comparisons"]) == n_pairs
    assert all(c["p_adjusted"] >= c["p_value"] - 1e-12 for c in res["comparisons"])
    assert {c["verdict"] for c in res["claims"]} == {"supported"}
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    for key in (
        "harness_version",
        "suite_sha256",
        "dataset_sha256",
        "target_checkpoint_sha256",
        "packages",
        "stages",
        "seed",
    ):
        assert key in manifest


def test_oracle_is_exact(tiny_run: Path) -> None:
    rows = {(r["explainer"], r["task"], r["metric"]): r for r in _results(tiny_run)["results"]}
    for key in [
        ("target-oracle", "next_item_retrieval", "hr@1"),
        ("target-oracle", "item_ranking", "ndcg@5"),
        ("target-oracle", "item_ranking", "ndcg@5_paper"),
        ("target-oracle", "interest_classification", "accuracy"),
    ]:
        assert rows[key]["value"] == 1.0
    assert ("target-oracle", "history_reconstruction", "hcr") not in rows  # n/a, not 0
    # F1 is a ratio metric: resampling (2TP, 2TP+FP+FN) of a perfect answer gives exactly [1, 1]
    f1 = rows[("target-oracle", "interest_classification", "f1")]
    assert (f1["value"], f1["ci_low"], f1["ci_high"]) == (1.0, 1.0, 1.0)


def test_values_are_means_of_samples(tiny_run: Path) -> None:
    from bench import metrics as M

    res = _results(tiny_run)
    for r in res["results"]:
        lines = (tiny_run / "samples" / r["explainer"] / f"{r['task']}.jsonl").read_text().splitlines()
        rows = [json.loads(x) for x in lines]
        assert len(rows) == r["n"]
        assert np.mean([x["scores"][r["metric"]] for x in rows]) == pytest.approx(r["value"], abs=1e-12)
        for x in rows[:20]:  # the per-sample scores follow from prediction and label
            assert set(x) >= {"instance_id", "user_id", "prediction", "label", "raw", "parse_ok", "scores"}
            if r["task"] == "item_ranking" and r["metric"] == "ndcg@5":
                assert x["scores"]["ndcg@5"] == pytest.approx(
                    M.graded_ndcg(x["prediction"], x["label"], gains="linear")
                )
            if r["task"] == "next_item_retrieval" and r["metric"] == "hr@5":
                assert x["scores"]["hr@5"] == M.hit_at_k(x["prediction"], x["label"][0], k=5)
            if r["task"] == "interest_classification" and r["metric"] == "accuracy":
                assert x["scores"]["accuracy"] == float(x["prediction"] == x["label"])


def test_rerun_is_identical_and_cached(tiny_run: Path, tmp_path: Path) -> None:
    before = _results(tiny_run)
    first = json.loads((tiny_run / "manifest.json").read_text())["cache"]
    assert set(first.values()) == {"built"} and "target" in first
    assert main(["-q", "run", "tiny", "--out", str(tiny_run), *FAST]) == 0
    after = _results(tiny_run)
    assert [r["value"] for r in before["results"]] == [r["value"] for r in after["results"]]
    assert [c["p_value"] for c in before["comparisons"]] == [c["p_value"] for c in after["comparisons"]]
    # the rerun built nothing: every cached stage (target, instances, predictions) was reused
    second = json.loads((tiny_run / "manifest.json").read_text())["cache"]
    assert second == {stage: "reused" for stage in first}


def test_results_match_the_snapshot_of_the_code_before_the_refactor(tiny_run: Path) -> None:
    """The architecture change kept every figure: same suite and seed, same results.json."""
    from snapshot_compare import differences, samples_digest

    snapshot = json.loads((SNAPSHOTS / "tiny-fast.results.json").read_text())
    assert differences(snapshot, _results(tiny_run)) == []
    # and every single answer and score, not only the aggregates
    assert samples_digest(tiny_run) == json.loads((SNAPSHOTS / "tiny-fast.samples.json").read_text())


def test_compare_against_itself_and_regression(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["compare", str(tiny_run), "--baseline", str(tiny_run)]) == 0
    assert "No regressions" in capsys.readouterr().out
    worse = tmp_path / "worse"
    shutil.copytree(tiny_run, worse, ignore=shutil.ignore_patterns("cache"))
    path = worse / "samples" / "popularity" / "interest_classification.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    for row in rows:  # a broken explainer: always wrong
        row["scores"]["accuracy"] = 0.0
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["compare", str(worse), "--baseline", str(tiny_run)]) == 1
    out = capsys.readouterr().out
    assert "popularity" in out and "accuracy" in out and "regression" in out


def test_compare_incomparable(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other, ignore=shutil.ignore_patterns("cache"))
    res = _results(other)
    res["tasks"]["item_ranking"]["config_sha256"] = "0" * 64
    (other / "results.json").write_text(json.dumps(res))
    assert main(["compare", str(other), "--baseline", str(tiny_run)]) == 2
    assert "configured differently" in capsys.readouterr().err


def test_report_command(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "board"
    assert main(["report", str(tiny_run), str(tiny_run), "--out", str(out)]) == 0
    assert (out / "leaderboard.html").exists()


def test_list_and_validate(capsys: pytest.CaptureFixture) -> None:
    for what in ("tasks", "explainers", "datasets", "suites"):
        assert main(["list", what]) == 0
    out = capsys.readouterr().out
    assert "surrogate-tree" in out and "item_ranking" in out and "quick" in out
    assert main(["validate", "quick"]) == 0


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "no-such-suite"], "unknown suite"),
        (["run", "tiny", "--set", "explainers=[randon]"], "did you mean 'random'"),
        (["run", "tiny", "--set", "stats.alpah=0.1"], "unknown key 'stats.alpah'"),
        (["run", "tiny", "--set", "dataset.path=/no/such/dir"], "/no/such/dir"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "run"
    proc = _cli(*args, "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.startswith("recxbench: error")]
    assert len(lines) == 1 and needle in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (out / "results.json").exists()


def test_malformed_data_file_exit_2(tmp_path: Path) -> None:
    d = tmp_path / "mydata"
    d.mkdir()
    (d / "mydata.inter").write_text(
        "user_id:token\titem_id:token\ttimestamp:float\nu1\ti1\t1\nu1\ti2\tyesterday\n"
    )
    out = tmp_path / "run"
    proc = _cli("run", "tiny", "--out", str(out), "--set", f"dataset.path={d}", cwd=tmp_path)
    assert proc.returncode == 2
    assert "mydata.inter:3" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "results.json").exists()
