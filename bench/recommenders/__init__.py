"""Target recommenders: SASRec, history-based MF and popularity, plus evaluation and checkpoint I/O.

Exports are lazy (PEP 562) so that importing :mod:`bench.recommenders.base` or listing the
registry does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bench.recommenders.base import FitReport, TargetRecommender

if TYPE_CHECKING:
    from bench.recommenders.checkpoint import checkpoint_hash, load_target
    from bench.recommenders.evaluation import evaluate_full_ranking, target_card
    from bench.recommenders.mf import MF, MFConfig
    from bench.recommenders.popularity import Popularity
    from bench.recommenders.sasrec import SASRec, SASRecConfig

_LAZY = {
    "SASRec": "bench.recommenders.sasrec",
    "SASRecConfig": "bench.recommenders.sasrec",
    "MF": "bench.recommenders.mf",
    "MFConfig": "bench.recommenders.mf",
    "Popularity": "bench.recommenders.popularity",
    "evaluate_full_ranking": "bench.recommenders.evaluation",
    "target_card": "bench.recommenders.evaluation",
    "load_target": "bench.recommenders.checkpoint",
    "checkpoint_hash": "bench.recommenders.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MF",
    "FitReport",
    "MFConfig",
    "Popularity",
    "SASRec",
    "SASRecConfig",
    "TargetRecommender",
    "checkpoint_hash",
    "evaluate_full_ranking",
    "load_target",
    "target_card",
]
