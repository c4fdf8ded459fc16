"""Table models built from a run's ``results.json`` (pure functions, no I/O).

Every builder returns frozen dataclasses (:class:`Table`, :class:`Card`) that the writers (Markdown,
CSV, LaTeX) and the HTML template render, so all formats show the same numbers, the same "n/a" and
the same markers. A missing (explainer, task) combination is *not applicable*: it is shown as
``"n/a"`` and never counted as 0. Display text is plain Unicode; each writer escapes it for its
own format (the HTML template relies on Jinja2 autoescaping).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bench.report._model as m
from bench.report._model import NA, WORSE, Card, Cell, Column, Field, Row, Table
from bench.report.cards import protocol_card, provenance, target_card

__all__ = [
    "NA",
    "WORSE",
    "Card",
    "Cell",
    "Column",
    "Field",
    "Row",
    "Table",
    "TaskView",
    "claims_table",
    "cross_run_table",
    "protocol_card",
    "provenance",
    "summary_table",
    "target_card",
    "task_table",
    "task_tables",
]

_SUPERSCRIPT_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class TaskView:
    """A task's rows in display order, with the best explainer on the main metric."""

    task: str
    metric: str
    higher_is_better: bool
    applicable: tuple[str, ...]  # explainers with a main-metric value, best first
    not_applicable: tuple[str, ...]  # explainers without one (shown as n/a, last)

    @property
    def best(self) -> str | None:
        return self.applicable[0] if self.applicable else None


def task_view(results: Mapping[str, Any], task: str) -> TaskView:
    """Order a task's explainers by its main metric (respecting ``higher_is_better``), n/a last."""
    metric = m.main_metric(results, task)
    hib = m.higher_is_better(results, task, metric)
    index = m.index(results)
    have, missing = [], []
    for name in m.explainer_names(results):
        entry = index.get((name, task, metric))
        if entry is None or m.num(entry.get("value")) is None:
            missing.append(name)
        else:
            have.append((name, float(entry["value"]), entry.get("group")))

    def key(item: tuple[str, float, Any]) -> tuple[float, float, str]:
        name, value, group = item
        return (-value if hib else value, float(group) if group is not None else math.inf, name)

    have.sort(key=key)
    return TaskView(task, metric, hib, tuple(h[0] for h in have), tuple(missing))


def _group_cell(group: Any) -> Cell:
    g = m.num(group)
    if g is None:
        return Cell(NA, na=True)
    return Cell(str(int(g)), sort=g, group=int(g), title=f"rank group {int(g)}")


def summary_table(results: Mapping[str, Any], *, id_prefix: str = "") -> Table:
    """Explainers × each task's main metric (value and rank group), access level and mean rank.

    Mean rank is the mean of the per-task rank-group numbers over the tasks where the explainer
    applies; rows are sorted by it (ties: more tasks first, then name).
    """
    index = m.index(results)
    tasks = m.task_names(results)
    mains = {t: m.main_metric(results, t) for t in tasks}
    hibs = {t: m.higher_is_better(results, t, mains[t]) for t in tasks}
    columns = [Column("explainer", "Explainer", numeric=False), Column("access", "Access", numeric=False)]
    for t in tasks:
        arrow = "↑" if hibs[t] else "↓"
        columns.append(
            Column(
                t,
                f"{t} · {mains[t]} {arrow}",
                higher_is_better=hibs[t],
                description=m.task_description(results, t),
            )
        )
    columns += [
        Column("tasks", "Tasks", description="tasks the explainer applies to"),
        Column(
            "mean_rank",
            "Mean rank",
            higher_is_better=False,
            description="mean rank group over applicable tasks",
        ),
    ]
    built: list[tuple[tuple[Any, ...], list[Cell], str]] = []
    for name in m.explainer_names(results):
        cells = [Cell(name, numeric=False), m.access_cell(m.access_of(results, name))]
        groups: list[float] = []
        for t in tasks:
            entry = index.get((name, t, mains[t]))
            value = m.num(entry.get("value")) if entry else None
            if value is None:
                cells.append(Cell(NA, na=True, title="not applicable"))
                continue
            g = m.num(entry.get("group"))
            if g is not None:
                groups.append(g)
            short = bool(m.num(entry.get("short_list_share")))
            cells.append(
                Cell(
                    m.fmt(value) + (f" {m.SHORT_LIST}" if short else ""),
                    sort=value,
                    group=int(g) if g is not None else None,
                    title=m.ci_title(entry) + ("; lists shorter than K" if short else ""),
                )
            )
        mean_rank = sum(groups) / len(groups) if groups else None
        cells.append(Cell(f"{len(groups)}/{len(tasks)}", sort=len(groups)))
        cells.append(Cell(NA, na=True) if mean_rank is None else Cell(f"{mean_rank:.2f}", sort=mean_rank))
        key = (mean_rank is None, mean_rank if mean_rank is not None else 0.0, -len(groups), name)
        built.append((key, cells, name))
    built.sort(key=lambda b: b[0])
    m.mark_best([b[1] for b in built], columns)
    rows = [Row(name, tuple(cells)) for _, cells, name in built]
    return Table(
        id=f"{id_prefix}summary",
        title="Summary",
        columns=tuple(columns),
        rows=tuple(rows),
        description="Main metric per task with its rank group; mean rank over the tasks an explainer applies to.",
        notes=tuple(
            f"{t}: {note}"
            for t in tasks
            if any(
                m.num(r.get("short_list_share"))
                for r in results.get("results", [])
                if r.get("task") == t and r.get("metric") == mains[t]
            )
            and (note := m.short_list_note(results, t))
        ),
        sorted_by=len(columns) - 1,
        sorted_desc=False,
    )


