"""Scores -> statistics -> ``results.json`` (the contract other tools and CI read).

Per (explainer, task) the task's kernels give per-sample score vectors; they are written to
``samples/<explainer>/<task>.jsonl`` and every aggregate ``value`` is the plain mean of the vector
written there, so anyone can recompute it. CIs, pairwise tests (one family per task and metric),
rank groups and claim verdicts come from :mod:`bench.evidence` (which uses :mod:`bench.stats`).
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.evidence import (
    compute_statistics,
    evaluate_claims,
    identical_pairs,
    prediction_fingerprint,
    resampling_clusters,
)
from bench.io import write_json, write_jsonl
from bench.manifest import build_manifest
from bench.tasks.base import Task
from bench.types import Instance, Prediction

if TYPE_CHECKING:
    from bench.runner import RunState

log = logging.getLogger(__name__)


def sample_rows(
    task: Task,
    instances: Sequence[Instance],
    preds: Sequence[Prediction],
    scores: Mapping[str, np.ndarray],
    user_ids: Sequence[str],
    parts: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[dict[str, Any]]:
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


MASKING_RULE = (
    "f reads the history window the explainer is shown; every item of the user's whole prior history "
    "(not only the window) is excluded from f's candidates (RecExplainer's rule: earlier items -> -inf), "
    "so no label, ranking candidate or classification item is an item the user already interacted with"
)
ACCESS_RULE = (
    "explainers receive unlabelled instances with opaque ids in a seeded shuffled order; behavior: "
    "titles, metadata, align-train instances with f's labels and the interactions of users who are not "
    "scored; embedding: also f's item table and f's user vectors of the shown histories; white-box: f"
)


def protocol_card(state: RunState, units: Mapping[str, str] | None = None) -> dict[str, Any]:
    assert state.split is not None
    u = state.suite.raw["users"]
    return {
        "split": f"chronological leave-one-out: stable sort on raw timestamps (ties keep file order); last item test, "
        f"second-to-last valid; users with < {state.split.min_interactions} interactions dropped",
        "teacher": "labels are the target's own predictions on the history the explainer sees",
        "masking": MASKING_RULE,
        "access": ACCESS_RULE,
        "history_len": {t: task.params.get("history_len") for t, task in state.tasks.items()},
        "users": {p: int(len(r)) for p, r in state.user_parts.items()},
        "train_contexts_per_user": u["train_contexts_per_user"],
        "tasks": {t: task.protocol() for t, task in state.tasks.items()},
        "target_card": "full ranking over all items, the user's earlier items masked (the same exclusion "
        "rule as the labels; 'teacher view' rows: f reads only the shown window)",
        "stats": dict(state.suite.raw["stats"]),
        "resampling_unit": dict(units or {}),
    }


def finish_run(state: RunState, *, started: float) -> dict[str, Any]:
    """Score, write samples, compute statistics, write results.json, manifest and the report."""
    assert state.dataset is not None
    t0 = time.perf_counter()
    vectors: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    ratios: dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}
    explained: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for task in state.tasks.values():
        task.bind(
            target=state.target,
            dataset=state.dataset,
            catalog=state.catalog,
            cache_dir=state.cache / "scoring",
            device=state.device,
            seed=int(state.suite.raw["seed"]),
        )
    aucs: dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}
    lengths: dict[str, dict[str, np.ndarray]] = {}
    prints: dict[str, dict[str, str]] = {}
    for label, per_task in state.predictions.items():
        for task_name, preds in per_task.items():
            task = state.tasks[task_name]
            insts = state.instances[task_name]["align_test"]
            scores = task.score(insts, preds)
            parts = task.ratio_parts(insts, preds)
            rows = sample_rows(task, insts, preds, scores, state.dataset.user_ids, parts)
            write_jsonl(state.out / "samples" / label / f"{task_name}.jsonl", rows)
            if task.uses_explanations:
                explained.setdefault(task_name, {})[label] = rows
            for metric, vec in scores.items():
                vectors.setdefault(task_name, {}).setdefault(metric, {})[label] = np.asarray(
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
    state.stage_seconds["scoring"] = round(time.perf_counter() - t0, 3)  # includes any judge
    t0 = time.perf_counter()
    access = {label: info["access"] for label, info in state.explainer_info.items()}
    cfg = state.suite.raw
    unit = str(cfg["stats"].get("unit", "auto"))
    clusters = {t: resampling_clusters(state.instances[t]["align_test"], unit) for t in state.tasks}
    results, comparisons, index = compute_statistics(
        vectors,
        state.tasks,
        access,
        stats_cfg=cfg["stats"],
        seed=int(cfg["seed"]),
        ratios=ratios,
        aucs=aucs,
        clusters=clusters,
        identical={t: identical_pairs(p) for t, p in prints.items()},
        list_lengths=lengths,
    )
    claims = evaluate_claims(cfg["claims"], index, state.tasks, float(cfg["stats"]["alpha"]))
    claims += [
        {
            "claim": text,
            "verdict": "not evaluated",
            "p_adjusted": None,
            "diff": None,
            "note": "an explainer or the task it names is not in this run",
        }
        for text in state.suite.skipped_claims
    ]
    state.stage_seconds["stats"] = round(time.perf_counter() - t0, 3)
    out = {
        "schema_version": 1,
        "suite": state.suite.name,
        "description": cfg["description"],
        "seed": int(cfg["seed"]),
        "alpha": float(cfg["stats"]["alpha"]),
        "correction": cfg["stats"]["correction"],
        "dataset": state.dataset.stats(),
        "target": state.target_card,
        "protocol": protocol_card(state, {r["task"]: r["unit"] for r in results}),
        "tasks": {
            t: {
                "kind": task.spec.kind,
                "version": task.spec.version,
                "description": task.spec.description,
                "main_metric": task.spec.main_metric,
                "config_sha256": task.spec.sha256,
                "n_instances": len(state.instances[t]["align_test"]),
                "metrics": [m.to_json() for m in task.metrics()],
            }
            for t, task in state.tasks.items()
        },
        "explainers": {
            label: {
                "access": info["access"],
                "summary": info.get("summary", ""),
                "name": info.get("name", label),
                **{
                    k: info[k]
                    for k in ("fidelity", "backbone", "training", "injection", "decoding")
                    if k in info
                },
            }
            for label, info in state.explainer_info.items()
        },
        "results": results,
        "comparisons": comparisons,
        "claims": claims,
        "tolerances": dict(cfg["tolerances"]),
    }
    if explained:
        out["explanations"] = explanation_examples(state, explained)
    decoding = {
        label: info["decoding"] for label, info in state.explainer_info.items() if info.get("decoding")
    }
    if decoding:
        out["protocol"]["decoding"] = decoding
    out = _finite(out)
    state.stage_seconds["total"] = round(time.perf_counter() - started, 3)
    manifest = build_manifest(state)
    write_json(state.out / "manifest.json", manifest)
    _render(out, manifest, state)
    write_json(state.out / "results.json", out)  # last: its presence marks a finished run
    return out


def explanation_examples(
    state: RunState, explained: Mapping[str, Mapping[str, list[dict[str, Any]]]], *, k: int = 3
) -> dict:
    """A few explanations per explainer for the board: the same ``k`` instances for every explainer
    (chosen by the seed), with the item, the target's decision, the judge's grade and the
    counterfactual figure — people judge explanations by reading them."""
    assert state.dataset is not None
    titles = state.dataset.titles
    out: dict[str, Any] = {}
    for task_name, per_expl in explained.items():
        task = state.tasks[task_name]
        insts = state.instances[task_name]["align_test"]
        seq = np.random.SeedSequence([int(state.suite.raw["seed"]), zlib.crc32(task_name.encode())])
        picks = sorted(
            int(i)
            for i in np.random.default_rng(seq).choice(len(insts), size=min(k, len(insts)), replace=False)
        )
        examples = []
        for i in picks:
            inst = insts[i]
            entry: dict[str, Any] = {
                "instance_id": inst.instance_id,
                "user_id": state.dataset.user_ids[inst.user],
                "history": [titles[h] for h in inst.history],
                "item": titles[inst.candidates[0]] if inst.candidates else "",
                "decision": "like" if int(inst.label) == 1 else "dislike",
                "explanations": {},
            }
            for label, rows in per_expl.items():
                row = rows[i]
                entry["explanations"][label] = {
                    "text": row["prediction"],
                    "grade": row.get("grade_used", row["scores"].get("rubric")),
                    "cf_fidelity": row["scores"].get("cf_fidelity"),
                    "decision_correct": row["scores"].get("decision_correct"),
                    "cited_titles": row.get("cited_titles", []),
                }
            examples.append(entry)
        judge_id = task.protocol().get("judge_id")
        out[task_name] = {
            "judge": {"id": judge_id, "agreement": judge_agreement(judge_id)},
            "examples": examples,
        }
    return out


def judge_agreement(judge_id: str | None) -> dict | None:
    """The judge's agreement with the shipped graded set, from ``tasks/judge_check/agreement.json``
    (written by ``recxbench judge-check --record``), or ``None`` when the judge was never checked."""
    from bench.io import read_json
    from bench.resources import tasks_dir

    path = tasks_dir() / "judge_check" / "agreement.json"
    if not judge_id or not path.exists():
        return None
    return read_json(path).get(judge_id)


def _render(results: dict, manifest: dict, state: RunState) -> None:
    try:
        from bench.report import render_leaderboard
    except ImportError:  # pragma: no cover - report package always ships
        return
    render_leaderboard(results, manifest, out_dir=state.out)


def _finite(obj: Any) -> Any:
    """JSON has no NaN: undefined values become ``null``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
