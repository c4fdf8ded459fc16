"""A notebook-friendly view of boards: run directories as tidy pandas DataFrames.

>>> from bench.api import load_run
>>> board = load_run("runs/quick")            # or load_run(["runs/a", "runs/b"])
>>> board.results.query("metric == 'accuracy'")[["explainer", "value", "ci_low", "ci_high"]]
>>> board.samples.pivot_table(index="instance_id", columns="explainer", values="value")

* ``results`` — one row per run × explainer × task × metric: ``value`` (the mean of the per-sample
  scores), ``ci_low``/``ci_high``, ``n``, the resampling unit, the rank ``group``, the access level;
* ``samples`` — one row per run × explainer × task × instance × metric, the per-sample ``value``
  from ``samples/<explainer>/<task>.jsonl`` (a mean of them per group is the ``results`` value);
* ``comparisons`` — one row per paired test (``a``, ``b``, ``diff``, ``p_value``, ``p_adjusted``,
  ``significant``), and ``claims`` — one row per claim with its verdict.

Every frame has a ``run`` column (the directory's name, or the names given as a mapping), so several
runs stack into one frame. Reading validates ``results.json`` with :func:`bench.results.load_results`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.io import read_jsonl
from bench.results import load_results

__all__ = ["Board", "load_run"]

RunDirs = str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]]


@dataclass(frozen=True)
class Board:
    """The DataFrames of one or more runs (see the module docstring)."""

    results: Any  # pandas.DataFrame
    samples: Any
    comparisons: Any
    claims: Any


def _named(runs: RunDirs) -> dict[str, Path]:
    if isinstance(runs, (str, os.PathLike)):
        return {Path(runs).name: Path(runs)}
    if isinstance(runs, Mapping):
        return {str(k): Path(v) for k, v in runs.items()}
    out: dict[str, Path] = {}
    for r in runs:
        name = Path(r).name
        if name in out:
            raise UserError(f"two runs are named {name!r}", fix="pass a mapping {name: run_dir}")
        out[name] = Path(r)
    return out


def _sample_rows(run: str, directory: Path, explainers: Iterable[str]) -> list[dict[str, Any]]:
    rows = []
    for label in explainers:
        for path in sorted((directory / "samples" / label).glob("*.jsonl")):
            task = path.stem
            for s in read_jsonl(path):
                for metric, value in s["scores"].items():
                    rows.append(
                        {
                            "run": run,
                            "explainer": label,
                            "task": task,
                            "instance_id": s["instance_id"],
                            "user_id": s.get("user_id"),
                            "metric": metric,
                            "value": float("nan") if value is None else float(value),
                        }
                    )
    return rows


def load_run(runs: RunDirs, *, samples: bool = True) -> Board:
    """The DataFrames of the run directories ``runs`` (one path, several, or ``{name: path}``);
    ``samples=False`` skips the per-sample frame (large boards)."""
    import pandas as pd

    results, sample_rows, comparisons, claims = [], [], [], []
    for name, directory in _named(runs).items():
        raw = dict(load_results(directory).raw)
        results += [{"run": name, **r} for r in raw.get("results", [])]
        comparisons += [{"run": name, **c} for c in raw.get("comparisons", [])]
        claims += [{"run": name, **c} for c in raw.get("claims", [])]
        if samples:
            sample_rows += _sample_rows(name, directory, raw.get("explainers", {}))
    sample_cols = ["run", "explainer", "task", "instance_id", "user_id", "metric", "value"]
    return Board(
        results=pd.DataFrame(results),
        samples=pd.DataFrame(sample_rows, columns=sample_cols),
        comparisons=pd.DataFrame(comparisons),
        claims=pd.DataFrame(claims),
    )
