"""``recxbench compare``: gate a run against a baseline run, sample by sample.

For every (explainer, task, metric) present in both runs, the per-sample scores are paired by
``instance_id`` and tested with the board's own statistics (:func:`bench.stats.table_statistics`:
McNemar's exact test for 0/1 metrics and the paired randomization test otherwise; users resampled
where the board resampled users; F1 by its parts and AUC recomputed per resample); Holm's correction
runs over all comparisons of the gate. A **regression** is a change in
the worse direction that is significant after correction, or larger than the metric's absolute
tolerance (``tolerances: {"task/metric": x}`` in the suite, or ``--tolerance``). Improvements are
reported the same way. Runs that :func:`bench.results.check_comparable` rejects (different task
configurations or datasets), or whose samples cover different instances, are not comparable (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from bench import stats
from bench.errors import UserError
from bench.io import read_jsonl
from bench.results import MetricSpec, Run, check_comparable, load_results
from bench.results.model import undeclared_metric
from bench.stats.keys import TEST_NAMES, stat_seed


@dataclass(frozen=True)
class Change:
    explainer: str
    task: str
    metric: str
    baseline: float
    current: float
    delta: float  # current - baseline
    worse_by: float  # > 0 when the current run is worse (direction-aware)
    p_value: float
    p_adjusted: float
    test: str
    n: int
    reason: str = ""


@dataclass
class CompareReport:
    regressions: list[Change] = field(default_factory=list)
    improvements: list[Change] = field(default_factory=list)
    unchanged: int = 0
    markdown: str = ""
    alpha: float = 0.05


def _load(run: Path) -> Run:
    if not (run / "results.json").exists():
        raise UserError(
            "no results.json (not a finished run directory)",
            where=str(run),
            fix="point to a RUN_DIR written by `recxbench run`",
        )
    return load_results(run / "results.json")


def _samples(run: Path, explainer: str, task: str) -> dict[str, dict[str, Any]]:
    """``instance_id -> row`` of a samples file (scores, ratio parts, user, confidence, label)."""
    path = run / "samples" / explainer / f"{task}.jsonl"
    if not path.exists():
        raise UserError(
            "samples file missing", where=str(path), fix="the run directory is incomplete; re-run the suite"
        )
    return {row["instance_id"]: row for row in read_jsonl(path)}


def _table(
    a: dict[str, dict[str, Any]],
    b: dict[str, dict[str, Any]],
    ids: list[str],
    metric: str,
    info: MetricSpec,
    *,
    by_user: bool,
    resamples: int,
    seed: int,
) -> tuple[Any, float, float] | None:
    """The paired test of current vs baseline on one metric, at the board's resampling unit and
    with the board's statistic (mean, corpus ratio or AUC). Returns (test, current, baseline)."""
    va = np.array([a[i]["scores"].get(metric, np.nan) for i in ids], dtype=np.float64)
    vb = np.array([b[i]["scores"].get(metric, np.nan) for i in ids], dtype=np.float64)
    if np.isnan(va).any() or np.isnan(vb).any():
        return None
    clusters = np.unique([str(a[i].get("user_id")) for i in ids], return_inverse=True)[1] if by_user else None
    kw: dict[str, Any] = {"kind": "mean", "values": {"current": va, "baseline": vb}}
    parts = [(r.get("ratio_parts") or {}).get(metric) for src in (a, b) for r in (src[i] for i in ids)]
    conf = [r.get("confidence") for src in (a, b) for r in (src[i] for i in ids)]
    if info.ratio and all(p is not None for p in parts):
        n = len(ids)
        pa = (np.array([p[0] for p in parts[:n]]), np.array([p[1] for p in parts[:n]]))
        pb = (np.array([p[0] for p in parts[n:]]), np.array([p[1] for p in parts[n:]]))
        kw = {"kind": "ratio", "parts": {"current": pa, "baseline": pb}}
    elif info.auc and all(c is not None for c in conf):
        labels = np.array([float(a[i]["label"]) for i in ids])
        ca, cb = np.array(conf[: len(ids)], dtype=np.float64), np.array(conf[len(ids) :], dtype=np.float64)
        kw = {"kind": "auc", "auc": {"current": (ca, labels), "baseline": (cb, labels)}}
    binary = info.binary and set(np.unique(np.concatenate([va, vb]))) <= {0.0, 1.0}
    table = stats.table_statistics(
        **kw, binary=binary, clusters=clusters, resamples=resamples, seed=seed, correction="none"
    )
    (test,) = table.tests  # "baseline" vs "current": only its p-value is used
    return test, table.values["current"], table.values["baseline"]


