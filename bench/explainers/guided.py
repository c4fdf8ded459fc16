"""Guided-embedding refinement (arXiv 2504.11658) as an explainer of ``f`` (access: embedding).

The suite's LLM scores every item on interpretable attributes (:mod:`bench.llm.attributes`); the
attribute vectors, z-scored and frozen, are fused with a learned reduction of ``f``'s item vectors,
and a small additive scorer (:mod:`bench.explainers.guided_model`) is trained on the align-train
instances to reproduce ``f``'s like/dislike, order and top-1, early-stopped on align-valid. It answers
retrieval (all unseen items by score), ranking (candidates by score) and classification
(``like ⟺ σ(s) ≥ 0.5``, ``score = σ(s)``).

``explain()`` states the scorer's decision, then the attributes whose contributions push the item up
and down for this user, each with the history items that share it (z-score above
``share_threshold``), cited by their exact titles — so grounding and counterfactual fidelity
(:mod:`bench.tasks.grounding`) measure whether those items are what ``f`` relied on.

``guided-embedding-no-attributes`` is the same scorer on ``f``'s reduced embeddings alone: the
difference between the two rows is what the attributes add. Every modelling choice is a parameter
with a comment in ``tasks/explainers/guided.yaml``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from bench.answers import Permutation, RankedItems, Text, YesNo
from bench.explainers.base import Explainer, ExplainerContext
from bench.explainers.guided_model import Examples, GuidedScorer, train_scorer
from bench.explainers.guided_validity import validity_card
from bench.explainers.llm_params import merge_params
from bench.tasks.base import Task
from bench.types import Instance

log = logging.getLogger(__name__)

_KIND_OF = {YesNo: "classification", Permutation: "ranking", RankedItems: "retrieval"}


def load_guided_defaults() -> dict[str, Any]:
    """The defaults of ``tasks/explainers/guided.yaml``."""
    import yaml

    from bench.resources import tasks_dir

    return dict(yaml.safe_load((tasks_dir() / "explainers" / "guided.yaml").read_text(encoding="utf-8")))


class GuidedEmbedding(Explainer):
    """LLM-scored attributes fused with ``f``'s reduced embeddings; see the module docstring."""

    name = "guided-embedding"
    access = "embedding"
    uses_backbone = True
    summary = "LLM attribute scores (frozen) fused with f's reduced embeddings; additive scorer fit to f"
    use_attributes: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        self.params = merge_params(self.name, load_guided_defaults(), params)
        # the choices the YAML documents; the keys with one implemented value are checked, never ignored
        allowed = {
            "items": ("all", "needed"),
            "attribute_norm": ("zscore", "none"),
            "reduction_init": ("pca", "random"),
            "fusion": ("concat",),
            "user_attributes": ("history_mean",),
            "scorer": ("additive",),
        }
        for key, values in allowed.items():
            if self.params[key] not in values:
                raise ValueError(f"{key} must be one of {', '.join(values)}, got {self.params[key]!r}")
        self.scorer_info: dict[str, Any] = {}
        #: [items returned by retrieve(), of which without attribute scores (the neutral vector)]
        self.retrieval_neutral = [0, 0]

    # -- attributes ------------------------------------------------------------------------------

    def _attribute_scorer(self, ctx: ExplainerContext) -> Any:
        from bench.explainers.llm_base import run_backbone
        from bench.llm.attributes import AttributeScorer, ItemText, load_attributes

        ds = ctx.dataset
        backbone = run_backbone(ctx, str(self.params["backbone"]))  # the run's, read only here
        items = [ItemText(t, y, tuple(g)) for t, y, g in zip(ds.titles, ds.years, ds.genres, strict=True)]
        self.attribute_list = load_attributes(str(self.params["attributes"]))
        return AttributeScorer(
            backbone, self.attribute_list, items, batch_size=int(self.params["score_batch_size"])
        )

    def _ensure(self, items: Sequence[int]) -> None:
        """Score items not scored yet (``items: needed`` at answer time) and z-score them with the fit's statistics."""
        if not self.use_attributes:
            return
        todo = sorted({int(i) for i in items} - self.scored)
        if not todo:
            return
        raw = self.llm.score(todo)
        self.raw[todo] = raw
        self.scored.update(todo)
        with torch.no_grad():
            self.model.A[todo] = torch.as_tensor(self._normalise(raw))

    def _normalise(self, raw: np.ndarray) -> np.ndarray:
        if self.params["attribute_norm"] == "zscore":
            return ((raw - self.mu) / self.sd).astype(np.float32)
        if self.params["attribute_norm"] == "none":
            return raw.astype(np.float32)
        raise ValueError(f"attribute_norm must be 'zscore' or 'none', got {self.params['attribute_norm']!r}")

    def _learned(
        self, data: Mapping[str, list[Instance]], ctx: ExplainerContext, part: str = "train"
    ) -> dict[str, list[Instance]]:
        """The instances of the tasks it learns from. ``max_train_contexts``: only the instances of a
        seeded sample of that many (user, history) contexts, the same contexts for every task, so
        the tasks share the history items the LLM scores. ``max_train_instances``: then at most
        that many per task (a seeded subsample). Both apply to align-train and align-valid alike."""
        out = {}
        for t, insts in data.items():
            task = ctx.tasks.get(t)
            if task is not None and task.answer in _KIND_OF:
                out[t] = list(insts)
        cap_ctx = self.params["max_train_contexts"]
        if cap_ctx is not None:
            tasks_of: dict[tuple[int, tuple[int, ...]], set[str]] = {}
            for t, insts in out.items():
                for i in insts:
                    tasks_of.setdefault((i.user, tuple(i.history)), set()).add(t)
            contexts = sorted(tasks_of)
            if len(contexts) > int(cap_ctx):
                # contexts every task has first (a task may draw its earlier-prefix contexts on its
                # own), in a seeded random order within each tier
                draw = ctx.rng("guided-contexts", part).permutation(len(contexts))
                order = sorted(range(len(contexts)), key=lambda j: (-len(tasks_of[contexts[j]]), draw[j]))
                keep = {contexts[j] for j in order[: int(cap_ctx)]}
                out = {
                    t: [i for i in insts if (i.user, tuple(i.history)) in keep] for t, insts in out.items()
                }
        cap = self.params["max_train_instances"]
        for t, insts in out.items():
            if cap is not None and len(insts) > int(cap):
                pick = ctx.rng("guided-train", t).choice(len(insts), size=int(cap), replace=False)
                out[t] = [insts[int(j)] for j in sorted(pick)]
        return out

    @staticmethod
    def _items_of(instances: Mapping[str, list[Instance]]) -> set[int]:
        out: set[int] = set()
        for insts in instances.values():
            for i in insts:
                out.update(int(x) for x in i.history)
                out.update(int(x) for x in i.candidates)
                if isinstance(i.label, (list, tuple)):
                    out.update(int(x) for x in i.label)
        return out

    # -- training --------------------------------------------------------------------------------

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        p = self.params
        self.ctx = ctx
        n = len(ctx.catalog)
        valid = ctx.extra.get("valid") or {}
        train, valid = self._learned(train, ctx, "train"), self._learned(valid, ctx, "valid")
        self.raw = np.zeros((n, 1), dtype=np.float32)
        self.scored: set[int] = set()
        if self.use_attributes:
            self.llm = self._attribute_scorer(ctx)
            wanted = (
                range(n) if p["items"] == "all" else sorted(self._items_of(train) | self._items_of(valid))
            )
            wanted = list(wanted)
            self.raw = np.zeros((n, len(self.attribute_list.attributes)), dtype=np.float32)
            self.raw[wanted] = self.llm.score(wanted)
            self.scored = set(wanted)
            self.cache_signal = {"hits": self.llm.hits, "misses": self.llm.misses}
            self.mu = self.raw[wanted].mean(0)
            self.sd = self.raw[wanted].std(0) + 1e-6
        z = np.zeros_like(self.raw)
        if self.scored:
            idx = sorted(self.scored)
            z[idx] = self._normalise(self.raw[idx])  # unscored items keep the neutral vector 0
        torch.manual_seed(ctx.seed)
        self.model = GuidedScorer(
            z,
            ctx.embeddings.item_vectors(),
            reduced_dim=int(p["reduced_dim"]),
            use_attributes=self.use_attributes,
            reduction_init=str(p["reduction_init"]),
            seed=ctx.seed,
        )
        kw = dict(
            weights=dict(p["loss_weights"]),
            epochs=int(p["epochs"]),
            patience=int(p["patience"]),
            lr=float(p["lr"]),
            weight_decay=float(p["weight_decay"]),
            batch_size=int(p["batch_size"]),
            seed=ctx.seed,
        )
        self.scorer_info = train_scorer(self.model, self._examples(train), self._examples(valid), **kw)
        log.info("%s: %s", self.name, self.scorer_info)

    def _hist_attr(self, history: Sequence[int]) -> np.ndarray:
        a = self.model.A.numpy()
        return a[list(history)].mean(0) if len(history) else np.zeros(a.shape[1], dtype=np.float32)

    def _users(self, instances: Sequence[Instance]) -> tuple[torch.Tensor, torch.Tensor]:
        return self._users_from(*(i.history for i in instances))

    def _users_from(self, *histories: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The history attribute means ``[B, m]`` and f's user vectors ``[B, d]`` of ``histories``."""
        emb = self.ctx.embeddings
        hist = np.stack([self._hist_attr(h) for h in histories]).astype(np.float32)
        users = np.stack([emb.user_vector(h) for h in histories]).astype(np.float32)
        return torch.as_tensor(hist), torch.as_tensor(users)

    def _examples(self, data: Mapping[str, list[Instance]]) -> dict[str, Examples]:
        rows: dict[str, list[Instance]] = {}
        for name, insts in data.items():
            task = self.ctx.tasks.get(name)
            kind = _KIND_OF.get(task.answer) if task is not None else None
            if kind is not None:
                rows.setdefault(kind, []).extend(i for i in insts if i.label is not None)
        out: dict[str, Examples] = {}
        n = len(self.ctx.catalog)
        for kind, insts in rows.items():
            if not insts:
                continue
            hist, users = self._users(insts)
            mask = None
            if kind == "classification":
                items = [[int(i.candidates[0])] for i in insts]
                target = torch.tensor([int(i.label) for i in insts])
            elif kind == "ranking":
                items, target = [[int(x) for x in i.label] for i in insts], torch.zeros(len(insts))
            else:
                items = [[int(i.label[0])] for i in insts]
                target = torch.tensor([int(i.label[0]) for i in insts])
                mask = torch.zeros((len(insts), n), dtype=torch.bool)
                for r, i in enumerate(insts):
                    mask[r, [int(h) for h in i.history]] = True
                    mask[r, int(i.label[0])] = False
            if kind == "ranking" and len({len(x) for x in items}) > 1:
                continue  # unequal candidate counts: not one tensor (never the case for a built task)
            out[kind] = Examples(hist, users, torch.tensor(items, dtype=torch.long), target, mask)
        return out

    # -- answers ---------------------------------------------------------------------------------

    def _scores(self, instances: Sequence[Instance], items: Sequence[Sequence[int]] | None) -> np.ndarray:
        self._ensure({int(x) for i in instances for x in (*i.history, *i.candidates)})
        hist, users = self._users(instances)
        with torch.no_grad():
            idx = None if items is None else torch.tensor([list(x) for x in items], dtype=torch.long)
            return self.model(hist, users, idx).numpy()

    def retrieve(self, task: Task, instances: list[Instance]) -> list[RankedItems]:
        k = int(max(task.params.get("k", [10])))
        out = []
        for start in range(0, len(instances), 256):
            chunk = instances[start : start + 256]
            s = self._scores(chunk, None)
            for inst, row in zip(chunk, s, strict=True):
                row = row.copy()
                row[list(inst.history)] = -np.inf
                top = np.argsort(-row, kind="stable")[:k]
                out.append(RankedItems(top))
                # under items: needed the catalog is ranked with unscored items at the neutral vector
                self.retrieval_neutral[0] += len(top)
                self.retrieval_neutral[1] += sum(int(x) not in self.scored for x in top)
        return out

    def rank(self, task: Task, instances: list[Instance]) -> list[Permutation]:
        out = []
        for inst in instances:
            s = self._scores([inst], [inst.candidates])[0]
            cand = np.asarray(inst.candidates)
            out.append(Permutation(cand[np.lexsort((cand, -s))]))
        return out

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        if not instances:
            return []
        s = self._scores(instances, [[i.candidates[0]] for i in instances])[:, 0]
        p = 1.0 / (1.0 + np.exp(-s))
        return [YesNo(bool(x >= 0.5), score=float(x)) for x in p]

    def explain(self, task: Task, instances: list[Instance]) -> list[Text]:
        from bench.explainers.guided_text import explanation

        out = []
        for inst in instances:
            if len(inst.candidates) == 1:
                item, prefix = int(inst.candidates[0]), ""
            else:
                pool = list(inst.candidates) or [
                    i for i in range(len(self.ctx.catalog)) if i not in set(inst.history)
                ]
                s = self._scores([inst], [pool])[0]
                item, prefix = int(pool[int(np.argmax(s))]), "Top pick. "
            out.append(Text(prefix + explanation(self, inst.history, item)))
        return out

    # -- provenance ------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["training"] = dict(self.scorer_info)
        if self.use_attributes and hasattr(self, "llm"):
            n = len(self.ctx.catalog)
            out["attribute_scoring"] = {
                **self.llm.info(),
                "items": self.params["items"],
                "items_scored": len(self.scored),
                "catalog_items": n,
                # unscored items carry the neutral attribute vector (z = 0) wherever they appear
                "items_unscored": n - len(self.scored),
                "retrieval_returned": self.retrieval_neutral[0],
                "retrieval_returned_unscored": self.retrieval_neutral[1],
                **self.cache_signal,
            }
            card = validity_card(
                self.ctx.dataset, self.attribute_list, self.raw, sorted(self.scored), seed=self.ctx.seed
            )
            if card is not None:
                card["catalog_items"] = n
                card["retrieval_returned"] = self.retrieval_neutral[0]
                card["retrieval_returned_unscored"] = self.retrieval_neutral[1]
                out["attribute_validity"] = card
        return out


class GuidedEmbeddingNoAttributes(GuidedEmbedding):
    """The ablation: the same scorer on ``f``'s reduced embeddings alone (no LLM, no attributes)."""

    name = "guided-embedding-no-attributes"
    uses_backbone = False
    summary = "guided-embedding's scorer on f's reduced embeddings alone (ablation: no attributes)"
    use_attributes = False

    def explain(self, task: Task, instances: list[Instance]) -> list[Text]:  # type: ignore[override]
        raise NotImplementedError("the ablation has no attributes to explain with")

    def supports(self, task: Task) -> bool:
        return task.answer is not Text and super().supports(task)
