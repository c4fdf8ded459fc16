"""Next-item retrieval: given the history, name the item ``f`` ranks first.

Instance: history (last ``history_len`` items) -> label ``[top1]``, ``f``'s best unseen item.
Explainer output: a ranked list of at most ``max(k)`` item indices (``-1`` = hallucinated title).
Metrics: HR@K, NDCG@K, MRR@K against the single teacher item; hallucination rate of the list.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench import metrics as M
from bench.answers import RankedItems
from bench.tasks.base import (
    PARSE_FAILURE,
    BuildInput,
    MetricSpec,
    Task,
    parse_failures,
    ranked_unseen,
    teacher_scores,
)
from bench.types import Instance, Prediction


class NextItemRetrieval(Task):
    kind = "next_item_retrieval"
    answer = RankedItems
    output = "ranked list of item indices (best first)"
    defaults = {
        "history_len": 9,  # items of history shown to the explainer (and scored by f)
        "k": [1, 5, 10],  # cut-offs for HR/NDCG/MRR; the explainer may return up to max(k) items
    }

    @property
    def ks(self) -> list[int]:
        return sorted(int(k) for k in self.params["k"])

    def metrics(self) -> list[MetricSpec]:
        out: list[MetricSpec] = []
        for k in self.ks:
            out.append(
                MetricSpec(f"hr@{k}", binary=True, description=f"f's top-1 item is in the first {k} answers")
            )
            out.append(
                MetricSpec(f"ndcg@{k}", description=f"1/log2(rank+1) of f's top-1 item within the first {k}")
            )
        out.append(MetricSpec(f"mrr@{self.ks[-1]}", description="reciprocal rank of f's top-1 item"))
        out.append(
            MetricSpec(
                "hallucination_rate",
                higher_is_better=False,
                description="share of answered titles that match no catalog item",
            )
        )
        out.append(PARSE_FAILURE)
        return out

    def build(self, inp: BuildInput) -> list[Instance]:
        ctxs = self.contexts(inp)
        scores = teacher_scores(inp.target, ctxs)
        out = []
        for c, row in zip(ctxs, scores):
            top = ranked_unseen(row)[:10]
            if len(top) == 0:  # every item is in the user's history: no instance
                continue
            out.append(
                self.make_instance(inp, c, label=[int(top[0])], meta={"target_top10": [int(x) for x in top]})
            )
        return out

    def teacher_items(self, inst: Instance) -> tuple[int, ...]:
        return tuple(int(x) for x in inst.label)

    def list_lengths(self, predictions: Sequence[Prediction]) -> np.ndarray:
        return np.asarray([len(p.output or []) for p in predictions], dtype=np.int64)

    def score(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, np.ndarray]:
        out: dict[str, list[float]] = {m.name: [] for m in self.metrics()}
        kmax = self.ks[-1]
        for inst, pred in zip(instances, predictions):
            ranked = [int(x) for x in (pred.output or [])][:kmax]
            rel = int(inst.label[0])
            for k in self.ks:
                out[f"hr@{k}"].append(M.hit_at_k(ranked, rel, k=k))
                out[f"ndcg@{k}"].append(M.ndcg_at_k(ranked, rel, k=k))
            out[f"mrr@{kmax}"].append(M.mrr_at_k(ranked, rel, k=kmax))
            out["hallucination_rate"].append(M.hallucination_rate(ranked))
        res = {k: np.asarray(v, dtype=np.float64) for k, v in out.items() if k != PARSE_FAILURE.name}
        res[PARSE_FAILURE.name] = parse_failures(predictions)
        return res
