"""Floor and ceiling baselines.

* ``random``        — uniform guesses (floor); per-instance seeded, so order-independent.
* ``popularity``    — answers by train-split item popularity (the usual recommender floor).
* ``item-prior``    — per item, what ``f``'s align-train labels say about it with no user information
  (its like-rate, its mean position, how often it is ``f``'s top-1). A floor that any explainer
  claiming to use the *user* must beat.
* ``target-oracle`` — ``f`` itself (white-box): must score exactly 1.0 on retrieval HR@1, ranking
  NDCG and classification accuracy. It is the harness's own sanity check: anything below 1.0
  means the instances and the scoring disagree.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from bench.explainers.base import Explainer, ExplainerContext
from bench.tasks.base import Context, known_prefix, ranked_unseen, teacher_scores
from bench.types import Instance, Prediction

_RETRIEVAL = "next_item_retrieval"
_RANKING = "item_ranking"
_CLASSIFICATION = "interest_classification"
_HISTORY = "history_reconstruction"


def _kind(ctx: ExplainerContext, task: str) -> str:
    return ctx.tasks[task].spec.kind


def _k(ctx: ExplainerContext, task: str) -> int:
    t = ctx.tasks[task]
    return (
        int(max(t.params.get("k", [10])))
        if t.spec.kind == _RETRIEVAL
        else int(t.params.get("history_len", 9))
    )


class RandomExplainer(Explainer):
    """Uniform random answers: a random unseen list, a random order, a fair coin."""

    name = "random"
    access = "behavior"
    summary = "uniform random answers (floor)"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.ctx = ctx

    def _rng(self, instance_id: str) -> np.random.Generator:
        return np.random.default_rng(
            np.random.SeedSequence([self.ctx.seed, zlib.crc32(instance_id.encode())])
        )

    def predict(self, task: str, instances: list[Instance]) -> list[Prediction]:
        kind, n_items = _kind(self.ctx, task), self.ctx.dataset.n_items
        out = []
        for inst in instances:
            rng = self._rng(inst.instance_id)
            if kind in (_RETRIEVAL, _HISTORY):
                k = _k(self.ctx, task)
                seen = set(inst.history)
                pool = np.array([i for i in range(n_items) if i not in seen])
                items = rng.choice(pool, size=min(k, len(pool)), replace=False)
                out.append(Prediction(inst.instance_id, [int(x) for x in items]))
            elif kind == _RANKING:
                perm = list(inst.candidates)
                rng.shuffle(perm)
                out.append(Prediction(inst.instance_id, [int(x) for x in perm]))
            elif kind == _CLASSIFICATION:
                s = float(rng.random())
                out.append(Prediction(inst.instance_id, int(s >= 0.5), score=s))
            else:
                raise NotImplementedError(kind)
        return out


class PopularityExplainer(Explainer):
    """Answers by item popularity on the train split (counts of interactions)."""

    name = "popularity"
    access = "behavior"
    summary = "most popular items first, by train-split counts"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.ctx = ctx
        pop = ctx.split.item_popularity
        self.order = np.argsort(-pop, kind="stable")
        # rank[i] = position of item i in the popularity order (0 = most popular)
        self.rank = np.empty_like(self.order)
        self.rank[self.order] = np.arange(len(self.order))

    def predict(self, task: str, instances: list[Instance]) -> list[Prediction]:
        kind = _kind(self.ctx, task)
        out = []
        for inst in instances:
            if kind in (_RETRIEVAL, _HISTORY):
                k = _k(self.ctx, task)
                seen = set(inst.history)
                items = [int(i) for i in self.order if int(i) not in seen][:k]
                out.append(Prediction(inst.instance_id, items))
            elif kind == _RANKING:
                out.append(Prediction(inst.instance_id, sorted(inst.candidates, key=lambda i: self.rank[i])))
            elif kind == _CLASSIFICATION:
                item = inst.candidates[0]
                seen = set(inst.history)
                unseen_rank = int(self.rank[item]) - sum(1 for h in seen if self.rank[h] < self.rank[item])
                frac = unseen_rank / max(1, len(self.order) - len(seen))
                out.append(Prediction(inst.instance_id, int(frac < 0.5), score=1.0 - frac))
            else:
                raise NotImplementedError(kind)
        return out


class TargetOracle(Explainer):
    """The target itself. Classification: 'like' when the item is in the top half of ``f``'s unseen
    ranking — any cut between the positives' top 20 % and the negatives' bottom 50 % is exact."""

    name = "target-oracle"
    access = "white-box"
    tasks = frozenset({_RETRIEVAL, _RANKING, _CLASSIFICATION})
    summary = "the target recommender itself (ceiling and sanity check)"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.ctx = ctx

    def predict(self, task: str, instances: list[Instance]) -> list[Prediction]:
        kind = _kind(self.ctx, task)
        # f reads the shown window and excludes the user's whole known prefix, as the labels do
        ctxs = [
            Context(
                -1,
                i.user,
                tuple(i.history),
                0,
                known_prefix(self.ctx.split, i.user, int(i.meta["prefix_len"])),
            )
            for i in instances
        ]
        scores = teacher_scores(self.ctx.target, ctxs)
        out = []
        for inst, row in zip(instances, scores):
            ranked = ranked_unseen(row)
            if kind == _RETRIEVAL:
                out.append(Prediction(inst.instance_id, [int(x) for x in ranked[: _k(self.ctx, task)]]))
            elif kind == _RANKING:
                pos = {int(item): r for r, item in enumerate(ranked)}
                out.append(Prediction(inst.instance_id, sorted(inst.candidates, key=lambda i: pos[int(i)])))
            elif kind == _CLASSIFICATION:
                item = int(inst.candidates[0])
                r = int(np.nonzero(ranked == item)[0][0])
                frac = r / len(ranked)
                out.append(Prediction(inst.instance_id, int(frac < 0.5), score=1.0 - frac))
            else:
                raise NotImplementedError(kind)
        return out


class ItemPrior(Explainer):
    """What ``f``'s align-train labels say about each *item*, with no user information.

    * classification: the item's smoothed like-rate ``(pos + 1) / (pos + neg + 2)`` over align-train
      instances (an item never seen there gets 0.5); "like" when it is above 0.5;
    * ranking: candidates by their mean normalised position in ``f``'s align-train orders
      (``position / (n - 1)``, unseen items 0.5), best first;
    * retrieval: unseen items by how often each was ``f``'s top-1 in align-train, then by like-rate.

    Ties are broken by the smaller item index. On data where item identity predicts ``f``'s labels,
    this floor is high; an explainer that claims to read the *user* must beat it.
    """

    name = "item-prior"
    access = "behavior"
    tasks = frozenset({_RETRIEVAL, _RANKING, _CLASSIFICATION})
    summary = "per-item like-rate / mean position / top-1 count from f's align-train labels (no user)"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.ctx = ctx
        n = len(ctx.catalog)
        pos, neg = np.zeros(n), np.zeros(n)
        rank_sum, rank_n, top1 = np.zeros(n), np.zeros(n), np.zeros(n)
        for task, insts in train.items():
            kind = _kind(ctx, task)
            for inst in insts:
                if kind == _CLASSIFICATION:
                    (pos if int(inst.label) == 1 else neg)[int(inst.candidates[0])] += 1
                elif kind == _RANKING:
                    order = [int(x) for x in inst.label]
                    for r, item in enumerate(order):
                        rank_sum[item] += r / max(1, len(order) - 1)
                        rank_n[item] += 1
                elif kind == _RETRIEVAL:
                    top1[int(inst.label[0])] += 1
        self.like_rate = (pos + 1.0) / (pos + neg + 2.0)
        self.mean_pos = np.where(rank_n > 0, rank_sum / np.maximum(rank_n, 1), 0.5)
        # retrieval order: top-1 count, then like-rate, then the smaller index (lexsort: last key first)
        self.retrieval_order = np.lexsort((np.arange(n), -self.like_rate, -top1))

    def predict(self, task: str, instances: list[Instance]) -> list[Prediction]:
        kind = _kind(self.ctx, task)
        out = []
        for inst in instances:
            if kind == _RETRIEVAL:
                seen = set(inst.history)
                k = _k(self.ctx, task)
                items = [int(i) for i in self.retrieval_order if int(i) not in seen][:k]
                out.append(Prediction(inst.instance_id, items))
            elif kind == _RANKING:
                order = sorted(inst.candidates, key=lambda i: (self.mean_pos[int(i)], int(i)))
                out.append(Prediction(inst.instance_id, [int(x) for x in order]))
            elif kind == _CLASSIFICATION:
                rate = float(self.like_rate[int(inst.candidates[0])])
                out.append(Prediction(inst.instance_id, int(rate > 0.5), score=rate))
            else:
                raise NotImplementedError(kind)
        return out
