"""History reconstruction: recover the user's recent items from the user alone.

Instance: the user (for embedding-access explainers, ``f``'s user vector of the hidden history
in ``meta['user_vector']``) -> label = the last ``history_len`` history items. The history itself
is hidden from the explainer. Explainer output: a list of item indices.
Metrics: history coverage ratio (HCR, share of the true items recovered), precision (share of
answered items that are true), hallucination rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench import metrics as M
from bench.answers import ItemList
from bench.tasks.base import PARSE_FAILURE, BuildInput, MetricSpec, Task, parse_failures
from bench.types import Instance, Prediction


class HistoryReconstruction(Task):
    kind = "history_reconstruction"
    answer = ItemList
    hides_history = True
    output = "list of item indices (the user's recent history)"
    defaults = {
        "history_len": 9,  # how many of the latest history items must be recovered
    }

    def metrics(self) -> list[MetricSpec]:
        return [
            MetricSpec(
                "hcr", description="history coverage ratio: share of the true history items recovered"
            ),
            MetricSpec("precision", description="share of answered items that are in the true history"),
            MetricSpec(
                "hallucination_rate", higher_is_better=False, description="share of answers matching no item"
            ),
            PARSE_FAILURE,
        ]

    def build(self, inp: BuildInput) -> list[Instance]:
        ctxs = self.contexts(inp)
        vectors = inp.target.user_embeddings([c.history for c in ctxs]) if ctxs else np.zeros((0, 0))
        return [
            self.make_instance(inp, c, label=list(c.history), meta={"user_vector": [float(x) for x in vec]})
            for c, vec in zip(ctxs, vectors)
        ]

    def teacher_items(self, inst: Instance) -> tuple[int, ...]:
        return ()  # the label *is* the history

    def public_meta_keys(self) -> frozenset[str]:
        return frozenset({"user_vector"})

    def score(
        self, instances: Sequence[Instance], predictions: Sequence[Prediction]
    ) -> dict[str, np.ndarray]:
        hcr, prec, hall = [], [], []
        for inst, pred in zip(instances, predictions):
            out = [int(x) for x in (pred.output or [])]
            truth = [int(x) for x in inst.label]
            hcr.append(M.history_coverage(out, truth))
            prec.append(M.history_precision(out, truth))
            hall.append(M.hallucination_rate(out))
        return {
            "hcr": np.asarray(hcr),
            "precision": np.asarray(prec),
            "hallucination_rate": np.asarray(hall),
            PARSE_FAILURE.name: parse_failures(predictions),
        }
