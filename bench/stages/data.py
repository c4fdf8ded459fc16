"""Stage ``data``: the suite's dataset, its chronological leave-one-out split and the catalog."""

from __future__ import annotations

import logging

from bench.data.catalog import Catalog
from bench.data.dataset import leave_one_out
from bench.data.recipes import apply_recipe
from bench.data.resolve import resolve_dataset
from bench.errors import UserError
from bench.io import fault_point
from bench.state import RunState, stage_timer

log = logging.getLogger(__name__)


def stage_data(state: RunState) -> None:
    cfg = state.suite.dataset
    with stage_timer(state, "data"):
        loaded = resolve_dataset(cfg.name, path=cfg.path, format=cfg.format, params=cfg.params)
        state.dataset = apply_recipe(loaded, cfg.recipe.name, cfg.recipe.params)
        if state.dataset is not loaded:
            log.info("recipe %s: %s", cfg.recipe.name, state.dataset.extra.get("recipe"))
        state.split = leave_one_out(state.dataset, min_interactions=cfg.min_interactions)
        state.catalog = Catalog.from_dataset(state.dataset)
        if len(state.split.users) < 10:
            raise UserError(
                f"only {len(state.split.users)} users have >= {cfg.min_interactions} interactions",
                where="dataset",
                fix="use a larger dataset or lower dataset.min_interactions",
            )
        log.info(
            "dataset %s: %d users, %d items, %d interactions (%d users kept)",
            state.dataset.name,
            state.dataset.n_users,
            state.dataset.n_items,
            state.dataset.n_interactions,
            len(state.split.users),
        )
    fault_point("data")
