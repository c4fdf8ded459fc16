"""Run a suite: build its tasks and explainers, run the stages in flow order, publish.

suite -> dataset -> split -> target f -> teacher instances -> explainers -> scores -> stats -> report

The stages live in :mod:`bench.stages` (each caches its output under ``RUN_DIR/cache``), scoring
and statistics in :mod:`bench.scoring`, writing ``results.json``, the manifest and the board in
:mod:`bench.publish`. ``results.json`` is written last and atomically: a run directory without it
is not a finished run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import registry
from bench.config import SuiteConfig
from bench.device import resolve_device
from bench.errors import UserError
from bench.explainers.base import Explainer
from bench.publish import publish_run
from bench.scoring import score_run
from bench.stages import stage_data, stage_explainers, stage_instances, stage_target, teacher_views
from bench.state import RunOptions, RunState
from bench.tasks.base import Task

__all__ = ["RunOptions", "RunState", "instantiate_explainers", "instantiate_tasks", "run_suite"]


def instantiate_tasks(suite: SuiteConfig) -> dict[str, Task]:
    """The suite's task objects by name (task kinds come from ``registry.task_kinds``)."""
    tasks: dict[str, Task] = {}
    for spec in suite.tasks:
        if spec.name in tasks:
            raise UserError(
                f"task {spec.name!r} is listed twice", where=suite.path, fix="list each task once"
            )
        cls = registry.task_kinds.get(spec.kind)
        tasks[spec.name] = cls(spec)
    return tasks


def instantiate_explainers(suite: SuiteConfig) -> dict[str, Explainer]:
    """The suite's explainers by label; LLM explainers get the suite's ``backbone`` unless they
    name their own."""
    out: dict[str, Explainer] = {}
    for spec in suite.explainers:
        cls = registry.explainers.get(spec.name)
        params = dict(spec.params)
        if suite.backbone and cls.uses_backbone:
            params.setdefault("backbone", suite.backbone)
        try:
            out[spec.label] = cls(**params)
        except TypeError as err:
            raise UserError(
                f"bad parameters for explainer {spec.name!r}: {err}",
                where=f"{suite.path}:explainers",
                fix="see `recxbench list explainers` for the accepted parameters",
            ) from None
    return out


def run_suite(suite: SuiteConfig, opts: RunOptions) -> dict[str, Any]:
    """Run every stage and write the run directory; returns ``results.json``'s content."""
    t0 = time.perf_counter()
    state = RunState(suite=suite, out=Path(opts.out), device=resolve_device(opts.device))
    state.tasks = instantiate_tasks(suite)
    explainers = instantiate_explainers(suite)
    # a previous results.json would look complete while this run is in progress
    (state.out / "results.json").unlink(missing_ok=True)
    state.out.mkdir(parents=True, exist_ok=True)
    stage_data(state)
    stage_target(state)
    state.target_card = {**state.target_card, "teacher_view": teacher_views(state)}
    stage_instances(state)
    stage_explainers(state, explainers, progress=opts.progress)
    scored = score_run(state)
    return publish_run(state, scored, started=t0)
