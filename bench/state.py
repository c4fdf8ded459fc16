"""The run state: what the stages of one run produced, handed from stage to stage.

The flow is ``suite -> data -> target -> instances -> explainers -> scores -> stats -> report``;
each stage (``bench.stages``) fills its fields of :class:`RunState`, and publishing
(``bench.publish``) reads them. ``cache_events`` records, per cached stage, whether it was
built (``"built"``) or reused from the run directory (``"reused"``): the manifest carries it, so a
rerun's reuse is visible without timing anything.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bench import seeds
from bench.config import SuiteConfig
from bench.llm.backbone import BackboneLoader

if TYPE_CHECKING:
    from bench.data.catalog import Catalog
    from bench.data.dataset import Dataset, Split
    from bench.recommenders.base import TargetRecommender
    from bench.tasks.base import Task
    from bench.types import Instance, Prediction

log = logging.getLogger(__name__)

#: the three disjoint user parts of a run, in the order their instances are built
PARTS: tuple[str, ...] = ("align_train", "align_valid", "align_test")


@dataclass(frozen=True)
class RunOptions:
    """How to run a suite: the run directory, the device asked for, whether to show progress bars."""

    out: Path
    device: str = "auto"
    progress: bool = True


@dataclass
class RunState:
    """What the stages produced, handed to scoring and publishing."""

    suite: SuiteConfig
    out: Path
    device: str
    dataset: Dataset | None = None
    split: Split | None = None
    catalog: Catalog | None = None
    target: TargetRecommender | None = None
    target_key: str = ""
    target_card: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    instances: dict[str, dict[str, list[Instance]]] = field(default_factory=dict)  # task -> part -> list
    user_parts: dict[str, np.ndarray] = field(default_factory=dict)
    predictions: dict[str, dict[str, list[Prediction]]] = field(
        default_factory=dict
    )  # label -> task -> preds
    explainer_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: cached stage ("target", "instances:<task>/<part>", "explainer:<label>") -> "built" | "reused"
    cache_events: dict[str, str] = field(default_factory=dict)
    #: the run's LLM backbones, each loaded once and shared by the explainers (bench.llm.backbone)
    backbones: BackboneLoader = field(default_factory=lambda: BackboneLoader())

    @property
    def cache(self) -> Path:
        return self.out / "cache"

    @property
    def seed(self) -> int:
        return self.suite.seed

    def rng(self, *purpose: int | str) -> np.random.Generator:
        """The run's random stream for ``purpose`` (:func:`bench.seeds.rng` of the suite seed)."""
        return seeds.rng(self.suite.seed, *purpose)

    def record(self, stage: str, event: Literal["built", "reused"]) -> None:
        self.cache_events[stage] = event


class stage_timer:
    """``with stage_timer(state, "target"):`` logs the stage and adds its wall time to
    ``state.stage_seconds`` (recorded in the manifest, never asserted on)."""

    def __init__(self, state: RunState, name: str) -> None:
        self.state, self.name = state, name

    def __enter__(self) -> stage_timer:
        self.t0 = time.perf_counter()
        log.info("stage %s ...", self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        dt = time.perf_counter() - self.t0
        self.state.stage_seconds[self.name] = round(self.state.stage_seconds.get(self.name, 0.0) + dt, 3)
        if exc[0] is None:
            log.info("stage %s done in %.1f s", self.name, dt)
