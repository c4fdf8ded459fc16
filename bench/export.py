"""Copy a finished run without its cache: a committed baseline (``baselines/``) or report (``reports/``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.errors import UserError
from bench.io import atomic_dir

FILES = ("results.json", "manifest.json", "leaderboard.html", "leaderboard.md", "results.csv", "results.tex")


def export_run(run_dir: Path, dest: Path, *, samples: bool = True) -> Path:
    """Copy ``results.json``, ``manifest.json``, the leaderboard files and (optionally) ``samples/``.

    The destination is built in a temporary sibling and swapped in (:func:`bench.io.atomic_dir`),
    so a crash never leaves a half-copied baseline that looks complete.
    """
    if not (run_dir / "results.json").exists():
        raise UserError(
            "no results.json (not a finished run directory)", where=str(run_dir), fix="run the suite first"
        )
    dest = dest.resolve()
    with atomic_dir(dest, replace=True) as tmp:
        for name in FILES:
            if (run_dir / name).exists():
                shutil.copy2(run_dir / name, tmp / name)
        if samples and (run_dir / "samples").is_dir():
            shutil.copytree(run_dir / "samples", tmp / "samples")
    return dest