def task_table(results: Mapping[str, Any], task: str, *, ci_style: str = "pm", id_prefix: str = "") -> Table:
    """One task: every metric as mean ± half-CI (``ci_style="pm"``) or mean [low, high] (``"interval"``).

    Rows are sorted by the main metric; n/a explainers come last. The main-metric cell carries
    ``▼`` when the explainer is significantly worse than the best after correction, and ranx-style
    superscript letters naming the rows it is significantly better than.
    """
    if ci_style not in ("pm", "interval"):
        raise ValueError(f"ci_style must be 'pm' or 'interval', got {ci_style!r}")
    view = task_view(results, task)
    index = m.index(results)
    specs = m.metric_specs(results, task)
    # ranx-style row letters; left out past 26 rows, where single letters would be ambiguous
    letters = (
        dict(zip(view.applicable, _SUPERSCRIPT_LETTERS, strict=False)) if len(view.applicable) <= 26 else {}
    )
    columns = [Column("explainer", "Explainer", numeric=False), Column("access", "Access", numeric=False)]
    for spec in specs:
        hib = bool(spec.get("higher_is_better", True))
        columns.append(
            Column(
                spec["name"],
                f"{spec['name']} {'↑' if hib else '↓'}",
                higher_is_better=hib,
                description=str(spec.get("description", "")),
                main=spec["name"] == view.metric,
            )
        )
    columns += [
        Column("n", "n", description="number of evaluated users (main metric)"),
        Column(
            "group",
            "Group",
            description="rank group on the main metric (1 = not significantly worse than the best)",
        ),
        Column("delta", "Δ best", description=f"{view.metric} minus the best explainer's"),
        Column("p", "p (adj.)", description="corrected p-value of the comparison with the best"),
    ]
    names = [*view.applicable, *view.not_applicable]
    best_entry = index.get((view.best, task, view.metric)) if view.best else None
    rows = []
    for name in names:
        cells = [
            Cell(name, numeric=False, letter=letters.get(name, "")),
            m.access_cell(m.access_of(results, name)),
        ]
        cmp = m.find_comparison(results, task, view.metric, name, view.best) if view.best else None
        for spec in specs:
            entry = index.get((name, task, spec["name"]))
            cell = m.value_cell(entry, ci_style=ci_style)
            if spec["name"] == view.metric and not cell.na:
                marker = ""
                if cmp is not None and cmp.significant and name != view.best:
                    better = cmp.diff > 0 if view.higher_is_better else cmp.diff < 0
                    marker = m.BETTER if better else WORSE
                sup = "".join(
                    letters[o]
                    for o in view.applicable
                    if o != name
                    and o in letters
                    and m.significantly_better(results, task, view.metric, name, o, view.higher_is_better)
                )
                cell = m.replace_cell(cell, marker=marker, sup=sup)
            cells.append(cell)
        main = index.get((name, task, view.metric))
        n = m.num(main.get("n")) if main else None
        cells.append(Cell(NA, na=True) if n is None else Cell(str(int(n)), sort=n))
        cells.append(_group_cell(main.get("group") if main else None))
        cells += m.delta_cells(name, view.best, main, best_entry, cmp)
        rows.append(cells)
    m.mark_best(rows, columns)
    notes = []
    if view.not_applicable:
        notes.append("n/a: not applicable to " + ", ".join(view.not_applicable) + ".")
    for note in (
        m.short_list_note(results, task),
        m.unit_note(results, task),
        m.identical_note(results, task, view.metric),
    ):
        if note:
            notes.append(note)
    return Table(
        id=f"{id_prefix}task-{m.slug(task)}",
        title=task,
        columns=tuple(columns),
        rows=tuple(Row(name, tuple(cells)) for name, cells in zip(names, rows, strict=True)),
        description=m.task_description(results, task),
        notes=tuple(notes),
        sorted_by=next(i for i, c in enumerate(columns) if c.main) if any(c.main for c in columns) else None,
        sorted_desc=view.higher_is_better,
    )


