"""The explainer contract.

An explainer is fit on align-train instances (labels from the target ``f``) and then answers the
align-test instances of each task. It declares its *access level*, shown on the leaderboard:

* ``behavior``   — sees text (titles, metadata) and ``f``'s outputs only;
* ``embedding``  — also sees ``f``'s user/item embeddings;
* ``white-box``  — may use ``f`` itself (code and weights).

The level is enforced, not trusted: :class:`ExplainerContext` holds only what the level includes,
instances arrive without labels, with opaque ids and in a shuffled order (see :mod:`bench.access`
and :mod:`bench.stages.explain`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bench import seeds
from bench.answers import BUILTIN_ANSWERS, ItemList, Permutation, RankedItems, Text, YesNo
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

    def rng(self, *purpose: int | str) -> np.random.Generator:
        """The run's random stream for ``purpose`` (:func:`bench.seeds.rng` of the suite seed)."""
        return seeds.rng(self.seed, *purpose)

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


#: the answer methods of the base class: a task whose answer type names another method is answered
#: only by explainers that say so (:meth:`Explainer.supports`).
ANSWER_METHODS: tuple[str, ...] = tuple(a.method for a in BUILTIN_ANSWERS)


class Explainer(ABC):
    """Base class; subclasses set ``name`` and ``access``, implement ``fit`` and the answer methods
    of the tasks they answer.

    Each task declares its answer type (``Task.answer``, see :mod:`bench.answers`), and the type names
    the method that produces it: ``retrieve`` -> :class:`RankedItems`, ``rank`` -> :class:`Permutation`,
    ``classify`` -> :class:`YesNo`, ``reconstruct`` -> :class:`ItemList`, ``explain`` -> :class:`Text`.
    Every method receives the :class:`~bench.tasks.base.Task` object (its ``name``, ``params`` and
    ``spec.kind``) and the blinded instances, and returns one answer per instance, in order. The
    runner calls :meth:`answer`, which dispatches once on the task's answer type.

    Constructor keyword arguments come from the suite YAML (``explainers: [{name: x, params: {...}}]``)
    and must be JSON-serialisable; they are part of the cache key.
    """

    name: ClassVar[str] = ""
    access: ClassVar[Access] = "behavior"
    #: True when the explainer runs an LLM backbone: the suite's ``backbone`` becomes its default.
    uses_backbone: ClassVar[bool] = False
    #: one line for ``recxbench list explainers``.
    summary: ClassVar[str] = ""

    #: bumped whenever the explainer's answers change for the same parameters (part of the cache key)
    version: ClassVar[int] = 1

    def __init__(self, **params: Any) -> None:
        # an explainer that does not define its own constructor takes no parameters: a typo in a
        # suite's `params:` is an error, never silently ignored
        if params and type(self).__init__ is Explainer.__init__:
            raise TypeError(f"{type(self).__name__} takes no parameters (got {', '.join(sorted(params))})")
        self.params = dict(params)

    @abstractmethod
    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        """Learn from align-train instances (task name -> instances)."""

    # -- capabilities and dispatch --------------------------------------------------------------

    def supports(self, task: Task) -> bool:
        """Whether this explainer answers ``task`` (others show as "n/a", never 0).

        By default: it overrides the base class's method named by the task's answer type. A task
        whose answer type names a method the base class does not have (a new task kind with a new
        answer type) is not supported, so existing explainers show n/a for it with no edit — even
        one that happens to have an unrelated helper of that name; an explainer written for it
        claims it by overriding this method. Subclasses may also narrow it (e.g. no prompt for a kind).
        """
        method = getattr(task.answer, "method", None)
        if method not in ANSWER_METHODS:
            return False
        return getattr(type(self), method) is not getattr(Explainer, method)

    def answer(self, task: Task, instances: list[Instance]) -> list[Prediction]:
        """Answer ``instances`` of ``task`` with the method its answer type names; one prediction per
        instance, same order. A wrong count or answer type is a bug of the explainer: RuntimeError."""
        kind = task.answer
        method = getattr(self, kind.method, None)
        if method is None or not self.supports(task):
            raise RuntimeError(f"explainer {self.name!r} does not answer task {task.name!r}")
        answers = list(method(task, instances))
        if len(answers) != len(instances):
            raise RuntimeError(
                f"explainer {self.name!r} returned {len(answers)} answers for {len(instances)} "
                f"instances of task {task.name!r}"
            )
        wrong = next((a for a in answers if not isinstance(a, kind)), None)
        if wrong is not None:
            raise RuntimeError(
                f"explainer {self.name!r} answered task {task.name!r} with {type(wrong).__name__}, "
                f"not {kind.__name__}"
            )
        return [a.to_prediction(i.instance_id) for i, a in zip(instances, answers, strict=True)]

    # -- the answer methods (not implemented: an explainer overrides those it answers) ----------

    def retrieve(self, task: Task, instances: list[Instance]) -> list[RankedItems]:
        """Retrieval: up to the task's K items per instance, best first."""
        raise NotImplementedError(f"explainer {self.name!r} does not answer retrieval tasks")

    def rank(self, task: Task, instances: list[Instance]) -> list[Permutation]:
        """Ranking: the shown candidates in the explainer's order, best first."""
        raise NotImplementedError(f"explainer {self.name!r} does not answer ranking tasks")

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        """Classification: like (True) or not, with an optional score."""
        raise NotImplementedError(f"explainer {self.name!r} does not answer classification tasks")

    def reconstruct(self, task: Task, instances: list[Instance]) -> list[ItemList]:
        """History reconstruction: the items of the hidden history."""
        raise NotImplementedError(f"explainer {self.name!r} does not reconstruct histories")

    def explain(self, task: Task, instances: list[Instance]) -> list[Text]:
        """Explanations of the target's decision on each instance."""
        raise NotImplementedError(f"explainer {self.name!r} does not produce explanations")

    def info(self) -> dict[str, Any]:
        """Provenance merged into the manifest (model ids, hyper-parameters, fidelity figures)."""
        return {"name": self.name, "access": self.access, "params": self.params}
