"""A typed reader of ``results.json`` (schema_version 1) and the one rule for comparing runs.

:func:`load_results` reads a results file, a run directory or an already parsed dict into a frozen
:class:`Run` (its tasks with their metric specs, result rows, comparisons, claims) and fails with one
line (:class:`~bench.errors.UserError`) on anything that is not a recxbench results.json of this
schema version. The renderers still read ``Run.raw``, the parsed dict, for the many optional blocks
(target card, protocol, explanations) that only they interpret.

:func:`check_comparable` is the one comparability rule, used by ``recxbench compare``, the HTML
board and ``recxbench report``; see its docstring.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.io import read_json

__all__ = [
    "SCHEMA_VERSION",
    "ClaimVerdict",
    "Comparison",
    "Dataset",
    "MetricSpec",
    "ResultRow",
    "Run",
    "TaskSpec",
    "check_comparable",
    "load_results",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a task as declared in ``tasks.<task>.metrics``."""

    name: str
    higher_is_better: bool = True
    binary: bool = False  # per-sample scores are 0/1 (McNemar's test applies)
    ratio: bool = False  # a corpus ratio (F1): samples carry ``ratio_parts``
    auc: bool = False  # a U-statistic (AUC): samples carry ``confidence`` and ``label``
    description: str = ""


@dataclass(frozen=True)
class TaskSpec:
    """A task of the run: its configuration hash and its metrics."""

    name: str
    config_sha256: str | None
    metrics: tuple[MetricSpec, ...] = ()
    kind: str | None = None
    main_metric: str | None = None
    n_instances: int | None = None
    description: str = ""

    def metric(self, name: str) -> MetricSpec | None:
        return next((m for m in self.metrics if m.name == name), None)


@dataclass(frozen=True)
class ResultRow:
    """One aggregate: an explainer's mean ``value`` of a metric on a task, with its CI."""

    explainer: str
    task: str
    metric: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    access: str | None = None
    unit: str | None = None
    group: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.explainer, self.task, self.metric


@dataclass(frozen=True)
class Comparison:
    """One paired test of two explainers on a task and metric."""

    task: str
    metric: str
    a: str
    b: str
    diff: float | None
    test: str | None
    p_value: float | None
    p_adjusted: float | None
    significant: bool


@dataclass(frozen=True)
class ClaimVerdict:
    """A claim of the suite (``"A > B on task/metric"``) and its verdict."""

    claim: str
    verdict: str
    p_adjusted: float | None = None
    diff: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Dataset:
    name: str | None
    sha256: str | None


@dataclass(frozen=True)
class Run:
    """A parsed ``results.json``. ``source`` names it in messages (a path, or ``results[i]``)."""

    source: str
    suite: str | None
    seed: int | None
    alpha: float | None
    correction: str | None
    dataset: Dataset
    tasks: Mapping[str, TaskSpec]
    results: tuple[ResultRow, ...]
    comparisons: tuple[Comparison, ...] = ()
    claims: tuple[ClaimVerdict, ...] = ()
    tolerances: Mapping[str, float] = field(default_factory=dict)
    resampling_unit: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def metric(self, task: str, metric: str) -> MetricSpec | None:
        spec = self.tasks.get(task)
        return spec.metric(metric) if spec is not None else None


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------


def load_results(source: str | os.PathLike[str] | Mapping[str, Any], *, where: str | None = None) -> Run:
    """A :class:`Run` from a ``results.json`` path, a run directory holding one, or a parsed dict.

    Raises :class:`UserError` (one line: what, where, fix) when the file is missing, is not JSON, is
    not a recxbench results.json, or has another ``schema_version``.
    """
    if isinstance(source, Mapping):
        return _parse(source, where or "results.json")
    if not isinstance(source, (str, os.PathLike)):
        raise UserError(
            f"results must be a JSON object, not {type(source).__name__}",
            where=where or "results.json",
            fix="pass the parsed results.json of a run",
        )
    path = Path(source)
    if path.is_dir():
        if not (path / "results.json").exists():
            raise UserError(
                "no results.json (not a finished run directory)",
                where=str(path),
                fix="point to a RUN_DIR written by `recxbench run`",
            )
        path = path / "results.json"
    elif not path.exists():
        raise UserError("no such file", where=str(path), fix="point to a results.json or a RUN_DIR")
    try:
        data = read_json(path)
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(
            f"results.json is not valid JSON ({err})", where=str(path), fix="re-run the suite"
        ) from None
    return _parse(data, where or str(path))


def _bad(what: str, where: str) -> UserError:
    return UserError(what, where=where, fix="pass the results.json of a finished `recxbench run`")


