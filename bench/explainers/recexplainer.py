"""RecExplainer-B: an LLM fine-tuned with LoRA to reproduce the target's behavior from text.

Training data (align-train instances, labels from the target): retrieval (history -> f's top-1
title), ranking (history + shuffled candidates -> f's order), classification (history + item ->
Yes/No), each rendered with a paraphrased template drawn at random (the first template is held for
evaluation prompts, as every explainer is asked the same question), plus an item-knowledge
auxiliary task (title <-> genres/year; the paper's item discrimination task). The adapter lives in
the run cache, so a rerun reuses it; an interrupted training resumes from the last epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from bench import seeds
from bench.explainers.base import ExplainerContext
from bench.explainers.llm_base import LLMExplainer
from bench.types import Instance

log = logging.getLogger(__name__)


class RecExplainerB(LLMExplainer):
    name = "recexplainer-b"
    access = "behavior"
    summary = "LoRA fine-tune on text prompts built from the target's outputs (behavior alignment)"
    defaults_sections = ("recexplainer",)
    modifies_backbone = True  # LoRA (and, for I/H, placeholder tokens): a private copy of the run's backbone
    #: parameters that only change inference, not the trained adapter (so ablations reuse it)
    inference_only = frozenset(
        {
            "batch_size",
            "retrieval_beams",
            "constrained",
            "max_new_tokens",
            "explain_max_new_tokens",
            "ablation",
        }
    )

    def training_examples(self, train: Mapping[str, list[Instance]], rng: np.random.Generator) -> list[Any]:
        from bench.llm.chat import format_prompt
        from bench.llm.lora import TrainExample

        kinds = set(self.params["train_tasks"])  # task kinds trained on
        tasks = [self.ctx.tasks[t] for t in train if self.ctx.tasks[t].spec.kind in kinds]
        cap = self.params["max_train_examples"]
        weights = {t.name: float(self.params["task_weights"].get(t.spec.kind, 1.0)) for t in tasks}
        total_w = sum(weights.values()) or 1.0
        examples: list[TrainExample] = []
        for task in tasks:
            insts = list(train[task.name])
            if cap is not None:
                n = min(len(insts), int(round(int(cap) * weights[task.name] / total_w)))
                insts = [insts[int(i)] for i in rng.choice(len(insts), size=n, replace=False)]
            shape = self.shape(task)
            for inst in insts:
                # the count of the behavior form's paraphrases, whatever the form (keeps the draws)
                n_variants = self.prompts.n_variants(shape.key)
                variant = int(rng.integers(0, n_variants)) if self.params["paraphrases"] else 0
                prompt = format_prompt(self.backbone, self.question(shape, inst, variant=variant))
                examples.append(
                    TrainExample(prompt, self.target_answer(task, inst), self.extras(shape, inst) or {})
                )
        examples += self.item_examples(rng)
        order = rng.permutation(len(examples))
        return [examples[int(i)] for i in order]

    def item_examples(self, rng: np.random.Generator) -> list[Any]:
        """Item knowledge: title -> genres (and genres/year -> title) for a sample of items."""
        from bench.llm.chat import format_prompt
        from bench.llm.lora import TrainExample

        ds = self.ctx.dataset
        n = min(int(self.params["aux_item_examples"]), ds.n_items)
        usable = [
            i for i in range(ds.n_items) if ds.titles[i] and ds.genres[i] and ds.genres[i] != ("unknown",)
        ]
        if not usable or n <= 0:
            return []
        out = []
        for i in rng.choice(len(usable), size=min(n, len(usable)), replace=False):
            item = usable[int(i)]
            genres = ", ".join(ds.genres[item])
            if rng.random() < 0.5:
                v = int(rng.integers(0, self.prompts.n_variants("item_to_genres")))
                q = self.prompts.render("item_to_genres", v, item=ds.titles[item])
                out.append(TrainExample(format_prompt(self.backbone, q), genres))
            else:
                q = self.prompts.render("genres_to_item", 0, genres=genres, year=ds.years[item])
                out.append(TrainExample(format_prompt(self.backbone, q), ds.titles[item]))
        return out

    def lora_config(self) -> Any:
        from bench.llm.lora import LoraTrainConfig

        cfg = dict(self.params["lora"])
        cfg["target_modules"] = tuple(cfg["target_modules"])
        return LoraTrainConfig(**cfg, seed=self.ctx.seed)

    def adapter_dir(self, train: Mapping[str, list[Instance]]) -> Any:
        """Where the adapter lives: keyed by what training depends on, so inference-only variants
        (an ablation row, other decoding) reuse it instead of training again."""
        from bench.hashing import stable_hash

        key = stable_hash(
            {
                "name": self.name,
                "params": {k: v for k, v in self.params.items() if k not in self.inference_only},
                "train": {t: [(i.instance_id, i.label) for i in insts] for t, insts in sorted(train.items())},
                "seed": self.ctx.seed,
            }
        )[:16]
        root = self.ctx.extra.get("adapters_dir") or (self.ctx.cache_dir / "adapters")
        return root / f"{self.name}-{key}"

    def train_kwargs(self) -> dict[str, Any]:
        """Extra arguments of ``train_lora`` (the embedding variants add their injector)."""
        return {}

    def adapter_kwargs(self) -> dict[str, Any]:
        return {}

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        from bench.llm.lora import load_adapter, train_lora

        super().fit(train, ctx)
        rng = ctx.rng(seeds.TRAIN_EXAMPLES)
        examples = self.training_examples(train, rng)
        log.info("%s: %d training examples", self.name, len(examples))
        self.report = train_lora(
            self.backbone,
            examples,
            self.lora_config(),
            out_dir=self.adapter_dir(train),
            progress=True,
            **self.train_kwargs(),
        )
        self.backbone = load_adapter(self.backbone, self.report.adapter_dir, **self.adapter_kwargs())
        log.info(
            "%s: trained %d steps in %.1f s (%.0f tokens/s), final loss %.3f",
            self.name,
            self.report.steps,
            self.report.seconds,
            self.report.tokens_per_second,
            self.report.final_loss,
        )

    def info(self) -> dict[str, Any]:
        out = super().info()
        rep = getattr(self, "report", None)
        if rep is not None:
            out["training"] = {
                "steps": rep.steps,
                "examples": rep.examples,
                "tokens": rep.tokens,
                "seconds": round(rep.seconds, 2),
                "tokens_per_second": round(rep.tokens_per_second, 1),
                "final_loss": rep.final_loss,
            }
        return out