def compare_runs(
    run_dir: Path,
    baseline_dir: Path,
    *,
    alpha: float | None = None,
    tolerance: float | None = None,
    resamples: int = 10_000,
) -> CompareReport:
    cur, base = _load(run_dir), _load(baseline_dir)
    check_comparable([cur, base], paired=True, names=("the run", "the baseline"))
    alpha = float(alpha if alpha is not None else (cur.alpha if cur.alpha is not None else 0.05))
    seed = cur.seed if cur.seed is not None else 0
    pending: list[dict[str, Any]] = []
    cur_rows = {r.key for r in cur.results}
    base_rows = {r.key for r in base.results}
    pairs = sorted({(e, t) for e, t, _ in cur_rows & base_rows})
    units = cur.resampling_unit
    for explainer, task in pairs:
        a, b = _samples(run_dir, explainer, task), _samples(baseline_dir, explainer, task)
        if set(a) != set(b):
            missing, extra = len(set(b) - set(a)), len(set(a) - set(b))
            raise UserError(
                f"{explainer}/{task}: the runs were scored on different instances ({missing} baseline ids missing, {extra} new)",
                where=str(run_dir / "samples" / explainer / f"{task}.jsonl"),
                fix="use the same suite, seed and user split as the baseline, or refresh the baseline",
            )
        ids = sorted(a)
        metrics = sorted({m for _, t, m in cur_rows & base_rows if t == task})
        for metric in metrics:
            if (explainer, task, metric) not in cur_rows & base_rows:
                continue
            info = cur.metric(task, metric) or undeclared_metric(metric)
            seed_k = stat_seed(seed, "compare", explainer, task, metric)
            found = _table(
                a, b, ids, metric, info, by_user=units.get(task) == "user", resamples=resamples, seed=seed_k
            )
            if found is None:
                continue
            test, cur_value, base_value = found
            hib = info.higher_is_better
            delta = cur_value - base_value  # equals the difference of the means in the samples files
            pending.append(
                {
                    "explainer": explainer,
                    "task": task,
                    "metric": metric,
                    "baseline": base_value,
                    "current": cur_value,
                    "delta": delta,
                    "worse_by": -delta if hib else delta,
                    "p_value": float(test.p_value),
                    "test": TEST_NAMES.get(test.test, test.test),
                    "n": len(ids),
                }
            )
    adjusted = stats.adjust([p["p_value"] for p in pending], method="holm") if pending else []
    report = CompareReport(alpha=alpha)
    for p, q in zip(pending, adjusted):
        tol = tolerance if tolerance is not None else cur.tolerances.get(f"{p['task']}/{p['metric']}")
        significant = q < alpha
        reasons = []
        if p["worse_by"] > 0 and significant:
            reasons.append(f"significant drop (p_adj={q:.3g} < {alpha})")
        if tol is not None and p["worse_by"] > tol + 1e-12:
            reasons.append(f"drop {p['worse_by']:.4f} > tolerance {tol}")
        change = Change(**p, p_adjusted=float(q), reason="; ".join(reasons))
        if reasons:
            report.regressions.append(change)
        elif p["worse_by"] < 0 and significant:
            report.improvements.append(Change(**p, p_adjusted=float(q), reason="significant improvement"))
        else:
            report.unchanged += 1
    report.markdown = _markdown(report, run_dir, baseline_dir)
    return report


def _markdown(report: CompareReport, run_dir: Path, baseline_dir: Path) -> str:
    head = ["explainer", "task", "metric", "baseline", "current", "change", "p (Holm)", "test", "why"]

    def rows(changes: list[Change]) -> list[list[Any]]:
        return [
            [
                c.explainer,
                c.task,
                c.metric,
                f"{c.baseline:.4f}",
                f"{c.current:.4f}",
                f"{c.delta:+.4f}",
                f"{c.p_adjusted:.3g}",
                c.test,
                c.reason,
            ]
            for c in changes
        ]

    lines = [f"## recxbench compare: `{run_dir}` vs baseline `{baseline_dir}` (α = {report.alpha}, Holm)", ""]
    if report.regressions:
        lines += [
            f"**{len(report.regressions)} regression(s)**",
            "",
            tabulate(rows(report.regressions), headers=head, tablefmt="github"),
            "",
        ]
    else:
        lines += ["**No regressions.**", ""]
    if report.improvements:
        lines += [
            f"{len(report.improvements)} improvement(s):",
            "",
            tabulate(rows(report.improvements), headers=head, tablefmt="github"),
            "",
        ]
    lines.append(f"{report.unchanged} metric(s) unchanged within noise and tolerance.")
    return "\n".join(lines)
