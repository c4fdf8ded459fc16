"""What an explainer may see: its context by access level, blinded instances, presentation order.

An access level is a promise to the reader of the board, so it is enforced in what the explainer
receives (see :class:`bench.explainers.base.ExplainerContext`):

* instances arrive without labels and readable keys, with opaque ids, in a seeded order that is
  independent of the labels (:func:`blind`, :func:`presentation_order`);
* behavior and embedding explainers get the dataset without the scored users' interactions
  (:func:`public_split`) and no user index (a user's instances cannot be linked across tasks);
* embedding explainers get ``f``'s vectors of shown histories only (:func:`embedding_view`);
* only white-box explainers get ``f``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import seeds
from bench.data.catalog import Catalog
from bench.data.dataset import Dataset, Split, leave_one_out
from bench.explainers.base import EmbeddingView, ExplainerContext
from bench.recommenders.base import TargetRecommender
from bench.tasks.base import Task, opaque_id
from bench.types import Instance

#: meta keys only white-box explainers receive (the length of the prefix ``f`` excluded).
_WHITE_BOX_META = frozenset({"prefix_len"})


def blind(inst: Instance, task: Task, access: str, shown_id: str | None = None) -> Instance:
    """The instance as an explainer sees it at prediction time.

    No label, no readable key, the id replaced by ``shown_id`` (an :func:`alias`), only the task's
    public meta. The
    user index is kept for white-box explainers only (it links a user's instances across tasks). For
    tasks that hide the history (history reconstruction) the history is removed; ``f``'s user vector
    is kept only for explainers with embedding or white-box access.
    """
    keys = set(task.public_meta_keys())
    if access == "behavior":
        keys.discard("user_vector")
    if access == "white-box":
        keys |= _WHITE_BOX_META
    hide = task.hides_history
    return Instance(
        instance_id=inst.instance_id if shown_id is None else shown_id,
        task=inst.task,
        user=inst.user if access == "white-box" else -1,
        history=() if hide else inst.history,
        label=None,
        candidates=inst.candidates,
        meta={k: v for k, v in inst.meta.items() if k in keys},
    )


def public_split(split: Split, hidden_users: np.ndarray) -> Split:
    """``split`` as non-white-box explainers receive it: the interactions of ``hidden_users`` (the
    scored align-test users) removed from the dataset, then split again by the same rule. Item
    metadata and every other user's interactions are unchanged."""
    ds = split.dataset
    keep = ~np.isin(ds.users, np.asarray(hidden_users, dtype=np.int64))
    public = replace(
        ds,
        users=ds.users[keep],
        items=ds.items[keep],
        timestamps=ds.timestamps[keep],
        ratings=None if ds.ratings is None else ds.ratings[keep],
        source="",  # the raw files hold the hidden interactions
        # nothing of the generator's ground truth (latent tastes, parameters) travels: only a count
        extra={"hidden_users": int(len(hidden_users))},
    )
    return leave_one_out(public, min_interactions=split.min_interactions)


class ContextFactory:
    """Builds each explainer's :class:`ExplainerContext` from its access level, for one run.

    The public split (without the scored users) and ``f``'s user vectors of every instance history
    are computed once, on first use, and shared; each context gets its own :class:`EmbeddingView`
    grants (align-train and align-valid histories at once, align-test ones as they are handed out).
    """

    def __init__(
        self,
        *,
        dataset: Dataset,
        split: Split,
        catalog: Catalog,
        target: TargetRecommender,
        tasks: Mapping[str, Task],
        instances: Mapping[str, Mapping[str, list[Instance]]],
        scored_users: np.ndarray,
        device: str,
        seed: int,
    ) -> None:
        self.dataset, self.split, self.catalog, self.target = dataset, split, catalog, target
        self.tasks, self.instances, self.device, self.seed = tasks, instances, device, seed
        self.scored_users = np.asarray(scored_users, dtype=np.int64)
        self._public: Split | None = None
        self._vectors: EmbeddingView | None = None

    def context(self, access: str, *, cache_dir: Path, extra: dict[str, Any]) -> ExplainerContext:
        """The context for ``access``: what the level includes, nothing more."""
        common: dict[str, Any] = {
            "access": access,
            "catalog": self.catalog,
            "tasks": self.tasks,
            "device": self.device,
            "cache_dir": cache_dir,
            "seed": self.seed,
            "extra": extra,
        }
        if access == "white-box":
            return ExplainerContext(
                dataset=self.dataset, split=self.split, target_=self.target, embeddings_=self.view(), **common
            )
        if self._public is None:
            self._public = public_split(self.split, self.scored_users)
        return ExplainerContext(
            dataset=self._public.dataset,
            split=self._public,
            embeddings_=self.view() if access == "embedding" else None,
            **common,
        )

    def view(self) -> EmbeddingView:
        """A fresh :class:`EmbeddingView` with the align-train and align-valid histories granted."""
        if self._vectors is None:
            histories = [
                i.history for parts in self.instances.values() for insts in parts.values() for i in insts
            ]
            self._vectors = EmbeddingView.from_target(self.target, histories)
        view = self._vectors.copy()
        view.grant(
            i.history
            for parts in self.instances.values()
            for part in ("align_train", "align_valid")
            for i in parts.get(part, [])
        )
        return view


def presentation_order(secret: str, task: str, n: int) -> np.ndarray:
    """The order in which a task's instances are handed to every explainer: a permutation drawn from
    ``secret`` (the target checkpoint's hash, which no explainer below white-box receives) of the
    stored order, itself sorted by opaque id. Neither order depends on the labels."""
    return seeds.rng(secret, task, seeds.PRESENTATION).permutation(n)


def alias(secret: str, instance_id: str) -> str:
    """The id an explainer sees for ``instance_id`` at prediction time: ``opaque_id`` salted with
    ``secret``, so it cannot be recomputed from public keys (raw user ids) to identify the user."""
    return opaque_id(f"{secret}/{instance_id}")
