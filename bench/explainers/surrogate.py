"""Surrogate trees: scikit-learn models on interpretable features, fit to the target's outputs.

A behavior-level explainer. Every (history ``H``, item ``i``) pair becomes one row of human-readable
features (popularity, year, genres, genre overlap and train-split co-occurrence with ``H``, ``len(H)``;
see ``feature_names``). Two pointwise models of one kind are fit to ``f``'s align-train answers:

* the **like** model, ``P(f puts i in the top half of its unseen ranking | H, i)``, from
  classification rows (the label: top 20 % -> 1, bottom 50 % -> 0) and ranking rows (each candidate,
  ``1`` iff its position in ``f``'s full ranking, ``target_positions``, is in the top half; without
  that meta, ``1`` for the first two of ``f``'s order). It answers classification (``1`` iff
  ``P >= 0.5``, ``score = P``) and ranking (by ``P`` descending, ties by item index).
* the **top** model, ``P(i is f's first pick | H, i)``, from retrieval rows: ``f``'s top
  ``retrieval_positives`` items -> 1, ``n_negatives`` seeded random unseen items -> 0. It answers
  retrieval with the top ``max(k)`` unseen items. Every unseen item is scored, except in catalogs over
  5,000 items, where only the ``pool_size`` most popular items and the ``pool_size`` items that
  co-occur most with ``H`` are (a heuristic cut: millions of rows per instance would dominate a run).

Why two models: the two label scales disagree about a random unseen item (often in ``f``'s top half,
never its first pick). On ML-100k with SASRec one shared model lost about 5 points of classification
accuracy (its 0.5 cut was miscalibrated) and 10 points of retrieval HR@5. With only one kind of row
in align-train, one model serves every task.

Scorers: ``HistGradientBoostingClassifier`` (``model="hgb"``, default) or ``RandomForestClassifier``
(``model="forest"``). A ``DecisionTreeClassifier`` of depth ``explain_depth`` is distilled from the
like model (fit to its 0/1 decisions on its training rows); its decision path, in words, is the
explanation. ``info()`` reports fidelity to ``f`` on align-valid (``ctx.extra["valid"]``) and the
shallow tree's agreement with the like model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from bench import metrics as M
from bench import seeds
from bench.answers import Permutation, RankedItems, Text, YesNo
from bench.explainers.base import Explainer, ExplainerContext
from bench.explainers.surrogate_features import Features
from bench.tasks.base import Task
from bench.types import Instance

log = logging.getLogger(__name__)

_GENRE_OVERLAP = frozenset({"genre_match", "max_genre_share", "genre_jaccard_mean", "genre_jaccard_max"})
#: rows per predict_proba call, to bound memory when scoring whole catalogs.
_CHUNK_ROWS = 200_000


def _k(task: Task) -> int:
    """How many items a retrieval answer lists: the task's largest cut-off K."""
    return int(max(task.params.get("k", [10])))


