"""The explainer contract.

An explainer is fit on align-train instances (labels from the target ``f``) and then answers the
align-test instances of each task. It declares its *access level*, shown on the leaderboard:

* ``behavior``   — sees text (titles, metadata) and ``f``'s outputs only;
* ``embedding``  — also sees ``f``'s user/item embeddings;
* ``white-box``  — may use ``f`` itself (code and weights).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bench.types import Access, Instance, Prediction

if TYPE_CHECKING:
    from bench.data.catalog import Catalog
    from bench.data.dataset import Dataset, Split
    from bench.recommenders.base import TargetRecommender
    from bench.tasks.base import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExplainerContext:
    """Everything an explainer may use besides its instances.

    ``target`` is available to every explainer for the *embeddings* it exposes, but only explainers
    whose access level is ``embedding`` or ``white-box`` may read it; behavior explainers use
    ``split`` (train interactions) and ``catalog`` (titles, genres, years) only.
    """

    dataset: Dataset
    split: Split
    catalog: Catalog
    target: TargetRecommender
    tasks: Mapping[str, Task]
    device: str = "cpu"
    cache_dir: Path = Path(".")
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Explainer(ABC):
    """Base class; subclasses set ``name`` and ``access`` and implement ``fit``/``predict``.

    Constructor keyword arguments come from the suite YAML (``explainers: [{name: x, params: {...}}]``)
    and must be JSON-serialisable; they are part of the cache key.
    """

    name: ClassVar[str] = ""
    access: ClassVar[Access] = "behavior"
    #: task *kinds* this explainer answers; ``None`` = every alignment task.
    tasks: ClassVar[frozenset[str] | None] = None
    #: one line for ``recxbench list explainers``.
    summary: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    def supports(self, kind: str) -> bool:
        """Whether this explainer answers tasks of ``kind`` (others show as "n/a", never 0)."""
        return self.tasks is None or kind in self.tasks

    @abstractmethod
    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        """Learn from align-train instances (task name -> instances)."""

    @abstractmethod
    def predict(self, task: str, instances: list[Instance]) -> list[Prediction]:
        """Answer ``instances`` of ``task``; one prediction per instance, same order."""

    def explain(self, instances: list[Instance]) -> list[str]:
        """Explain the target's decision on each instance; optional."""
        raise NotImplementedError(f"explainer {self.name!r} does not produce explanations")

    def info(self) -> dict[str, Any]:
        """Provenance merged into the manifest (model ids, hyper-parameters, fidelity figures)."""
        return {"name": self.name, "access": self.access, "params": self.params}
