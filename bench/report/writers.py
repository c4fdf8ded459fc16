"""Plain-text report formats: Markdown (also the CLI's terminal output), CSV and LaTeX.

Every ``write_*`` function accepts one run's ``results.json`` dict or a list of them (several runs
of the same suite) and writes atomically (:func:`bench.io.atomic_write_text`), so a reader never sees a half-written file.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

import bench.report._model as m
from bench.io import atomic_write_text
from bench.report._model import strip_controls
from bench.report.attributes import attribute_markdown
from bench.report.explain import explanation_markdown, explanation_views
from bench.report.tables import (
    Cell,
    Table,
    claims_table,
    cross_run_table,
    summary_table,
    target_card,
    task_tables,
)

__all__ = [
    "as_runs",
    "csv_text",
    "latex",
    "markdown",
    "run_labels",
    "stats_statement",
    "write_csv",
    "write_latex",
    "write_markdown",
]

logger = logging.getLogger(__name__)

Results = Mapping[str, Any] | Sequence[Mapping[str, Any]]

_CORRECTIONS = {
    "holm": "Holm–Bonferroni correction",
    "bonferroni": "Bonferroni correction",
    "bh": "Benjamini–Hochberg correction",
    "fdr_bh": "Benjamini–Hochberg correction",
    "by": "Benjamini–Yekutieli correction",
    "none": "no multiple-comparison correction",
}
_SUPERSCRIPTS = dict(zip("abcdefghijklmnoprstuvwxyz", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", strict=True))


def as_runs(results: Results) -> list[Mapping[str, Any]]:
    """One run's dict, or a list of them, as a list."""
    return [results] if isinstance(results, Mapping) else list(results)


def run_labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Short, unique labels for runs: ``"<dataset> · seed <seed>"`` (numbered if still ambiguous)."""
    labels = [f"{(r.get('dataset') or {}).get('name', '?')} · seed {r.get('seed', '?')}" for r in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{i + 1}: {lab}" for i, lab in enumerate(labels)]
    return labels


def stats_statement(results: Mapping[str, Any]) -> str:
    """One sentence on how significance was decided (α, correction, test)."""
    corr = str(results.get("correction", "none")).lower()
    corr_text = _CORRECTIONS.get(corr, f"{results.get('correction')} correction")
    tests = sorted(
        {
            str(c.get("test"))
            for c in results.get("comparisons") or []
            if c.get("test") not in (None, "identical_predictions")
        }
    )
    test_text = ", ".join(t.replace("_", " ") for t in tests) or "paired"
    clustered = sorted({str(r.get("task")) for r in results.get("results") or [] if r.get("unit") == "user"})
    unit_text = (
        f" CIs and tests resample users, not instances, in {', '.join(clustered)} (several instances per user)."
        if clustered
        else ""
    )
    return (
        f"Differences are tested with {test_text} tests at α = {results.get('alpha', '?')} with {corr_text}; "
        "rank group 1 = not significantly worse than the best on the task's main metric." + unit_text
    )


# ----------------------------------------------------------------------------------- Markdown


def _md_escape(text: str) -> str:
    # "\<" keeps a hostile "<script>" or "<img onerror=...>" a literal in rendered Markdown
    text = strip_controls(text).replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
    return text.replace("<", "\\<").replace("`", "\\`").replace("\n", " ")


def _md_cell(cell: Cell) -> str:
    text = _md_escape(cell.text)
    if cell.letter:
        text = f"({cell.letter}) {text}"
    if cell.best:
        text = f"**{text}**"
    if cell.marker:
        text += f" {cell.marker}"
    if cell.sup:
        text += " " + "".join(_SUPERSCRIPTS.get(ch, ch) for ch in cell.sup)
    if cell.group is not None and cell.text != str(cell.group):
        text += f" ({cell.group})"
    return text


def markdown_table(table: Table) -> str:
    """One table in GitHub Markdown (numbers right-aligned)."""
    headers = [_md_escape(c.label) for c in table.columns]
    rows = [[_md_cell(c) for c in row.cells] for row in table.rows]
    align = ["right" if c.numeric else "left" for c in table.columns]
    return tabulate(rows, headers=headers, tablefmt="github", colalign=align, disable_numparse=True)


def _dataset_line(results: Mapping[str, Any]) -> str:
    ds = results.get("dataset") or {}
    sizes = ", ".join(
        f"{int(ds[k]):,} {k}" for k in ("users", "items", "interactions") if m.num(ds.get(k)) is not None
    )
    return f"{ds.get('name', '?')}" + (f" ({sizes})" if sizes else "")


def _markdown_run(results: Mapping[str, Any], *, level: int, ci_style: str) -> list[str]:
    h = "#" * level
    out = [
        f"Dataset: {_md_escape(_dataset_line(results))} · seed {results.get('seed', '?')}",
        "",
        _md_escape(stats_statement(results)),
        "",
        f"{h} Summary",
        "",
        markdown_table(summary := summary_table(results)),
        "",
        "Cells: main metric (rank group). ↑/↓: higher/lower is better. n/a: not applicable. Bold: best.",
        *(x for n in summary.notes for x in ("", _md_escape(n))),
        "",
        f"{h} Tasks",
    ]
    explained = explanation_views(results)
    for table in task_tables(results, ci_style=ci_style):
        main = m.main_metric(results, table.title)
        out += ["", f"{h}# {_md_escape(table.title)} (main metric: {_md_escape(main)})", ""]
        if table.description:
            out += [_md_escape(table.description), ""]
        out.append(markdown_table(table))
        out += [""] + [_md_escape(n) for n in table.notes]
        if table.title in explained:
            out += ["", *explanation_markdown(explained[table.title], level=level + 2)]
    out += [
        "",
        f"Values: mean ± half the CI width. {m.WORSE}: significantly worse than the best on the main metric "
        "after correction; superscript letters: significantly better than the rows with those letters; "
        "Group: rank group (1 = not significantly worse than the best).",
    ]
    claims = claims_table(results)
    if claims.rows:
        out += ["", f"{h} Claims", "", markdown_table(claims)]
    card = target_card(results)
    out += ["", f"{h} Target recommender", ""]
    out += [f"- {f.label}: {_md_escape(f.value)}" for f in card.fields]
    for table in card.tables:
        out += ["", markdown_table(table)]
    out += attribute_markdown(results, level=level, table=markdown_table)
    return out


def markdown(results: Results, *, ci_style: str = "pm") -> str:
    """The Markdown report: summary, per-task tables, claims and target card (cross-run summary first)."""
    runs = as_runs(results)
    if len(runs) == 1:
        out = [f"# recxbench leaderboard — suite {_md_escape(str(runs[0].get('suite', '?')))}", ""]
        out += _markdown_run(runs[0], level=2, ci_style=ci_style)
    else:
        labels = run_labels(runs)
        out = [
            f"# recxbench leaderboard — suite {_md_escape(str(runs[0].get('suite', '?')))}, {len(runs)} runs"
        ]
        out += ["", "## Across runs", "", markdown_table(cross_run_table(runs, labels))]
        for label, run in zip(labels, runs, strict=True):
            out += ["", f"## Run {_md_escape(label)}", ""] + _markdown_run(run, level=3, ci_style=ci_style)
    return "\n".join(out).rstrip() + "\n"


def write_markdown(results: Results, path: str | os.PathLike[str], *, ci_style: str = "pm") -> Path:
    """Write :func:`markdown` to ``path`` atomically."""
    return atomic_write_text(path, markdown(results, ci_style=ci_style))


# ----------------------------------------------------------------------------------- CSV

CSV_COLUMNS = (
    "run",
    "suite",
    "dataset",
    "seed",
    "explainer",
    "access",
    "task",
    "metric",
    "main_metric",
    "higher_is_better",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "group",
)


def csv_text(results: Results) -> str:
    """One CSV row per results entry (raw numbers, empty when missing)."""
    runs = as_runs(results)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for label, run in zip(run_labels(runs), runs, strict=True):
        for r in run.get("results") or []:
            task, metric = str(r["task"]), str(r["metric"])
            row = {
                k: r.get(k, "")
                for k in ("explainer", "access", "task", "metric", "value", "ci_low", "ci_high", "n", "group")
            }
            row.update(
                run=label,
                suite=run.get("suite", ""),
                dataset=(run.get("dataset") or {}).get("name", ""),
                seed=run.get("seed", ""),
                main_metric=str(metric == m.main_metric(run, task)).lower(),
                higher_is_better=str(m.higher_is_better(run, task, metric)).lower(),
            )
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def write_csv(results: Results, path: str | os.PathLike[str]) -> Path:
    """Write :func:`csv_text` to ``path`` atomically."""
    return atomic_write_text(path, csv_text(results))


# ----------------------------------------------------------------------------------- LaTeX

_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"$\pm$",
    "−": r"$-$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "Δ": r"$\Delta$",
    "▼": r"$\nabla$",
    "▲": r"$\Delta$",
    "·": r"$\cdot$",
    "—": "---",
    "–": "--",
    "…": r"\ldots{}",
    "α": r"$\alpha$",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials (and map the report's symbols to math) in one pass."""
    return "".join(_LATEX.get(ch, ch) for ch in strip_controls(str(text)))


