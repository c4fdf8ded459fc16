"""Shared machinery of the LLM explainers: prompts from instances, answers from the backbone.

How each task is answered (the same for every LLM explainer, so they differ only in training):

* retrieval — beam search (``retrieval_beams`` beams, each beam one answer), constrained to catalog
  titles or free; free text is resolved through the catalog and unresolved titles count as
  hallucinated items (``-1``);
* ranking — with ``constrained`` (the default), the order is built one candidate at a time: each
  step appends the unused candidate whose title, written after the answer so far, the model finds
  most likely (log-likelihood, as for classification), so the answer is always a permutation of the
  shown candidates; without it, greedy generation of the ordered titles, split on
  ``;``/newlines/numbering and matched to the shown candidates; missing candidates are appended in
  the order shown and repeated or foreign titles dropped, and such a repaired answer counts as a
  parse failure (a model that cannot copy titles, such as ``tiny-random`` after a short LoRA,
  fails every time);
* classification — the log-likelihoods of the "Yes" and "No" answers (never parsed from free
  text); ``score = sigmoid(log P(Yes) - log P(No))``;
* history reconstruction — greedy generation of titles resolved through the catalog; only for
  explainers whose prompts carry the user's vector (the history is hidden): text-only ones show n/a.

What a question shows follows the task's answer type (:class:`Shape`), never its name: the
template is the task kind's (``explanation`` for explanations), so a task kind without a template
in the prompt set is n/a for the LLM explainers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bench import seeds
from bench.answers import ItemList, Permutation, RankedItems, Text, YesNo
from bench.explainers.base import Explainer, ExplainerContext
from bench.explainers.llm_params import load_defaults, merge_params
from bench.explainers.llm_text import answer_text, parse_items, parse_ranking, yes_no_answer
from bench.explainers.prompts import PromptSet, load_prompts
from bench.tasks.base import Task
from bench.types import Instance

log = logging.getLogger(__name__)

__all__ = ["LLMExplainer", "Shape", "run_backbone"]


def run_backbone(ctx: ExplainerContext, spec: str, *, private: bool = False) -> Any:
    """Backbone ``spec`` from the run's loader (``ctx.extra["backbones"]``, one load per run): the
    shared copy (read only), or with ``private`` a copy of its own (LoRA, new tokens). Outside a run
    (or a bare context such as lm-eval export's) a loader of its own."""
    from bench.llm.backbone import BackboneLoader

    loader = (getattr(ctx, "extra", None) or {}).get("backbones") or BackboneLoader()
    get = loader.private if private else loader.shared
    return get(spec, device=ctx.device, titles=list(ctx.dataset.titles), seed=ctx.seed)


@dataclass(frozen=True)
class Shape:
    """What a question shows: its template key (before the form's prefix), which shown items it
    names (``"candidates"``, the first ``"item"`` or ``"none"``), whether the user is in it, and ``k``
    (how many titles a history answer names)."""

    key: str
    shows: str = "none"
    user: bool = True
    k: int = 9


#: which items a question names, by the task's answer type (an answer type not here is n/a)
_SHOWS: dict[type, str] = {
    RankedItems: "none",
    Permutation: "candidates",
    YesNo: "item",
    ItemList: "none",
    Text: "item",
}
#: ranking prompts whose KV caches are held at once, in scoring batches (bounds the memory)
_RANK_BLOCK_BATCHES = 4
#: the auxiliary item-title question of the embedding explainers: ``<item>`` -> its title
ITEM_TITLE = Shape("item_title", shows="item", user=False)


class LLMExplainer(Explainer):
    """Base class: loads a backbone, turns instances into prompts and answers into predictions."""

    uses_backbone: ClassVar[bool] = True
    defaults_sections: ClassVar[tuple[str, ...]] = ("common",)
    #: prompt form: "behavior" (titles), "intention" (<user>/<item> vectors), "hybrid" (both)
    form: ClassVar[str] = "behavior"

    def __init__(self, **params: Any) -> None:
        self.params = merge_params(self.name, load_defaults(*self.defaults_sections), params)
        self.backbone: Any = None
        self.prompts: PromptSet = load_prompts(str(self.params["prompts"]))
        self.shots: dict[str, list[Instance]] = {}

    # -- set-up -----------------------------------------------------------------------------------

    #: True for explainers that change their backbone (LoRA, new tokens): they get a private copy
    modifies_backbone: ClassVar[bool] = False

    def load_backbone(self, ctx: ExplainerContext) -> Any:
        """The run's backbone: the shared one, or a private copy for an explainer that
        ``modifies_backbone`` (:func:`run_backbone`)."""
        return run_backbone(ctx, str(self.params["backbone"]), private=self.modifies_backbone)

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.ctx = ctx
        self.backbone = self.load_backbone(ctx)
        self.pick_shots(train)

    def pick_shots(self, train: Mapping[str, list[Instance]]) -> None:
        """Few-shot examples: the same ``few_shot`` align-train instances for every test instance."""
        k = int(self.params["few_shot"])
        if k <= 0:
            return
        rng = self.ctx.rng(seeds.FEW_SHOT)
        for task, insts in train.items():
            if insts:
                idx = rng.choice(len(insts), size=min(k, len(insts)), replace=False)
                self.shots[task] = [insts[int(i)] for i in sorted(idx)]

    def supports(self, task: Task) -> bool:
        """The base rule, narrowed: a known answer type, a template for the task in the prompt set,
        and for tasks that hide the history a prompt that carries the user (not the behavior form)."""
        if not super().supports(task) or task.answer not in _SHOWS:
            return False
        if task.hides_history and self.form == "behavior":
            return False
        return self.prompts.n_variants(self.template_key(self.shape(task))) > 0

    def info(self) -> dict[str, Any]:
        b = self.backbone
        return {
            **super().info(),
            "backbone": None
            if b is None
            else {"spec": b.spec, "sha256": b.sha256, "device": b.device, "dtype": b.dtype},
            "prompt_template_sha256": self.prompts.sha256,
            "decoding": {
                "retrieval": f"beam search, {self.params['retrieval_beams']} beams, "
                + (
                    "constrained to catalog titles"
                    if self.params["constrained"]
                    else "free text resolved by the catalog"
                ),
                "ranking": "candidates appended one at a time by log-likelihood (always a permutation)"
                if self.params["constrained"]
                else "greedy generation, parsed",
                "classification": "log-likelihood of Yes vs No",
            },
        }

    # -- prompts ----------------------------------------------------------------------------------

    def shape(self, task: Task) -> Shape:
        """The question shape of ``task``, from its answer type (see :class:`Shape`)."""
        key = "explanation" if task.answer is Text else task.spec.kind
        return Shape(key, _SHOWS[task.answer], k=int(task.params.get("history_len", 9)))

    def template_key(self, shape: Shape) -> str:
        return shape.key if self.form == "behavior" else f"{self.form}.{shape.key}"

    def titles(self, items: Sequence[int]) -> list[str]:
        return [self.ctx.dataset.titles[int(i)] or f"item {self.ctx.dataset.item_ids[int(i)]}" for i in items]

    @staticmethod
    def shown(shape: Shape, inst: Instance) -> list[int]:
        """The items a question of ``shape`` names for ``inst``."""
        if shape.shows == "candidates":
            return list(inst.candidates)
        return list(inst.candidates[:1]) if shape.shows == "item" else []

    def question(self, shape: Shape, inst: Instance, *, variant: int = 0) -> str:
        """The user-turn text of an instance (no answer, no chat formatting).

        Behavior prompts name items by title; intention prompts write ``<user>``/``<item>``
        placeholders (filled with the target's vectors, see :meth:`extras`); hybrid prompts do both.
        """
        from bench.llm.inject import ITEM_TOKEN, USER_TOKEN

        hist = self.titles(inst.history[-int(self.params["max_history_titles"]) :])
        values: dict[str, Any] = {"history": hist, "k": shape.k, "user": USER_TOKEN}
        shown = self.shown(shape, inst)
        names = self.titles(shown)
        if self.form == "intention":
            names = [ITEM_TOKEN] * len(shown)
        elif self.form == "hybrid":
            names = [f'{ITEM_TOKEN} "{t}"' for t in names]
        if shape.shows == "candidates":
            values["candidates"] = names
        elif shape.shows == "item":
            values["item"] = names[0]
        return self.prompts.render(self.template_key(shape), variant, **values)

    def target_answer(self, task: Task, inst: Instance) -> str:
        """The target's answer to a (labelled) instance, as the LLM should write it."""
        sep = self.prompts.answers["separator"]
        if task.answer is YesNo:
            return self.prompts.answers["yes" if int(inst.label) == 1 else "no"]
        if task.answer is RankedItems:
            return self.titles([inst.label[0]])[0]
        if task.answer in (Permutation, ItemList):
            return sep.join(self.titles(inst.label))
        raise ValueError(f"{self.name}: no written answer for {task.answer.__name__}")

    def prompt(self, task: Task, inst: Instance) -> str:
        """The chat-formatted evaluation prompt (with few-shot examples first when configured)."""
        from bench.llm.chat import format_prompt

        shape = self.shape(task)
        text = self.question(shape, inst)
        shots = self.shots.get(task.name, []) if self.form == "behavior" else []
        if shots:
            blocks = [
                f"Example {j + 1}:\n{self.question(shape, s)}\nAnswer: {self.target_answer(task, s)}"
                for j, s in enumerate(shots)
            ]
            text = "\n\n".join([*blocks, f"Now the question:\n{text}"])
        return format_prompt(self.backbone, text)

    def inputs(self, task: Task, instances: list[Instance]) -> tuple[list[str], list[Any]]:
        """Prompts and injected vectors of ``instances``."""
        shape = self.shape(task)
        return [self.prompt(task, i) for i in instances], [self.extras(shape, i) for i in instances]

    # -- answering --------------------------------------------------------------------------------

    def extras(self, shape: Shape, inst: Instance) -> dict[str, Any] | None:
        """Vectors to inject for an instance (``None`` for text-only explainers)."""
        return None

    def _generate(self, prompts: list[str], extras: list[Any], **kw: Any) -> list[list[str]]:
        from bench.llm.generation import generate

        return generate(self.backbone, prompts, **kw)

    def _score(
        self, prompts: list[str], extras: list[Any], conts: list[list[str]], *, batch_size: int
    ) -> list[list[float]]:
        from bench.llm.scoring import score_continuations

        return score_continuations(self.backbone, prompts, conts, batch_size=batch_size)

    def _scorer(self, prompts: list[str], extras: list[Any], *, batch_size: int) -> Any:
        """``scorer(conts)`` = :meth:`_score` on these prompts, each prompt's pass run once for all calls."""
        from bench.llm.scoring import ContinuationScorer

        return ContinuationScorer(self.backbone, prompts, batch_size=batch_size)

    def _trie(self) -> Any:
        if getattr(self, "_title_trie", None) is None:
            from bench.llm.trie import TitleTrie

            self._title_trie = TitleTrie.build(
                self.backbone.tokenizer, [t for t in self.ctx.dataset.titles if t]
            )
        return self._title_trie

    def retrieve(self, task: Task, instances: list[Instance]) -> list[RankedItems]:
        prompts, extras = self.inputs(task, instances)
        beams = int(self.params["retrieval_beams"])
        constrained = bool(self.params["constrained"])
        outs = self._generate(
            prompts,
            extras,
            max_new_tokens=48,
            num_beams=beams,
            num_return_sequences=beams,
            batch_size=max(1, int(self.params["batch_size"]) // 2),
            constraint=self._trie() if constrained else None,
            progress=False,
        )
        answers = []
        for texts in outs:
            ids = [-1 if (r := self.ctx.catalog.resolve(text)) is None else int(r) for text in texts]
            answers.append(RankedItems(ids, raw=" || ".join(texts), parse_ok=bool(texts)))
        return answers

    def rank(self, task: Task, instances: list[Instance]) -> list[Permutation]:
        prompts, extras = self.inputs(task, instances)
        return self.rank_prompted(instances, prompts, extras)

    def rank_prompted(
        self, instances: list[Instance], prompts: list[str], extras: list[Any]
    ) -> list[Permutation]:
        """Ranking answers to ready prompts: by likelihood when ``constrained``, else generated and parsed."""
        if self.params["constrained"]:
            return self.rank_by_likelihood(instances, prompts, extras)
        texts = self._list_answers(prompts, extras)
        return [self.parse_ranking(inst, text) for inst, text in zip(instances, texts)]

    def rank_by_likelihood(
        self, instances: list[Instance], prompts: list[str], extras: list[Any]
    ) -> list[Permutation]:
        """Constrained ranking: the ranking counterpart of title-constrained retrieval.

        The answer is written as training writes it (titles joined by the separator) and built one
        candidate at a time: at each step every unused candidate is scored as ``answer so far +
        its title`` (one batched log-likelihood call per position, ``n - 1`` in all; summed over
        tokens, no length normalisation, as constrained retrieval ranks titles) and the most likely
        one is appended (ties: the earlier shown). The result is always a permutation of the
        shown candidates, so it never needs repair; what it measures is the model's preference.
        """
        sep = self.prompts.answers["separator"]
        batch = int(self.params["batch_size"])
        answers: list[Permutation] = []
        # Each block's prompts run once and their KV caches serve every position (n - 1 scoring
        # calls); blocks bound the memory those caches hold.
        block = _RANK_BLOCK_BATCHES * batch
        for start in range(0, len(instances), block):
            part = slice(start, start + block)
            scorer = self._scorer(prompts[part], extras[part], batch_size=batch)
            answers += self._rank_block(instances[part], prompts[part], scorer, sep)
        return answers

    def _rank_block(
        self, instances: list[Instance], prompts: list[str], scorer: Any, sep: str
    ) -> list[Permutation]:
        names = [self.titles(inst.candidates) for inst in instances]
        orders: list[list[int]] = [[] for _ in instances]
        while rows := [i for i, n in enumerate(names) if len(n) - len(orders[i]) > 1]:
            rests: dict[int, list[int]] = {
                i: [j for j in range(len(names[i])) if j not in orders[i]] for i in rows
            }
            conts = [
                [
                    answer_text(prompts[i], "".join(names[i][k] + sep for k in orders[i]) + names[i][j])
                    for j in rests[i]
                ]
                if i in rests
                else []
                for i in range(len(instances))
            ]
            lls = scorer(conts)
            for i in rows:
                orders[i].append(rests[i][int(np.argmax(lls[i]))])
        answers = []
        for inst, n, order in zip(instances, names, orders):
            order += [j for j in range(len(n)) if j not in order]
            answers.append(
                Permutation([inst.candidates[j] for j in order], raw=sep.join(n[j] for j in order))
            )
        return answers

    def _list_answers(self, prompts: list[str], extras: list[Any]) -> list[str]:
        """Greedy answers that list titles (ranking, history), cut at the first blank line."""
        outs = self._generate(
            prompts,
            extras,
            max_new_tokens=int(self.params["max_new_tokens"]),
            batch_size=int(self.params["batch_size"]),
            stop=("\n\n",),
        )
        return [texts[0] if texts else "" for texts in outs]

    def parse_ranking(self, inst: Instance, text: str) -> Permutation:
        """Match generated titles to the shown candidates; repair and flag anything else."""
        return parse_ranking(text, inst.candidates, self.titles(inst.candidates))

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        prompts, extras = self.inputs(task, instances)
        yes, no = self.prompts.answers["yes"], self.prompts.answers["no"]
        conts = [[answer_text(p, yes), answer_text(p, no)] for p in prompts]
        lls = self._score(prompts, extras, conts, batch_size=int(self.params["batch_size"]))
        return [yes_no_answer(ly, ln) for ly, ln in lls]

    def reconstruct(self, task: Task, instances: list[Instance]) -> list[ItemList]:
        prompts, extras = self.inputs(task, instances)
        return [parse_items(text, self.ctx.catalog) for text in self._list_answers(prompts, extras)]

    def explain(self, task: Task, instances: list[Instance]) -> list[Text]:
        from bench.llm.chat import format_prompt

        shape = self.shape(task)
        prompts = [format_prompt(self.backbone, self.question(shape, i)) for i in instances]
        extras = [self.extras(shape, i) for i in instances]
        outs = self._generate(
            prompts,
            extras,
            max_new_tokens=int(self.params["explain_max_new_tokens"]),
            batch_size=int(self.params["batch_size"]),
            stop=("\n\n\n",),
        )
        return [Text(o[0] if o else "") for o in outs]
