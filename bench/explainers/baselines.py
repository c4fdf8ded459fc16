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

from collections.abc import Mapping, Sequence

import numpy as np

from bench.answers import ItemList, Permutation, RankedItems, YesNo
from bench.explainers.base import Explainer, ExplainerContext
from bench.tasks.base import Context, Task, known_prefix, ranked_unseen, teacher_scores
from bench.types import Instance


def _k(task: Task) -> int:
    """How many items a retrieval answer lists: the task's largest cut-off K."""
    return int(max(task.params.get("k", [10])))


def _history_len(task: Task) -> int:
    """How many items a history reconstruction answer lists."""
    return int(task.params.get("history_len", 9))


class RandomExplainer(Explainer):
    """Uniform random answers: a random unseen list, a random order, a fair coin."""

    name = "random"
    access = "behavior"
    summary = "uniform random answers (floor)"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.ctx = ctx

    def _unseen(self, instances: list[Instance], k: int) -> list[list[int]]:
        """Per instance, ``k`` distinct random items the history does not hold (per-instance seeded)."""
        out = []
        for inst in instances:
            rng = self.ctx.rng(inst.instance_id)
            seen = set(inst.history)
            pool = np.array([i for i in range(self.ctx.dataset.n_items) if i not in seen])
            out.append([int(x) for x in rng.choice(pool, size=min(k, len(pool)), replace=False)])
        return out

    def retrieve(self, task: Task, instances: list[Instance]) -> list[RankedItems]:
        return [RankedItems(items) for items in self._unseen(instances, _k(task))]

    def reconstruct(self, task: Task, instances: list[Instance]) -> list[ItemList]:
        return [ItemList(items) for items in self._unseen(instances, _history_len(task))]

    def rank(self, task: Task, instances: list[Instance]) -> list[Permutation]:
        out = []
        for inst in instances:
            perm = list(inst.candidates)
            self.ctx.rng(inst.instance_id).shuffle(perm)
            out.append(Permutation(perm))
        return out

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        out = []
        for inst in instances:
            s = float(self.ctx.rng(inst.instance_id).random())
            out.append(YesNo(s >= 0.5, score=s))
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
        self.rank_of = np.empty_like(self.order)
        self.rank_of[self.order] = np.arange(len(self.order))

    def _top(self, history: Sequence[int], k: int) -> list[int]:
        seen = set(history)
        return [int(i) for i in self.order if int(i) not in seen][:k]

    def retrieve(self, task: Task, instances: list[Instance]) -> list[RankedItems]:
        return [RankedItems(self._top(inst.history, _k(task))) for inst in instances]

    def reconstruct(self, task: Task, instances: list[Instance]) -> list[ItemList]:
        return [ItemList(self._top(inst.history, _history_len(task))) for inst in instances]

    def rank(self, task: Task, instances: list[Instance]) -> list[Permutation]:
        return [Permutation(sorted(inst.candidates, key=lambda i: self.rank_of[i])) for inst in instances]

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        out = []
        for inst in instances:
            item = inst.candidates[0]
            seen = set(inst.history)
            ahead = sum(1 for h in seen if self.rank_of[h] < self.rank_of[item])
            frac = (int(self.rank_of[item]) - ahead) / max(1, len(self.order) - len(seen))
            out.append(YesNo(frac < 0.5, score=1.0 - frac))
        return out


class TargetOracle(Explainer):
    """The target itself. Classification: 'like' when the item is in the top half of ``f``'s unseen
    ranking — any cut between the positives' top 20 % and the negatives' bottom 50 % is exact."""

    name = "target-oracle"
    access = "white-box"
    summary = "the target recommender itself (ceiling and sanity check)"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.ctx = ctx

    def _ranked(self, instances: list[Instance]) -> list[np.ndarray]:
        """``f``'s unseen ranking per instance: ``f`` reads the shown window and excludes the user's
        whole known prefix, as the labels do."""
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
        return [ranked_unseen(row) for row in teacher_scores(self.ctx.target, ctxs)]

    def retrieve(self, task: Task, instances: list[Instance]) -> list[RankedItems]:
        return [RankedItems(ranked[: _k(task)]) for ranked in self._ranked(instances)]

    def rank(self, task: Task, instances: list[Instance]) -> list[Permutation]:
        out = []
        for inst, ranked in zip(instances, self._ranked(instances), strict=True):
            pos = {int(item): r for r, item in enumerate(ranked)}
            out.append(Permutation(sorted(inst.candidates, key=lambda i: pos[int(i)])))
        return out

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        out = []
        for inst, ranked in zip(instances, self._ranked(instances), strict=True):
            r = int(np.nonzero(ranked == int(inst.candidates[0]))[0][0])
            frac = r / len(ranked)
            out.append(YesNo(frac < 0.5, score=1.0 - frac))
        return out


class ItemPrior(Explainer):
    """What ``f``'s align-train labels say about each *item*, with no user information.

    * classification: the item's smoothed like-rate ``(pos + 1) / (pos + neg + 2)`` over align-train
      instances (an item never seen there gets 0.5); "like" when it is above 0.5;
    * ranking: candidates by their mean normalised position in ``f``'s align-train orders
      (``position / (n - 1)``, unseen items 0.5), best first;
    * retrieval: unseen items by how often each was ``f``'s top-1 in align-train, then by like-rate.

    Ties are broken by the smaller item index. On data where item identity predicts ``f``'s labels,
    this floor is high; an explainer that claims to read the *user* must beat it. Align-train
    instances are read by their task's answer type (a yes/no label, an order, a top-1 list).
    """

    name = "item-prior"
    access = "behavior"
    summary = "per-item like-rate / mean position / top-1 count from f's align-train labels (no user)"

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        self.ctx = ctx
        n = len(ctx.catalog)
        pos, neg = np.zeros(n), np.zeros(n)
        rank_sum, rank_n, top1 = np.zeros(n), np.zeros(n), np.zeros(n)
        for task, insts in train.items():
            answer = ctx.tasks[task].answer
            for inst in insts:
                if answer is YesNo:
                    (pos if int(inst.label) == 1 else neg)[int(inst.candidates[0])] += 1
                elif answer is Permutation:
                    order = [int(x) for x in inst.label]
                    for r, item in enumerate(order):
                        rank_sum[item] += r / max(1, len(order) - 1)
                        rank_n[item] += 1
                elif answer is RankedItems:
                    top1[int(inst.label[0])] += 1
        self.like_rate = (pos + 1.0) / (pos + neg + 2.0)
        self.mean_pos = np.where(rank_n > 0, rank_sum / np.maximum(rank_n, 1), 0.5)
        # retrieval order: top-1 count, then like-rate, then the smaller index (lexsort: last key first)
        self.retrieval_order = np.lexsort((np.arange(n), -self.like_rate, -top1))

    def retrieve(self, task: Task, instances: list[Instance]) -> list[RankedItems]:
        out = []
        for inst in instances:
            seen = set(inst.history)
            out.append(RankedItems([int(i) for i in self.retrieval_order if int(i) not in seen][: _k(task)]))
        return out

    def rank(self, task: Task, instances: list[Instance]) -> list[Permutation]:
        return [
            Permutation(sorted(inst.candidates, key=lambda i: (self.mean_pos[int(i)], int(i))))
            for inst in instances
        ]

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        out = []
        for inst in instances:
            rate = float(self.like_rate[int(inst.candidates[0])])
            out.append(YesNo(rate > 0.5, score=rate))
        return out