def _tex_cell(cell: Cell) -> str:
    text = latex_escape(cell.text)
    if cell.letter:
        text = f"\\textsuperscript{{{cell.letter}}}\\,{text}"
    if cell.best:
        text = f"\\textbf{{{text}}}"
    if cell.marker:
        text += latex_escape(cell.marker)
    if cell.sup:
        text += f"\\textsuperscript{{{cell.sup}}}"
    if cell.group is not None and cell.text != str(cell.group):
        text += f" ({cell.group})"
    return text


def latex_table(table: Table, *, caption: str, label: str) -> str:
    """One booktabs ``table`` environment."""
    spec = "".join("r" if c.numeric else "l" for c in table.columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        f"\\caption{{{latex_escape(caption)}}}",
        f"\\label{{{label}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(c.label) for c in table.columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_tex_cell(c) for c in row.cells) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def latex(results: Results, *, ci_style: str = "pm") -> str:
    """Booktabs tables (summary and one per task, per run) for ``\\input`` into a paper."""
    runs = as_runs(results)
    out = [
        "% recxbench results -- generated file; needs \\usepackage{booktabs}",
        f"% {m.WORSE} is typeset as $\\nabla$: significantly worse than the best after correction.",
        "",
    ]
    for i, (label, run) in enumerate(zip(run_labels(runs), runs, strict=True)):
        prefix = f"r{i + 1}-" if len(runs) > 1 else ""
        where = f" ({label})" if len(runs) > 1 else ""
        out += [
            latex_table(
                summary_table(run),
                caption=f"Summary{where}: main metric per task (rank group) and mean rank.",
                label=f"tab:{prefix}summary",
            ),
            "",
        ]
        for table in task_tables(run, ci_style=ci_style):
            caption = f"{table.title}{where}: mean ± half CI; {m.WORSE} significantly worse than the best."
            out += [latex_table(table, caption=caption, label=f"tab:{prefix}{table.id}"), ""]
    return "\n".join(out)


def write_latex(results: Results, path: str | os.PathLike[str], *, ci_style: str = "pm") -> Path:
    """Write :func:`latex` to ``path`` atomically."""
    return atomic_write_text(path, latex(results, ci_style=ci_style))
