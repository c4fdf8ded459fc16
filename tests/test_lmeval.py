"""lm-evaluation-harness interop end to end on a tiny run: export, the real ``lm_eval`` (``hf``
backend on a tiny random model in a local directory, and the ``recxbench`` model), import.

The backbone is the tiny random Llama saved to a directory *without* a chat template, so prompts end
in ``Assistant:`` and lm-eval's ``hf`` backend splits (context, " Yes") into the same tokens as
bench.llm (a chat prompt ending in a newline would make lm-eval score the newline too: the same
margin, other log-likelihoods — see the README).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.cli import main

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install -e '.[lmeval]')")
pytestmark = pytest.mark.usefixtures("single_thread")

SUITE = """
suite: tiny-lmeval
backbone: {backbone}
dataset: {{name: tiny, params: {{n_users: 60, n_items: 40}}}}
target: {{name: sasrec, params: {{epochs: 2, patience: 1}}}}
tasks: [interest_classification, item_ranking, next_item_retrieval]
explainers:
  - random
  - name: zero-shot-llm
    params: {{retrieval_beams: 2}}
stats: {{resamples: 200}}
"""


@pytest.fixture(scope="module")
def lm_run(tiny, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lmeval")
    model_dir = root / "tiny-plain"
    tok = tiny.tokenizer
    template, tok.chat_template = tok.chat_template, None
    try:
        tok.save_pretrained(model_dir)
    finally:
        tok.chat_template = template
    tiny.model.save_pretrained(model_dir)
    suite = root / "suite.yaml"
    suite.write_text(SUITE.format(backbone=json.dumps(str(model_dir))), encoding="utf-8")
    run = root / "run"
    assert main(["-q", "run", str(suite), "--out", str(run)]) == 0
    tasks = root / "tasks"
    assert main(["-q", "export-lmeval", str(run), "--out", str(tasks)]) == 0
    out = root / "lmeval-out"
    assert (
        main(
            [
                "-q",
                "lm-eval",
                "--model",
                "hf",
                "--model_args",
                f"pretrained={model_dir},dtype=float32",
                "--device",
                "cpu",
                "--batch_size",
                "16",
                "--include_path",
                str(tasks),
                "--tasks",
                "recx_all",
                "--log_samples",
                "--output_path",
                str(out),
            ]
        )
        == 0
    )
    return {"run": run, "tasks": tasks, "out": out, "model": model_dir, "root": root}


def _rows(run: Path, label: str, task: str) -> list[dict]:
    path = run / "samples" / label / f"{task}.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _logliks(raw: str) -> tuple[float, float]:
    y, n = re.findall(r"logP\(\w+\)=(-?[\d.]+)", raw)
    return float(y), float(n)


def test_export_writes_tasks_a_group_and_utils(lm_run: dict[str, Path]) -> None:
    names = sorted(p.name for p in lm_run["tasks"].iterdir())
    assert {"recx_all.yaml", "utils.py", "recxbench.json", "interest_classification.jsonl"} <= set(names)
    text = (lm_run["tasks"] / "recx_interest_classification.yaml").read_text()
    assert "process_results: !function utils.process_results" in text
    assert "aggregation: !function utils.corpus_auc" in text


def test_imported_row_equals_the_native_zero_shot_row(lm_run: dict[str, Path]) -> None:
    run = lm_run["run"]
    assert main(["-q", "import-lmeval", str(lm_run["out"]), "--run", str(run), "--name", "lm-eval-hf"]) == 0
    res = json.loads((run / "results.json").read_text())
    value = {(r["explainer"], r["task"], r["metric"]): r for r in res["results"]}
    for metric in ("accuracy", "auc", "f1"):
        ours = value[("zero-shot-llm", "interest_classification", metric)]
        theirs = value[("lm-eval-hf", "interest_classification", metric)]
        assert theirs["value"] == ours["value"], metric
        assert theirs["ci_low"] is not None and theirs["ci_high"] is not None
    # per-sample log-likelihoods agree
    native = _rows(run, "zero-shot-llm", "interest_classification")
    imported = _rows(run, "lm-eval-hf", "interest_classification")
    diffs = [
        abs(a - b)
        for r, s in zip(native, imported, strict=True)
        for a, b in zip(_logliks(r["raw"]), _logliks(s["raw"]))
    ]
    assert max(diffs) <= 1e-4
    assert [r["scores"]["accuracy"] for r in native] == [s["scores"]["accuracy"] for s in imported]
    # the board: the row with its comparisons and rank group
    pairs = {(c["a"], c["b"]) for c in res["comparisons"] if c["task"] == "item_ranking"}
    assert any("lm-eval-hf" in p for p in pairs)
    assert res["explainers"]["lm-eval-hf"]["lm_eval"]["model"] == "hf"
    assert "lm-eval-hf" in (run / "leaderboard.md").read_text()
    retrieval = _rows(run, "lm-eval-hf", "next_item_retrieval")
    assert all("hallucination_rate" in r["scores"] for r in retrieval)


def test_rescoring_an_untouched_run_reproduces_its_results(lm_run: dict[str, Path]) -> None:
    from bench.reload import reopen_run
    from bench.rescore import statistics_from_samples

    state, results, _ = reopen_run(lm_run["run"])
    access = {k: v["access"] for k, v in results["explainers"].items() if k != "lm-eval-hf"}
    fresh = statistics_from_samples(state, access)
    native = [r for r in results["results"] if r["explainer"] != "lm-eval-hf"]
    key = lambda r: (r["task"], r["metric"], r["explainer"])  # noqa: E731
    got = {key(r): r for r in fresh["results"]}
    for r in native:
        g = got[key(r)]
        assert (g["value"], g["ci_low"], g["ci_high"]) == pytest.approx(
            (r["value"], r["ci_low"], r["ci_high"])
        )


def test_a_mismatched_output_exits_2_with_one_line(lm_run: dict[str, Path], capsys) -> None:
    bad = lm_run["root"] / "bad-out"
    bad.mkdir()
    src = next(lm_run["out"].rglob("samples_recx_item_ranking_*.jsonl"))
    lines = src.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    row["doc"]["run"] = "0123456789abcdef"  # another run's instances
    (bad / src.name).write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["-q", "import-lmeval", str(bad), "--run", str(lm_run["run"]), "--name", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another run" in err
    # an output that misses instances (lm_eval --limit) is refused too, and nothing is written
    (bad / src.name).write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")
    assert main(["-q", "import-lmeval", str(bad), "--run", str(lm_run["run"]), "--name", "x"]) == 2
    assert "one per align-test instance" in capsys.readouterr().err
    assert not (lm_run["run"] / "samples" / "x").exists()


def test_the_recxbench_model_runs_an_exported_task(lm_run: dict[str, Path]) -> None:
    out = lm_run["root"] / "recx-model-out"
    code = main(
        [
            "-q",
            "lm-eval",
            "--model",
            "recxbench",
            "--model_args",
            f"backbone={lm_run['model']},export={lm_run['tasks']}",
            "--device",
            "cpu",
            "--include_path",
            str(lm_run["tasks"]),
            "--tasks",
            "recx_interest_classification",
            "--log_samples",
            "--output_path",
            str(out),
        ]
    )
    assert code == 0
    samples = [json.loads(x) for f in out.rglob("samples_*.jsonl") for x in f.read_text().splitlines()]
    native = {
        r["instance_id"]: _logliks(r["raw"])
        for r in _rows(lm_run["run"], "zero-shot-llm", "interest_classification")
    }
    for s in samples:
        ly, ln = (float(x[0]) for x in s["filtered_resps"])
        ny, nn = native[s["doc"]["instance"]["instance_id"]]
        assert abs(ly - ny) <= 1e-4 and abs(ln - nn) <= 1e-4
