"""Reopen a finished run directory: its suite, tasks, dataset, target and teacher instances.

The suite is rebuilt from the merged mapping that ``manifest.json`` records (``suite_config``, the
``--set`` overrides already applied), its task files found beside the original suite file; the
data, target and instances stages then run against the run's cache, so nothing is trained or
built again when the cache is there (and everything is rebuilt the same way when it is not).
A task whose configuration no longer hashes to the one the run recorded is refused: the
instances would not be the run's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from bench import registry
from bench.config import SuiteConfig, load_suite
from bench.device import resolve_device
from bench.errors import UserError
from bench.io import read_json
from bench.stages import stage_data, stage_instances, stage_target
from bench.state import RunState

__all__ = ["finished_run", "reopen_run", "suite_of_run"]


def finished_run(run_dir: Path) -> tuple[dict, dict]:
    """``(results.json, manifest.json)`` of a finished run, or a one-line error."""
    run_dir = Path(run_dir)
    if not (run_dir / "results.json").is_file():
        raise UserError(
            f"{run_dir} is not a finished run (no results.json)",
            fix="give the directory a `recxbench run` wrote",
        )
    if not (run_dir / "manifest.json").is_file():
        raise UserError(f"{run_dir} has no manifest.json", fix="give a run directory, not an export of one")
    return read_json(run_dir / "results.json"), read_json(run_dir / "manifest.json")


def suite_of_run(manifest: dict, where: str) -> SuiteConfig:
    """The suite a run ran, from its manifest (task directories resolved against the suite file)."""
    raw = manifest.get("suite_config")
    if not isinstance(raw, dict):
        raise UserError(
            f"{where}: the manifest records no suite_config", fix="rerun the suite with this version"
        )
    raw = dict(raw)
    base = Path(str(manifest.get("suite_path") or ".")).expanduser().resolve().parent
    # task directories and task files were relative to the suite file
    raw["task_dirs"] = [str((base / d).resolve()) for d in raw.get("task_dirs") or []]
    raw["tasks"] = [
        str(base / t) if str(t).endswith((".yaml", ".yml")) and not Path(str(t)).is_absolute() else t
        for t in raw.get("tasks") or []
    ]
    with tempfile.TemporaryDirectory(prefix="recxbench-suite-") as tmp:
        path = Path(tmp) / f"{raw.get('suite') or 'suite'}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        suite = load_suite(str(path))
    recorded = manifest.get("task_config_sha256") or {}
    for spec in suite.tasks:
        if recorded.get(spec.name) not in (None, spec.sha256):
            raise UserError(
                f"{where}: task {spec.name!r} no longer has the configuration the run used",
                fix="restore the task file the run used (its config hash is in manifest.json)",
            )
    return suite


def reopen_run(run_dir: Path, *, device: str = "cpu") -> tuple[RunState, dict, dict]:
    """``(state, results, manifest)``: the run's state with its data, target, tasks and instances
    (no explainer is run). Stages reuse the run's cache."""
    run_dir = Path(run_dir)
    results, manifest = finished_run(run_dir)
    suite = suite_of_run(manifest, str(run_dir))
    state = RunState(suite=suite, out=run_dir, device=resolve_device(device))
    state.tasks = {spec.name: registry.task_kinds.get(spec.kind)(spec) for spec in suite.tasks}
    stage_data(state)
    stage_target(state)
    stage_instances(state)
    return state, results, manifest
