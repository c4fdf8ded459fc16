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
* history reconstruction — not answerable from text alone (n/a) unless a subclass says otherwise.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from bench.errors import ConfigError
from bench.explainers.base import Explainer, ExplainerContext
from bench.explainers.prompts import PromptSet, load_prompts
from bench.types import Instance, Prediction

log = logging.getLogger(__name__)

RETRIEVAL, RANKING, CLASSIFICATION, HISTORY = (
    "next_item_retrieval",
    "item_ranking",
    "interest_classification",
    "history_reconstruction",
)
_SPLIT = re.compile(r"\s*(?:;|\n|\|)\s*")
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


def load_defaults(*sections: str) -> dict[str, Any]:
    """Defaults of ``tasks/explainers/llm.yaml``: ``common`` then each section, later ones winning."""
    import yaml

    from bench.resources import tasks_dir

    data = yaml.safe_load((tasks_dir() / "explainers" / "llm.yaml").read_text(encoding="utf-8"))
    out = dict(data["common"])
    for section in sections:
        if section != "common":
            out.update(data[section])
    return out


def merge_params(name: str, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` over ``defaults``; unknown keys are errors, nested mappings merge one level deep."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    for key, value in given.items():
        if key not in defaults:
            raise ConfigError(
                f"unknown parameter {key!r} for explainer {name!r}",
                where=f"explainers[{name}].params",
                fix=f"known parameters: {', '.join(sorted(defaults))} (tasks/explainers/llm.yaml)",
            )
        if isinstance(defaults[key], dict) and isinstance(value, dict):
            unknown = set(value) - set(defaults[key]) if key == "lora" else set()
            if unknown:
                raise ConfigError(
                    f"unknown parameter(s) {', '.join(sorted(unknown))} in {key}",
                    where=f"explainers[{name}].params.{key}",
                    fix=f"known: {', '.join(sorted(defaults[key]))}",
                )
            out[key] = {**defaults[key], **value}
        else:
            out[key] = value
    return out


def answer_text(prompt: str, answer: str) -> str:
    """An answer as written right after ``prompt``: no leading space after a newline or space."""
    return answer if not prompt or prompt[-1].isspace() else " " + answer


class LLMExplainer(Explainer):
    """Base class: loads a backbone, turns instances into prompts and answers into predictions."""

    tasks = frozenset({RETRIEVAL, RANKING, CLASSIFICATION})
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

    def load_backbone(self, ctx: ExplainerContext) -> Any:
        from bench.llm.backbone import load_backbone

        return load_backbone(
            str(self.params["backbone"]), device=ctx.device, titles=list(ctx.dataset.titles), seed=ctx.seed
        )

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.ctx = ctx
        self.backbone = self.load_backbone(ctx)
        self.pick_shots(train)

    def pick_shots(self, train: Mapping[str, list[Instance]]) -> None:
        """Few-shot examples: the same ``few_shot`` align-train instances for every test instance."""
        k = int(self.params["few_shot"])
        if k <= 0:
            return
        rng = np.random.default_rng(np.random.SeedSequence([self.ctx.seed, 424242]))
        for task, insts in train.items():
            if insts:
                idx = rng.choice(len(insts), size=min(k, len(insts)), replace=False)
                self.shots[task] = [insts[int(i)] for i in sorted(idx)]

    def kind(self, task: str) -> str:
        return self.ctx.tasks[task].spec.kind

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

    def titles(self, items: Sequence[int]) -> list[str]:
        return [self.ctx.dataset.titles[int(i)] or f"item {self.ctx.dataset.item_ids[int(i)]}" for i in items]

    def question(self, kind: str, inst: Instance, *, variant: int = 0) -> str:
        """The user-turn text of an instance (no answer, no chat formatting).

        Behavior prompts name items by title; intention prompts write ``<user>``/``<item>``
        placeholders (filled with the target's vectors, see :meth:`extras`); hybrid prompts do both.
        """
        from bench.llm.inject import ITEM_TOKEN, USER_TOKEN

        hist = self.titles(inst.history[-int(self.params["max_history_titles"]) :])
        k = int(self.ctx.tasks[self._task_of(kind)].params.get("history_len", 9)) if kind == HISTORY else 9
        values: dict[str, Any] = {"history": hist, "k": k, "user": USER_TOKEN}
        shown = list(inst.candidates) if kind == RANKING else list(inst.candidates[:1])
        names = self.titles(shown)
        if self.form == "intention":
            names = [ITEM_TOKEN] * len(shown)
        elif self.form == "hybrid":
            names = [f'{ITEM_TOKEN} "{t}"' for t in names]
        if kind == RANKING:
            values["candidates"] = names
        if kind in (CLASSIFICATION, "explanation", "item_title"):
            values["item"] = names[0]
        key = kind if self.form == "behavior" else f"{self.form}.{kind}"
        return self.prompts.render(key, variant, **values)

    def _task_of(self, kind: str) -> str:
        return next((t for t, task in self.ctx.tasks.items() if task.spec.kind == kind), kind)

    def answer(self, kind: str, inst: Instance) -> str:
        """The target's answer to a (labelled) instance, as the LLM should write it."""
        sep = self.prompts.answers["separator"]
        if kind == RETRIEVAL:
            return self.titles([inst.label[0]])[0]
        if kind == RANKING:
            return sep.join(self.titles(inst.label))
        if kind == CLASSIFICATION:
            return self.prompts.answers["yes" if int(inst.label) == 1 else "no"]
        if kind == HISTORY:
            return sep.join(self.titles(inst.label))
        raise ValueError(kind)

    def prompt(self, task: str, inst: Instance) -> str:
        """The chat-formatted evaluation prompt (with few-shot examples first when configured)."""
        from bench.llm.chat import format_prompt

        kind = self.kind(task)
        text = self.question(kind, inst)
        shots = self.shots.get(task, []) if self.form == "behavior" else []
        if shots:
            blocks = [
                f"Example {j + 1}:\n{self.question(kind, s)}\nAnswer: {self.answer(kind, s)}"
                for j, s in enumerate(shots)
            ]
            text = "\n\n".join([*blocks, f"Now the question:\n{text}"])
        return format_prompt(self.backbone, text)

    # -- answering --------------------------------------------------------------------------------

    def extras(self, kind: str, inst: Instance) -> dict[str, Any] | None:
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

    def predict(self, task: str, instances: list[Instance]) -> list[Prediction]:
        kind = self.kind(task)
        prompts = [self.prompt(task, i) for i in instances]
        extras = [self.extras(kind, i) for i in instances]
        if kind == RETRIEVAL:
            return self.predict_retrieval(instances, prompts, extras)
        if kind == RANKING:
            return self.predict_ranking(instances, prompts, extras)
        if kind == CLASSIFICATION:
            return self.predict_classification(instances, prompts, extras)
        if kind == HISTORY:
            return self.predict_history(instances, prompts, extras)
        raise NotImplementedError(f"{self.name} does not answer {kind}")

    def _trie(self) -> Any:
        if getattr(self, "_title_trie", None) is None:
            from bench.llm.trie import TitleTrie

            self._title_trie = TitleTrie.build(
                self.backbone.tokenizer, [t for t in self.ctx.dataset.titles if t]
            )
        return self._title_trie

    def predict_retrieval(
        self, instances: list[Instance], prompts: list[str], extras: list[Any]
    ) -> list[Prediction]:
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
        preds = []
        for inst, texts in zip(instances, outs):
            ids = []
            for text in texts:
                r = self.ctx.catalog.resolve(text)
                ids.append(-1 if r is None else int(r))
            preds.append(Prediction(inst.instance_id, ids, raw=" || ".join(texts), parse_ok=bool(texts)))
        return preds

    def predict_ranking(
        self, instances: list[Instance], prompts: list[str], extras: list[Any]
    ) -> list[Prediction]:
        if self.params["constrained"]:
            return self.rank_by_likelihood(instances, prompts, extras)
        texts = self._list_answers(prompts, extras)
        return [self.parse_ranking(inst, text) for inst, text in zip(instances, texts)]

    def rank_by_likelihood(
        self, instances: list[Instance], prompts: list[str], extras: list[Any]
    ) -> list[Prediction]:
        """Constrained ranking: the ranking counterpart of title-constrained retrieval.

        The answer is written as training writes it (titles joined by the separator) and built one
        candidate at a time: at each step every unused candidate is scored as ``answer so far +
        its title`` (one batched log-likelihood call per position, ``n - 1`` in all; summed over
        tokens, no length normalisation, as constrained retrieval ranks titles) and the most likely
        one is appended (ties: the earlier shown). The result is always a permutation of the
        shown candidates, so it never needs repair; what it measures is the model's preference.
        """
        sep = self.prompts.answers["separator"]
        names = [self.titles(inst.candidates) for inst in instances]
        orders: list[list[int]] = [[] for _ in instances]
        while rows := [i for i, n in enumerate(names) if len(n) - len(orders[i]) > 1]:
            rests = [[j for j in range(len(names[i])) if j not in orders[i]] for i in rows]
            conts = [
                [
                    answer_text(prompts[i], "".join(names[i][k] + sep for k in orders[i]) + names[i][j])
                    for j in rest
                ]
                for i, rest in zip(rows, rests)
            ]
            lls = self._score(
                [prompts[i] for i in rows],
                [extras[i] for i in rows],
                conts,
                batch_size=int(self.params["batch_size"]),
            )
            for i, rest, ll in zip(rows, rests, lls):
                orders[i].append(rest[int(np.argmax(ll))])
        preds = []
        for inst, n, order in zip(instances, names, orders):
            order += [j for j in range(len(n)) if j not in order]
            preds.append(
                Prediction(
                    inst.instance_id,
                    [inst.candidates[j] for j in order],
                    raw=sep.join(n[j] for j in order),
                    parse_ok=True,
                )
            )
        return preds

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

    def parse_ranking(self, inst: Instance, text: str) -> Prediction:
        """Match generated titles to the shown candidates; repair and flag anything else."""
        from bench.data.catalog import Catalog

        cands = list(inst.candidates)
        local = Catalog(self.titles(cands))
        order: list[int] = []
        clean = True
        for piece in _SPLIT.split(text.strip()):
            piece = _NUMBERING.sub("", piece).strip().strip('"').strip()
            if not piece:
                continue
            j = local.resolve(piece)
            if j is None or cands[j] in order:
                clean = False
                continue
            order.append(cands[j])
        missing = [c for c in cands if c not in order]
        return Prediction(inst.instance_id, order + missing, raw=text, parse_ok=clean and not missing)

    def predict_classification(
        self, instances: list[Instance], prompts: list[str], extras: list[Any]
    ) -> list[Prediction]:
        yes, no = self.prompts.answers["yes"], self.prompts.answers["no"]
        conts = [[answer_text(p, yes), answer_text(p, no)] for p in prompts]
        lls = self._score(prompts, extras, conts, batch_size=int(self.params["batch_size"]))
        preds = []
        for inst, (ly, ln) in zip(instances, lls):
            p_yes = 1.0 / (1.0 + math.exp(-(ly - ln))) if ln - ly < 700 else 0.0
            preds.append(
                Prediction(
                    inst.instance_id, int(ly > ln), raw=f"logP(yes)={ly:.4f} logP(no)={ln:.4f}", score=p_yes
                )
            )
        return preds

    def predict_history(
        self, instances: list[Instance], prompts: list[str], extras: list[Any]
    ) -> list[Prediction]:
        preds = []
        for inst, text in zip(instances, self._list_answers(prompts, extras)):
            pieces = [_NUMBERING.sub("", x).strip().strip('"') for x in _SPLIT.split(text.strip())]
            ids = [-1 if (r := self.ctx.catalog.resolve(x)) is None else int(r) for x in pieces if x]
            preds.append(Prediction(inst.instance_id, ids, raw=text, parse_ok=bool(ids)))
        return preds

    def explain(self, instances: list[Instance]) -> list[str]:
        from bench.llm.chat import format_prompt

        prompts = [format_prompt(self.backbone, self.question("explanation", i)) for i in instances]
        extras = [self.extras("explanation", i) for i in instances]
        outs = self._generate(
            prompts,
            extras,
            max_new_tokens=int(self.params["explain_max_new_tokens"]),
            batch_size=int(self.params["batch_size"]),
            stop=("\n\n\n",),
        )
        return [o[0] if o else "" for o in outs]
