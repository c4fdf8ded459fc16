"""Turn a suite's ``dataset`` section into a :class:`~bench.data.dataset.Dataset`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bench.data.dataset import Dataset
from bench.errors import ConfigError

log = logging.getLogger(__name__)

BUILTIN = {
    "ml-100k": "MovieLens-100k (RecBole 1.2.1 atomic files, fetched from PyPI on first use)",
    "tiny": "generated: a few hundred users with genre tastes and item chains (tests, demos)",
    "opaque": "generated like tiny, but titles are random strings: preferences live only in f's latent factors",
    "opaque-balanced": "generated, titles random strings, every item liked by half of the users: "
    "item identity alone predicts nothing, only the user's taste does",
}
#: generated datasets: name -> make_tiny arguments that the name fixes
_GENERATED = {
    "tiny": {"opaque": False},
    "opaque": {"opaque": True},
    "opaque-balanced": {"opaque": True, "balanced_items": True},
}


def resolve_dataset(section: Mapping[str, Any]) -> Dataset:
    """Load the dataset a suite names: ``path`` (user data) wins over the built-in ``name``."""
    from bench.data import loaders, synthetic

    path, name, fmt = section.get("path"), str(section.get("name") or ""), section.get("format", "auto")
    params = dict(section.get("params") or {})
    if path:
        return loaders.load_dataset(path, format=fmt, name=name if name not in BUILTIN else None)
    if name == "ml-100k":
        from bench.data.movielens_download import ensure_ml100k

        directory = ensure_ml100k()
        return loaders.load_dataset(directory, format="atomic", name="ml-100k")
    if name in _GENERATED:
        try:
            return synthetic.make_tiny(**{**_GENERATED[name], **params})
        except TypeError as err:
            raise ConfigError(
                f"bad generator parameter ({err})",
                where="dataset.params",
                fix="see bench.data.synthetic.make_tiny",
            ) from None
    raise ConfigError(
        f"unknown dataset {name!r}",
        where="dataset.name",
        fix=f"built-in datasets: {', '.join(BUILTIN)}; for your own data set dataset.path=DIR",
    )