class SurrogateTreeExplainer(Explainer):
    """Trees on interpretable (history, item) features, fit to ``f``'s outputs; see the module doc."""

    name = "surrogate-tree"
    access = "behavior"
    summary = "scikit-learn trees on interpretable features, fit to the target's outputs"

    def __init__(
        self,
        *,
        model: str = "hgb",
        n_estimators: int = 100,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        explain_depth: int = 4,
        retrieval_positives: int = 1,
        n_negatives: int = 10,
        max_genres: int = 30,
        pool_size: int = 500,
        seed: int | None = None,
    ) -> None:
        """``model``: "hgb" or "forest"; ``n_estimators``/``max_depth``/``learning_rate``: the scorers
        (``learning_rate`` for hgb only); ``explain_depth``: the explanation tree; ``seed``: ``None``
        takes ``ctx.seed``. The rest is described in the module doc."""
        if model not in ("hgb", "forest"):
            raise ValueError(f"model must be 'hgb' or 'forest', got {model!r}")
        # every option lands in ``params`` (the cache key and the manifest)
        super().__init__(**{k: v for k, v in locals().items() if k not in ("self", "__class__")})
        self.feature_names: list[str] = []
        self.fidelity: dict[str, float] = {}

    # -- training -------------------------------------------------------------------------------

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        p = self.params
        self.ctx = ctx
        seed = int(ctx.seed if p["seed"] is None else p["seed"])
        self.feats = Features(ctx.dataset, ctx.split, max_genres=int(p["max_genres"]))
        self.feature_names = list(self.feats.names)
        rng = seeds.rng(seed)
        rows: dict[bool, tuple[list[np.ndarray], list[np.ndarray]]] = {False: ([], []), True: ([], [])}
        for name in sorted(train):  # sorted: the negative sampling must not depend on dict order
            answer = ctx.tasks[name].answer
            for inst in train[name]:
                items, y = self._targets(answer, inst, rng)
                if items:
                    rows[answer is RankedItems][0].append(self.feats.block(inst.history, items)[0])
                    rows[answer is RankedItems][1].append(np.asarray(y, dtype=np.int64))
        data = {k: (np.concatenate(b), np.concatenate(y)) for k, (b, y) in rows.items() if b}
        if not data:
            raise ValueError("surrogate-tree: no align-train instances of a supported task to learn from")
        x, y = data[False] if False in data else data[True]
        self.like = self.top = self._new_model(seed).fit(x, self._check(y))
        if len(data) == 2:
            self.top = self._new_model(seed).fit(data[True][0], self._check(data[True][1]))
        main = (self._proba(x) >= 0.5).astype(np.int64)
        self.tree = DecisionTreeClassifier(max_depth=int(p["explain_depth"]), random_state=seed).fit(x, main)
        self.n_rows = {("retrieval" if k else "like"): len(v[1]) for k, v in data.items()}
        self.positive_share = float(y.mean())
        self.fidelity = {"distill_agreement_train": float((self.tree.predict(x) == main).mean())}
        self.fidelity.update(self._valid_fidelity(ctx.extra.get("valid") or {}))
        rounded = {k: round(v, 3) for k, v in self.fidelity.items()}
        log.info("surrogate-tree: %s rows, %d features; fidelity %s", self.n_rows, x.shape[1], rounded)

    @staticmethod
    def _check(y: np.ndarray) -> np.ndarray:
        if len(np.unique(y)) < 2:
            raise ValueError("surrogate-tree: the training rows hold a single class; nothing to learn")
        return y

    def _new_model(self, seed: int) -> HistGradientBoostingClassifier | RandomForestClassifier:
        p = self.params
        if p["model"] == "forest":
            return RandomForestClassifier(
                n_estimators=int(p["n_estimators"]), max_depth=int(p["max_depth"]), random_state=seed
            )
        return HistGradientBoostingClassifier(
            max_iter=int(p["n_estimators"]),
            max_depth=int(p["max_depth"]),
            learning_rate=float(p["learning_rate"]),
            early_stopping=False,  # a fixed number of rounds: no hidden validation split to vary
            random_state=seed,
        )

    def _targets(self, answer: type, inst: Instance, rng: np.random.Generator) -> tuple[list[int], list[int]]:
        """Items and 0/1 targets one align-train instance of a task with answer type ``answer``
        contributes (see the module doc)."""
        if inst.label is None:
            return [], []
        if answer is YesNo:
            return [int(inst.candidates[0])], [int(inst.label)]
        if answer is Permutation:
            order = [int(i) for i in inst.label]
            pos = inst.meta.get("target_positions")
            if pos is not None and len(pos) == len(order):
                # f masks exactly the history, so its unseen ranking has n_items - |set(H)| items
                n_unseen = self.feats.n_items - len(set(inst.history))
                return order, [int(q < 0.5 * n_unseen) for q in pos]
            return order, [int(j < 2) for j in range(len(order))]
        if answer is RankedItems:
            top = [int(i) for i in (inst.meta.get("target_top10") or inst.label)]
            pos = top[: max(1, int(self.params["retrieval_positives"]))]
            blocked = set(inst.history) | set(top)
            n_neg = int(self.params["n_negatives"])
            draws = rng.integers(0, self.feats.n_items, size=4 * n_neg + 8)
            neg = list(dict.fromkeys(int(d) for d in draws if int(d) not in blocked))[:n_neg]
            return pos + neg, [1] * len(pos) + [0] * len(neg)
        return [], []

    def _valid_fidelity(self, valid: Mapping[str, list[Instance]]) -> dict[str, float]:
        """Agreement with ``f`` on labelled align-valid instances (``{task}/{metric}``), with the metric kernels."""
        out: dict[str, float] = {}
        for name in sorted(valid):
            task = self.ctx.tasks.get(name)
            insts = [i for i in valid[name] if i.label is not None]
            if task is None or not insts or task.answer not in (YesNo, Permutation, RankedItems):
                continue
            preds = self.answer(task, [replace(i, label=None, meta={}) for i in insts])
            pairs = list(zip(preds, insts, strict=True))
            if task.answer is YesNo:
                out[f"{name}/accuracy"] = float(np.mean([M.accuracy(p.output, i.label) for p, i in pairs]))
                x = np.concatenate([self.feats.block(i.history, i.candidates[:1])[0] for i in insts])
                out["distill_agreement_valid"] = float(
                    (self.tree.predict(x) == (self._proba(x) >= 0.5)).mean()
                )
            elif task.answer is Permutation:
                ndcg = [M.graded_ndcg(p.output, i.label, gains="linear") for p, i in pairs]
                out[f"{name}/ndcg"] = float(np.mean(ndcg))
            else:
                for k in sorted({1, _k(task)}):
                    hits = [M.hit_at_k(p.output, i.label, k=k) for p, i in pairs]
                    out[f"{name}/hr@{k}"] = float(np.mean(hits))
        return out

    # -- prediction -----------------------------------------------------------------------------

    def _proba(self, x: np.ndarray, *, top: bool = False) -> np.ndarray:
        return (self.top if top else self.like).predict_proba(x)[:, 1]

    def _score(
        self, histories: Sequence[Sequence[int]], items: Sequence[np.ndarray], *, top: bool
    ) -> list[np.ndarray]:
        """``P`` for each history's items; rows are built per history but predicted in big chunks."""
        out: list[np.ndarray] = []
        pending: list[np.ndarray] = []
        rows = 0
        for h, it in zip(histories, items, strict=True):
            pending.append(self.feats.block(h, it)[0])
            rows += len(it)
            if rows >= _CHUNK_ROWS or len(out) + len(pending) == len(histories):
                p = self._proba(np.concatenate(pending), top=top)
                out.extend(np.split(p, np.cumsum([len(b) for b in pending])[:-1]))
                pending, rows = [], 0
        return out

    @staticmethod
    def _order(items: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Items by descending ``p``, ties by the smaller item index."""
        return items[np.lexsort((items, -p))]

    def _candidates(self, instances: list[Instance]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The shown candidates of each instance and the like model's ``P`` for them."""
        items = [np.asarray(i.candidates, dtype=np.int64) for i in instances]
        return items, self._score([i.history for i in instances], items, top=False)

    def retrieve(self, task: Task, instances: list[Instance]) -> list[RankedItems]:
        size, k = int(self.params["pool_size"]), _k(task)
        items = [self.feats.pool(i.history, size) for i in instances]
        ps = self._score([i.history for i in instances], items, top=True)
        return [RankedItems(self._order(it, p)[:k]) for it, p in zip(items, ps, strict=True)]

    def rank(self, task: Task, instances: list[Instance]) -> list[Permutation]:
        items, ps = self._candidates(instances)
        return [Permutation(self._order(it, p)) for it, p in zip(items, ps, strict=True)]

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        _, ps = self._candidates(instances)
        return [YesNo(bool(p[0] >= 0.5), score=float(p[0])) for p in ps]

    # -- explanation ----------------------------------------------------------------------------

    def explain(self, task: Task, instances: list[Instance]) -> list[Text]:
        """One sentence per instance from the shallow tree's decision path.

        Single-candidate (classification) instances explain that item; others explain the
        surrogate's top pick among the candidates (ranking) or the unseen pool (retrieval).
        """
        out = []
        for inst in instances:
            if len(inst.candidates) == 1:
                out.append(Text(self._explain_one(inst.history, int(inst.candidates[0]), "")))
                continue
            retrieval = not inst.candidates
            items = (
                self.feats.pool(inst.history, int(self.params["pool_size"]))
                if retrieval
                else np.asarray(inst.candidates)
            )
            best = self._order(items, self._score([inst.history], [items], top=retrieval)[0])[0]
            out.append(Text(self._explain_one(inst.history, int(best), "Top pick. ")))
        return out

    def _title(self, item: int) -> str:
        ds = self.ctx.dataset
        return ds.titles[item] or f"item {ds.item_ids[item]}"

    def _explain_one(self, history: Sequence[int], item: int, prefix: str) -> str:
        x, cooc, jac = self.feats.block(history, [item])
        classes = list(self.tree.classes_)
        p_tree = float(self.tree.predict_proba(x)[0, classes.index(1)]) if 1 in classes else 0.0
        p_full = float(self._proba(x)[0])
        t = self.tree.tree_
        tests: dict[int, float] = {}  # one phrase per feature: the deepest test wins, first position kept
        for node in self.tree.decision_path(x).indices:
            if t.children_left[node] != -1:
                tests[int(t.feature[node])] = float(t.threshold[node])
        parts: list[str] = []
        cited: set[int] = set()
        for f, thr in tests.items():
            name, v = self.feature_names[f], float(x[0, f])
            text = self._phrase(name, v, thr, history, cooc[0])
            # a genre-overlap test that says "overlaps" cites the history item sharing most genres,
            # each such item once
            cite = int(history[int(np.argmax(jac[0]))]) if len(history) and jac.max() > 0 else None
            if name in _GENRE_OVERLAP and v > thr and cite is not None and cite not in cited:
                cited.add(cite)
                text += f", e.g. '{self._title(cite)}'"
            parts.append(text)
        like = p_tree >= 0.5
        because = ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else "".join(parts)
        verdict = "Recommended" if like else "Not recommended"
        # titles are quoted with ' in the text, so the wording itself avoids apostrophes
        text = f"{prefix}{verdict}: the tree reaches '{'like' if like else 'dislike'}' (p={p_tree:.2f}) for '{self._title(item)}' "
        text += (
            f"because {because}"
            if because
            else "(a single leaf: no feature separates the choices of the target)"
        )
        agree = "agrees" if (p_full >= 0.5) == like else "disagrees"
        return f"{text}; the full model {agree} (p={p_full:.2f})."

    def _phrase(self, name: str, v: float, thr: float, history: Sequence[int], cooc: np.ndarray) -> str:
        """English for one test ``feature <= thr`` on the path; names only items of ``history``."""
        above = v > thr
        cmp = ">" if above else "≤"
        if name == "popularity_log":
            text = f"it has {'many' if above else 'few'} interactions ({math.expm1(v):.0f} {cmp} {math.expm1(thr):.1f})"
        elif name == "popularity_percentile":
            more, where = ("more", "within") if above else ("less", "outside")
            text = f"it is among the {more} popular items (top {100 - v:.0f} % by interactions, {where} the top {100 - thr:.0f} %)"
        elif name == "year":
            text = f"it was released {'after' if above else 'in or before'} {math.floor(thr)} ({v:.0f})"
        elif name == "year_gap":
            how = f"more than {thr:.1f} years from" if above else f"within {thr:.1f} years of"
            text = f"its year is {how} the history average ({v:.0f} years)"
        elif name.startswith("genre="):
            text = f"its genres {'include' if above else 'do not include'} {name.removeprefix('genre=')}"
        elif name == "history_len":
            text = f"the history is {'long' if above else 'short'} ({v:.0f} items, {cmp} {thr:.1f})"
        elif name == "genre_match":
            text = f"its genres match {'' if above else 'only '}{100 * v:.0f} % of the history ({cmp} {100 * thr:.0f} %)"
        elif name == "max_genre_share" and above:
            text = f"one of its genres covers {100 * v:.0f} % of the history (> {100 * thr:.0f} %)"
        elif name == "max_genre_share":
            text = f"none of its genres covers more than {100 * v:.0f} % of the history (≤ {100 * thr:.0f} %)"
        elif name.startswith("genre_jaccard"):
            stat = "max" if name.endswith("max") else "mean"
            text = f"its genres {'overlap' if above else 'barely overlap'} with those of the history ({stat} Jaccard {v:.2f} {cmp} {thr:.2f})"
        elif not len(history):
            text = "the history is empty"
        elif name == "cooc_last":
            last = self._title(int(history[-1]))
            text = f"it {'often' if above else 'rarely'} co-occurs with '{last}', the most recent history item (cosine {v:.2f} {cmp} {thr:.2f})"
        elif name == "cooc_max" and above:
            best = self._title(int(history[int(np.argmax(cooc))]))
            text = f"it often co-occurs with '{best}' (cosine {v:.2f} > {thr:.2f})"
        elif name == "cooc_max":
            text = f"it co-occurs little even with its closest history item (max cosine {v:.2f} ≤ {thr:.2f})"
        else:
            text = f"it {'co-occurs' if above else 'rarely co-occurs'} with the history in general (mean cosine {v:.2f} {cmp} {thr:.2f})"
        return text

    # -- provenance -----------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        out = super().info()
        if hasattr(self, "tree"):
            out.update(
                model=type(self.like).__name__,
                retrieval_model="separate" if self.top is not self.like else "shared",
                feature_names=list(self.feature_names),
                training_rows=self.n_rows,
                like_share=round(self.positive_share, 4),
                fidelity={k: round(v, 4) for k, v in self.fidelity.items()},
                explanation_tree={
                    "depth": int(self.tree.get_depth()),
                    "leaves": int(self.tree.get_n_leaves()),
                },
            )
        return out
