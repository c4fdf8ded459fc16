"""The one rule deciding whether runs may be compared (``recxbench compare``, the board, ``report``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bench.errors import UserError
from bench.results.model import Run
from bench.results.reader import load_results

logger = logging.getLogger(__name__)


def check_comparable(
    runs: Sequence[Run | Mapping[str, Any]], *, paired: bool = False, names: Sequence[str] | None = None
) -> tuple[str, ...]:
    """Raise :class:`UserError` unless the runs may be compared; return the tasks they share, sorted.

    The rule, for ``recxbench compare`` (``paired=True``: a run against a baseline, sample by
    sample) and for a board of several runs (``recxbench report``, :func:`bench.report.render_leaderboard`):

    1. the runs share at least one task, and every task they share has the same ``config_sha256``
       in every run (the hash covers the task's parameters, prompts and metrics, not the dataset
       or the seed);
    2. a board puts the runs side by side task by task, so the runs must have the **same task set**;
       a paired comparison compares the tasks both runs have (a cheaper run may gate a subset);
    3. a paired comparison pairs samples by ``instance_id``, so the runs must use the **same
       dataset** (``dataset.sha256``); a board may show one suite on several datasets (its run
       labels are ``<dataset> · seed <seed>``). The target checkpoint is not compared: a retrained
       target is what the gate is for, and its hash differs between machines;
    4. runs of differently named suites that pass 1-3 are compared, with a warning.

    ``compare`` also checks, per explainer and task, that both runs were scored on the same
    instances (it reads the samples files; this function reads only results.json). ``runs`` are
    :class:`Run` objects or parsed dicts; ``names`` label the runs in messages (default: each run's
    ``source``).
    """
    if not runs:
        raise UserError("no runs to compare", fix="pass at least one results.json")
    runs = [r if isinstance(r, Run) else load_results(r, where=f"results[{i}]") for i, r in enumerate(runs)]
    labels = list(names) if names is not None else [r.source for r in runs]
    first = runs[0]
    if paired:
        for label, run in zip(labels[1:], runs[1:], strict=True):
            if run.dataset.sha256 != first.dataset.sha256:
                raise UserError(
                    f"{labels[0]} and {label} use different datasets (dataset sha256 differs)",
                    where=f"{run.source}:dataset.sha256",
                    fix="compare runs of the same suite on the same data",
                )
    else:
        for label, run in zip(labels[1:], runs[1:], strict=True):
            if set(run.tasks) != set(first.tasks):
                diff = sorted(set(run.tasks) ^ set(first.tasks))
                raise UserError(
                    f"{label} has a different task set than {labels[0]} (differs in: {', '.join(diff)})",
                    where=run.source,
                    fix="render only runs of the same suite together",
                )
    common = set(first.tasks).intersection(*(r.tasks for r in runs[1:]))
    if not common:
        raise UserError(
            f"the runs have no task in common ({', '.join(labels)})", fix="compare runs of the same suite"
        )
    for label, run in zip(labels[1:], runs[1:], strict=True):
        for task in sorted(common):
            a, b = first.tasks[task].config_sha256, run.tasks[task].config_sha256
            if a != b:
                raise UserError(
                    f"task {task!r} is configured differently in {labels[0]} and {label} "
                    f"(config hash {str(a)[:12]} vs {str(b)[:12]})",
                    where=f"{run.source}:tasks.{task}.config_sha256",
                    fix="refresh the baseline after a task change (see baselines/README.md)"
                    if paired
                    else "render runs with different task configs on separate pages",
                )
    suites = sorted({str(r.suite) for r in runs})
    if len(suites) > 1:
        logger.warning("runs come from differently named suites with the same tasks: %s", ", ".join(suites))
    return tuple(sorted(common))
