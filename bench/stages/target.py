"""Stage ``target``: train (or reload) the target recommender f and write its card."""

from __future__ import annotations

import logging
from pathlib import Path

from bench import registry
from bench.errors import UserError
from bench.hashing import stable_hash
from bench.io import fault_point, read_json, write_json
from bench.state import RunState, stage_timer

log = logging.getLogger(__name__)


def stage_target(state: RunState) -> None:
    from bench.recommenders.checkpoint import checkpoint_hash, load_target
    from bench.recommenders.evaluation import target_card
    from bench.recommenders.popularity import Popularity

    assert state.dataset is not None and state.split is not None
    cfg = state.suite.target
    with stage_timer(state, "target"):
        key = stable_hash(
            {
                "dataset": state.dataset.sha256,
                "min_interactions": state.split.min_interactions,
                "target": cfg.name,
                "params": dict(cfg.params),
                "seed": state.seed,
                "device": state.device,
            }
        )[:16]
        state.target_key = key
        directory = state.cache / "target" / f"{cfg.name}-{key}"
        card_path = directory / "card.json"
        card = read_json(card_path) if card_path.exists() else None
        # the card (written last) marks the stage finished; its checksum must still match the
        # weights, else they were damaged after the run and the target is trained again
        if card is not None and card.get("checkpoint_sha256") == _weights_hash(directory):
            log.info("target %s: reusing %s", cfg.name, directory)
            state.target = load_target(directory)
            state.target_card = card
            state.record("target", "reused")
            return
        if card is not None:
            log.warning(
                "target %s: weights in %s do not match their card; training again", cfg.name, directory
            )
            card_path.unlink()
        cls = registry.recommenders.get(cfg.name)
        try:
            model = cls(state.dataset.n_items, **cfg.params)
        except TypeError as err:
            raise UserError(
                f"bad target parameter: {err}", where="target.params", fix="see the target's defaults"
            ) from None
        report = model.fit(state.split, seed=state.seed, device=state.device)
        fault_point("target:fitted")
        directory.mkdir(parents=True, exist_ok=True)
        model.save(directory)
        fault_point("target:saved")  # weights on disk, card not yet: the stage is not finished
        pop = Popularity(state.dataset.n_items)
        pop.fit(state.split, seed=state.seed)
        card = {
            "name": cfg.name,
            "config": model.config(),
            **target_card(model, state.split),
            "baselines": {"popularity": target_card(pop, state.split)},
            "train_seconds": round(report.seconds, 2),
            "epochs": report.epochs,
            "best_epoch": report.best_epoch,
            "checkpoint_sha256": checkpoint_hash(directory),
        }
        write_json(card_path, card)  # written last: its presence marks the stage as finished
        state.target = model
        state.target_card = card
        state.record("target", "built")


def _weights_hash(directory: Path) -> str | None:
    from bench.recommenders.checkpoint import checkpoint_hash

    try:
        return checkpoint_hash(directory)
    except UserError:  # no weights file (deleted or never written)
        return None


def teacher_views(state: RunState) -> dict[str, dict[str, float]]:
    """The target card's teacher-view rows: test accuracy of ``f`` reading only the window each
    task shows (its ``history_len``), with the whole prior history excluded — the labels' rule."""
    from bench.recommenders.evaluation import teacher_view

    assert state.target is not None and state.split is not None
    windows = sorted(
        {int(t.params["history_len"]) for t in state.tasks.values() if "history_len" in t.params}
    )
    return {str(w): teacher_view(state.target, state.split, window=w) for w in windows}
