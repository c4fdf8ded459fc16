"""An "always-first" ranker: the whole explainer plugin is this file.

It answers ranking tasks only, by keeping the candidates in the order they were shown (a floor:
the order is a seeded shuffle, so it scores like a random ranker). Every other task shows "n/a":
it implements ``rank`` and nothing else, and ``Explainer.supports`` reads that from the class.
Use it in a suite with ``explainers: [always-first]`` once this module is loaded
(``--plugin plugins.always_first``).
"""

from __future__ import annotations

from collections.abc import Mapping

from bench import registry
from bench.answers import Permutation
from bench.explainers.base import Explainer, ExplainerContext
from bench.tasks.base import Task
from bench.types import Instance


class AlwaysFirst(Explainer):
    name = "always-first"
    access = "behavior"
    summary = "ranks the candidates in the order shown (a plugin example)"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        """Nothing to learn."""

    def rank(self, task: Task, instances: list[Instance]) -> list[Permutation]:
        return [Permutation(inst.candidates, raw="as shown") for inst in instances]


registry.explainers.register(AlwaysFirst.name, AlwaysFirst)
