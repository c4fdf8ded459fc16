"""Per (task, metric) statistics of a board: the resampling unit, CIs, paired tests, and the flags a
reviewer needs to read them (identical predictions, lists shorter than K).

* **Unit.** When a task yields several instances per user (interest classification: a user's
  ``pairs_per_user`` likes and dislikes), they are not independent: CIs and paired tests then
  resample *users* (clusters) — ``stats.unit: auto`` (the default) decides per task, ``user`` or
  ``instance`` force one. The unit is written on every result row and on the protocol card.
* **Kind.** A metric is a mean of per-sample scores, a corpus ratio (F1: its parts are resampled),
  or a U-statistic (AUC: recomputed from the (score, label) pairs on every resample).
* **Identical predictions.** Two explainers that answered every instance of a task identically
  are not compared: the pair is reported with ``identical_predictions: true`` and p = 1, and it is
  left out of the multiple-comparison family (there is nothing to test). The same holds, per
  metric, for two explainers with identical per-sample values on that metric
  (``identical_scores: true``; e.g. several LLM rows that answer "no" to every question share
  every accuracy value while their AUCs differ).
* **Short lists.** A metric cut at K (``hr@10``) is flagged on a row whose lists are shorter than K
  (``short_list_share``, ``max_list_len``): such an ``hr@10`` is really a hit rate at the list length.

All draws come from :func:`bench.stats.stat_seed`, so the same inputs give the same numbers on every machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from itertools import combinations
from typing import Any

import numpy as np

from bench import stats
from bench.config import StatsConfig
from bench.errors import UserError
from bench.stats.keys import TEST_NAMES, stat_seed
from bench.tasks.base import Task
from bench.types import Instance, Prediction

_AT_K = re.compile(r"@(\d+)$")


def resampling_clusters(instances: Sequence[Instance], unit: str) -> np.ndarray | None:
    """The cluster (user) of each instance when the unit is users, else ``None`` (instances).

    ``auto``: users whenever some user has more than one instance in the task.
    """
    if unit == "instance" or not instances:
        return None
    users = np.asarray([i.user for i in instances], dtype=np.int64)
    if unit == "auto" and np.unique(users).size == users.size:
        return None
    return users


def prediction_fingerprint(preds: Sequence[Prediction]) -> str:
    """A hash of an explainer's answers to a task (outputs, scores and parse flags, in instance order)."""
    payload = json.dumps([[p.output, p.score, p.parse_ok] for p in preds], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def identical_pairs(fingerprints: Mapping[str, str]) -> set[tuple[str, str]]:
    """Pairs ``(a, b)``, ``a < b``, of explainers whose answers to a task are identical."""
    return {(a, b) for a, b in combinations(sorted(fingerprints), 2) if fingerprints[a] == fingerprints[b]}


def short_list_flags(task: Task, metric: str, lengths: np.ndarray | None) -> dict[str, Any]:
    """``{"short_list_share", "max_list_len"}`` when ``metric`` cuts at K and lists are shorter."""
    m = _AT_K.search(metric)
    if lengths is None or m is None or lengths.size == 0:
        return {}
    k = int(m.group(1))
    share = float(np.mean(lengths < k))
    return {"short_list_share": share, "max_list_len": int(lengths.max())} if share > 0 else {}


def compute_statistics(
    vectors: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]],
    tasks: Mapping[str, Task],
    access: Mapping[str, str],
    *,
    stats_cfg: StatsConfig,
    seed: int,
    ratios: Mapping[str, Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]]] | None = None,
    aucs: Mapping[str, Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]]] | None = None,
    clusters: Mapping[str, np.ndarray | None] | None = None,
    identical: Mapping[str, set[tuple[str, str]]] | None = None,
    list_lengths: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> tuple[list[dict], list[dict], dict]:
    """``vectors[task][metric][explainer]`` -> (results rows, comparisons, comparison index).

    ``ratios`` / ``aucs`` hold the parts of ratio metrics and the (score, label) vectors of AUC
    metrics, ``clusters[task]`` the user of each instance when users are resampled,
    ``identical[task]`` the explainer pairs with identical answers, ``list_lengths[task][explainer]``
    the answered list lengths. See the module docstring for what each changes.
    """
    results: list[dict] = []
    comparisons: list[dict] = []
    index: dict = {}
    alpha = float(stats_cfg.alpha)
    for task_name, task in tasks.items():
        specs = {m.name: m for m in task.metrics()}
        groups_of = (clusters or {}).get(task_name)
        same = (identical or {}).get(task_name, set())
        for metric, spec in specs.items():
            per_expl = {
                e: v
                for e, v in vectors.get(task_name, {}).get(metric, {}).items()
                if len(v) and not np.isnan(v).any()
            }
            if not per_expl:
                continue
            names = sorted(per_expl)
            parts = (ratios or {}).get(task_name, {}).get(metric, {})
            auc_in = (aucs or {}).get(task_name, {}).get(metric, {})
            if spec.auc and set(auc_in) >= set(names):
                kind = "auc"
            elif spec.ratio and set(parts) >= set(names):
                kind = "ratio"
            else:
                kind = "mean"
            # pairs with nothing to test: the same answers, or the same per-sample values here
            same_scores = {
                (a, b)
                for a, b in combinations(names, 2)
                if (a, b) not in same and np.array_equal(per_expl[a], per_expl[b])
            }
            table = stats.table_statistics(
                kind=kind,
                values=per_expl,
                binary=spec.binary,
                parts={e: parts[e] for e in names} if kind == "ratio" else None,
                auc={e: auc_in[e] for e in names} if kind == "auc" else None,
                clusters=groups_of,
                identical=[p for p in same | same_scores if p[0] in per_expl and p[1] in per_expl],
                method=str(stats_cfg.test),
                resamples=int(stats_cfg.resamples),
                seed=stat_seed(seed, task_name, metric),
                confidence=float(stats_cfg.confidence),
                correction=str(stats_cfg.correction),
            )
            tests = list(table.tests)
            if table.n_units < 2:  # one user (or instance): nothing to resample, nothing to test
                tests = [replace(t, p_value=1.0, p_adjusted=1.0) for t in tests]
            means = {e: float(np.mean(per_expl[e])) for e in names}
            groups = stats.rank_groups(
                means, table.tests, alpha=alpha, higher_is_better=spec.higher_is_better
            )
            for e in names:
                lo, hi = table.cis[e]
                results.append(
                    {
                        "explainer": e,
                        "access": access[e],
                        "task": task_name,
                        "metric": metric,
                        "value": means[e],
                        "ci_low": float(lo),
                        "ci_high": float(hi),
                        "n": int(per_expl[e].size),
                        "unit": table.unit,
                        "n_units": int(table.n_units),
                        "group": groups.get(e),
                        "higher_is_better": spec.higher_is_better,
                        **short_list_flags(task, metric, (list_lengths or {}).get(task_name, {}).get(e)),
                    }
                )
            for t in tests:
                index[(task_name, metric, t.a, t.b)] = t
                pair = tuple(sorted((str(t.a), str(t.b))))
                same_answers = pair in same
                untested = same_answers or pair in same_scores
                comparisons.append(
                    {
                        "task": task_name,
                        "metric": metric,
                        "a": t.a,
                        "b": t.b,
                        "diff": float(t.diff),
                        "test": TEST_NAMES.get(t.test, t.test),
                        "p_value": float(t.p_value),
                        "p_adjusted": float(t.p),
                        "significant": bool(t.p < alpha) and not untested,
                        "n": int(t.n),
                        "unit": table.unit,
                        **({"identical_predictions": True} if same_answers else {}),
                        **({"identical_scores": True} if untested and not same_answers else {}),
                        **({"ci_low": t.ci_low, "ci_high": t.ci_high} if t.ci_low is not None else {}),
                    }
                )
    return results, comparisons, index


