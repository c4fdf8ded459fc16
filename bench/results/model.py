"""The typed form of a ``results.json`` (schema_version 1): frozen dataclasses, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


#: metrics whose name (before ``@K``) means lower is better, for files that do not declare a metric
LOWER_IS_BETTER = frozenset({"hallucination_rate", "parse_failure_rate"})


def undeclared_metric(name: str) -> MetricSpec:
    """The spec of a metric a results file reports without declaring it: the one direction rule
    the reader, ``compare`` and the board share."""
    return MetricSpec(name, higher_is_better=name.split("@")[0] not in LOWER_IS_BETTER)


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
