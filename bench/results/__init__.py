"""A typed reader of ``results.json`` (schema_version 1) and the one rule for comparing runs.

:func:`load_results` reads a results file, a run directory or an already parsed dict into a frozen
:class:`Run` (its tasks with their metric specs, result rows, comparisons, claims) and fails with one
line (:class:`~bench.errors.UserError`) on anything that is not a recxbench results.json of this
schema version. The report's renderers still read the parsed dict (kept on ``Run.raw``) for the
optional blocks (target card, protocol, explanations) that only they interpret.

:func:`check_comparable` is the one comparability rule, used by ``recxbench compare``, the HTML
board and ``recxbench report``; see its docstring.

Layout: :mod:`bench.results.model` (the dataclasses), :mod:`bench.results.reader`
(:func:`load_results`), :mod:`bench.results.comparable` (:func:`check_comparable`).
"""

from __future__ import annotations

from bench.results.comparable import check_comparable
from bench.results.model import (
    SCHEMA_VERSION,
    ClaimVerdict,
    Comparison,
    Dataset,
    MetricSpec,
    ResultRow,
    Run,
    TaskSpec,
)
from bench.results.reader import load_results

__all__ = [
    "SCHEMA_VERSION",
    "ClaimVerdict",
    "Comparison",
    "Dataset",
    "MetricSpec",
    "ResultRow",
    "Run",
    "TaskSpec",
    "check_comparable",
    "load_results",
]
