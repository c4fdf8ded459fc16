"""The static HTML leaderboard (Jinja2) and the set of downloadable files written next to it.

The page is offline and self-contained: CSS inline in a ``<style>``, one small inline sort script
(allowed by hash in the page's Content-Security-Policy, which also forbids every external load),
plots as inline SVG. All data reaches the page through Jinja2 autoescaping; the only markup marked
safe is the sort script (a file of this package) and the SVG made by :mod:`bench.report.plots`
(matplotlib escapes the text it writes).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

import bench.report._model as m
from bench import __version__
from bench.errors import UserError
from bench.io import atomic_write_text, fault_point
from bench.report._model import strip_controls
from bench.report.attributes import attribute_card
from bench.report.explain import explanation_views
from bench.report.plots import diff_to_best_svg
from bench.report.tables import (
    claims_table,
    cross_run_table,
    protocol_card,
    provenance,
    summary_table,
    target_card,
    task_tables,
    task_view,
)
from bench.report.writers import (
    _CORRECTIONS,
    run_labels,
    stats_statement,
    write_csv,
    write_latex,
    write_markdown,
)
from bench.results import check_comparable, load_results

__all__ = ["leaderboard_html", "render_leaderboard"]

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


def _no_controls(value: Any) -> Any:
    """Every printed value without control characters (ANSI escapes stay out of the page source)."""
    if isinstance(value, Markup):
        return Markup(strip_controls(str(value)))
    return strip_controls(value) if isinstance(value, str) else value


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        finalize=_no_controls,
    )
    env.filters["sortkey"] = lambda x: repr(float(x))
    env.filters["is_hash"] = lambda s: (
        len(str(s)) > 16 and all(ch in "0123456789abcdefABCDEF" for ch in str(s))
    )
    return env


def _check_manifest(manifest: Any, where: str) -> None:
    if not isinstance(manifest, Mapping):
        raise UserError("manifest must be a JSON object", where=where.replace("results", "manifest"))


def _normalise(
    results: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    manifest: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    runs = [results] if isinstance(results, Mapping) else list(results)
    manifests = [manifest] if isinstance(manifest, Mapping) else list(manifest)
    if not runs:
        raise UserError("no runs to render", fix="pass at least one results.json")
    if len(manifests) == 1 and len(runs) > 1:
        raise UserError(
            "one manifest is needed per run", fix="pass the manifests as a list, in the runs' order"
        )
    if len(manifests) != len(runs):
        raise UserError(f"{len(runs)} runs but {len(manifests)} manifests", fix="pass one manifest per run")
    loaded = []
    for i, (run, man) in enumerate(zip(runs, manifests, strict=True)):
        where = f"results[{i}]" if len(runs) > 1 else "results.json"
        loaded.append(load_results(run, where=where))
        _check_manifest(man, where)
    if len(runs) > 1:
        check_comparable(loaded, names=[f"run {i + 1}" for i in range(len(runs))])
    return runs, manifests


def _dataset_line(results: Mapping[str, Any]) -> str:
    ds = results.get("dataset") or {}
    sizes = " · ".join(
        f"{int(ds[k]):,} {k}" for k in ("users", "items", "interactions") if m.num(ds.get(k)) is not None
    )
    return f"{ds.get('name', '?')}" + (f" ({sizes})" if sizes else "")


def _run_view(
    run: Mapping[str, Any], manifest: Mapping[str, Any], *, prefix: str, label: str, ci_style: str
) -> dict[str, Any]:
    tasks = []
    explain = explanation_views(run, id_prefix=prefix)
    for table in task_tables(run, ci_style=ci_style, id_prefix=prefix):
        task = table.title
        view = task_view(run, task)
        svg = diff_to_best_svg(
            run, run.get("comparisons") or [], task, view.metric, id_prefix=f"{table.id}-svg"
        )
        tasks.append(
            {
                "table": table,
                "metric": view.metric,
                "metrics": m.metric_specs(run, task),
                "not_applicable": list(view.not_applicable),
                "svg": Markup(svg),  # our own plot; matplotlib escaped every label
                "explain": explain.get(task),
            }
        )
    correction = str(run.get("correction", "none")).lower()
    return {
        "prefix": prefix,
        "label": label,
        "dataset_line": _dataset_line(run),
        "seed": run.get("seed", "?"),
        "created": manifest.get("created", "?"),
        "alpha": run.get("alpha", "?"),
        "correction": _CORRECTIONS.get(correction, f"{run.get('correction')} correction"),
        "summary": summary_table(run, id_prefix=prefix),
        "tasks": tasks,
        "target": target_card(run, id_prefix=prefix),
        "attributes": attribute_card(run, id_prefix=prefix),
        "protocol": protocol_card(run),
        "claims": claims_table(run, id_prefix=prefix),
        "explained": [v for v in explain.values() if v.has_block],
        "provenance": provenance(manifest, id_prefix=prefix),
    }


def _script() -> tuple[Markup, str]:
    text = (TEMPLATES / "sort.js").read_text(encoding="utf-8")
    if "</script" in text.lower():  # pragma: no cover - guards edits to sort.js
        raise RuntimeError("sort.js must not contain '</script'")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return Markup(text), f"sha256-{digest}"


def leaderboard_html(
    results: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    manifest: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    downloads: Sequence[tuple[str, str, str]] = (),
    ci_style: str = "pm",
) -> str:
    """The leaderboard page as a string (``downloads``: ``(href, label, description)`` links)."""
    runs, manifests = _normalise(results, manifest)
    multi = len(runs) > 1
    labels = run_labels(runs)
    views = [
        _run_view(run, man, prefix=f"r{i + 1}-" if multi else "", label=f"{i + 1} · {lab}", ci_style=ci_style)
        for i, (run, man, lab) in enumerate(zip(runs, manifests, labels, strict=True))
    ]
    first, man0 = runs[0], manifests[0]
    datasets = list(dict.fromkeys(str((r.get("dataset") or {}).get("name", "?")) for r in runs))
    meta = [("Dataset", _dataset_line(first) if len(datasets) == 1 else " · ".join(datasets))]
    if multi:
        meta.append(("Runs", str(len(runs))))
    else:
        meta.append(("Seed", str(first.get("seed", "?"))))
    meta += [
        ("Created", str(man0.get("created", "?"))),
        ("Significance", f"α = {first.get('alpha', '?')}, {views[0]['correction']}"),
        ("Harness", f"recxbench {man0.get('harness_version', '?')}"),
    ]
    if multi:
        nav = [("across-runs", "Across runs")] + [
            (f"{v['prefix']}run", f"Run {i + 1}") for i, v in enumerate(views)
        ]
    else:
        nav = [(f"{s}-section", s.capitalize()) for s in ("summary", "tasks")]
        explained = [t["explain"] for t in views[0]["tasks"] if t["explain"]]
        for v in explained:
            tag = f" · {v.task}" if len(explained) > 1 else ""
            if v.has_block:
                nav.append((f"{v.id}-judge", f"Judge{tag}"))
            nav.append((f"{v.id}-grades", f"Grades{tag}"))
        nav += [(f"{s}-section", s.capitalize()) for s in ("plots", "target", "protocol", "claims")]
        if views[0]["explained"]:
            nav.append(("examples-section", "Examples"))
    nav += [("provenance", "Provenance"), ("downloads", "Downloads")]
    script, script_hash = _script()
    page = {
        "title": f"recxbench leaderboard · {first.get('suite', '?')} · {', '.join(datasets)}",
        "suite": str(first.get("suite", "?")),
        "datasets": ", ".join(datasets),
        "version": __version__,
        "multi": multi,
        "meta": meta,
        "statement": stats_statement(first),
        "nav": nav,
        "labels": [f"run {i + 1}: {lab}" for i, lab in enumerate(labels)],
        "cross": cross_run_table(runs, labels) if multi else None,
        "runs": views,
        "downloads": list(downloads),
        "sort_example": views[0]["summary"].id,
    }
    template = _environment().get_template("leaderboard.html.j2")
    return template.render(page=page, script=script, script_hash=script_hash)


def render_leaderboard(
    results: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    manifest: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    out_dir: str | os.PathLike[str],
    ci_style: str = "pm",
) -> Path:
    """Write ``leaderboard.html`` and its downloads into ``out_dir``; returns the HTML path.

    Also writes ``leaderboard.md``, ``results.csv``, ``results.tex`` and, unless already present,
    ``results.json`` and ``manifest.json`` (for several runs: ``results-r<i>.json`` and
    ``manifest-r<i>.json``). Several runs must be comparable (:func:`bench.results.check_comparable`:
    the same task set and task configs), else :class:`~bench.errors.UserError` is raised before
    anything is written.
    """
    out = Path(out_dir)
    runs, manifests = _normalise(results, manifest)
    multi = len(runs) > 1
    out.mkdir(parents=True, exist_ok=True)
    downloads = [
        ("leaderboard.md", "leaderboard.md", "Markdown tables"),
        ("results.csv", "results.csv", "one row per result"),
        ("results.tex", "results.tex", "LaTeX booktabs tables"),
    ]
    raw: list[tuple[Path, Any]] = []
    for i, (run, man) in enumerate(zip(runs, manifests, strict=True)):
        tag = f"-r{i + 1}" if multi else ""
        for stem, data, what in (("results", run, "raw results"), ("manifest", man, "run manifest")):
            name = f"{stem}{tag}.json"
            if not (out / name).exists():
                raw.append((out / name, data))
            downloads.append((name, name, what + (f" (run {i + 1})" if multi else "")))
    write_markdown(runs if multi else runs[0], out / "leaderboard.md", ci_style=ci_style)
    fault_point("report:markdown")
    write_csv(runs, out / "results.csv")
    write_latex(runs if multi else runs[0], out / "results.tex", ci_style=ci_style)
    fault_point("report:latex")
    html = leaderboard_html(
        runs if multi else runs[0],
        manifests if multi else manifests[0],
        downloads=downloads,
        ci_style=ci_style,
    )
    path = atomic_write_text(out / "leaderboard.html", html)
    # the raw results last: in a run directory results.json marks a finished run, so it must not
    # appear while the board is half written
    for target, data in raw:
        atomic_write_text(target, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    logger.info("leaderboard written to %s", path)
    return path
