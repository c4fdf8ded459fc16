"""Difference-to-best plots as inline SVG strings (matplotlib, headless, no global state).

Plots are drawn with matplotlib's object-oriented :class:`~matplotlib.figure.Figure` (no pyplot, so
no GUI backend is touched and no figure is left registered) inside :func:`matplotlib.rc_context`,
so the caller's backend and rcParams are unchanged.

The SVG is made to be pasted into an HTML page: no XML header or doctype, no RDF metadata, no
namespace URIs (HTML parsers put inline ``<svg>`` in the SVG namespace themselves), element ids
prefixed so several plots can share a page, and text kept as text (``svg.fonttype = "none"``).
matplotlib escapes every text string it writes (``&``, ``<``, ``>``), so labels taken from data
cannot inject markup.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import bench.report._model as m

__all__ = ["diff_to_best_svg", "inline_svg"]

logger = logging.getLogger(__name__)

_COLORS = {"best": "#1b6f5c", "worse": "#b23a48", "same": "#4f6d8f"}


def _points(
    entries: Sequence[Mapping[str, Any]],
    comparisons: Sequence[Mapping[str, Any]],
    task: str,
    metric: str,
    hib: bool,
) -> tuple[str | None, list[tuple[str, float, float | None, float | None, str]]]:
    """``(best, [(explainer, diff, err_low, err_high, kind)])``, best first, then by difference."""
    rows = [
        e
        for e in entries
        if e.get("task") == task and e.get("metric") == metric and m.num(e.get("value")) is not None
    ]
    if not rows:
        return None, []
    rows.sort(key=lambda e: (-float(e["value"]) if hib else float(e["value"]), str(e["explainer"])))
    best = rows[0]
    best_value = float(best["value"])
    wrapped = {"comparisons": list(comparisons)}
    out = []
    for e in rows:
        name, value = str(e["explainer"]), float(e["value"])
        cmp = (
            m.find_comparison(wrapped, task, metric, name, str(best["explainer"])) if e is not best else None
        )
        diff = cmp.diff if cmp is not None else value - best_value
        if cmp is not None and cmp.ci_low is not None and cmp.ci_high is not None:
            lo, hi = cmp.ci_low, cmp.ci_high  # CI of the paired difference
        else:
            lo, hi = m.num(e.get("ci_low")), m.num(e.get("ci_high"))  # the explainer's own CI, shifted
            lo = None if lo is None else lo - best_value
            hi = None if hi is None else hi - best_value
        kind = "best" if e is best else ("worse" if cmp is not None and cmp.significant else "same")
        err_lo = None if lo is None else max(0.0, diff - lo)
        err_hi = None if hi is None else max(0.0, hi - diff)
        out.append((name, diff, err_lo, err_hi, kind))
    return str(best["explainer"]), out


def inline_svg(svg: str, *, id_prefix: str, label: str = "") -> str:
    """Make matplotlib's SVG document safe to inline: strip header/metadata/namespaces, prefix ids."""
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg, flags=re.S)
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    ids = re.findall(r'\bid="([^"]+)"', svg)
    prefix = m.slug(id_prefix) + "-"
    for ident in sorted(set(ids), key=len, reverse=True):
        esc = re.escape(ident)
        svg = re.sub(rf'\bid="{esc}"', f'id="{prefix}{ident}"', svg)
        svg = re.sub(rf'(href="|url\()#{esc}(?=["\)])', rf"\g<1>#{prefix}{ident}", svg)
    # responsive: keep the viewBox, let CSS size the plot
    attrs = f' class="plot" role="img" aria-label="{_attr(label)}"' if label else ' class="plot" role="img"'
    svg = re.sub(r'<svg\s+width="[^"]*"\s+height="[^"]*"', "<svg" + attrs, svg, count=1)
    return svg.strip()


def _short(label: str, limit: int = 36) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def diff_to_best_svg(
    results: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    comparisons: Sequence[Mapping[str, Any]] | None,
    task: str,
    metric: str,
    *,
    higher_is_better: bool | None = None,
    id_prefix: str | None = None,
) -> str:
    """Each explainer's difference to the best on ``task``/``metric`` with horizontal error bars.

    ``results`` is a whole ``results.json`` dict (``higher_is_better`` then comes from its task
    spec) or just its list of entries. Error bars are the CI of the paired difference when the
    comparison carries ``ci_low``/``ci_high``, else the explainer's own CI shifted by the best
    value. Significantly worse explainers are drawn in red. Returns an ``<svg>`` element string.
    """
    import matplotlib
    from matplotlib.figure import Figure

    if isinstance(results, Mapping):
        entries = list(results.get("results") or [])
        if comparisons is None:
            comparisons = results.get("comparisons") or []
        if higher_is_better is None:
            higher_is_better = m.higher_is_better(results, task, metric)
    else:
        entries = list(results)
    hib = True if higher_is_better is None else bool(higher_is_better)
    best, points = _points(entries, comparisons or [], task, metric, hib)
    rc = {
        "svg.fonttype": "none",
        "svg.hashsalt": f"recxbench-{task}-{metric}",
        "text.parse_math": False,
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "Liberation Sans"],
        "font.size": 9,
        "axes.edgecolor": "#8a94a6",
        "axes.labelcolor": "#1d2330",
        "xtick.color": "#4a5568",
        "ytick.color": "#1d2330",
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(5.6, 1.1 + 0.34 * max(1, len(points))))
        ax = fig.subplots()
        if not points:
            ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        for y, (_name, diff, lo, hi, kind) in enumerate(points):
            xerr = None if lo is None or hi is None else [[lo], [hi]]
            ax.errorbar(
                [diff],
                [y],
                xerr=xerr,
                fmt="D" if kind == "best" else "o",
                color=_COLORS[kind],
                ecolor=_COLORS[kind],
                elinewidth=1.6,
                capsize=3,
                markersize=5,
            )
        if points:
            ax.axvline(0.0, color="#8a94a6", linewidth=0.9, linestyle=(0, (3, 3)), zorder=0)
            ax.set_yticks(range(len(points)), [_short(p[0]) for p in points])
            ax.set_ylim(len(points) - 0.5, -0.5)
            ax.grid(axis="x", color="#e3e7ee", linewidth=0.8)
            ax.set_axisbelow(True)
            direction = "higher" if hib else "lower"
            ax.set_xlabel(f"{metric} minus the best's ({direction} is better)")
        fig.suptitle(
            f"{task} · {metric}", x=0.012, ha="left", fontsize=10, fontweight="bold", color="#1d2330"
        )
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None}, facecolor="white")
    logger.debug("plotted %s/%s (%d explainers)", task, metric, len(points))
    label = f"Difference to the best ({best}) on {task} / {metric}"
    return inline_svg(buf.getvalue(), id_prefix=id_prefix or f"plot-{task}-{metric}", label=label)
