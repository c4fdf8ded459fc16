"""Read a dataset directory into a :class:`~bench.data.dataset.Dataset` through ``registry.datasets``.

``load_dataset(path, format=...)`` accepts every registered file format (built-in: ``atomic``,
``ml-100k``, ``ml-1m``, ``steam``, ``amazon-2014``, ``amazon-2018``; see :mod:`bench.data.formats`) and ``auto``, which picks a format from the
files present. A new format is one module registering a
:class:`~bench.data.sources.DatasetSource` (protocol in :mod:`bench.data.sources`, parsing helpers
and the shared index rules in :mod:`bench.data.tables`).

Every malformed input raises :class:`~bench.errors.DataError` naming ``file:line`` and a fix.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from bench.data.dataset import Dataset
from bench.data.formats.movielens import ML100K_GENRES
from bench.data.sources import detectors, format_names, lookup, named_datasets
from bench.errors import DataError

__all__ = ["ML100K_GENRES", "detect_format", "format_fix", "load_dataset"]

#: Auto-detection tries the built-in formats first, in this order, then any other registered format
#: with a ``detect`` (plugins may register more: see :func:`bench.data.sources.format_names`).
_DETECT_ORDER = ("atomic", "ml-100k", "ml-1m", "steam", "amazon-2014", "amazon-2018")


def format_fix(fmt: str) -> str:
    """The ``fix`` of an unknown-format error: a close match if any, and the known formats."""
    known = ["auto", *format_names()]
    close = difflib.get_close_matches(fmt, known, n=3, cutoff=0.5)
    hint = "did you mean " + " or ".join(repr(c) for c in close) + "? " if close else ""
    if fmt in named_datasets():
        hint = f"{fmt!r} is a dataset, not a file format (set dataset.name={fmt} without a path); "
    return f"{hint}use one of: {', '.join(known)}"


def detect_format(directory: Path) -> str:
    """The format of ``directory``: ``"atomic"``, ``"ml-100k"``, ``"ml-1m"`` or a plugin's name."""
    found = detectors()
    order = [f for f in _DETECT_ORDER if f in found] + [f for f in found if f not in _DETECT_ORDER]
    for fmt in order:
        if found[fmt](directory):
            return fmt
    raise DataError(
        f"cannot tell the dataset format of {directory}: no <name>.inter, u.data, ratings.dat, "
        "steam_reviews.json(.gz) or Amazon reviews file",
        fix="point dataset.path at a directory with RecBole atomic files, a raw MovieLens-100k/1M dump, "
        "the Steam files or one Amazon category (or set dataset.format)",
    )


def load_dataset(path: str | Path, *, format: str = "auto", name: str | None = None) -> Dataset:
    """Load a dataset directory with the registered loader of ``format``.

    Args:
        path: the dataset directory; a file inside it (``x.inter``, ``u.data``, ``ratings.dat``) is
            accepted too and stands for its directory (and, for ``.inter``, the name).
        format: ``"auto"`` (default) or a registered format (``"atomic"``, ``"ml-100k"``, ``"ml-1m"``, ...).
        name: dataset name; for ``atomic`` it also selects ``<name>.inter`` when the directory holds
            several. Defaults to the ``.inter`` stem, or ``"ml-100k"`` / ``"ml-1m"``.

    Raises:
        DataError: missing path or files, unknown format, or a malformed line (``where`` = ``file:line``).
    """
    if format != "auto" and format not in format_names():
        raise DataError(f"unknown dataset format {format!r}", fix=format_fix(format))
    directory = Path(path).expanduser()
    if directory.is_file():
        if directory.suffix == ".inter" and name is None:
            name = directory.stem
        directory = directory.parent
    if not directory.is_dir():
        raise DataError(
            f"no such directory {directory}",
            fix="pass dataset.path=DIR pointing at an existing dataset directory",
        )
    fmt = detect_format(directory) if format == "auto" else format
    source = lookup(fmt)
    assert source is not None and source.load is not None  # checked above / by detect_format
    return source.load(directory, name=name)
