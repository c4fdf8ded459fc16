"""Datasets: loaders, the leave-one-out split, the catalog (ids <-> titles)."""

from __future__ import annotations

from bench.data.dataset import Dataset, Split, leave_one_out

__all__ = ["Dataset", "Split", "leave_one_out"]
