"""Typed answers: what an explainer returns for one instance, one class per output shape.

A task declares the answer type it expects (``Task.answer``); the type names the explainer method
that produces it (``method``), so the explainer base class dispatches once, on the type, never on
a task name. Each answer turns into the :class:`~bench.types.Prediction` record the samples files
hold (``to_prediction``); those records are the on-disk contract and do not change with this layer.

=================  ===============  ==========================================================
answer             method           prediction ``output``
=================  ===============  ==========================================================
``RankedItems``    ``retrieve``     ranked item indices, best first (``-1`` = hallucinated)
``Permutation``    ``rank``         the shown candidates, best first
``YesNo``          ``classify``     ``1`` (like) or ``0``; ``score`` = confidence of "like"
``ItemList``       ``reconstruct``  item indices (``-1`` = hallucinated)
``Text``           ``explain``      the text itself (also its ``raw``)
=================  ===============  ==========================================================

A new task kind may bring a new answer type (any frozen dataclass with a ``method`` class attribute
and ``to_prediction``); existing explainers then show "n/a" for it with no edit, because they do
not implement its method (:meth:`bench.explainers.base.Explainer.supports`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from bench.types import Prediction


class Answer(Protocol):
    """What every answer type provides."""

    method: ClassVar[str]

    def to_prediction(self, instance_id: str) -> Prediction: ...


def _items(items: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(x) for x in items)


@dataclass(frozen=True)
class _ItemsAnswer:
    """A list of item indices with the model's raw text and whether it parsed as given."""

    items: Sequence[int]
    raw: str = ""
    parse_ok: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", _items(self.items))

    def to_prediction(self, instance_id: str) -> Prediction:
        return Prediction(instance_id, list(self.items), raw=self.raw, parse_ok=self.parse_ok)


@dataclass(frozen=True)
class RankedItems(_ItemsAnswer):
    """Retrieval: items ranked best first; ``-1`` marks generated text that named no item."""

    method: ClassVar[str] = "retrieve"


@dataclass(frozen=True)
class Permutation(_ItemsAnswer):
    """Ranking: the shown candidates in the explainer's order, best first."""

    method: ClassVar[str] = "rank"


@dataclass(frozen=True)
class ItemList(_ItemsAnswer):
    """History reconstruction: the items the explainer believes the user had (``-1`` = no item)."""

    method: ClassVar[str] = "reconstruct"


@dataclass(frozen=True)
class YesNo:
    """Classification: would the target like it; ``score`` is an optional confidence of "like"."""

    method: ClassVar[str] = "classify"
    like: bool
    score: float | None = None
    raw: str = ""
    parse_ok: bool = True

    def to_prediction(self, instance_id: str) -> Prediction:
        return Prediction(instance_id, int(self.like), raw=self.raw, parse_ok=self.parse_ok, score=self.score)


@dataclass(frozen=True)
class Text:
    """An explanation in words."""

    method: ClassVar[str] = "explain"
    text: str

    def to_prediction(self, instance_id: str) -> Prediction:
        return Prediction(instance_id, str(self.text), raw=str(self.text))


#: the answer types every explainer base class knows, in board order; their methods are the
#: explainer's answer methods (:data:`bench.explainers.base.ANSWER_METHODS`)
BUILTIN_ANSWERS: tuple[type, ...] = (RankedItems, Permutation, YesNo, ItemList, Text)


def is_answer_type(obj: object) -> bool:
    """Whether ``obj`` is a usable answer type: a class with a ``method`` name and ``to_prediction``."""
    return (
        isinstance(obj, type)
        and isinstance(getattr(obj, "method", None), str)
        and callable(getattr(obj, "to_prediction", None))
    )


__all__ = [
    "BUILTIN_ANSWERS",
    "Answer",
    "ItemList",
    "Permutation",
    "RankedItems",
    "Text",
    "YesNo",
    "is_answer_type",
]
