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

``ablation: zero | shuffle`` (inference only) feeds zero or shuffled vectors to the trained model:
the I variant must then fall to chance, which shows the vectors carry the information.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from bench.explainers.base import ExplainerContext
from bench.explainers.llm_base import CLASSIFICATION, HISTORY, RANKING
from bench.explainers.recexplainer import RecExplainerB
from bench.types import Instance

log = logging.getLogger(__name__)


class RecExplainerI(RecExplainerB):
    name = "recexplainer-i"
    access = "embedding"
    summary = (
        "LoRA + projectors reading the target's user/item embeddings at <user>/<item> tokens (intention)"
    )
    defaults_sections = ("recexplainer", "recexplainer_embed")
    form = "intention"
    tasks = frozenset({"next_item_retrieval", RANKING, CLASSIFICATION, HISTORY})

    def load_backbone(self, ctx: ExplainerContext) -> Any:
        from bench.llm.inject import InjectionConfig, build_injector

        backbone = super().load_backbone(ctx)
        self.item_table = np.asarray(ctx.target.item_embeddings(), dtype=np.float32)
        cfg = InjectionConfig(
            mode=str(self.params["injection_mode"]),
            hidden=self.params["projector_hidden"],
            ablation="none",
            seed=ctx.seed,
        )
        self.injector = build_injector(backbone, rec_dim=self.item_table.shape[1], config=cfg, seed=ctx.seed)
        self._user_cache: dict[tuple[int, ...], np.ndarray] = {}
        return backbone

    # -- vectors ---------------------------------------------------------------------------------

    def user_vector(self, inst: Instance) -> np.ndarray:
        if "user_vector" in inst.meta:  # history reconstruction: the history itself is hidden
            return np.asarray(inst.meta["user_vector"], dtype=np.float32)
        key = tuple(inst.history)
        if key not in self._user_cache:
            self._user_cache[key] = np.asarray(
                self.ctx.target.user_embeddings([list(key)])[0], dtype=np.float32
            )
        return self._user_cache[key]

    def extras(self, kind: str, inst: Instance) -> dict[str, Any] | None:
        shown = list(inst.candidates) if kind == RANKING else list(inst.candidates[:1])
        out: dict[str, Any] = {}
        if kind != "item_title":
            out["user_vectors"] = [self.user_vector(inst)]
        if kind in (RANKING, CLASSIFICATION, "explanation", "item_title"):
            out["item_vectors"] = [self.item_table[int(i)] for i in shown]
        return out

    # -- training ----------------------------------------------------------------------------------

    def training_examples(self, train: Mapping[str, list[Instance]], rng: np.random.Generator) -> list[Any]:
        from bench.llm.chat import format_prompt
        from bench.llm.training import TrainExample

        examples = super().training_examples(train, rng)
        ds = self.ctx.dataset
        n = min(int(self.params["item_title_examples"]), ds.n_items)
        for i in rng.choice(ds.n_items, size=n, replace=False):
            inst = Instance(
                instance_id=f"item/{int(i)}",
                task="item_title",
                user=-1,
                history=(),
                label=None,
                candidates=(int(i),),
            )
            v = int(rng.integers(0, self.prompts.n_variants(f"{self.form}.item_title")))
            prompt = format_prompt(self.backbone, self.question("item_title", inst, variant=v))
            examples.append(
                TrainExample(prompt, self.titles([int(i)])[0], self.extras("item_title", inst) or {})
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
            ablation=str(self.params["ablation"]),
            seed=ctx.seed,
        )

    # -- inference ---------------------------------------------------------------------------------

    def _generate(self, prompts: list[str], extras: list[Any], **kw: Any) -> list[list[str]]:
        from bench.llm.inject import generate_injected

        return generate_injected(self.backbone, self.injector, prompts, [e or {} for e in extras], **kw)

    def _score(
        self, prompts: list[str], extras: list[Any], conts: list[list[str]], *, batch_size: int
    ) -> list[list[float]]:
        from bench.llm.inject import score_continuations_injected

        return score_continuations_injected(
            self.backbone, self.injector, prompts, [e or {} for e in extras], conts, batch_size=batch_size
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
