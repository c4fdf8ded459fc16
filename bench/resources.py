"""Where the packaged task YAML and suites live (editable checkout or installed wheel)."""

from __future__ import annotations

from pathlib import Path


def tasks_dir() -> Path:
    """The built-in task directory: ``<repo>/tasks`` in a checkout, ``bench/_tasks`` in a wheel."""
    here = Path(__file__).resolve().parent
    packaged = here / "_tasks"
    if packaged.is_dir():
        return packaged
    return here.parent / "tasks"


def suites_dir() -> Path:
    return tasks_dir() / "suites"
