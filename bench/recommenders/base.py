"""The target-recommender contract every target implements.

A target is *history based*: it scores any list of item indices, so teacher instances, the
explainers that read its embeddings, and counterfactual deletion all use one code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bench.data.dataset import Split


@dataclass(frozen=True)
class FitReport:
    """What training did: epochs run, best epoch, validation curve, seconds."""

    epochs: int
    best_epoch: int
    best_valid: dict[str, float]
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


@runtime_checkable
class TargetRecommender(Protocol):
    """A trained recommender ``f`` that the explainers try to reproduce.

    Item indices are the dataset's internal 0-based indices.
    """

    name: str
    n_items: int

    def fit(self, split: Split, *, seed: int, device: str = "cpu") -> FitReport:
        """Train on ``split.train`` (early stopping on ``split.valid``)."""

    def scores(self, histories: Sequence[Sequence[int]], *, mask_history: bool = True) -> np.ndarray:
        """Scores ``[len(histories), n_items]`` (float32); history items are ``-inf`` when masked."""

    def user_embeddings(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """The user tower's vector for each history, ``[len(histories), dim]``; ``scores = U @ I.T (+ bias)``."""

    def item_embeddings(self) -> np.ndarray:
        """The item tower's table, ``[n_items, dim]``."""

    def save(self, directory: Path) -> None:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``."""

    def config(self) -> dict[str, Any]:
        """The hyper-parameters (JSON-serialisable); part of the cache key."""