def task_tables(
    results: Mapping[str, Any], *, ci_style: str = "pm", id_prefix: str = ""
) -> tuple[Table, ...]:
    """:func:`task_table` for every task, in the order of ``results["tasks"]``."""
    return tuple(
        task_table(results, t, ci_style=ci_style, id_prefix=id_prefix) for t in m.task_names(results)
    )


def claims_table(results: Mapping[str, Any], *, id_prefix: str = "") -> Table:
    """The suite's pre-registered claims with their verdicts, Δ and corrected p-values."""
    columns = (
        Column("claim", "Claim", numeric=False),
        Column("verdict", "Verdict", numeric=False),
        Column("diff", "Δ"),
        Column("p", "p (adj.)"),
    )
    rows = []
    for i, claim in enumerate(results.get("claims") or []):
        verdict = str(claim.get("verdict", ""))
        badge = f"verdict-{verdict}" if verdict in m.VERDICTS else "verdict-other"
        if claim.get("reason"):  # "not evaluated (explainer not in this run)"
            verdict = f"{verdict} ({claim['reason']})"
        diff, p = m.num(claim.get("diff")), m.num(claim.get("p_adjusted"))
        cells = (
            Cell(str(claim.get("claim", "")), numeric=False),
            Cell(verdict, numeric=False, badge=badge),
            Cell(NA, na=True) if diff is None else Cell(m.fmt(diff, signed=True), sort=diff),
            Cell(NA, na=True) if p is None else Cell(m.fmt_p(p), sort=p),
        )
        rows.append(Row(f"claim-{i}", cells))
    notes = tuple(f"{c.get('claim')}: {c['note']}." for c in results.get("claims") or [] if c.get("note"))
    return Table(id=f"{id_prefix}claims", title="Claims", columns=columns, rows=tuple(rows), notes=notes)


def cross_run_table(
    runs: Sequence[Mapping[str, Any]], labels: Sequence[str], *, id_prefix: str = ""
) -> Table:
    """Explainers × runs: each run's mean rank, the mean over runs, and each task's mean main metric."""
    if len(runs) != len(labels):
        raise ValueError("one label per run is needed")
    summaries = [summary_table(r) for r in runs]
    names: list[str] = []
    for r in runs:
        names += [n for n in m.explainer_names(r) if n not in names]
    tasks = m.task_names(runs[0])
    index = [m.index(r) for r in runs]
    hibs = {t: m.higher_is_better(runs[0], t, m.main_metric(runs[0], t)) for t in tasks}
    columns = [Column("explainer", "Explainer", numeric=False)]
    columns += [
        Column(
            f"run{i + 1}",
            f"Mean rank · run {i + 1}",
            higher_is_better=False,
            description=f"run {i + 1}: {lab}",
        )
        for i, lab in enumerate(labels)
    ]
    columns.append(Column("overall", "Mean rank · all runs", higher_is_better=False))
    columns += [
        Column(
            t, f"{t} · {m.main_metric(runs[0], t)} {'↑' if hibs[t] else '↓'} (mean)", higher_is_better=hibs[t]
        )
        for t in tasks
    ]
    body: list[tuple[tuple[Any, ...], list[Cell], str]] = []
    for name in names:
        cells = [Cell(name, numeric=False)]
        ranks = []
        for s in summaries:
            row = next((r for r in s.rows if r.key == name), None)
            cell = row.cells[-1] if row else Cell(NA, na=True)
            cells.append(m.replace_cell(cell, best=False))
            if not cell.na:
                ranks.append(float(cell.sort))
        overall = sum(ranks) / len(ranks) if ranks else None
        cells.append(Cell(NA, na=True) if overall is None else Cell(f"{overall:.2f}", sort=overall))
        for t in tasks:
            vals = [
                v
                for i, r in enumerate(runs)
                if (v := m.num((index[i].get((name, t, m.main_metric(r, t))) or {}).get("value"))) is not None
            ]
            mean = sum(vals) / len(vals) if vals else None
            cells.append(
                Cell(NA, na=True)
                if mean is None
                else Cell(m.fmt(mean), sort=mean, title=f"{len(vals)} run(s)")
            )
        body.append(((overall is None, overall or 0.0, name), cells, name))
    body.sort(key=lambda b: b[0])
    m.mark_best([b[1] for b in body], columns)
    rows = tuple(Row(name, tuple(cells)) for _, cells, name in body)
    return Table(
        id=f"{id_prefix}cross-run",
        title="Across runs",
        columns=tuple(columns),
        rows=rows,
        description="Mean rank per run and over all runs; mean main metric per task over the runs where it applies.",
        sorted_by=len(labels) + 1,
        sorted_desc=False,
    )