def evaluate_claims(
    claims: Sequence[str], index: Mapping, tasks: Mapping[str, Task], alpha: float
) -> list[dict]:
    hib = {f"{t}/{m.name}": m.higher_is_better for t, task in tasks.items() for m in task.metrics()}
    out = []
    for text in claims:
        claim = stats.parse_claim(text)
        if (claim.task, claim.metric, claim.a, claim.b) not in index and (
            claim.task,
            claim.metric,
            claim.b,
            claim.a,
        ) not in index:
            out.append(
                {
                    "claim": text,
                    "verdict": "inconclusive",
                    "p_adjusted": None,
                    "diff": None,
                    "note": "no such comparison on this board",
                }
            )
            continue
        verdict = stats.evaluate_claim(claim, index, alpha=alpha, higher_is_better=hib)
        test = index.get((claim.task, claim.metric, claim.a, claim.b)) or index.get(
            (claim.task, claim.metric, claim.b, claim.a)
        )
        if test is not None and test.test == "identical_predictions":
            verdict["note"] = f"identical answers or {claim.metric} values: nothing to test"
        out.append(verdict)
    return out


def check_claims(
    claims: Sequence[str], explainer_labels: Sequence[str], task_names: Sequence[str] | Mapping[str, Task]
) -> None:
    """Fail early (before any training) on a claim that names an unknown explainer or task, or a
    metric its task does not report (given the tasks themselves rather than their names)."""
    for text in claims:
        c = stats.parse_claim(text)
        for name in (c.a, c.b):
            if name not in explainer_labels:
                raise UserError(
                    f"claim {text!r} names unknown explainer {name!r}",
                    where="claims",
                    fix=f"explainers: {', '.join(explainer_labels)}",
                )
        if c.task not in task_names:
            raise UserError(
                f"claim {text!r} names unknown task {c.task!r}",
                where="claims",
                fix=f"tasks: {', '.join(task_names)}",
            )
        task = task_names.get(c.task) if isinstance(task_names, Mapping) else None
        metrics = [m.name for m in task.metrics()] if task is not None else []
        if metrics and c.metric not in metrics:
            raise UserError(
                f"claim {text!r} names metric {c.metric!r}, which task {c.task!r} does not report",
                where="claims",
                fix=f"metrics of {c.task}: {', '.join(metrics)}",
            )
