"""The explainer contract.

An explainer is fit on align-train instances (labels from the target ``f``) and then answers the
align-test instances of each task. It declares its *access level*, shown on the leaderboard:

* ``behavior``   — sees text (titles, metadata) and ``f``'s outputs only;
* ``embedding``  — also sees ``f``'s user/item embeddings;
* ``white-box``  — may use ``f`` itself (code and weights).

The level is enforced, not trusted: :class:`ExplainerContext` holds only what the level includes,
instances arrive without labels, with opaque ids and in a shuffled order (see ``bench.runner``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bench.errors import UserError
from bench.types import Access, Instance, Prediction

if TYPE_CHECKING:
    from bench.data.catalog import Catalog
    from bench.data.dataset import Dataset, Split
    from bench.recommenders.base import TargetRecommender
    from bench.tasks.base import Task

log = logging.getLogger(__name__)


class AccessDenied(UserError, PermissionError):
    """An explainer asked for something its declared access level does not include.

    A plugin author's mistake with a fix (declare the right access level): the CLI prints one line
    and exits 2, like every :class:`~bench.errors.UserError`.
    """


class EmbeddingView:
    """``f``'s vectors for the users and items of the run's instances — never ``f``'s scoring code.

    ``item_vectors()`` is ``f``'s item table (a read-only copy); ``user_vector(history)`` is ``f``'s
    user vector of one of the histories the run's instances have shown so far (precomputed once).
    Any other history is refused: a view that computed vectors on demand would hand out ``f`` itself.
    """

    def __init__(self, item_table: np.ndarray, user_vectors: Mapping[tuple[int, ...], np.ndarray]) -> None:
        self._items = np.array(item_table, dtype=np.float32, copy=True)
        self._items.setflags(write=False)
        self._users = {
            tuple(int(x) for x in k): np.asarray(v, dtype=np.float32) for k, v in user_vectors.items()
        }
        for v in self._users.values():
            v.setflags(write=False)
        # Histories whose vectors may be read: those of instances already handed to the explainer.
        # Tasks that hide the history are predicted first, so their user vectors cannot be matched
        # against vectors of the same users' histories shown by other tasks.
        self._granted: set[tuple[int, ...]] = set()

    def copy(self) -> EmbeddingView:
        """The same vectors with no grants (one view per explainer)."""
        return EmbeddingView(self._items, self._users)

    def grant(self, histories: Iterable[Sequence[int]]) -> None:
        """Allow the vectors of ``histories`` (the runner calls it as it hands out instances)."""
        self._granted.update(tuple(int(x) for x in h) for h in histories)

    @classmethod
    def from_target(cls, target: TargetRecommender, histories: Iterable[Sequence[int]]) -> EmbeddingView:
        keys = sorted({tuple(int(x) for x in h) for h in histories})
        vectors: dict[tuple[int, ...], np.ndarray] = {}
        for start in range(0, len(keys), 512):
            chunk = keys[start : start + 512]
            for k, v in zip(chunk, np.asarray(target.user_embeddings([list(x) for x in chunk])), strict=True):
                vectors[k] = v
        return cls(np.asarray(target.item_embeddings()), vectors)

    @property
    def dim(self) -> int:
        return int(self._items.shape[1])

    def item_vectors(self) -> np.ndarray:
        """``f``'s item table ``[n_items, dim]`` (read-only)."""
        return self._items

    def user_vector(self, history: Sequence[int]) -> np.ndarray:
        """``f``'s user vector of ``history``, one of the histories the run's instances show."""
        key = tuple(int(x) for x in history)
        if key in self._granted and key in self._users:
            return self._users[key]
        raise AccessDenied(
            "embedding access covers the users of the run's instances only; this history is not one "
            "of them (f's user tower is not available: declare access = 'white-box' to use f)"
        )


@dataclass(frozen=True)
class ExplainerContext:
    """What an explainer receives besides its instances, built from its declared access level.

    Every level gets the catalog, the task objects, the device, a cache directory, the seed and
    ``extra`` (align-valid instances for model selection, a shared adapters directory). Beyond that:

    * ``behavior`` — ``dataset``/``split`` *without the scored (align-test) users' interactions*:
      item metadata and the interactions of everybody else (popularity, co-occurrence);
    * ``embedding`` — the same plus ``embeddings``: ``f``'s item table and ``f``'s user vectors of the
      instances' histories (:class:`EmbeddingView`), never ``f``'s scoring function;
    * ``white-box`` — the full dataset and split, ``embeddings`` and ``target`` (``f`` itself).

    Reading a field the level does not include raises :class:`AccessDenied`.
    """

    access: str
    dataset: Dataset
    split: Split
    catalog: Catalog
    tasks: Mapping[str, Task]
    device: str = "cpu"
    cache_dir: Path = Path(".")
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    target_: TargetRecommender | None = field(default=None, repr=False)
    embeddings_: EmbeddingView | None = field(default=None, repr=False)

    @property
    def target(self) -> TargetRecommender:
        """``f`` itself — white-box explainers only."""
        if self.access != "white-box" or self.target_ is None:
            raise AccessDenied(
                f"an explainer with {self.access!r} access may not use the target f; "
                "declare access = 'white-box' (the board shows it)"
            )
        return self.target_

    @property
    def embeddings(self) -> EmbeddingView:
        """``f``'s user/item vectors — embedding and white-box explainers only."""
        if self.access not in ("embedding", "white-box") or self.embeddings_ is None:
            raise AccessDenied(
                f"an explainer with {self.access!r} access may not read f's embeddings; "
                "declare access = 'embedding' (the board shows it)"
            )
        return self.embeddings_


class Explainer(ABC):
    """Base class; subclasses set ``name`` and ``access`` and implement ``fit``/``predict``.

    Constructor keyword arguments come from the suite YAML (``explainers: [{name: x, params: {...}}]``)
    and must be JSON-serialisable; they are part of the cache key.
    """

    name: ClassVar[str] = ""
    access: ClassVar[Access] = "behavior"
    #: task *kinds* this explainer answers; ``None`` = every alignment task.
    tasks: ClassVar[frozenset[str] | None] = None
    #: one line for ``recxbench list explainers``.
    summary: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    def supports(self, kind: str) -> bool:
        """Whether this explainer answers tasks of ``kind`` (others show as "n/a", never 0)."""
        return self.tasks is None or kind in self.tasks

    @abstractmethod
    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        """Learn from align-train instances (task name -> instances)."""

    @abstractmethod
    def predict(self, task: str, instances: list[Instance]) -> list[Prediction]:
        """Answer ``instances`` of ``task``; one prediction per instance, same order."""

    def explain(self, instances: list[Instance]) -> list[str]:
        """Explain the target's decision on each instance; optional."""
        raise NotImplementedError(f"explainer {self.name!r} does not produce explanations")

    def info(self) -> dict[str, Any]:
        """Provenance merged into the manifest (model ids, hyper-parameters, fidelity figures)."""
        return {"name": self.name, "access": self.access, "params": self.params}
