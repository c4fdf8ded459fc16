"""Preprocessing recipes: named, documented, deterministic ``Dataset -> Dataset`` functions.

A suite picks one with ``dataset.recipe: {name: ..., params: {...}}`` (default ``none``); it runs
after loading and before the leave-one-out split. Built-in recipes (``registry.recipes``; a plugin
registers a :class:`Recipe` the same way):

``none``
    The dataset as loaded (the very same object; nothing changes, the sha256 included).
``recexplainer`` (RecExplainer's Amazon/Steam pipeline)
    1. drop interactions with items that have no title (``require_title``);
    2. keep the first of duplicate (user, item) pairs, *first in file order*;
    3. sort by time, stable (equal times keep file order);
    4. iterative ``core``-core: drop users and items with fewer than ``core`` interactions, recount,
       repeat until nothing changes (the number of rounds is recorded);
    5. with ``max_items``: keep the ``max_items`` items with the most interactions (ties: the item
       seen first); with ``max_users``: then the ``max_users`` users with the most interactions on
       those items (ties: the user seen first); when a cap removed anything, step 4 again.
    The original samples its 4,000 users at random (seed 2023) and re-indexes them randomly; this
    recipe takes the most active users instead, so the result is a pure function of the files.
``lane`` (LANE's Beauty / Steam / ML-1M pipeline)
    1. drop interactions with items that have no title;
    2. items are identified by title (``merge_titles``): items with the same title (and the same
       year, when the format has years, as MovieLens does) become one item, represented by the one
       seen first (its id, title, genres and year);
    3. keep the first of duplicate (user, item) pairs (file order);
    4. one pass: count interactions per user and per item once, keep the interactions whose user
       and item both have at least ``k`` — no recount, so the result need not be a k-core.

Output rules (every recipe but ``none``): users and items that keep an interaction keep their
relative order (re-indexed from 0); interactions keep the order of the steps above; titles and
metadata travel with the items; ``sha256`` = sha256 of the source's sha256 and the recipe with
its parameters (so every cache keyed on the dataset moves with the recipe); ``extra["recipe"]``
records the name, the parameters with defaults filled in, and counts such as the k-core rounds.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.data.dataset import Dataset, content_sha256
from bench.errors import ConfigError, DataError
from bench.hashing import stable_hash


@dataclass(frozen=True)
class Recipe:
    """One entry of ``registry.recipes``: ``apply(dataset, **params) -> Dataset`` and one line for lists."""

    apply: Callable[..., Dataset]
    description: str


def _positive(name: str, value: Any, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"recipe parameter {name} must be a positive integer{' or null' if optional else ''}, not {value!r}",
            where=f"dataset.recipe.params.{name}",
            fix="e.g. 5",
        )


def _subset(
    ds: Dataset, rows: np.ndarray, recipe: dict[str, Any], *, item_of: np.ndarray | None = None
) -> Dataset:
    """The dataset of interactions ``rows`` (in that order), items mapped through ``item_of``."""
    if len(rows) == 0:
        raise DataError(
            f"recipe {recipe['name']!r} left no interactions in {ds.name}",
            fix="check that the items have titles (the meta file) or lower the thresholds in dataset.recipe.params",
        )
    users = ds.users[rows]
    items = ds.items[rows] if item_of is None else item_of[ds.items[rows]]
    keep_u = np.unique(users)
    keep_i = np.unique(items)
    pick = keep_i.tolist()
    return Dataset(
        name=ds.name,
        user_ids=tuple(ds.user_ids[u] for u in keep_u.tolist()),
        item_ids=tuple(ds.item_ids[i] for i in pick),
        titles=tuple(ds.titles[i] for i in pick),
        genres=tuple(ds.genres[i] for i in pick),
        years=tuple(ds.years[i] for i in pick),
        users=np.searchsorted(keep_u, users).astype(np.int64),
        items=np.searchsorted(keep_i, items).astype(np.int64),
        timestamps=ds.timestamps[rows].copy(),
        ratings=None if ds.ratings is None else ds.ratings[rows].copy(),
        sha256=content_sha256(ds.sha256.encode(), stable_hash(recipe).encode()),
        source=ds.source,
        extra={**ds.extra, "recipe": recipe},
    )


def _titled(ds: Dataset, rows: np.ndarray) -> np.ndarray:
    has_title = np.array([bool(t.strip()) for t in ds.titles], dtype=bool)
    return rows[has_title[ds.items[rows]]] if len(has_title) else rows


def _first_pairs(users: np.ndarray, items: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows`` without repeated (user, item) pairs, keeping the first of each (order preserved)."""
    key = users[rows].astype(np.int64) * (int(items.max(initial=0)) + 1) + items[rows]
    _, first = np.unique(key, return_index=True)
    return rows[np.sort(first)]


