"""Overrides that just work (issue 17): ``--set explainers=[...]`` / ``tasks=[...]`` that remove what
a suite's claims name skip those claims with one warning line each and list them on the board as
"not evaluated (explainer|task not in this run)"; a claim naming an explainer no registry knows
stays an error (``tests/reliability_cases.py``: yaml-claim-unknown-explainer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main

FAST = [
    "--set", "dataset.params.n_users=80",
    "--set", "target.params.epochs=2",
    "--set", "stats.resamples=100",
]  # fmt: skip


def _run(tmp_path: Path, capsys: pytest.CaptureFixture, *overrides: str) -> tuple[dict, str, Path]:
    out = tmp_path / "run"
    assert main(["-q", "run", "tiny", "--out", str(out), "--device", "cpu", *FAST, *overrides]) == 0
    err = capsys.readouterr().err
    return json.loads((out / "results.json").read_text(encoding="utf-8")), err, out


def test_readme_override_removing_claimed_explainers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results, err, out = _run(
        tmp_path,
        capsys,
        "--set",
        "explainers=[random,popularity]",
        "--set",
        "tasks=[item_ranking,interest_classification]",
    )
    claims = results["claims"]
    assert [c["verdict"] for c in claims] == ["not evaluated"] * 2
    assert all(c["reason"] == "explainer not in this run" and "'target-oracle'" in c["note"] for c in claims)
    assert {"claim", "verdict", "p_adjusted"} <= set(claims[0])  # the DESIGN.md claim keys are kept
    warnings = [x for x in err.splitlines() if "not evaluated" in x]
    assert len(warnings) == 2 and "Traceback" not in err
    for board in ("leaderboard.md", "leaderboard.html"):
        assert "not evaluated (explainer not in this run)" in (out / board).read_text(encoding="utf-8")


def test_override_removing_a_claimed_task(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results, err, out = _run(
        tmp_path, capsys, "--set", "explainers=[random,target-oracle]", "--set", "tasks=[item_ranking]"
    )
    verdicts = {c["claim"]: c for c in results["claims"]}
    done = verdicts["target-oracle > random on item_ranking/ndcg@5"]
    skipped = verdicts["target-oracle > random on interest_classification/accuracy"]
    assert done["verdict"] == "supported" and "reason" not in done
    assert skipped["verdict"] == "not evaluated" and skipped["reason"] == "task not in this run"
    assert "not evaluated (task not in this run)" in (out / "leaderboard.md").read_text(encoding="utf-8")
