"""Interest classification: would ``f`` like this item for this user?

Instance: history + one item. Per user, one positive drawn uniformly from ``f``'s top
``pos_top`` share of unseen items (label 1) and one negative from its bottom ``neg_bottom``
share (label 0): balanced by construction. Explainer output: 0/1, optionally a score.
Metrics: accuracy; F1 of the positive class; AUC where the explainer gives scores. F1 and AUC are
corpus metrics: their per-sample values are exact additive contributions (see ``bench.metrics``),
so the mean of the samples file still equals the reported value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench import metrics as M
from bench.answers import YesNo
from bench.tasks.base import (
    PARSE_FAILURE,
    BuildInput,
    MetricSpec,
    Task,
    parse_failures,
    ranked_unseen,
    shuffled_slots,
    teacher_scores,
)
from bench.types import Instance, Prediction


class InterestClassification(Task):
    kind = "interest_classification"
    answer = YesNo
    output = "0/1 (1 = the target would recommend it), optional score"
    defaults = {
        "history_len": 9,  # items of history shown to the explainer (and scored by f)
        "pos_top": 0.2,  # positives come from f's top 20 % of unseen items
        "neg_bottom": 0.5,  # negatives come from f's bottom 50 % of unseen items
        "pairs_per_user": 1,  # (positive, negative) pairs per user context (RecExplainer: 1)
    }

    def metrics(self) -> list[MetricSpec]:
        return [
            MetricSpec("accuracy", binary=True, description="answer equals f's like/dislike"),
            MetricSpec(
                "f1",
                ratio=True,
                description="F1 of the 'like' class (per-sample values are exact contributions; "
                "CIs and tests resample 2TP and 2TP+FP+FN)",
            ),
            MetricSpec(
                "auc",
                auc=True,
                description="ROC AUC of the explainer's scores (per-sample values: DeLong placement "
                "contributions; CIs and tests recompute the AUC on every resample)",
            ),
            PARSE_FAILURE,
        ]

    def build(self, inp: BuildInput) -> list[Instance]:
        ctxs = self.contexts(inp)
        scores = teacher_scores(inp.target, ctxs)
        pos_top, neg_bottom = float(self.params["pos_top"]), float(self.params["neg_bottom"])
        out = []
        for c, row in zip(ctxs, scores):
            ranked = ranked_unseen(row)
            m = len(ranked)
            if m < 2:  # no room for a like and a dislike: no instance
                continue
            n_pos = max(1, int(m * pos_top))
            n_neg = max(1, int(m * neg_bottom))
            n_pairs = int(self.params["pairs_per_user"])
            pos_ranks = inp.rng.choice(n_pos, size=min(n_pairs, n_pos), replace=False)
            neg_ranks = m - n_neg + inp.rng.choice(n_neg, size=min(n_pairs, n_neg), replace=False)
            for p_idx, (pos_rank, neg_rank) in enumerate(zip(pos_ranks, neg_ranks)):
                slots = shuffled_slots(inp.rng, 2)  # the like and the dislike get random slots
                for slot, (label, r) in zip(slots, ((1, int(pos_rank)), (0, int(neg_rank)))):
                    item = int(ranked[r])
                    out.append(
                        self.make_instance(
                            inp,
                            c,
                            f"p{p_idx}",
                            slot,
                            label=label,
                            candidates=(item,),
                            meta={
                                "target_rank": r,
                                "n_unseen": m,
                                "target_score": float(row[item]),
                                "pair": p_idx,
                            },
                        )
                    )
        return out

    def score(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, np.ndarray]:
        preds = [int(p.output) if p.output in (0, 1, True, False) else 0 for p in predictions]
        labels = [int(i.label) for i in instances]
        res = {
            "accuracy": np.asarray([M.accuracy(p, y) for p, y in zip(preds, labels)], dtype=np.float64),
            "f1": M.f1_contributions(preds, labels),
        }
        if predictions and all(p.score is not None for p in predictions) and len(set(labels)) == 2:
            res["auc"] = M.auc_contributions([float(p.score) for p in predictions], labels)
        res[PARSE_FAILURE.name] = parse_failures(predictions)
        return res

    def ratio_parts(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        preds = [int(p.output) if p.output in (0, 1, True, False) else 0 for p in predictions]
        return {"f1": M.f1_parts(preds, [int(i.label) for i in instances])}

    def auc_inputs(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        labels = [int(i.label) for i in instances]
        if not predictions or any(p.score is None for p in predictions) or len(set(labels)) != 2:
            return {}
        scores = np.asarray([float(p.score) for p in predictions], dtype=np.float64)
        return {"auc": (scores, np.asarray(labels, dtype=np.float64))}

    def protocol(self) -> dict:
        return {
            **self.params,
            "sampling": "per user context pairs_per_user (positive, negative) pairs: the positive uniform "
            "in f's top pos_top share of unseen items, the negative uniform in its bottom neg_bottom "
            "share; unseen = not in the user's whole prior history",
        }
