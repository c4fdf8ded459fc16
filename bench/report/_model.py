"""Table model dataclasses and the small lookup/formatting helpers shared by the report builders.

Private to :mod:`bench.report`: the public entry points are in :mod:`bench.report.tables`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from bench.results.model import undeclared_metric

NA = "n/a"
#: C0/C1 control characters but tab and newline (ANSI escapes start with ESC, 0x1b)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """``text`` without control characters: an ANSI escape in a title or an explanation must not
    recolour (or rewrite) the terminal that prints the board, nor hide in a file."""
    return _CONTROL.sub("", text)


WORSE = "▼"
BETTER = "▲"
MINUS = "−"
VERDICTS = ("supported", "refuted", "inconclusive")
ACCESS_LEVELS = ("behavior", "embedding", "white-box")
#: Metrics known to be lower-is-better when ``results["tasks"]`` does not say.


@dataclass(frozen=True)
class Column:
    """A table column. ``higher_is_better`` is ``None`` for columns without a "best" value."""

    key: str
    label: str
    numeric: bool = True
    higher_is_better: bool | None = None
    description: str = ""
    main: bool = False  # the task's main metric


@dataclass(frozen=True)
class Cell:
    """One formatted cell; ``sort`` is the raw number (or ``None``) that sorting uses."""

    text: str
    sort: float | None = None
    numeric: bool = True
    na: bool = False  # not applicable: shown as "n/a", sorted last
    best: bool = False  # best value in its column (shown bold)
    group: int | None = None  # rank group badge
    marker: str = ""  # "▼" significantly worse than the best, "▲" significantly better
    sup: str = ""  # ranx-style letters of the rows this one is significantly better than
    letter: str = ""  # this row's own letter
    badge: str = ""  # CSS badge kind for text cells: "access-…", "verdict-…"
    title: str = ""  # tooltip (exact CI, p-value)


@dataclass(frozen=True)
class Row:
    key: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    description: str = ""
    notes: tuple[str, ...] = ()
    sorted_by: int | None = None  # column the rows are initially sorted by
    sorted_desc: bool = False


@dataclass(frozen=True)
class Field:
    label: str
    value: str
    mono: bool = False  # hashes, configs: shown in a monospace font


@dataclass(frozen=True)
class Card:
    title: str
    fields: tuple[Field, ...]
    tables: tuple[Table, ...] = ()


class Comparison(NamedTuple):
    diff: float  # oriented as a - b
    p_adjusted: float | None
    significant: bool
    ci_low: float | None  # CI of the difference, oriented as a - b, when the stats layer gave one
    ci_high: float | None


#: marks a @K value computed on lists shorter than K
SHORT_LIST = "†"


def replace_cell(cell: Cell, **changes: Any) -> Cell:
    return dataclasses.replace(cell, **changes)


# ----------------------------------------------------------------------------------- formatting


def num(x: Any) -> float | None:
    """``x`` as a finite float, or ``None`` (missing, non-numeric, NaN)."""
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt(x: float | None, *, digits: int = 3, signed: bool = False) -> str:
    """Display a number: 3 decimals (1 from 100 up), a true minus sign, ``+`` when ``signed``."""
    if x is None:
        return NA
    text = f"{abs(x):,.1f}" if abs(x) >= 100 else f"{abs(x):.{digits}f}"
    if x < 0 and float(text.replace(",", "")) != 0:
        return MINUS + text
    return ("+" if signed and x > 0 else "") + text


def fmt_p(p: float | None) -> str:
    if p is None:
        return NA
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def slug(text: str) -> str:
    """An HTML-id / LaTeX-label-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def flat(value: Any) -> str:
    """A one-line rendering of a scalar, list or (nested) dict: ``k: v · k2: v2``."""
    if isinstance(value, Mapping):
        return " · ".join(
            f"{k}: {flat(v) if not isinstance(v, Mapping) else '(' + flat(v) + ')'}" for k, v in value.items()
        )
    if isinstance(value, (list, tuple)):
        return ", ".join(flat(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ----------------------------------------------------------------------------------- lookups


def index(results: Mapping[str, Any]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """``(explainer, task, metric) -> results entry``."""
    return {(str(r["explainer"]), str(r["task"]), str(r["metric"])): r for r in results.get("results") or []}


def explainer_names(results: Mapping[str, Any]) -> list[str]:
    names = [str(n) for n in (results.get("explainers") or {})]
    for r in results.get("results") or []:
        if str(r["explainer"]) not in names:
            names.append(str(r["explainer"]))
    return names


def task_names(results: Mapping[str, Any]) -> list[str]:
    names = [str(t) for t in (results.get("tasks") or {})]
    for r in results.get("results") or []:
        if str(r["task"]) not in names:
            names.append(str(r["task"]))
    return names


def access_of(results: Mapping[str, Any], name: str) -> str:
    info = (results.get("explainers") or {}).get(name) or {}
    if info.get("access"):
        return str(info["access"])
    return next(
        (str(r.get("access", "")) for r in results.get("results") or [] if r["explainer"] == name), ""
    )


def access_cell(access: str) -> Cell:
    kind = access if access in ACCESS_LEVELS else "other"
    return Cell(access or NA, numeric=False, na=not access, badge=f"access-{kind}")


def task_description(results: Mapping[str, Any], task: str) -> str:
    return str(((results.get("tasks") or {}).get(task) or {}).get("description", ""))


def metric_specs(results: Mapping[str, Any], task: str) -> list[dict[str, Any]]:
    """The task's metrics (declared ones first, then any others found in the results)."""
    declared = ((results.get("tasks") or {}).get(task) or {}).get("metrics") or []
    specs = [dict(s) for s in declared]
    seen = {s["name"] for s in specs}
    for r in results.get("results") or []:
        if r["task"] == task and r["metric"] not in seen:
            seen.add(r["metric"])
            specs.append(
                {"name": r["metric"], "higher_is_better": undeclared_metric(r["metric"]).higher_is_better}
            )
    return specs


def main_metric(results: Mapping[str, Any], task: str) -> str:
    spec = (results.get("tasks") or {}).get(task) or {}
    if spec.get("main_metric"):
        return str(spec["main_metric"])
    specs = metric_specs(results, task)
    return str(specs[0]["name"]) if specs else ""


def higher_is_better(results: Mapping[str, Any], task: str, metric: str) -> bool:
    for spec in metric_specs(results, task):
        if spec["name"] == metric:
            return bool(spec.get("higher_is_better", True))
    return undeclared_metric(metric).higher_is_better


def find_comparison(results: Mapping[str, Any], task: str, metric: str, a: str, b: str) -> Comparison | None:
    """The comparison of ``a`` with ``b`` (stored either way round), oriented as ``a - b``."""
    for c in results.get("comparisons") or []:
        if c.get("task") != task or c.get("metric") != metric:
            continue
        if (c.get("a"), c.get("b")) == (a, b):
            sign = 1.0
        elif (c.get("a"), c.get("b")) == (b, a):
            sign = -1.0
        else:
            continue
        lo, hi = num(c.get("ci_low")), num(c.get("ci_high"))
        if sign < 0 and lo is not None and hi is not None:
            lo, hi = -hi, -lo
        return Comparison(
            diff=sign * (num(c.get("diff")) or 0.0),
            p_adjusted=num(c.get("p_adjusted")),
            significant=bool(c.get("significant")),
            ci_low=lo,
            ci_high=hi,
        )
    return None


def significantly_better(
    results: Mapping[str, Any], task: str, metric: str, a: str, b: str, hib: bool
) -> bool:
    c = find_comparison(results, task, metric, a, b)
    return c is not None and c.significant and (c.diff > 0 if hib else c.diff < 0)


# ----------------------------------------------------------------------------------- cells


def ci_title(entry: Mapping[str, Any]) -> str:
    lo, hi, n = num(entry.get("ci_low")), num(entry.get("ci_high")), num(entry.get("n"))
    parts = []
    if lo is not None and hi is not None:
        parts.append(f"CI [{fmt(lo)}, {fmt(hi)}]")
    if n is not None:
        parts.append(f"n = {int(n)}")
    return ", ".join(parts)


def value_cell(entry: Mapping[str, Any] | None, *, ci_style: str = "pm") -> Cell:
    """``mean ± half-CI`` (or ``mean [low, high]``) for one results entry; n/a when missing."""
    value = num(entry.get("value")) if entry else None
    if entry is None or value is None:
        return Cell(NA, na=True, title="not applicable")
    lo, hi = num(entry.get("ci_low")), num(entry.get("ci_high"))
    text = fmt(value)
    if lo is not None and hi is not None:
        text += f" [{fmt(lo)}, {fmt(hi)}]" if ci_style == "interval" else f" ± {fmt((hi - lo) / 2)}"
    title = ci_title(entry)
    if num(entry.get("short_list_share")):
        text += f" {SHORT_LIST}"
        title += f"; lists shorter than K (at most {entry.get('max_list_len')} items)"
    return Cell(text, sort=value, title=title)


def short_list_note(results: Mapping[str, Any], task: str) -> str | None:
    """The footnote for cells marked :data:`SHORT_LIST` in ``task``, or ``None``."""
    rows = [r for r in results.get("results", []) if r.get("task") == task and num(r.get("short_list_share"))]
    if not rows:
        return None
    lens = {}
    for r in rows:
        lens[r["explainer"]] = max(lens.get(r["explainer"], 0), int(r.get("max_list_len") or 0))
    who = ", ".join(f"{e} ({n} items)" for e, n in sorted(lens.items()))
    return (
        f"{SHORT_LIST} K exceeds the answered list: {who}. Such an @K value counts hits within the "
        "shorter list and is not comparable with rows that return K items."
    )


def unit_note(results: Mapping[str, Any], task: str) -> str | None:
    """Which unit the task's CIs and tests resampled, when it is users rather than instances."""
    rows = [r for r in results.get("results", []) if r.get("task") == task and r.get("unit") == "user"]
    if not rows:
        return None
    n, users = int(rows[0].get("n") or 0), int(rows[0].get("n_units") or 0)
    return (
        f"CIs and paired tests resample users, not instances: {n} instances from {users} users "
        "(a user's instances are not independent)."
    )


def identical_note(results: Mapping[str, Any], task: str, metric: str) -> str | None:
    """The explainer pairs with identical answers in ``task`` (compared with no test)."""
    rows = [c for c in results.get("comparisons", []) if c.get("task") == task and c.get("metric") == metric]
    same = [f"{c['a']} = {c['b']}" for c in rows if c.get("identical_predictions")]
    scores = [f"{c['a']} = {c['b']}" for c in rows if c.get("identical_scores")]
    parts = []
    if same:
        parts.append("Identical predictions on every instance (not tested, p = 1): " + "; ".join(same) + ".")
    if scores:
        parts.append(f"Identical {metric} on every instance (not tested, p = 1): " + "; ".join(scores) + ".")
    return " ".join(parts) or None


def delta_cells(
    name: str,
    best: str | None,
    entry: Mapping[str, Any] | None,
    best_entry: Mapping[str, Any] | None,
    cmp: Comparison | None,
) -> list[Cell]:
    """The "Δ best" and "p (adj.)" cells of a task-table row."""
    value = num(entry.get("value")) if entry else None
    if value is None or best is None or best_entry is None:
        return [Cell(NA, na=True), Cell(NA, na=True)]
    if name == best:
        return [Cell("best", sort=0.0, title="best on the main metric"), Cell("—", sort=None)]
    diff = cmp.diff if cmp is not None else value - float(best_entry["value"])
    p = cmp.p_adjusted if cmp is not None else None
    title = (
        "no comparison with the best in results"
        if cmp is None
        else ("significant" if cmp.significant else "not significant")
    )
    return [Cell(fmt(diff, signed=True), sort=diff, title=title), Cell(fmt_p(p), sort=p, na=p is None)]


def mark_best(rows: Sequence[list[Cell]], columns: Sequence[Column]) -> None:
    """Flag (in place) the best value of every column that has a direction (ties all flagged)."""
    for i, col in enumerate(columns):
        if col.higher_is_better is None:
            continue
        values = [r[i].sort for r in rows if not r[i].na and r[i].sort is not None]
        if not values:
            continue
        best = max(values) if col.higher_is_better else min(values)
        for r in rows:
            if not r[i].na and r[i].sort == best:
                r[i] = replace_cell(r[i], best=True)
