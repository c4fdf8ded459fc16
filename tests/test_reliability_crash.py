"""Crashes, resume, locks and determinism (issue 17), on real ``recxbench run`` processes.

A small suite with tiny-random LLM explainers (one trains a LoRA adapter) and a tiny-random judge
runs once uninterrupted (the reference). Then one run directory is killed with ``SIGKILL`` at each
point of ``KILL_POINTS`` in flow order — every stage boundary and inside the long stages — through
the test-only ``RECXBENCH_FAULT`` hook (:func:`bench.io.fault_point`), LoRA training included (in its
second epoch, after the first epoch's checkpoint). A point is a counted event, never a timer: a kill
"two seconds into the stage" landed after the stage on a faster machine, and the judge then ran
before the kill meant for it. Every rerun resumes from what the killed one left; after each
kill no ``results.json`` may exist, and the final rerun must give the reference's values. (Determinism
across fresh runs and thread counts: ``tests/test_reliability_determinism.py``.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_doc import check_block
from snapshot_compare import differences

from bench.io import run_lock

pytestmark = pytest.mark.slow

SUITE = """\
suite: crash
backbone: tiny-random
dataset: {name: tiny, params: {n_users: 60, n_items: 40}}
target: {name: sasrec, params: {epochs: 3, patience: 2}}
tasks: [item_ranking, interest_classification, explanation_rubric]
task_params:
  explanation_rubric: {judge: tiny-random, max_users: 4}
explainers:
  - random
  - popularity
  - name: zero-shot-llm
    params: {max_new_tokens: 16}
  - name: recexplainer-b
    params: {max_new_tokens: 16, max_train_examples: 24, aux_item_examples: 4, lora: {batch_size: 8, epochs: 2}}
stats: {resamples: 200}
claims:
  - popularity > random on item_ranking/ndcg@5
"""

#: (point, what it interrupts), in flow order; ``name#N`` kills the N-th time the run reaches ``name``
KILL_POINTS: list[tuple[str, str]] = [
    ("data", "after the data stage (dataset, split, catalog)"),
    ("target:fitted", "target trained, weights not saved"),
    ("target:saved", "target weights saved, card (the stage's completion mark) not yet"),
    ("instances:part#4", "instances: 3 of 9 (task, part) files written"),
    ("explain:task#1", "first explainer answered one task, done.json not yet"),
    ("explain:done#2", "between explainers (two finished)"),
    ("explain:fitted#1", "LLM explainer fitted, no task answered"),
    ("lora:step#6", "inside LoRA training: epoch 2, step 2 of 4 (epoch 1's checkpoint on disk)"),
    ("io:replace#1", "inside an atomic write: temporary file complete, not yet renamed"),
    ("score:task#2", "scoring: two (explainer, task) pairs scored"),
    ("judge:chunk#1", "judging: the first chunk of grades stored, the rest not asked"),
    ("stats", "before the statistics (CIs, paired tests, claims)"),
    ("report:markdown", "report writing: leaderboard.md written, LaTeX/HTML not"),
    ("report:latex", "report writing: LaTeX written, HTML and results.json not"),
]


def _env(home: Path, threads: int = 1, fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RECXBENCH_FAULT"}
    env.update(RECXBENCH_HOME=str(home), HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")]
    )
    if fault:
        env["RECXBENCH_FAULT"] = fault
    return env


def _cmd(suite: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.cli",
        *extra,
        "run",
        str(suite),
        "--out",
        str(out),
        "--device",
        "cpu",
    ]


def _run(suite: Path, out: Path, home: Path, *, threads: int = 1, fault: str | None = None):
    return subprocess.run(
        _cmd(suite, out, "-q"), env=_env(home, threads, fault), capture_output=True, text=True, timeout=900
    )


def _values(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("crash")
    suite = root / "crash.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    home = root / "home"
    ref = root / "reference"
    proc = _run(suite, ref, home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return suite, home, _values(ref)


def test_kill_at_every_point_then_resume_gives_identical_results(setup, tmp_path: Path) -> None:
    suite, home, reference = setup
    out = tmp_path / "run"
    rows = [
        "| # | kill point (`RECXBENCH_FAULT`) | what was interrupted | killed | no results.json after |",
        "|---|---|---|---|---|",
    ]
    for n, (point, what) in enumerate(KILL_POINTS, 1):
        code = _run(suite, out, home, fault=point).returncode
        assert code == -signal.SIGKILL, f"{point}: the run was not killed there (exit {code})"
        assert not (out / "results.json").exists(), point
        if point.startswith("lora:"):  # the resume under test starts from epoch 1's checkpoint
            assert list(out.glob("cache/adapters/**/checkpoints/epoch-1")), "no epoch-1 checkpoint left"
        rows.append(f"| {n} | `{point}` | {what} | yes | yes |")
    final = _run(suite, out, home)
    assert final.returncode == 0, final.stderr[-3000:]
    diff = differences(reference, _values(out))
    assert diff == [], diff[:20]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    reused = (
        sorted(k for k, v in manifest.get("cache", manifest).items() if v == "reused")
        if isinstance(manifest.get("cache"), dict)
        else []
    )
    rows.append("")
    rows.append(
        f"{len(KILL_POINTS)} kill points tried, each killed by SIGKILL where named and left no results.json; "
        "every rerun resumed from the killed run's cache and the final one gave results.json values "
        "identical to an uninterrupted run's (wall times excepted)."
        + (f" Stages the final rerun reused: {len(reused)}." if reused else "")
    )
    check_block("kill-points", "\n".join(rows))


def test_a_second_run_into_a_locked_directory_is_refused(setup, tmp_path: Path) -> None:
    suite, home, _ = setup
    out = tmp_path / "run"
    with run_lock(out):  # as a first run would hold it
        proc = _run(suite, out, home)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [x for x in proc.stderr.splitlines() if x.startswith("recxbench: error:")]
    assert len(lines) == 1 and "another recxbench run" in lines[0] and "Traceback" not in proc.stderr
    assert not (out / "results.json").exists()
