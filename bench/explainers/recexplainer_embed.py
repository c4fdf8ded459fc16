"""RecExplainer-I and -H: the target's embeddings as a second modality of the LLM.

The target's user vector (its representation of the history) and item vectors (its item table)
pass through two projectors (Linear -> GELU -> Linear) into the LLM at the ``<user>``/``<item>``
placeholder tokens (:mod:`bench.llm.inject`). LoRA and the projectors are trained together; the
target stays frozen (its vectors are computed once, outside any graph).

* ``recexplainer-i`` (intention): the question carries only placeholders, no titles.
* ``recexplainer-h`` (hybrid): the question carries the titles *and* the placeholders.

Training tasks: retrieval, ranking, classification, history reconstruction (user vector -> the
last history titles) and item-title recovery (``<item>`` -> its title). Of the paper's three
hybrid data forms we train H on the combined form only (as the released code does): the behavior
form is what ``recexplainer-b`` measures, and the intention form is what ``recexplainer-i``
measures, so H isolates the effect of seeing both at once.

``ablation`` (inference only) feeds the trained model altered vectors: ``zero`` (user and item
vectors zeroed), ``shuffle`` (every vector moved to another slot) or ``user_shuffle`` (each user's
vector replaced by another user's, item vectors intact). Only ``user_shuffle`` isolates the *user*
modality: an explainer that merely learned which items ``f`` likes keeps its score under it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from bench import seeds
from bench.explainers.base import ExplainerContext
from bench.explainers.llm_base import ITEM_TITLE, Shape
from bench.explainers.recexplainer import RecExplainerB
from bench.tasks.base import Task
from bench.types import Instance, Prediction

log = logging.getLogger(__name__)

#: inference-only ablations (see the module docstring)
ABLATIONS = ("none", "zero", "shuffle", "user_shuffle")


class RecExplainerI(RecExplainerB):
    name = "recexplainer-i"
    access = "embedding"
    summary = (
        "LoRA + projectors reading the target's user/item embeddings at <user>/<item> tokens (intention)"
    )
    defaults_sections = ("recexplainer", "recexplainer_embed")
    form = "intention"

    def load_backbone(self, ctx: ExplainerContext) -> Any:
        from bench.llm.inject import InjectionConfig, build_injector

        backbone = super().load_backbone(ctx)
        if str(self.params["ablation"]) not in ABLATIONS:
            from bench.errors import UserError

            raise UserError(
                f"unknown ablation {self.params['ablation']!r} for {self.name}",
                where="explainers.params.ablation",
                fix=f"use one of: {', '.join(ABLATIONS)}",
            )
        self.item_table = np.asarray(ctx.embeddings.item_vectors(), dtype=np.float32)
        cfg = InjectionConfig(
            mode=str(self.params["injection_mode"]),
            hidden=self.params["projector_hidden"],
            ablation="none",
            seed=ctx.seed,
        )
        self.injector = build_injector(backbone, rec_dim=self.item_table.shape[1], config=cfg, seed=ctx.seed)
        self._user_remap: dict[bytes, np.ndarray] | None = None
        return backbone

    # -- vectors ---------------------------------------------------------------------------------

    def user_vector(self, inst: Instance) -> np.ndarray:
        if "user_vector" in inst.meta:  # history reconstruction: the history itself is hidden
            vec = np.asarray(inst.meta["user_vector"], dtype=np.float32)
        else:
            vec = self.ctx.embeddings.user_vector(inst.history)
        if self._user_remap is not None:
            return self._user_remap[vec.tobytes()]
        return vec

    @contextmanager
    def _user_shuffle(self, instances: list[Instance]) -> Iterator[None]:
        """Under ``ablation: user_shuffle``, each distinct user vector of ``instances`` is replaced by
        another one along a seeded cycle (a derangement: no user keeps its own vector); the item
        vectors are untouched. Users are told apart by their vectors (ids are hidden from explainers)."""
        if str(self.params["ablation"]) != "user_shuffle":
            yield
            return
        distinct: dict[bytes, np.ndarray] = {}
        for inst in instances:
            v = self.user_vector(inst)
            distinct.setdefault(v.tobytes(), v)
        keys = sorted(distinct)
        perm = seeds.rng(self.ctx.seed, seeds.USER_SHUFFLE).permutation(len(keys))
        remap = {}
        for j in range(len(keys)):  # slot perm[j] takes the vector of slot perm[j + 1]
            remap[keys[int(perm[j])]] = distinct[keys[int(perm[(j + 1) % len(keys)])]]
        self._user_remap = remap
        try:
            yield
        finally:
            self._user_remap = None

    def answer(self, task: Task, instances: list[Instance]) -> list[Prediction]:
        with self._user_shuffle(instances):
            return super().answer(task, instances)

    def extras(self, shape: Shape, inst: Instance) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        if shape.user:
            out["user_vectors"] = [self.user_vector(inst)]
        if shape.shows != "none":
            out["item_vectors"] = [self.item_table[int(i)] for i in self.shown(shape, inst)]
        return out

    # -- training ----------------------------------------------------------------------------------

    def training_examples(self, train: Mapping[str, list[Instance]], rng: np.random.Generator) -> list[Any]:
        from bench.llm.chat import format_prompt
        from bench.llm.lora import TrainExample

        examples = super().training_examples(train, rng)
        n_items = len(self.ctx.catalog)
        n = min(int(self.params["item_title_examples"]), n_items)
        for i in rng.choice(n_items, size=n, replace=False):
            inst = Instance(
                instance_id=f"item/{int(i)}",
                task="item_title",
                user=-1,
                history=(),
                label=None,
                candidates=(int(i),),
            )
            v = int(rng.integers(0, self.prompts.n_variants(f"{self.form}.item_title")))
            prompt = format_prompt(self.backbone, self.question(ITEM_TITLE, inst, variant=v))
            examples.append(
                TrainExample(prompt, self.titles([int(i)])[0], self.extras(ITEM_TITLE, inst) or {})
            )
        order = rng.permutation(len(examples))
        return [examples[int(j)] for j in order]

    def train_kwargs(self) -> dict[str, Any]:
        return {"extra_modules": {"injector": self.injector}, "embed_hook": self.injector.embed_hook}

    def adapter_kwargs(self) -> dict[str, Any]:
        return {"extra_modules": {"injector": self.injector}}

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        super().fit(train, ctx)
        self.injector.eval()
        # the ablation applies at inference only; training always sees the real vectors
        self.injector.config = type(self.injector.config)(
            mode=self.injector.config.mode,
            hidden=self.injector.config.hidden,
            ablation="none" if self.params["ablation"] == "user_shuffle" else str(self.params["ablation"]),
            seed=ctx.seed,
        )

    # -- inference ---------------------------------------------------------------------------------

    def _generate(self, prompts: list[str], extras: list[Any], **kw: Any) -> list[list[str]]:
        from bench.llm.injected import generate_injected

        return generate_injected(self.backbone, self.injector, prompts, [e or {} for e in extras], **kw)

    def _score(
        self, prompts: list[str], extras: list[Any], conts: list[list[str]], *, batch_size: int
    ) -> list[list[float]]:
        from bench.llm.injected import score_continuations_injected

        return score_continuations_injected(
            self.backbone, self.injector, prompts, [e or {} for e in extras], conts, batch_size=batch_size
        )

    def _scorer(self, prompts: list[str], extras: list[Any], *, batch_size: int) -> Any:
        from bench.llm.injected import InjectedScorer

        return InjectedScorer(
            self.backbone, self.injector, prompts, [e or {} for e in extras], batch_size=batch_size
        )

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["injection"] = {
            "mode": self.params["injection_mode"],
            "ablation": self.params["ablation"],
            "projector_hidden": self.params["projector_hidden"],
        }
        return out


class RecExplainerH(RecExplainerI):
    name = "recexplainer-h"
    access = "embedding"
    summary = "titles and the target's embeddings in one prompt (hybrid alignment)"
    form = "hybrid"
