"""The recxbench side of an exported lm-eval task folder: ``recxbench.json`` and what it rebuilds.

``recxbench.json`` records the run's fingerprint (:func:`run_fingerprint`), each exported task's
spec (so the task object — and its metric kernels — is rebuilt exactly), the catalog (so generated
titles resolve as in the run) and the answer separator. The generated ``utils.py`` holds no logic:
its ``process_results`` and corpus aggregations call :class:`Bundle` (this module), which calls
the task's own ``score`` — the kernels the native rows were scored with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from bench import registry
from bench.answers import Permutation, RankedItems, YesNo
from bench.config.schema import TaskSpec
from bench.data.catalog import Catalog
from bench.hashing import stable_hash
from bench.io import read_json
from bench.lmeval.convert import prediction
from bench.tasks.base import Task
from bench.types import Instance, Prediction

BUNDLE_FILE = "recxbench.json"
#: bumped when the exported files change shape
FORMAT_VERSION = 1
ANSWERS: dict[str, type] = {"YesNo": YesNo, "Permutation": Permutation, "RankedItems": RankedItems}


def run_fingerprint(manifest: Mapping[str, Any]) -> str:
    """What makes a run's instances its own: dataset, target checkpoint, seed and task configs."""
    return stable_hash(
        {
            "dataset": manifest.get("dataset_sha256"),
            "target": manifest.get("target_checkpoint_sha256"),
            "seed": manifest.get("seed"),
            "tasks": manifest.get("task_config_sha256"),
        }
    )[:16]


def metric_function(metric: str) -> str:
    """The name of ``utils.py``'s corpus aggregation for ``metric`` (an identifier)."""
    return "corpus_" + re.sub(r"\W", "_", metric)


def spec_json(spec: TaskSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "kind": spec.kind,
        "version": spec.version,
        "description": spec.description,
        "params": dict(spec.params),
        "main_metric": spec.main_metric,
        "sha256": spec.sha256,
    }


def corpus_metrics(task: Task) -> list[str]:
    """Metrics whose value is a corpus statistic (ratio parts, AUC), not a mean of one-sample scores."""
    return [m.name for m in task.metrics() if m.ratio or m.auc]


@dataclass
class Bundle:
    """An exported folder's ``recxbench.json``, with the task objects and catalog it rebuilds."""

    data: dict[str, Any]
    _tasks: dict[str, Task] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: str | Path) -> Bundle:
        return cls(read_json(Path(directory) / BUNDLE_FILE))

    @property
    def fingerprint(self) -> str:
        return str(self.data["run"])

    @cached_property
    def catalog(self) -> Catalog:
        cat = self.data["catalog"]
        return Catalog(cat["titles"], [tuple(g) for g in cat["genres"]], cat["years"])

    def task(self, name: str) -> Task:
        if name not in self._tasks:
            spec = TaskSpec(**self.data["tasks"][name]["spec"])
            self._tasks[name] = registry.task_kinds.get(spec.kind)(spec)
        return self._tasks[name]

    def answer(self, name: str) -> type:
        return ANSWERS[self.data["tasks"][name]["answer"]]

    def prediction(self, doc: Mapping[str, Any], outputs: Sequence[Any]) -> Prediction:
        name = str(doc["instance"]["task"])
        return prediction(self.answer(name), doc, outputs, self.catalog)

    # -- lm-eval hooks (called from the generated utils.py) ----------------------------------------

    def process_results(self, doc: Mapping[str, Any], outputs: Sequence[Any]) -> dict[str, Any]:
        """Per-document metric values for lm-eval: the task's per-sample scores of this one answer;
        corpus metrics (F1, AUC) pass ``(instance, prediction)`` on to :meth:`corpus`."""
        name = str(doc["instance"]["task"])
        task = self.task(name)
        inst = Instance.from_json(dict(doc["instance"]))
        pred = self.prediction(doc, outputs)
        corpus = set(corpus_metrics(task))
        scores = task.score([inst], [pred])
        out: dict[str, Any] = {m: float(v[0]) for m, v in scores.items() if m not in corpus}
        for m in corpus:
            out[m] = (name, dict(doc["instance"]), pred.to_json())
        return out

    def corpus(self, metric: str, items: Sequence[Any]) -> float:
        """A corpus metric over lm-eval's per-document items: the mean of the task's per-sample
        contributions over all of them (their mean is the metric, as in ``results.json``)."""
        if not items:
            return float("nan")
        task = self.task(str(items[0][0]))
        insts = [Instance.from_json(dict(i[1])) for i in items]
        preds = [Prediction(**dict(i[2])) for i in items]
        vec = task.score(insts, preds).get(metric)
        return float("nan") if vec is None or len(vec) == 0 else float(np.mean(vec))
