"""Reports of a run: table models, Markdown/CSV/LaTeX writers, SVG plots and the HTML leaderboard.

Typical use::

    from bench.report import markdown, render_leaderboard

    print(markdown(results))                                   # terminal / README
    render_leaderboard(results, manifest, out_dir=run_dir)     # leaderboard.html + downloads

``results`` is a parsed ``results.json`` (schema_version 1) and ``manifest`` a parsed
``manifest.json``; both functions also accept lists of them (several comparable runs).
"""

from __future__ import annotations

from bench.report.html import leaderboard_html, render_leaderboard
from bench.report.plots import diff_to_best_svg
from bench.report.tables import (
    Card,
    Cell,
    Column,
    Field,
    Row,
    Table,
    claims_table,
    cross_run_table,
    protocol_card,
    provenance,
    summary_table,
    target_card,
    task_table,
    task_tables,
)
from bench.report.writers import (
    csv_text,
    latex,
    latex_escape,
    markdown,
    write_csv,
    write_latex,
    write_markdown,
)

__all__ = [
    "Card",
    "Cell",
    "Column",
    "Field",
    "Row",
    "Table",
    "claims_table",
    "cross_run_table",
    "csv_text",
    "diff_to_best_svg",
    "latex",
    "latex_escape",
    "leaderboard_html",
    "markdown",
    "protocol_card",
    "provenance",
    "render_leaderboard",
    "summary_table",
    "target_card",
    "task_table",
    "task_tables",
    "write_csv",
    "write_latex",
    "write_markdown",
]