def _kcore(users: np.ndarray, items: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Iterate the ``k``-core filter until stable; returns the rows and the number of rounds that removed any."""
    rounds = 0
    while len(rows):
        u, i = users[rows], items[rows]
        keep = (np.bincount(u)[u] >= k) & (np.bincount(i)[i] >= k)
        if keep.all():
            break
        rows = rows[keep]
        rounds += 1
    return rows, rounds


def _top(ids: np.ndarray, n: int) -> np.ndarray:
    """Mask of entries of ``ids`` among the ``n`` most frequent values (ties: the smaller index,
    i.e. the user or item seen first)."""
    counts = np.bincount(ids)
    order = np.lexsort((np.arange(len(counts)), -counts))  # most frequent first, then smaller index
    chosen = np.zeros(len(counts), dtype=bool)
    chosen[order[:n]] = True
    chosen &= counts > 0
    return chosen[ids]


def none(ds: Dataset) -> Dataset:
    """The dataset as loaded (see the module doc)."""
    return ds


def recexplainer(
    ds: Dataset,
    *,
    core: int = 5,
    max_items: int | None = None,
    max_users: int | None = None,
    require_title: bool = True,
) -> Dataset:
    """RecExplainer's preprocessing (steps in the module doc); the suites set the published caps."""
    _positive("core", core)
    _positive("max_items", max_items, optional=True)
    _positive("max_users", max_users, optional=True)
    rows = np.arange(ds.n_interactions)
    if require_title:
        rows = _titled(ds, rows)
    rows = _first_pairs(ds.users, ds.items, rows)
    rows = rows[np.argsort(ds.timestamps[rows], kind="stable")]
    rows, rounds = _kcore(ds.users, ds.items, rows, core)
    capped_rounds = 0
    if len(rows) and (max_items is not None or max_users is not None):
        before = len(rows)
        if max_items is not None:
            rows = rows[_top(ds.items[rows], max_items)]
        if max_users is not None:
            rows = rows[_top(ds.users[rows], max_users)]
        if len(rows) != before:
            rows, capped_rounds = _kcore(ds.users, ds.items, rows, core)
    params = {"core": core, "max_items": max_items, "max_users": max_users, "require_title": require_title}
    card = {
        "name": "recexplainer",
        "params": params,
        "kcore_rounds": rounds,
        "kcore_rounds_after_caps": capped_rounds,
        # every departure from the cited protocol goes on the protocol card
        "deviations": [
            "the caps keep the most active items, then the most active users on them (ties: seen "
            "first); RecExplainer samples its 4,000 users at random (seed 2023)"
        ]
        if max_users is not None or max_items is not None
        else [],
    }
    return _subset(ds, rows, card)


def lane(ds: Dataset, *, k: int = 5, merge_titles: bool = True) -> Dataset:
    """LANE's preprocessing (steps in the module doc): one pass of the ``k`` threshold, items by title."""
    _positive("k", k)
    rows = _titled(ds, np.arange(ds.n_interactions))
    item_of = np.arange(ds.n_items, dtype=np.int64)
    merged = 0
    if merge_titles:
        first: dict[tuple[str, int | None], int] = {}
        for i, (title, year) in enumerate(zip(ds.titles, ds.years, strict=True)):
            if title.strip():
                rep = first.setdefault((title.strip(), year), i)
                item_of[i] = rep
                merged += rep != i
    rows = _first_pairs(ds.users, item_of[ds.items], rows)
    users, items = ds.users[rows], item_of[ds.items[rows]]
    keep = (np.bincount(users)[users] >= k) & (np.bincount(items)[items] >= k)
    card = {"name": "lane", "params": {"k": k, "merge_titles": merge_titles}, "merged_items": merged}
    return _subset(ds, rows[keep], card, item_of=item_of)


NONE = Recipe(apply=none, description="the dataset as loaded")
RECEXPLAINER = Recipe(
    apply=recexplainer,
    description="drop untitled items, first of duplicate pairs, sort by time, iterative core-core, "
    "then the top max_items items / max_users users (params: core=5, max_items, max_users)",
)
LANE = Recipe(
    apply=lane,
    description="items identified by title (same title merges), first of duplicate pairs, one pass "
    "keeping users and items with >= k interactions (params: k=5, merge_titles=true)",
)


def _lookup(name: str) -> Recipe:
    from bench import registry

    if name not in registry.recipes:
        raise ConfigError(
            f"unknown dataset recipe {name!r}",
            where="dataset.recipe.name",
            fix=registry.recipes.suggest(name),
        )
    return registry.recipes.get(name)


def recipe_names() -> dict[str, str]:
    """Registered recipes -> their one-line description."""
    from bench import registry

    return {n: registry.recipes.get(n).description for n in registry.recipes.names()}


def check_recipe(name: str, params: Mapping[str, Any] | None = None) -> None:
    """A known recipe whose function takes ``params`` (``ConfigError`` naming ``dataset.recipe.*``)."""
    recipe = _lookup(name)
    try:
        inspect.signature(recipe.apply).bind(None, **dict(params or {}))
    except TypeError as err:
        raise ConfigError(
            f"bad parameter for recipe {name!r} ({err})",
            where="dataset.recipe.params",
            fix=f"recipe {name!r} takes: {', '.join(list(inspect.signature(recipe.apply).parameters)[1:]) or 'no parameters'}",
        ) from None


def apply_recipe(ds: Dataset, name: str, params: Mapping[str, Any] | None = None) -> Dataset:
    """``ds`` after recipe ``name`` with ``params`` (checked first)."""
    check_recipe(name, params)
    return _lookup(name).apply(ds, **dict(params or {}))


def recipe_card(ds: Dataset) -> dict[str, Any] | None:
    """What ``extra["recipe"]`` records (name, parameters, counts), or None for ``none``/unprocessed data."""
    card = ds.extra.get("recipe")
    return dict(card) if card else None
