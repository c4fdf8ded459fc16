"""Scores and statistics of a run: per-sample score vectors, then CIs, tests and claim verdicts.

Per (explainer, task) the task's kernels give per-sample score vectors; every aggregate ``value``
is the plain mean of the vector written to the samples file, so anyone can recompute it. CIs,
pairwise tests (one family per task and metric), rank groups and claim verdicts come from
:mod:`bench.evidence` (which uses :mod:`bench.stats`). Nothing here writes a file: publishing
(:mod:`bench.publish`) does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.evidence import (
    compute_statistics,
    evaluate_claims,
    identical_pairs,
    prediction_fingerprint,
    resampling_clusters,
)
from bench.io import fault_point
from bench.state import RunState
from bench.tasks.base import Task
from bench.types import Instance, Prediction

Vectors = dict[str, dict[str, dict[str, np.ndarray]]]  # task -> metric -> label -> per-sample values
Pairs = dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]]  # task -> metric -> label -> (a, b)


@dataclass
class ScoredRun:
    """What scoring and statistics produced for one run."""

    #: label -> task -> one samples-file row per align-test instance
    samples: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    vectors: Vectors = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)

    @property
    def units(self) -> dict[str, str]:
        """The resampling unit of each task's statistics (users or instances)."""
        return {r["task"]: r["unit"] for r in self.results}


def sample_rows(
    task: Task,
    instances: Sequence[Instance],
    preds: Sequence[Prediction],
    scores: Mapping[str, np.ndarray],
    user_ids: Sequence[str],
    parts: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[dict[str, Any]]:
    """The samples-file rows of one (explainer, task): instance, answer, label and every score."""
    details = task.sample_details(instances, preds) or [{} for _ in instances]
    rows = []
    for i, (inst, pred) in enumerate(zip(instances, preds)):
        extra: dict[str, Any] = dict(details[i])
        if parts:
            extra["ratio_parts"] = {m: [float(num[i]), float(den[i])] for m, (num, den) in parts.items()}
        rows.append(
            {
                "instance_id": inst.instance_id,
                "key": inst.key,
                "user_id": user_ids[inst.user],
                "history": list(inst.history),
                "candidates": list(inst.candidates),
                "prediction": pred.output,
                "confidence": pred.score,
                "label": inst.label,
                "raw": pred.raw,
                "parse_ok": pred.parse_ok,
                "scores": {m: float(v[i]) for m, v in scores.items()},
                **extra,
            }
        )
    return rows


def score_run(state: RunState) -> ScoredRun:
    """Score every explainer's predictions, then compute the run's statistics and claim verdicts."""
    assert state.dataset is not None
    t0 = time.perf_counter()
    out = ScoredRun()
    ratios: Pairs = {}
    aucs: Pairs = {}
    lengths: dict[str, dict[str, np.ndarray]] = {}
    prints: dict[str, dict[str, str]] = {}
    for task in state.tasks.values():
        task.bind(
            target=state.target,
            dataset=state.dataset,
            catalog=state.catalog,
            cache_dir=state.cache / "scoring",
            device=state.device,
            seed=state.seed,
            backbones=state.backbones,  # a local judge on the run's backbone shares its one load
        )
    for label, per_task in state.predictions.items():
        for task_name, preds in per_task.items():
            task = state.tasks[task_name]
            insts = state.instances[task_name]["align_test"]
            scores = task.score(insts, preds)
            parts = task.ratio_parts(insts, preds)
            out.samples.setdefault(label, {})[task_name] = sample_rows(
                task, insts, preds, scores, state.dataset.user_ids, parts
            )
            for metric, vec in scores.items():
                out.vectors.setdefault(task_name, {}).setdefault(metric, {})[label] = np.asarray(
                    vec, dtype=np.float64
                )
            for metric, pair in parts.items():
                ratios.setdefault(task_name, {}).setdefault(metric, {})[label] = pair
            for metric, pair in task.auc_inputs(insts, preds).items():
                aucs.setdefault(task_name, {}).setdefault(metric, {})[label] = pair
            n = task.list_lengths(preds)
            if n is not None:
                lengths.setdefault(task_name, {})[label] = n
            prints.setdefault(task_name, {})[label] = prediction_fingerprint(preds)
            fault_point("score:task")
    state.stage_seconds["scoring"] = round(time.perf_counter() - t0, 3)  # includes any judge

    t0 = time.perf_counter()
    fault_point("stats")
    access = {label: info["access"] for label, info in state.explainer_info.items()}
    out.results, out.comparisons, out.claims = run_statistics(
        state, access, out.vectors, ratios=ratios, aucs=aucs, lengths=lengths, prints=prints
    )
    state.stage_seconds["stats"] = round(time.perf_counter() - t0, 3)
    return out


def run_statistics(
    state: RunState,
    access: Mapping[str, str],
    vectors: Vectors,
    *,
    ratios: Pairs,
    aucs: Pairs,
    lengths: Mapping[str, Mapping[str, np.ndarray]],
    prints: Mapping[str, Mapping[str, str]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """``(results, comparisons, claims)`` of a run's per-sample scores: CIs and paired tests at the
    suite's resampling unit (:mod:`bench.evidence`), then the suite's claims — those a ``--set``
    override left dangling listed as not evaluated. The one statistics step of a run and of a
    re-import (:mod:`bench.rescore`)."""
    stats = state.suite.stats
    clusters = {t: resampling_clusters(state.instances[t]["align_test"], stats.unit) for t in state.tasks}
    results, comparisons, index = compute_statistics(
        vectors,
        state.tasks,
        access,
        stats_cfg=stats,
        seed=state.seed,
        ratios=ratios,
        aucs=aucs,
        clusters=clusters,
        identical={t: identical_pairs(p) for t, p in prints.items()},
        list_lengths=lengths,
    )
    claims = evaluate_claims(list(state.suite.claims), index, state.tasks, stats.alpha)
    claims += [skipped_claim(text, list(access), list(state.tasks)) for text in state.suite.skipped_claims]
    return results, comparisons, claims


def skipped_claim(text: str, labels: Sequence[str], tasks: Sequence[str]) -> dict[str, Any]:
    """The board entry of a claim an override left dangling: verdict ``not evaluated``, with the
    ``reason`` (``explainer not in this run`` / ``task not in this run``) and a note naming it."""
    from bench.stats import parse_claim

    claim = parse_claim(text)
    missing = [x for x in (claim.a, claim.b) if x not in labels]
    what, name = ("explainer", missing[0]) if missing else ("task", claim.task)
    return {
        "claim": text,
        "verdict": "not evaluated",
        "p_adjusted": None,
        "diff": None,
        "reason": f"{what} not in this run",
        "note": f"{what} {name!r} is not in this run (removed by an override)",
    }
