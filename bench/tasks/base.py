"""Task contract: build teacher instances from the target ``f``, score predictions against them.

A task is defined by a YAML file (``tasks/<name>.yaml``) naming its implementation (``kind``)
and its parameters; the implementation is a :class:`Task` subclass registered in
``bench.registry.task_kinds``. Instances are a pure function of (dataset, target, task config,
seed): every explainer is scored on the same instances.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bench.answers import is_answer_type
from bench.config.schema import TaskSpec
from bench.data.dataset import Split
from bench.errors import ConfigError
from bench.recommenders.base import TargetRecommender
from bench.types import Instance, Prediction


@dataclass(frozen=True)
class MetricSpec:
    """A metric reported by a task. ``binary``: per-sample values are 0/1 (McNemar applies)."""

    name: str
    higher_is_better: bool = True
    binary: bool = False
    description: str = ""
    #: a corpus metric ``Σ num / Σ den`` (e.g. F1): statistics resample the parts, not the contributions
    ratio: bool = False
    #: a U-statistic (ROC AUC): statistics recompute it from (score, label) on every resample
    auc: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "higher_is_better": self.higher_is_better,
            "binary": self.binary,
            "ratio": self.ratio,
            "auc": self.auc,
            "description": self.description,
        }


@dataclass(frozen=True)
class Context:
    """One teacher context: ``f`` reads the shown window and excludes the whole known prefix.

    ``history`` (the last ``history_len`` items of the prefix) is what the explainer sees and what
    ``f`` reads; ``prefix_len`` items of the user's train sequence are known at this point, and all
    of them are excluded from ``f``'s candidates (:func:`teacher_scores`).
    """

    row: int  # row in the split
    user: int  # internal user index
    history: tuple[int, ...]
    k: int  # 0 for the user's latest context, 1.. for earlier prefixes (align-train only)
    known: tuple[int, ...] = ()  # the user's whole prefix up to the context (contains ``history``)

    @property
    def prefix_len(self) -> int:
        return len(self.known)


@dataclass
class BuildInput:
    """What a task needs to build instances for one part of the user split."""

    split: Split
    target: TargetRecommender
    rows: np.ndarray  # rows of the split that belong to this part
    part: str  # "align_train" | "align_valid" | "align_test"
    rng: np.random.Generator
    contexts_per_user: int = 1


class Task(ABC):
    """Base class: subclasses declare ``defaults`` and ``answer`` and implement ``build``/``score``."""

    kind: ClassVar[str] = ""
    #: every parameter with its default; YAML keys outside this map are errors.
    defaults: ClassVar[dict[str, Any]] = {}
    #: the answer type explainers return (:mod:`bench.answers`); it names the explainer method that
    #: produces it (:meth:`bench.explainers.base.Explainer.supports` says who answers).
    answer: ClassVar[type]
    #: the explainer output in words, for documentation.
    output: ClassVar[str] = ""
    #: True when explainers answer without seeing the history (it is the answer), e.g. history
    #: reconstruction: such tasks are answered first and their histories are never shown.
    hides_history: ClassVar[bool] = False

    def __init__(self, spec: TaskSpec) -> None:
        if not is_answer_type(getattr(type(self), "answer", None)):
            raise ConfigError(
                f"task kind {self.kind or type(self).__name__!r} declares no usable answer type",
                where=f"{spec.path}:kind" if spec.path else f"task {spec.name}",
                fix="set the class attribute `answer` to a type from bench.answers, or a class with a "
                "`method` name and `to_prediction`",
            )
        unknown = sorted(set(spec.params) - set(self.defaults))
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {', '.join(unknown)} for task kind {self.kind!r}",
                where=f"{spec.path}:params" if spec.path else f"task {spec.name}",
                fix=f"known parameters: {', '.join(sorted(self.defaults))}",
            )
        self.spec = spec
        self.params: dict[str, Any] = {**self.defaults, **dict(spec.params)}
        names = [m.name for m in self.metrics()]
        if spec.main_metric not in names:
            raise ConfigError(
                f"main_metric {spec.main_metric!r} is not a metric of task {spec.name!r}",
                where=f"{spec.path}:main_metric" if spec.path else f"task {spec.name}",
                fix=f"choose one of: {', '.join(names)}",
            )

    @property
    def name(self) -> str:
        return self.spec.name

    @abstractmethod
    def metrics(self) -> list[MetricSpec]:
        """The metrics this task reports (the main one included)."""

    @abstractmethod
    def build(self, inp: BuildInput) -> list[Instance]:
        """Build instances for ``inp.rows`` from the target's predictions."""

    @abstractmethod
    def score(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, np.ndarray]:
        """Per-sample scores ``{metric: array[len(instances)]}``, aligned with ``instances``.

        Metrics that do not apply to an explainer's predictions (e.g. AUC without scores) are omitted.
        """

    def ratio_parts(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """For ratio metrics (``MetricSpec.ratio``): per-sample ``(num, den)`` with value ``Σnum/Σden``."""
        return {}

    def teacher_items(self, inst: Instance) -> tuple[int, ...]:
        """Items of ``inst`` that ``f`` chose among unseen items (candidates, a retrieval label): none
        of them may be in the user's known prefix (:func:`check_unseen`)."""
        return tuple(int(x) for x in inst.candidates)

    def auc_inputs(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """For AUC metrics (``MetricSpec.auc``): per-instance ``(score, label)`` vectors."""
        return {}

    def list_lengths(self, predictions: Sequence[Prediction]) -> np.ndarray | None:
        """Length of each answered list, for tasks whose metrics cut lists at K (else ``None``)."""
        return None

    def bind(self, **resources: Any) -> None:
        """Receive run resources before scoring (target, dataset, catalog, cache_dir, device, seed).

        Tasks whose scoring needs more than instances and predictions (a judge, the target for
        counterfactual deletion) override this; the default ignores them.
        """

    def sample_details(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> list[dict[str, Any]] | None:
        """Extra per-instance fields for the samples file (e.g. judge transcripts), or ``None``."""
        return None

    def public_meta_keys(self) -> frozenset[str]:
        """Keys of ``Instance.meta`` an explainer may see at prediction time."""
        return frozenset()

    def protocol(self) -> dict[str, Any]:
        """The task's protocol card entry (parameters and the sampling rule in words)."""
        return dict(self.params)

    # -- helpers shared by the tasks ------------------------------------------------------------

    def contexts(self, inp: BuildInput) -> list[Context]:
        """Teacher contexts: each user's train sequence (and, for align-train, earlier prefixes).

        The history is the last ``history_len`` items of the context; ``f`` reads exactly that
        history (the explainer and the target see the same input) and excludes the whole prefix
        (``Context.known``) from its candidates.
        """
        hist_len = int(self.params.get("history_len", 9))
        out: list[Context] = []
        for row in inp.rows:
            seq = inp.split.train[int(row)]
            user = int(inp.split.users[int(row)])
            full = tuple(int(x) for x in seq)
            out.append(Context(int(row), user, full[-hist_len:] if hist_len else (), 0, full))
            extra = inp.contexts_per_user - 1 if inp.part == "align_train" else 0
            if extra > 0 and len(seq) > 1:
                # earlier cut points, sampled without replacement among prefix lengths 1..len-1
                cuts = inp.rng.choice(np.arange(1, len(seq)), size=min(extra, len(seq) - 1), replace=False)
                for j, cut in enumerate(sorted(int(c) for c in cuts)):
                    prefix = tuple(int(x) for x in seq[:cut])
                    out.append(Context(int(row), user, prefix[-hist_len:] if hist_len else (), j + 1, prefix))
        return out

    def instance_key(self, inp: BuildInput, ctx: Context, *parts: object) -> str:
        """The readable key of an instance: ``"{task}/{part}/{raw user}/{k}[/parts...]"``.

        It must carry no label information (no "pos"/"neg"): tasks that build several instances
        from one context name them by a slot drawn at random (:func:`shuffled_slots`).
        """
        raw_user = inp.split.dataset.user_ids[ctx.user]
        return "/".join([self.name, inp.part, str(raw_user), str(ctx.k), *(str(p) for p in parts)])

    def make_instance(
        self,
        inp: BuildInput,
        ctx: Context,
        *key_parts: object,
        label: Any,
        candidates: tuple[int, ...] = (),
        meta: dict[str, Any] | None = None,
    ) -> Instance:
        """An :class:`Instance` for ``ctx`` with an opaque id (:func:`opaque_id` of its key) and the
        private ``prefix_len`` in its meta (only white-box explainers receive it)."""
        key = self.instance_key(inp, ctx, *key_parts)
        return Instance(
            instance_id=opaque_id(key),
            key=key,
            task=self.name,
            user=ctx.user,
            history=ctx.history,
            label=label,
            candidates=candidates,
            meta={**(meta or {}), "prefix_len": ctx.prefix_len},
        )


def opaque_id(key: str) -> str:
    """A stable id that says nothing about the instance: 16 hex digits of ``sha256(key)``.

    Stable across runs (``recxbench compare`` pairs samples by it); the key itself is label-free.
    Explainers never see this id at prediction time but a salted alias of it
    (:func:`bench.access.alias`), so it cannot be recomputed from raw user ids to identify a user.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def shuffled_slots(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` slot names ``a, b, ...`` in a random order: instances built together (a like and a
    dislike of one context) get their id from a slot, never from their label."""
    names = [chr(ord("a") + i) for i in range(n)]
    return [names[int(i)] for i in rng.permutation(n)]


def teacher_scores(target: TargetRecommender, contexts: Sequence[Context], *, batch: int = 512) -> np.ndarray:
    """``f``'s scores for teacher contexts: ``f`` reads each context's window and every item of its
    known prefix is ``-inf`` (RecExplainer's rule, implemented once in
    :func:`bench.recommenders.evaluation.scores_with_exclusions`). Batched; ``[len, n_items]``."""
    from bench.recommenders.evaluation import scores_with_exclusions

    parts = [
        scores_with_exclusions(
            target,
            [c.history for c in contexts[i : i + batch]],
            [c.known or c.history for c in contexts[i : i + batch]],
        )
        for i in range(0, len(contexts), batch)
    ]
    if not parts:
        return np.zeros((0, target.n_items), dtype=np.float32)
    return np.concatenate(parts, axis=0)


def known_prefix(split: Split, user: int, prefix_len: int) -> tuple[int, ...]:
    """The first ``prefix_len`` items of ``user``'s train sequence (what ``f`` excluded)."""
    row = int(np.searchsorted(split.users, user))
    if row >= len(split.users) or int(split.users[row]) != int(user):
        raise KeyError(f"user {user} is not in the split")
    return tuple(int(x) for x in split.train[row][:prefix_len])


def check_unseen(task: Task, split: Split, instances: Sequence[Instance]) -> int:
    """How many instances name a teacher item (:meth:`Task.teacher_items`) that the user had already
    interacted with before the context — 0 under the masking rule; the runner refuses anything else."""
    bad = 0
    rows = {int(u): r for r, u in enumerate(split.users)}
    for inst in instances:
        items = task.teacher_items(inst)
        if not items:
            continue
        prior = set(split.train[rows[inst.user]][: int(inst.meta.get("prefix_len", 0))].tolist())
        bad += any(i in prior for i in items)
    return bad


def ranked_unseen(scores_row: np.ndarray) -> np.ndarray:
    """Items ordered by ``f``'s score, best first, excluding masked (``-inf``) items.

    Ties are broken by the smaller item index (a stable sort), so the order is deterministic.
    """
    order = np.argsort(-scores_row, kind="stable")
    return order[np.isfinite(scores_row[order])]


def parse_failures(predictions: Sequence[Prediction]) -> np.ndarray:
    """1.0 where the explainer's raw answer had to be repaired, else 0.0."""
    return np.array([0.0 if p.parse_ok else 1.0 for p in predictions], dtype=np.float64)


PARSE_FAILURE = MetricSpec(
    "parse_failure_rate",
    higher_is_better=False,
    binary=True,
    description="share of answers that could not be parsed as given and were repaired",
)