def _num(value: Any, what: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{what} must be a number, got {value!r}", where)
    return float(value)


def _int(value: Any, what: str, where: str) -> int | None:
    x = _num(value, what, where)
    if x is None or math.isnan(x):
        return None
    return int(x)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _mapping(value: Any, what: str, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(f"{what} must be a JSON object", where)
    return value


def _parse(data: Any, where: str) -> Run:
    if not isinstance(data, Mapping):
        raise UserError(
            "results must be a JSON object", where=where, fix="pass the parsed results.json of a run"
        )
    if "schema_version" not in data:
        raise _bad("not a recxbench results.json (no schema_version)", where)
    if data["schema_version"] != SCHEMA_VERSION:
        raise UserError(
            f"unsupported schema_version {data['schema_version']!r} (expected {SCHEMA_VERSION})",
            where=where,
            fix="re-run the suite with this version of recxbench",
        )
    for key in ("tasks", "results"):
        if key not in data:
            raise UserError(f"missing key {key!r}", where=where, fix="pass a complete results.json")
    tasks = {
        str(name): _task(str(name), spec, where)
        for name, spec in _mapping(data["tasks"], "tasks", where).items()
    }
    if not isinstance(data["results"], list):
        raise _bad("results must be a list of rows", where)
    rows = tuple(_row(i, r, where) for i, r in enumerate(data["results"]))
    dataset = _mapping(data.get("dataset"), "dataset", where)
    protocol = _mapping(data.get("protocol"), "protocol", where)
    tolerances = _mapping(data.get("tolerances"), "tolerances", where)
    return Run(
        source=where,
        suite=_str(data.get("suite")),
        seed=_int(data.get("seed"), "seed", where),
        alpha=_num(data.get("alpha"), "alpha", where),
        correction=_str(data.get("correction")),
        dataset=Dataset(name=_str(dataset.get("name")), sha256=_str(dataset.get("sha256"))),
        tasks=tasks,
        results=rows,
        comparisons=tuple(_comparison(i, c, where) for i, c in enumerate(data.get("comparisons") or [])),
        claims=tuple(_claim(i, c, where) for i, c in enumerate(data.get("claims") or [])),
        tolerances={str(k): float(_num(v, f"tolerances.{k}", where) or 0.0) for k, v in tolerances.items()},
        resampling_unit={
            str(k): str(v)
            for k, v in _mapping(protocol.get("resampling_unit"), "protocol.resampling_unit", where).items()
        },
        raw=data,
    )


def _task(name: str, spec: Any, where: str) -> TaskSpec:
    spec = _mapping(spec, f"tasks.{name}", where)
    metrics = []
    for j, m in enumerate(spec.get("metrics") or []):
        if not isinstance(m, Mapping) or "name" not in m:
            raise _bad(f"tasks.{name}.metrics[{j}] must be an object with a name", where)
        metrics.append(
            MetricSpec(
                name=str(m["name"]),
                higher_is_better=bool(m.get("higher_is_better", True)),
                binary=bool(m.get("binary", False)),
                ratio=bool(m.get("ratio", False)),
                auc=bool(m.get("auc", False)),
                description=str(m.get("description") or ""),
            )
        )
    return TaskSpec(
        name=name,
        config_sha256=_str(spec.get("config_sha256")),
        metrics=tuple(metrics),
        kind=_str(spec.get("kind")),
        main_metric=_str(spec.get("main_metric")),
        n_instances=_int(spec.get("n_instances"), f"tasks.{name}.n_instances", where),
        description=str(spec.get("description") or ""),
    )


def _row(i: int, r: Any, where: str) -> ResultRow:
    if not isinstance(r, Mapping):
        raise _bad(f"results[{i}] must be a JSON object", where)
    missing = [k for k in ("explainer", "task", "metric") if k not in r]
    if missing:
        raise UserError(
            f"results[{i}] lacks {', '.join(missing)}", where=where, fix="pass a complete results.json"
        )
    at = f"results[{i}]"
    return ResultRow(
        explainer=str(r["explainer"]),
        task=str(r["task"]),
        metric=str(r["metric"]),
        value=_num(r.get("value"), f"{at}.value", where),
        ci_low=_num(r.get("ci_low"), f"{at}.ci_low", where),
        ci_high=_num(r.get("ci_high"), f"{at}.ci_high", where),
        n=_int(r.get("n"), f"{at}.n", where),
        access=_str(r.get("access")),
        unit=_str(r.get("unit")),
        group=_int(r.get("group"), f"{at}.group", where),
    )


def _comparison(i: int, c: Any, where: str) -> Comparison:
    if not isinstance(c, Mapping):
        raise _bad(f"comparisons[{i}] must be a JSON object", where)
    at = f"comparisons[{i}]"
    return Comparison(
        task=str(c.get("task")),
        metric=str(c.get("metric")),
        a=str(c.get("a")),
        b=str(c.get("b")),
        diff=_num(c.get("diff"), f"{at}.diff", where),
        test=_str(c.get("test")),
        p_value=_num(c.get("p_value"), f"{at}.p_value", where),
        p_adjusted=_num(c.get("p_adjusted"), f"{at}.p_adjusted", where),
        significant=bool(c.get("significant", False)),
    )


def _claim(i: int, c: Any, where: str) -> ClaimVerdict:
    if not isinstance(c, Mapping):
        raise _bad(f"claims[{i}] must be a JSON object", where)
    return ClaimVerdict(
        claim=str(c.get("claim")),
        verdict=str(c.get("verdict")),
        p_adjusted=_num(c.get("p_adjusted"), f"claims[{i}].p_adjusted", where),
        diff=_num(c.get("diff"), f"claims[{i}].diff", where),
        note=str(c.get("note") or ""),
    )


# --------------------------------------------------------------------------------------------------
# the comparability rule
# --------------------------------------------------------------------------------------------------


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
