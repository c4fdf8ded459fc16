"""Statistics of a run rebuilt from its samples files, and the run republished.

A finished run keeps every explainer's answers and per-sample scores in ``samples/<label>/<task>.jsonl``.
:func:`statistics_from_samples` turns those files (and the run's align-test instances, for the
resampling unit) back into exactly what :func:`bench.scoring.score_run` hands to
:func:`bench.evidence.compute_statistics` — per-sample vectors, ratio parts, AUC inputs, list
lengths and answer fingerprints — so the CIs, paired tests, rank groups and claim verdicts are those
of a fresh run. A row added to ``samples/`` (an imported lm-eval model) is then one more explainer on
the same instances: :func:`republish` rewrites ``results.json`` and the board, ``results.json`` last.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from bench.errors import UserError
from bench.evidence import prediction_fingerprint
from bench.io import read_jsonl, write_json
from bench.scoring import run_statistics
from bench.state import RunState
from bench.types import Prediction

log = logging.getLogger(__name__)

__all__ = ["prediction_of_row", "republish", "statistics_from_samples"]


def prediction_of_row(row: Mapping[str, Any]) -> Prediction:
    """The prediction a samples-file row records."""
    return Prediction(
        instance_id=str(row["instance_id"]),
        output=row["prediction"],
        score=row.get("confidence"),
        raw=row.get("raw", ""),
        parse_ok=bool(row.get("parse_ok", True)),
    )


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def statistics_from_samples(state: RunState, access: Mapping[str, str]) -> dict[str, list[dict]]:
    """``{"results", "comparisons", "claims"}`` of the explainers ``access`` names, from their
    samples files under ``state.out`` and the run's align-test instances (``state.instances``)."""
    vectors: dict = {}
    ratios: dict = {}
    aucs: dict = {}
    lengths: dict = {}
    prints: dict = {}
    for label in access:
        for task_name, task in state.tasks.items():
            path = state.out / "samples" / label / f"{task_name}.jsonl"
            if not path.is_file():
                continue
            insts = state.instances[task_name]["align_test"]
            rows = read_jsonl(path)
            if [r["instance_id"] for r in rows] != [i.instance_id for i in insts]:
                raise UserError(
                    f"{path}: its instances are not the run's {task_name} align-test instances",
                    fix="remove the file, or re-import it from the matching lm-eval output",
                )
            preds = [prediction_of_row(r) for r in rows]
            metrics = {m for r in rows for m in r["scores"]}
            for metric in metrics:
                vec = np.asarray([_nan(r["scores"].get(metric)) for r in rows], dtype=np.float64)
                vectors.setdefault(task_name, {}).setdefault(metric, {})[label] = vec
            for metric in {m for r in rows for m in r.get("ratio_parts", {})}:
                parts = np.asarray([r["ratio_parts"][metric] for r in rows], dtype=np.float64)
                ratios.setdefault(task_name, {}).setdefault(metric, {})[label] = (parts[:, 0], parts[:, 1])
            for metric, pair in task.auc_inputs(insts, preds).items():
                aucs.setdefault(task_name, {}).setdefault(metric, {})[label] = pair
            n = task.list_lengths(preds)
            if n is not None:
                lengths.setdefault(task_name, {})[label] = n
            prints.setdefault(task_name, {})[label] = prediction_fingerprint(preds)
    results, comparisons, claims = run_statistics(
        state, access, vectors, ratios=ratios, aucs=aucs, lengths=lengths, prints=prints
    )
    return {"results": results, "comparisons": comparisons, "claims": claims}


def republish(state: RunState, results: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """Recompute the statistics of every explainer in ``results["explainers"]`` from the samples
    files, then rewrite ``manifest.json``, the board and ``results.json`` (last, atomically)."""
    from bench.publish import finite
    from bench.report import render_leaderboard

    access = {label: str(e["access"]) for label, e in results["explainers"].items()}
    fresh = statistics_from_samples(state, access)
    out = finite({**results, **fresh})
    out["protocol"] = {
        **out.get("protocol", {}),
        "resampling_unit": {r["task"]: r["unit"] for r in fresh["results"]},
    }
    write_json(state.out / "manifest.json", manifest)
    render_leaderboard(out, manifest, out_dir=state.out)
    write_json(state.out / "results.json", out)  # last: its presence marks a finished run
    return out
