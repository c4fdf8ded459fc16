"""Item ranking: order a few candidates the way ``f`` orders them.

Instance: history + ``n_candidates`` items drawn uniformly without replacement from ``f``'s full
ranking of unseen items, shown in a seeded random order -> label = the candidates in ``f``'s
order, best first. Explainer output: a permutation of the candidates.
Metrics: NDCG@n with linear gains (n for f's best … 1 for its worst), the RecExplainer graded
variant (gains 1000/100/10/1/0; a random order scores ≈ 0.61), Kendall τ-b.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench import metrics as M
from bench.answers import Permutation
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

PAPER_GAINS = (1000.0, 100.0, 10.0, 1.0, 0.0)


class ItemRanking(Task):
    kind = "item_ranking"
    answer = Permutation
    output = "permutation of the candidates (best first)"
    defaults = {
        "history_len": 9,  # items of history shown to the explainer (and scored by f)
        "n_candidates": 5,  # candidates per instance, drawn uniformly from f's ranking of unseen items
    }

    @property
    def n(self) -> int:
        return int(self.params["n_candidates"])

    def metrics(self) -> list[MetricSpec]:
        n = self.n
        out = [
            MetricSpec(
                f"ndcg@{n}", description="NDCG of the predicted order, linear gains n..1 from f's order"
            ),
            MetricSpec(
                f"ndcg@{n}_paper",
                description="RecExplainer's graded NDCG, gains 1000/100/10/1/0 by f's position (random ≈ 0.61)",
            ),
            MetricSpec("kendall_tau", description="Kendall τ-b between predicted and f's positions"),
            PARSE_FAILURE,
        ]
        return out

    def build(self, inp: BuildInput) -> list[Instance]:
        ctxs = self.contexts(inp)
        scores = teacher_scores(inp.target, ctxs)
        out = []
        for c, row in zip(ctxs, scores):
            ranked = ranked_unseen(row)
            if len(ranked) < self.n:  # the user has seen nearly the whole catalog: no instance
                continue
            positions = np.sort(inp.rng.choice(len(ranked), size=self.n, replace=False))
            order = [int(ranked[p]) for p in positions]  # f's order, best first
            shown = list(order)
            inp.rng.shuffle(shown)
            out.append(
                self.make_instance(
                    inp,
                    c,
                    label=order,
                    candidates=tuple(shown),
                    meta={"target_positions": [int(p) for p in positions]},
                )
            )
        return out

    def score(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, np.ndarray]:
        n = self.n
        lin, paper, tau = [], [], []
        gains = (
            PAPER_GAINS
            if n == len(PAPER_GAINS)
            else tuple(10.0 ** (n - 2 - j) for j in range(n - 1)) + (0.0,)
        )
        for inst, pred in zip(instances, predictions):
            order = [int(x) for x in (pred.output or [])]
            truth = [int(x) for x in inst.label]
            lin.append(M.graded_ndcg(order, truth, gains="linear"))
            paper.append(M.graded_ndcg(order, truth, gains=gains))
            tau.append(M.kendall_tau(order, truth))
        return {
            f"ndcg@{n}": np.asarray(lin),
            f"ndcg@{n}_paper": np.asarray(paper),
            "kendall_tau": np.asarray(tau),
            PARSE_FAILURE.name: parse_failures(predictions),
        }

    def protocol(self) -> dict:
        return {
            **self.params,
            "sampling": "uniform without replacement over f's full ranking of unseen items (not in the "
            "user's whole prior history); shown shuffled",
            "paper_gains": list(PAPER_GAINS) if self.n == 5 else "10^(n-2-j), last 0",
        }
