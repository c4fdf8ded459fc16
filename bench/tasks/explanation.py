"""Explanation quality: a judge's rubric grade plus grounding checks against the target ``f``.

Instances are built like interest classification (history of ``history_len`` items; per user one
positive uniform in ``f``'s top ``pos_top`` share of unseen items, label 1, and one negative uniform
in its bottom ``neg_bottom`` share, label 0), but only for ``max_users`` users of the part (a
subset drawn with the part's generator) because judging is expensive. Explainers answer through
``explain(task, instances) -> list[Text]`` (:class:`bench.answers.Text`), each of which becomes
``Prediction(output=text, raw=text)``; the runner calls :meth:`ExplanationRubric.bind` before
:meth:`~ExplanationRubric.score`.

Per-sample metrics (all vectors align with the instances; none is ever NaN):

* ``rubric`` — the judge's grade 0..3 (see :mod:`bench.judge.prompt`). Policy for an unreadable
  grade: it counts as **0** and ``judge_parse_failure`` is 1 for that sample (a log-likelihood
  judge never fails to give one). ``rubric_eq_k`` (k = 0..3) are the 0/1 indicators of grade k,
  so the board shows the grade distribution with confidence intervals (they are descriptive;
  ``rubric_eq_0``/``_1`` are marked lower-is-better, ``_2``/``_3`` higher-is-better). How far a
  judge's grades can be trusted is measured separately by :mod:`bench.judge.check`.
* ``cf_fidelity`` — counterfactual fidelity of the cited history items
  (:func:`bench.tasks.grounding.counterfactual_fidelity`: deleting what the explanation cites
  should move the item in the direction of ``f``'s decision more than deleting as many random
  history items). An explanation that cites no history item gets **0.0**; ``cites_items`` (0/1)
  shows how many explanations cite anything, so a 0 can be read as "nothing to test".
* ``cited_hallucination`` — share of cited titles that are not in the shown history (0 when
  nothing is cited); ``decision_correct`` — the decision stated at the start of the explanation
  equals ``f``'s (an explanation stating none counts as wrong); ``length_words`` — descriptive.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import seeds
from bench.answers import Text
from bench.errors import ConfigError
from bench.judge.prompt import Judge, JudgeItem, JudgeResult
from bench.tasks.base import (
    BuildInput,
    MetricSpec,
    Task,
    TaskSpec,
    ranked_unseen,
    shuffled_slots,
    teacher_scores,
)
from bench.tasks.grounding import MEASURES, cited_items, counterfactual_fidelity, parse_decision
from bench.types import Instance, Prediction

log = logging.getLogger(__name__)

GRADE_POLICY = "an unreadable judge reply counts as grade 0 and as a judge_parse_failure"


@dataclass(frozen=True)
class _Eval:
    """Everything computed for one (instance, explanation) pair."""

    judge: JudgeResult
    grade: int
    cited: tuple[int, ...]
    hallucinated: tuple[str, ...]
    hallucination_share: float
    decision: int | None
    length: int
    cf: dict[str, Any] = field(default_factory=dict)


class ExplanationRubric(Task):
    kind = "explanation_rubric"
    answer = Text
    output = "free-text explanation of the target's like/dislike decision (explain())"
    defaults = {
        "history_len": 9,  # items of history shown to the explainer (and scored by f)
        "pos_top": 0.2,  # likes come from f's top 20 % of unseen items
        "neg_bottom": 0.5,  # dislikes come from f's bottom 50 % of unseen items
        "max_users": 100,  # users per part (2 instances each): judging is expensive
        "judge": "smollm2-135m",  # backbone spec, or {url, model, api_key_env} for an HTTP judge
        "judge_mode": "loglik",  # local judges: "loglik" (never unparseable) or "generate"
        "judge_max_new_tokens": 48,  # reply budget of generating judges
        "cf_random_draws": 5,  # random deletions averaged for the fidelity baseline
        "cf_measure": "rank",  # "rank" (normalised rank among unseen items) or "score"
    }

    def __init__(self, spec: TaskSpec) -> None:
        super().__init__(spec)
        where = f"{spec.path}:params" if spec.path else f"task {spec.name}"
        if self.params["cf_measure"] not in MEASURES:
            raise ConfigError(
                f"cf_measure {self.params['cf_measure']!r} is unknown", where=where, fix="use rank or score"
            )
        if int(self.params["max_users"]) < 1 or int(self.params["cf_random_draws"]) < 0:
            raise ConfigError(
                "max_users must be ≥ 1 and cf_random_draws ≥ 0", where=where, fix="fix the values"
            )
        self._bound: dict[str, Any] | None = None
        self._judge: Judge | None = None
        self._memo: dict[tuple[str, str], _Eval] = {}

    # -- instances ---------------------------------------------------------------------------------

    def metrics(self) -> list[MetricSpec]:
        eq = [
            MetricSpec(
                f"rubric_eq_{k}",
                higher_is_better=k >= 2,
                binary=True,
                description=f"descriptive: share of explanations graded {k} (the grade distribution)",
            )
            for k in range(4)
        ]
        return [
            MetricSpec("rubric", description=f"judge's rubric grade 0-3 ({GRADE_POLICY})"),
            *eq,
            MetricSpec(
                "judge_parse_failure",
                higher_is_better=False,
                binary=True,
                description="judge reply held no readable grade (graded 0)",
            ),
            MetricSpec(
                "cf_fidelity",
                description="deleting the cited history items moves the item toward f's decision, "
                "minus deleting random ones (share of the catalog; 0 when nothing is cited)",
            ),
            MetricSpec("cites_items", binary=True, description="explanation names ≥ 1 history item"),
            MetricSpec(
                "cited_hallucination",
                higher_is_better=False,
                description="share of cited titles not in the shown history (0 when nothing cited)",
            ),
            MetricSpec(
                "decision_correct", binary=True, description="decision stated at the start equals f's"
            ),
            MetricSpec(
                "length_words", higher_is_better=False, description="descriptive: words in the explanation"
            ),
        ]

    def build(self, inp: BuildInput) -> list[Instance]:
        rows = np.asarray(inp.rows)
        cap = int(self.params["max_users"])
        if len(rows) > cap:
            rows = np.sort(inp.rng.choice(rows, size=cap, replace=False))
        ctxs = self.contexts(replace(inp, rows=rows))
        scores = teacher_scores(inp.target, ctxs)
        pos_top, neg_bottom = float(self.params["pos_top"]), float(self.params["neg_bottom"])
        out = []
        for c, row in zip(ctxs, scores, strict=True):
            ranked = ranked_unseen(row)
            m = len(ranked)
            if m < 2:  # no room for a like and a dislike: no instance
                continue
            pos_rank = int(inp.rng.integers(0, max(1, int(m * pos_top))))
            neg_rank = int(inp.rng.integers(m - max(1, int(m * neg_bottom)), m))
            slots = shuffled_slots(inp.rng, 2)  # the like and the dislike get random slots
            for slot, (label, r) in zip(slots, ((1, pos_rank), (0, neg_rank))):
                item = int(ranked[r])
                out.append(
                    self.make_instance(
                        inp,
                        c,
                        slot,
                        label=label,
                        candidates=(item,),
                        meta={"target_rank": r, "n_unseen": m, "target_score": float(row[item])},
                    )
                )
        return out

    # -- scoring -----------------------------------------------------------------------------------

    def bind(
        self,
        *,
        target: Any,
        dataset: Any = None,
        catalog: Any,
        cache_dir: Path | str | None = None,
        device: str = "auto",
        seed: int = 0,
        judge: Judge | None = None,
        backbones: Any = None,
    ) -> None:
        """Give the task what scoring needs: ``f`` (fidelity), the catalog (titles), a cache
        directory (judge results go to ``<cache_dir>/judge/``), the judge's device, the seed of
        the random fidelity baselines, and optionally a ready judge (else built from params and
        wrapped in :class:`~bench.judge.cache.CachedJudge` when ``cache_dir`` is given; a judge
        passed in is used as is). ``backbones``: the run's backbone loader (``shared(spec, ...)``),
        so that a local judge on the run's backbone reuses its load instead of a second copy.
        """
        self._bound = {
            "target": target,
            "dataset": dataset,
            "catalog": catalog,
            "cache_dir": None if cache_dir is None else Path(cache_dir),
            "device": device,
            "seed": int(seed),
            "backbones": backbones,
        }
        self._judge = judge
        self._memo.clear()

    @property
    def judge(self) -> Judge:
        """The judge (built on first use and wrapped in the on-disk cache when a directory is bound)."""
        if self._bound is None:
            raise RuntimeError("ExplanationRubric.score needs bind(target=..., catalog=...) first")
        if self._judge is None:
            from bench.judge import make_judge
            from bench.judge.cache import CachedJudge

            catalog = self._bound["catalog"]
            judge = make_judge(
                self.params["judge"],
                device=self._bound["device"],
                max_new_tokens=int(self.params["judge_max_new_tokens"]),
                mode=str(self.params["judge_mode"]),
                titles=list(catalog.titles),
                backbones=self._bound["backbones"],
            )
            cache_dir = self._bound["cache_dir"]
            self._judge = judge if cache_dir is None else CachedJudge(judge, cache_dir / "judge")
        return self._judge

    def _instance_rng(self, inst: Instance) -> np.random.Generator:
        # Seeded per instance (not per call order), so a sample's baseline is the same on every run.
        assert self._bound is not None
        return seeds.rng(self._bound["seed"], inst.instance_id)

    def _evaluate(self, instances: Sequence[Instance], predictions: Sequence[Prediction]) -> list[_Eval]:
        if len(instances) != len(predictions):
            raise ValueError(f"{len(predictions)} predictions for {len(instances)} instances")
        if self._bound is None:
            raise RuntimeError("ExplanationRubric.score needs bind(target=..., catalog=...) first")
        catalog, target = self._bound["catalog"], self._bound["target"]
        texts = [_text(p) for p in predictions]
        keys = [(i.instance_id, t) for i, t in zip(instances, texts, strict=True)]
        todo = [j for j, k in enumerate(keys) if k not in self._memo]
        if todo:
            items = [
                JudgeItem(
                    history=tuple(catalog.title(h) for h in instances[j].history),
                    item=catalog.title(instances[j].candidates[0]),
                    decision="Yes" if int(instances[j].label) == 1 else "No",
                    explanation=texts[j],
                )
                for j in todo
            ]
            log.info("%s: grading %d explanations with %s", self.name, len(items), self.judge.id)
            results = self.judge.grade(items)
            for j, res in zip(todo, results, strict=True):
                inst, item = instances[j], int(instances[j].candidates[0])
                cites = cited_items(texts[j], inst.history, catalog, item=item)
                cf = counterfactual_fidelity(
                    target,
                    inst.history,
                    item,
                    cites.items,
                    rng=self._instance_rng(inst),
                    like=int(inst.label) == 1,
                    draws=int(self.params["cf_random_draws"]),
                    measure=self.params["cf_measure"],
                )
                self._memo[keys[j]] = _Eval(
                    judge=res,
                    grade=res.grade if res.grade is not None else 0,
                    cited=cites.items,
                    hallucinated=cites.hallucinated,
                    hallucination_share=cites.hallucination_share,
                    decision=parse_decision(texts[j]),
                    length=len(texts[j].split()),
                    cf=cf,
                )
        return [self._memo[k] for k in keys]

    def score(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, np.ndarray]:
        evals = self._evaluate(instances, predictions)
        labels = [int(i.label) for i in instances]

        def vec(values: Any) -> np.ndarray:
            return np.asarray(list(values), dtype=np.float64)

        res = {"rubric": vec(e.grade for e in evals)}
        for k in range(4):
            res[f"rubric_eq_{k}"] = vec(float(e.grade == k) for e in evals)
        res["judge_parse_failure"] = vec(float(e.judge.grade is None) for e in evals)
        res["cf_fidelity"] = vec(e.cf["fidelity"] for e in evals)
        res["cites_items"] = vec(float(e.cf["cites"]) for e in evals)
        res["cited_hallucination"] = vec(e.hallucination_share for e in evals)
        res["decision_correct"] = vec(float(e.decision == y) for e, y in zip(evals, labels, strict=True))
        res["length_words"] = vec(e.length for e in evals)
        return res

    def sample_details(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> list[dict[str, Any]]:
        """Per-instance extras for the samples file: the judge transcript, the grade read from it,
        the cited items, the hallucinated citations and the counterfactual figures."""
        evals = self._evaluate(instances, predictions)
        catalog = self._bound["catalog"] if self._bound else None
        out = []
        for e in evals:
            out.append(
                {
                    "judge": self.judge.id,
                    "judge_transcript": e.judge.transcript,
                    "judge_grade": e.judge.grade,
                    "judge_cached": e.judge.cached,
                    "grade_used": e.grade,
                    "cited_items": list(e.cited),
                    "cited_titles": [catalog.title(h) for h in e.cited] if catalog else [],
                    "hallucinated_citations": list(e.hallucinated),
                    "stated_decision": e.decision,
                    "counterfactual": e.cf,
                }
            )
        return out

    def protocol(self) -> dict[str, Any]:
        judge = self._judge.id if self._judge is not None else self.params["judge"]
        return {
            **self.params,
            "judge_id": judge,
            "sampling": "at most max_users users per part; per user one like uniform in f's top "
            "pos_top share of unseen items and one dislike uniform in its bottom neg_bottom share",
            "grade_policy": GRADE_POLICY,
            "cf_fidelity": "sign · (drop after deleting cited items − mean drop after deleting as many "
            "random history items); sign −1 for dislikes; 0 when nothing is cited",
        }


def _text(p: Prediction) -> str:
    """The explanation text of a prediction (``output`` if it is a string, else ``raw``)."""
    return p.output if isinstance(p.output, str) else (p.raw or "")
