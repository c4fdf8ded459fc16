"""Turn a suite's ``dataset`` section into a :class:`~bench.data.dataset.Dataset`.

Every name goes through ``registry.datasets`` (see :mod:`bench.data.sources`): with a ``path`` the
``format``'s loader reads the directory; without one, the named dataset's ``make(**params)`` builds
or fetches it (built-in: ``ml-100k``, ``tiny``, ``opaque``, ``opaque-balanced``).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.data.dataset import Dataset
from bench.data.loaders import format_fix, load_dataset
from bench.data.recipes import check_recipe
from bench.data.sources import format_names, lookup, named_datasets
from bench.errors import ConfigError

if TYPE_CHECKING:
    from bench.config import SuiteConfig

log = logging.getLogger(__name__)


def __getattr__(attr: str) -> Any:
    # ``BUILTIN`` (name -> description of every named dataset) is computed on access, so datasets
    # registered by plugins are listed too.
    if attr == "BUILTIN":
        return named_datasets()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def _qualname(fn: Callable[..., Any]) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def check_dataset(
    name: str,
    *,
    path: str | None = None,
    format: str = "auto",
    params: Mapping[str, Any] | None = None,
    recipe: str = "none",
    recipe_params: Mapping[str, Any] | None = None,
) -> None:
    """Check a suite's ``dataset`` section without reading any data (``recxbench validate`` and the
    checks ``run`` makes before any work): a known format with ``path``, else a known dataset name
    whose ``make`` takes ``params``; a known ``recipe`` that takes ``recipe_params``. Raises
    :class:`ConfigError` naming the key (``dataset.recipe.name``, ...) and the fix."""
    check_recipe(recipe, recipe_params)
    if format != "auto" and format not in format_names():  # a typo is an error even when unused
        raise ConfigError(
            f"unknown dataset format {format!r}", where="dataset.format", fix=format_fix(format)
        )
    if path:
        return
    source = lookup(name)
    if source is None or source.make is None:
        raise ConfigError(
            f"unknown dataset {name!r}",
            where="dataset.name",
            fix=f"built-in datasets: {', '.join(named_datasets())}; for your own data set dataset.path=DIR",
        )
    try:
        inspect.signature(source.make).bind(**dict(params or {}))
    except TypeError as err:
        raise ConfigError(
            f"bad generator parameter ({err})", where="dataset.params", fix=f"see {_qualname(source.make)}"
        ) from None


def resolve_dataset(
    name: str,
    *,
    path: str | None = None,
    format: str = "auto",
    params: Mapping[str, Any] | None = None,
) -> Dataset:
    """Load the dataset a suite names: ``path`` (user data) wins over the named dataset ``name``.

    Args:
        name: a registered dataset name (``tiny``, ``ml-100k``, ...), or with ``path`` a label for
            the user's data (a registered dataset name is then not used as the label).
        path: a dataset directory (or a file in it), read with the loader of ``format``.
        format: ``"auto"`` or a registered file format; used only with ``path``.
        params: keyword arguments of the named dataset's ``make`` (ignored with ``path``).

    Raises:
        ConfigError: unknown format or dataset name, or a parameter ``make`` does not take.
        DataError: the files are missing or malformed.
    """
    check_dataset(name, path=path, format=format, params=params)
    if path:
        label = name if name and name not in named_datasets() else None
        return load_dataset(path, format=format, name=label)
    source = lookup(name)
    assert source is not None and source.make is not None  # checked above
    return source.make(**dict(params or {}))


def check_suite_dataset(suite: SuiteConfig) -> None:
    """:func:`check_dataset` of a suite's ``dataset`` section, errors naming the suite file."""
    ds = suite.dataset
    try:
        check_dataset(
            ds.name,
            path=ds.path,
            format=ds.format,
            params=ds.params,
            recipe=ds.recipe.name,
            recipe_params=ds.recipe.params,
        )
    except ConfigError as err:  # name the suite file, as config errors do
        where = f"{Path(suite.path).name}:{err.where}" if err.where else suite.path
        raise ConfigError(err.what, where=where, fix=err.fix) from None
