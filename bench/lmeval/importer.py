"""``recxbench import-lmeval OUTPUT --run RUN_DIR --name NAME``: an lm-eval run back on the board.

Reads lm-eval's ``--log_samples`` files (``samples_<task>_<date>.jsonl``, found under ``OUTPUT``),
checks that they answer this run's instances (the run fingerprint and task config hash the export
wrote into every document, and exactly the run's align-test instance ids), turns each document's
outputs into the prediction recxbench would have recorded (:mod:`bench.lmeval.convert`), scores
them with the task's own kernels (:meth:`bench.tasks.base.Task.score`, whole corpus), writes
``samples/NAME/<task>.jsonl``, and republishes the run from its samples files
(:func:`bench.rescore.republish`): the model gets CIs, paired tests and rank groups.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.io import read_json, read_jsonl, write_jsonl
from bench.lmeval.bundle import run_fingerprint
from bench.lmeval.convert import prediction
from bench.reload import reopen_run
from bench.rescore import republish
from bench.scoring import sample_rows
from bench.types import ACCESS_LEVELS

log = logging.getLogger(__name__)


def _samples_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UserError(
            f"no such lm-eval output {source}", fix="give the --output_path of `lm_eval --log_samples`"
        )
    files = sorted(source.rglob("samples_*.jsonl"))
    if not files:
        raise UserError(
            f"{source}: no lm-eval samples files (samples_*.jsonl)",
            fix="run lm_eval with --log_samples --output_path DIR and give DIR",
        )
    return files


def _lmeval_config(files: list[Path]) -> dict[str, Any]:
    """Model and version from lm-eval's results file beside the samples (when there is one)."""
    for f in files:
        for res in sorted(f.parent.glob("results_*.json")):
            try:
                data = read_json(res)
            except ValueError:
                continue
            cfg = data.get("config") or {}
            return {
                "model": cfg.get("model"),
                "model_args": cfg.get("model_args"),
                "lm_eval_version": data.get("lm_eval_version"),
                "results_file": str(res.resolve()),
            }
    return {}


def read_lmeval_docs(source: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``{task: {instance_id: sample line}}`` from lm-eval's samples files under ``source``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in _samples_files(source):
        try:
            lines = read_jsonl(path)
        except ValueError as err:
            raise UserError(f"{path}: not JSON lines ({err})", fix="give lm-eval's samples files") from None
        for line in lines:
            doc = line.get("doc") if isinstance(line, dict) else None
            if not isinstance(doc, dict) or "instance" not in doc or "run" not in doc:
                raise UserError(
                    f"{path}: not a task exported by `recxbench export-lmeval`",
                    fix="evaluate the tasks of `recxbench export-lmeval RUN_DIR --out DIR` with --include_path DIR",
                )
            inst = doc["instance"]
            out.setdefault(str(inst["task"]), {})[str(inst["instance_id"])] = line
    return out


def import_lmeval(source: Path, run_dir: Path, name: str, *, access: str = "behavior") -> dict[str, Any]:
    """Add lm-eval's answers in ``source`` to ``run_dir`` as explainer ``name``; returns results.json."""
    if access not in ACCESS_LEVELS:
        raise UserError(f"unknown access level {access!r}", fix=f"use one of: {', '.join(ACCESS_LEVELS)}")
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"bad explainer name {name!r}", fix="use a plain name such as lm-eval-smollm2")
    source = Path(source)
    docs = read_lmeval_docs(source)
    state, results, manifest = reopen_run(Path(run_dir))
    existing = results["explainers"].get(name)
    if existing is not None and "lm_eval" not in existing:
        raise UserError(f"{run_dir} already has an explainer {name!r}", fix="choose another --name")
    run = run_fingerprint(manifest)
    assert state.dataset is not None and state.catalog is not None
    rows_of: dict[str, list[dict[str, Any]]] = {}
    for task_name, by_id in sorted(docs.items()):  # every check first: nothing is written on a mismatch
        task = state.tasks.get(task_name)
        found = {(d["doc"]["run"], d["doc"].get("task_sha256")) for d in by_id.values()}
        if task is None or found != {(run, task.spec.sha256)}:
            raise UserError(
                f"{source}: lm-eval answered the instances of another run (task {task_name}), not of {run_dir}",
                fix="import the output of the tasks exported from this run",
            )
        insts = state.instances[task_name]["align_test"]
        if set(by_id) != {i.instance_id for i in insts}:
            raise UserError(
                f"{source}: the {task_name} answers are not one per align-test instance of {run_dir}",
                fix="run the whole exported task (no --limit) and import its output",
            )
        preds = [
            prediction(
                task.answer,
                by_id[i.instance_id]["doc"],
                by_id[i.instance_id]["filtered_resps"],
                state.catalog,
            )
            for i in insts
        ]
        scores = task.score(insts, preds)
        parts = task.ratio_parts(insts, preds)
        rows_of[task_name] = sample_rows(task, insts, preds, scores, state.dataset.user_ids, parts)
    for task_name, rows in rows_of.items():
        write_jsonl(state.out / "samples" / name / f"{task_name}.jsonl", rows)
    imported = sorted(rows_of)
    config = _lmeval_config(_samples_files(source))
    model = " ".join(str(x) for x in (config.get("model"), config.get("model_args")) if x)
    info = {
        "access": access,
        "summary": f"lm-eval: {model}" if model else "answers from lm-evaluation-harness",
        "name": "lm-eval",
        "lm_eval": {**config, "source": str(source.resolve()), "tasks": imported},
    }
    results["explainers"][name] = info
    manifest.setdefault("explainers", {})[name] = info
    manifest.setdefault("imports", {})[name] = {
        **info["lm_eval"],
        "imported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    log.info("imported %s: %s", name, ", ".join(imported))
    return republish(state, results, manifest)
