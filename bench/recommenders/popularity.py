"""Most-popular baseline: every history gets the same scores, the train-split item counts."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from bench.data.dataset import Split
from bench.errors import UserError
from bench.recommenders.base import FitReport
from bench.recommenders.evaluation import as_histories, evaluate_full_ranking, mask_items
from bench.recommenders.torch_target import check_n_items

log = logging.getLogger(__name__)


class Popularity:
    """Scores = how often each item occurs in the train sequences.

    Count ties are broken by item index (lower index first) by adding ``(n_items - i) / (n_items + 1)``
    to item ``i``'s count: the fraction is below 1, so ``floor(score)`` is still the count, and the
    full-ranking metrics (which rank a target below items scored *strictly* higher) stay fair. In
    float32 the tie-break is exact while ``max_count * n_items < 2**24`` (ML-100k: about 850k).

    The embedding view is rank one: ``user_embeddings = ones [n, 1]``, ``item_embeddings = scores[:, None]``.
    """

    name: ClassVar[str] = "popularity"

    def __init__(self, n_items: int) -> None:
        self.n_items = int(n_items)
        self._counts: np.ndarray | None = None
        self._scores: np.ndarray | None = None
        self.fit_report: FitReport | None = None

    def config(self) -> dict[str, Any]:
        return {"n_items": self.n_items}

    @property
    def counts(self) -> np.ndarray:
        """Raw train counts per item (float64)."""
        self._require()
        assert self._counts is not None
        return self._counts.copy()

    def fit(
        self, split: Split, *, seed: int, device: str = "cpu", disable_progress: bool = False
    ) -> FitReport:
        """Count train items; ``seed``, ``device`` and ``disable_progress`` are accepted for the protocol."""
        check_n_items(self.n_items, split, self.name)
        start = time.perf_counter()
        self._set_counts(split.item_popularity)
        valid = evaluate_full_ranking(self, split.train, split.valid, ks=(10,))
        self.fit_report = FitReport(
            epochs=0,
            best_epoch=0,
            best_valid=valid,
            seconds=time.perf_counter() - start,
            history=[{"epoch": 0.0, **valid}],
        )
        return self.fit_report

    def _set_counts(self, counts: np.ndarray) -> None:
        counts = np.asarray(counts, dtype=np.float64)
        self._counts = counts.copy()
        tie = (self.n_items - np.arange(self.n_items)) / (self.n_items + 1)
        self._scores = (counts + tie).astype(np.float32)

    def _require(self) -> np.ndarray:
        if self._scores is None:
            raise RuntimeError("popularity: call fit() or load it with load_target() before scoring")
        return self._scores

    def scores(self, histories: Sequence[Sequence[int]], *, mask_history: bool = True) -> np.ndarray:
        """The popularity row for each history; history items are ``-inf`` when masked."""
        hs = as_histories(histories, self.n_items)
        out = np.tile(self._require(), (len(hs), 1))
        if mask_history:
            mask_items(out, hs)
        return out

    def user_embeddings(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        hs = as_histories(histories, self.n_items)
        self._require()
        return np.ones((len(hs), 1), dtype=np.float32)

    def item_embeddings(self) -> np.ndarray:
        return self._require()[:, None].copy()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        # Save the counts, not the tie-broken scores, so the file is readable on its own.
        counts = self._counts if self._counts is not None else np.zeros(self.n_items)
        return {"counts": torch.from_numpy(counts.copy())}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        counts = tensors["counts"].double().numpy()
        if (counts < 0).any():
            raise UserError("popularity checkpoint holds negative counts")
        self._set_counts(counts)

    def save(self, directory: Path) -> None:
        """Write ``model.safetensors`` (the counts) and ``config.json`` into ``directory``."""
        from bench.recommenders.checkpoint import save_target

        self._require()
        save_target(self, directory)
