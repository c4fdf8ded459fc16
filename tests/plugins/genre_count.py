"""A new task kind with a new answer type: the whole task plugin is this file (plus a task YAML).

``genre_count``: the explainer sees a history and a genre (the genre of the most recent history
item, in the public meta) and answers how many history items carry that genre. The answer type
:class:`Count` names the method ``count``; no built-in explainer has it, so every one of them shows
"n/a" for this task with no edit. :class:`GenreCounter` is an explainer that answers it.

A task YAML for it::

    task: genre_count
    kind: genre_count
    version: 1
    description: count the history items of the shown genre
    main_metric: exact
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from bench import registry
from bench.explainers.base import Explainer, ExplainerContext
from bench.tasks.base import BuildInput, MetricSpec, Task
from bench.types import Instance, Prediction


@dataclass(frozen=True)
class Count:
    """A count: how many history items have the shown genre."""

    method: ClassVar[str] = "count"
    value: int

    def to_prediction(self, instance_id: str) -> Prediction:
        return Prediction(instance_id, int(self.value))


class GenreCount(Task):
    kind = "genre_count"
    answer = Count
    output = "the number of history items of the shown genre"
    defaults = {"history_len": 9}

    def metrics(self) -> list[MetricSpec]:
        return [
            MetricSpec("exact", binary=True, description="the count is right"),
            MetricSpec("abs_error", higher_is_better=False, description="|answered - true count|"),
        ]

    def build(self, inp: BuildInput) -> list[Instance]:
        genres = inp.split.dataset.genres
        out = []
        for c in self.contexts(inp):
            if not c.history or not genres[c.history[-1]]:
                continue
            genre = genres[c.history[-1]][0]
            label = sum(genre in genres[h] for h in c.history)
            out.append(self.make_instance(inp, c, label=label, meta={"genre": genre}))
        return out

    def teacher_items(self, inst: Instance) -> tuple[int, ...]:
        return ()

    def public_meta_keys(self) -> frozenset[str]:
        return frozenset({"genre"})

    def score(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, np.ndarray]:
        pairs = [(int(p.output), int(i.label)) for i, p in zip(instances, predictions, strict=True)]
        return {
            "exact": np.asarray([float(a == b) for a, b in pairs]),
            "abs_error": np.asarray([float(abs(a - b)) for a, b in pairs]),
        }


class GenreCounter(Explainer):
    """Counts the shown genre in the history: exact on ``genre_count``, n/a elsewhere."""

    name = "genre-counter"
    access = "behavior"
    summary = "counts the history items of the shown genre (a plugin example)"

    def supports(self, task: Task) -> bool:
        # a new answer type is claimed explicitly: a helper that merely shares its name never is
        return task.answer is Count or super().supports(task)

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.genres = ctx.dataset.genres

    def count(self, task: Task, instances: list[Instance]) -> list[Count]:
        return [Count(sum(i.meta["genre"] in self.genres[h] for h in i.history)) for i in instances]


registry.task_kinds.register(GenreCount.kind, GenreCount)
registry.explainers.register(GenreCounter.name, GenreCounter)
