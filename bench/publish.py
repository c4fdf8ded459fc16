"""Publish a scored run: ``results.json`` (the contract other tools and CI read), the samples
files, ``manifest.json`` and the leaderboard.

Everything is written atomically, and ``results.json`` last: its presence marks a finished run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from bench.answers import Text
from bench.data.recipes import recipe_card
from bench.io import read_json, write_json, write_jsonl
from bench.manifest import build_manifest
from bench.resources import tasks_dir
from bench.scoring import ScoredRun
from bench.state import RunState

log = logging.getLogger(__name__)

#: keys of an explainer's ``info()`` that are the harness's own wall times: the manifest keeps them,
#: results.json does not. (Training reports an explainer or the target writes — ``training.seconds``,
#: the target card's ``train_seconds`` — stay in results.json: the board shows them.)
TIMING_KEYS = frozenset({"fit_seconds"})

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
    assert state.split is not None and state.dataset is not None
    card = {
        "split": f"chronological leave-one-out: stable sort on raw timestamps (ties keep file order); last item test, "
        f"second-to-last valid; users with < {state.split.min_interactions} interactions dropped",
        "teacher": "labels are the target's own predictions on the history the explainer sees",
        "masking": MASKING_RULE,
        "access": ACCESS_RULE,
        "history_len": {t: task.params.get("history_len") for t, task in state.tasks.items()},
        "users": {p: int(len(r)) for p, r in state.user_parts.items()},
        "train_contexts_per_user": state.suite.users.train_contexts_per_user,
        "tasks": {t: task.protocol() for t, task in state.tasks.items()},
        "target_card": "full ranking over all items, the user's earlier items masked (the same exclusion "
        "rule as the labels; 'teacher view' rows: f reads only the shown window)",
        "stats": dataclasses.asdict(state.suite.stats),
        "resampling_unit": dict(units or {}),
    }
    recipe = recipe_card(state.dataset)
    if recipe is not None:  # the preprocessing recipe and its parameters (absent: the data as loaded)
        card["dataset_recipe"] = recipe
    return card


def publish_run(state: RunState, scored: ScoredRun, *, started: float) -> dict[str, Any]:
    """Write the samples, ``manifest.json``, the board and ``results.json`` (last); return the latter."""
    assert state.dataset is not None
    for label, per_task in scored.samples.items():
        for task_name, rows in per_task.items():
            write_jsonl(state.out / "samples" / label / f"{task_name}.jsonl", rows)
    explained = {
        t: {label: scored.samples[label][t] for label in scored.samples if t in scored.samples[label]}
        for t, task in state.tasks.items()
        if task.answer is Text
    }
    explained = {t: rows for t, rows in explained.items() if rows}
    suite = state.suite
    out = {
        "schema_version": 1,
        "suite": suite.name,
        "description": suite.description,
        "seed": suite.seed,
        "alpha": suite.stats.alpha,
        "correction": suite.stats.correction,
        "dataset": state.dataset.stats(),
        "target": state.target_card,
        "protocol": protocol_card(state, scored.units),
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
        "explainers": {label: explainer_entry(label, info) for label, info in state.explainer_info.items()},
        "results": scored.results,
        "comparisons": scored.comparisons,
        "claims": scored.claims,
        "tolerances": dict(suite.tolerances),
    }
    if explained:
        out["explanations"] = explanation_examples(state, explained)
    validity = {
        k: v["attribute_validity"] for k, v in out["explainers"].items() if v.get("attribute_validity")
    }
    if validity:  # optional: guided-embedding's attribute validity card (bench/report/attributes.py)
        out["attribute_validity"] = validity
    decoding = {
        label: info["decoding"] for label, info in state.explainer_info.items() if info.get("decoding")
    }
    if decoding:
        out["protocol"]["decoding"] = decoding
    out = finite(out)
    state.stage_seconds["total"] = round(time.perf_counter() - started, 3)
    manifest = build_manifest(state)
    write_json(state.out / "manifest.json", manifest)
    _render(out, manifest, state)
    write_json(state.out / "results.json", out)  # last: its presence marks a finished run
    return out


def explainer_entry(label: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """An explainer's results.json entry: its whole ``info()`` (provenance a plugin adds is kept),
    with the board's fields first and wall times left to the manifest."""
    head = {
        "access": info["access"],
        "summary": info.get("summary", ""),
        "name": info.get("name", label),
    }
    return {**head, **{k: v for k, v in info.items() if k not in head and k not in TIMING_KEYS}}


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
        picks = sorted(
            int(i) for i in state.rng(task_name).choice(len(insts), size=min(k, len(insts)), replace=False)
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


def finite(obj: Any) -> Any:
    """JSON has no NaN: undefined values become ``null``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    return obj
