"""Records that flow between stages: instances, predictions, scored samples.

All are frozen dataclasses that serialise to one JSON line each. Item and user references are
*internal indices* (``int``, 0-based, into the dataset's tables); the samples files also carry the
dataset's raw ids and titles where a human reads them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Access = Literal["behavior", "embedding", "white-box"]
ACCESS_LEVELS: tuple[str, ...] = ("behavior", "embedding", "white-box")


@dataclass(frozen=True)
class Instance:
    """One teacher instance, built from the target recommender's own predictions.

    Attributes:
        instance_id: stable, opaque id (a hash of ``key``); pairs samples across explainers and runs
            and is all an explainer learns of an instance's identity.
        key: the readable, label-free key ``"{task}/{part}/{raw user}/{k}[/slot]"``, kept in the
            samples files for people; never handed to an explainer.
        task: task name (e.g. ``"item_ranking"``).
        user: internal user index.
        history: internal item indices the explainer sees, oldest first (the target scored exactly this).
        candidates: items shown to the explainer (ranking: shuffled candidates; classification: the one item).
        label: the target's answer. Retrieval: ``[top1]``; ranking: candidates in the target's order
            (best first); classification: ``1`` (like, from the top 20 %) or ``0`` (dislike, bottom 50 %);
            history reconstruction: the history items.
        meta: task-specific extras (e.g. the target's scores), JSON-serialisable.
    """

    instance_id: str
    task: str
    user: int
    history: tuple[int, ...]
    label: Any
    candidates: tuple[int, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["history"] = list(self.history)
        d["candidates"] = list(self.candidates)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Instance:
        label = d["label"]
        return cls(
            instance_id=d["instance_id"],
            task=d["task"],
            user=int(d["user"]),
            history=tuple(int(x) for x in d["history"]),
            label=label,
            candidates=tuple(int(x) for x in d.get("candidates", ())),
            meta=dict(d.get("meta", {})),
            key=str(d.get("key", "")),
        )


@dataclass(frozen=True)
class Prediction:
    """An explainer's answer to one instance.

    ``output`` is a ranked list of item indices (retrieval, ranking, history reconstruction; ``-1``
    marks generated text that resolved to no catalog item, i.e. a hallucinated item), or ``0``/``1``
    (classification). ``score`` is an optional confidence for the positive class (used by AUC).
    ``raw`` is what the model literally produced; ``parse_ok`` is False when the raw answer had to be
    repaired (the repair is documented per task) and is counted, never raised.
    """

    instance_id: str
    output: Any
    raw: str = ""
    parse_ok: bool = True
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
