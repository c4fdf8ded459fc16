"""The surrogate-tree explainer on a tiny hand-made dataset with a learnable fake target."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bench.data.dataset import Dataset, leave_one_out
from bench.explainers import surrogate, surrogate_features
from bench.explainers.base import ExplainerContext
from bench.explainers.baselines import RandomExplainer
from bench.explainers.surrogate import SurrogateTreeExplainer
from bench.tasks.base import BuildInput, TaskSpec
from bench.tasks.classification import InterestClassification
from bench.tasks.explanation import ExplanationRubric
from bench.tasks.ranking import ItemRanking
from bench.tasks.retrieval import NextItemRetrieval

#: an explanation task (explanations need no judge until scored)
EXPLANATION = ExplanationRubric(
    TaskSpec("explanation_rubric", "explanation_rubric", 1, "", {}, main_metric="rubric")
)

GENRES = ("Action", "Comedy", "Drama")
N_USERS, N_ITEMS = 80, 30


def make_dataset(*, with_metadata: bool = True) -> Dataset:
    """Users prefer genre ``u % 3``; 80 % of their items come from it, lower indices more often."""
    rng = np.random.default_rng(7)
    genre_of = np.arange(N_ITEMS) % 3
    users, items, stamps = [], [], []
    for u in range(N_USERS):
        pref = np.flatnonzero(genre_of == u % 3)
        w = 1.0 / (1.0 + np.arange(len(pref)))
        n = int(rng.integers(8, 14))
        liked = rng.choice(pref, size=min(n - 3, len(pref)), replace=False, p=w / w.sum())
        other = rng.choice(np.flatnonzero(genre_of != u % 3), size=3, replace=False)
        seq = rng.permutation(np.concatenate([liked, other]))
        users += [u] * len(seq)
        items += seq.tolist()
        stamps += list(range(len(seq)))
    genres = tuple((GENRES[g],) if with_metadata else ("unknown",) for g in genre_of)
    years = tuple((1980 + i if i % 5 else None) if with_metadata else None for i in range(N_ITEMS))
    return Dataset(
        name="tiny-surrogate",
        user_ids=tuple(f"u{u}" for u in range(N_USERS)),
        item_ids=tuple(f"i{i}" for i in range(N_ITEMS)),
        titles=tuple(f"Film {i:02d}" for i in range(N_ITEMS)),
        genres=genres,
        years=years,
        users=np.asarray(users, dtype=np.int64),
        items=np.asarray(items, dtype=np.int64),
        timestamps=np.asarray(stamps, dtype=np.float64),
    )


class FakeTarget:
    """Score = 2 x share of the history in the item's genre + a little popularity; history masked."""

    name = "fake"

    def __init__(self, dataset: Dataset, popularity: np.ndarray) -> None:
        self.n_items = dataset.n_items
        self.genre_of = np.arange(self.n_items) % 3  # the target knows genres even when the data hides them
        self.pop = np.log1p(popularity).astype(np.float32)

    def scores(self, histories: Sequence[Sequence[int]], *, mask_history: bool = True) -> np.ndarray:
        out = np.zeros((len(histories), self.n_items), dtype=np.float32)
        for r, h in enumerate(histories):
            share = np.bincount(self.genre_of[list(h)], minlength=3) / max(1, len(h))
            out[r] = 2.0 * share[self.genre_of] + 0.1 * self.pop
            if mask_history:
                out[r, list(h)] = -np.inf
        return out


def make_setup(*, with_metadata: bool = True):
    ds = make_dataset(with_metadata=with_metadata)
    split = leave_one_out(ds)
    target = FakeTarget(ds, split.item_popularity)
    specs = {
        "interest_classification": (InterestClassification, "accuracy"),
        "item_ranking": (ItemRanking, "ndcg@5"),
        "next_item_retrieval": (NextItemRetrieval, "hr@5"),
    }
    rows = {
        "align_train": np.arange(0, 50),
        "align_valid": np.arange(50, 65),
        "align_test": np.arange(65, 80),
    }
    tasks, parts = {}, {}
    for name, (cls, metric) in specs.items():
        task = cls(TaskSpec(name=name, kind=name, version=1, description="", params={}, main_metric=metric))
        tasks[name] = task
        parts[name] = {
            part: task.build(
                BuildInput(
                    split=split,
                    target=target,
                    rows=r,
                    part=part,
                    rng=np.random.default_rng(0),
                    contexts_per_user=3 if part == "align_train" else 1,
                )
            )
            for part, r in rows.items()
        }
    ctx = ExplainerContext(
        access="behavior",
        dataset=ds,
        split=split,
        catalog=None,  # type: ignore[arg-type]
        tasks=tasks,
        seed=0,
        extra={"valid": {t: p["align_valid"] for t, p in parts.items()}},
    )
    return ds, tasks, parts, ctx


def explain(model, insts) -> list[str]:
    """The model's explanations of ``insts``, through the one dispatch (``answer``) as the runner asks."""
    return [p.output for p in model.answer(EXPLANATION, insts)]


def blinded(insts):
    return [replace(i, label=None, meta={}) for i in insts]


def evaluate(explainer, tasks, parts, ctx) -> dict[str, float]:
    explainer.fit({t: p["align_train"] for t, p in parts.items()}, ctx)
    out = {}
    for name, metric in (
        ("interest_classification", "accuracy"),
        ("item_ranking", "ndcg@5"),
        ("next_item_retrieval", "hr@5"),
    ):
        test = parts[name]["align_test"]
        preds = explainer.answer(tasks[name], blinded(test))
        assert [p.instance_id for p in preds] == [i.instance_id for i in test]
        out[name] = float(tasks[name].score(test, preds)[metric].mean())
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """OpenMP threads only cost time on a few thousand rows (and thrash on a busy machine)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def setup():
    return make_setup()


@pytest.fixture(scope="module")
def fitted(setup):
    _, tasks, parts, ctx = setup
    model = SurrogateTreeExplainer()
    return model, evaluate(model, tasks, parts, ctx)


def test_beats_random(setup, fitted):
    _, tasks, parts, ctx = setup
    model, scores = fitted
    floor = evaluate(RandomExplainer(), tasks, parts, ctx)
    assert scores["interest_classification"] >= 0.8 > floor["interest_classification"] + 0.15
    assert scores["item_ranking"] > floor["item_ranking"] + 0.05
    assert scores["next_item_retrieval"] > floor["next_item_retrieval"]


def test_info_reports_fidelity(fitted):
    model, _ = fitted
    info = model.info()
    fid = info["fidelity"]
    assert info["model"] == "HistGradientBoostingClassifier"
    assert fid["interest_classification/accuracy"] >= 0.7
    assert 0.0 < fid["item_ranking/ndcg"] <= 1.0
    assert {
        "next_item_retrieval/hr@1",
        "next_item_retrieval/hr@10",
        "distill_agreement_train",
        "distill_agreement_valid",
    } <= set(fid)
    assert fid["distill_agreement_train"] >= 0.8
    assert 1 <= info["explanation_tree"]["depth"] <= 4
    assert info["retrieval_model"] == "separate" and set(info["training_rows"]) == {"like", "retrieval"}
    assert len(info["feature_names"]) == len(model.feature_names) == model.like.n_features_in_
    assert "genre=Action" in model.feature_names and "cooc_last" in model.feature_names


def test_explanations_are_grounded(setup, fitted):
    ds, _, parts, _ = setup
    model, _ = fitted
    insts = parts["interest_classification"]["align_test"] + parts["item_ranking"]["align_test"][:3]
    texts = explain(model, blinded(insts))
    assert len(texts) == len(insts)
    for inst, text in zip(insts, texts, strict=True):
        assert text and ("Recommended" in text or "Not recommended" in text)
        allowed = {ds.titles[h] for h in inst.history} | {"like", "dislike"}
        if len(inst.candidates) == 1:
            allowed.add(ds.titles[inst.candidates[0]])
        else:
            allowed |= {ds.titles[c] for c in inst.candidates}
        cited = set(re.findall(r"'([^']+)'", text))
        assert cited <= allowed, (text, inst.history)
        # no other catalog title may leak in, quoted or not
        for t in set(ds.titles) - allowed:
            assert t not in text


def test_deterministic(setup, fitted):
    _, tasks, parts, ctx = setup
    model, scores = fitted
    again = SurrogateTreeExplainer()
    assert evaluate(again, tasks, parts, ctx) == scores
    test = blinded(parts["next_item_retrieval"]["align_test"])
    assert [p.output for p in again.answer(tasks["next_item_retrieval"], test)] == [
        p.output for p in model.answer(tasks["next_item_retrieval"], test)
    ]
    insts = blinded(parts["interest_classification"]["align_test"][:6])
    assert explain(again, insts) == explain(model, insts)


def test_predictions_are_well_formed(setup, fitted):
    _, tasks, parts, _ = setup
    model, _ = fitted
    for inst, pred in zip(
        parts["next_item_retrieval"]["align_test"],
        model.answer(tasks["next_item_retrieval"], blinded(parts["next_item_retrieval"]["align_test"])),
        strict=True,
    ):
        assert len(pred.output) == 10 and len(set(pred.output)) == 10
        assert not set(pred.output) & set(inst.history)
    for inst, pred in zip(
        parts["item_ranking"]["align_test"],
        model.answer(tasks["item_ranking"], blinded(parts["item_ranking"]["align_test"])),
        strict=True,
    ):
        assert sorted(pred.output) == sorted(inst.candidates)
    for pred in model.answer(
        tasks["interest_classification"], blinded(parts["interest_classification"]["align_test"])
    ):
        assert pred.output in (0, 1) and 0.0 <= pred.score <= 1.0 and pred.output == int(pred.score >= 0.5)


def test_large_catalog_pool(setup, fitted, monkeypatch):
    """Over the catalog-size cut, retrieval scores only popular + co-occurring unseen items."""
    _, tasks, parts, _ = setup
    model, _ = fitted
    monkeypatch.setattr(surrogate_features, "LARGE_CATALOG", 10)
    monkeypatch.setitem(model.params, "pool_size", 4)
    test = parts["next_item_retrieval"]["align_test"]
    popular = set(np.argsort(-model.feats.pop_log, kind="stable")[:4].tolist())
    for inst, pred in zip(test, model.answer(tasks["next_item_retrieval"], blinded(test)), strict=True):
        assert 0 < len(pred.output) <= 8 and not set(pred.output) & set(inst.history)
        assert popular - set(inst.history) <= set(pred.output)


def test_without_genres_or_years(recwarn, caplog):
    """All genres "unknown" and no years: still fits, predicts and explains, without warnings."""
    _, tasks, parts, ctx = make_setup(with_metadata=False)
    model = SurrogateTreeExplainer(model="forest", n_estimators=30)
    with caplog.at_level(logging.INFO, logger="bench.explainers.surrogate"):
        scores = evaluate(model, tasks, parts, ctx)
    assert not any(n.startswith("genre=") for n in model.feature_names)
    assert model.info()["model"] == "RandomForestClassifier"
    assert 0.0 <= scores["interest_classification"] <= 1.0
    assert all(explain(model, blinded(parts["interest_classification"]["align_test"][:4])))
    assert "fidelity" in caplog.text
    assert not [w for w in recwarn if "bench" in str(w.filename) or "sklearn" in str(w.filename)]


def test_rejects_unknown_model():
    with pytest.raises(ValueError, match="hgb"):
        SurrogateTreeExplainer(model="svm")


def test_chunking_does_not_change_scores(setup, fitted, monkeypatch):
    _, tasks, parts, _ = setup
    model, _ = fitted
    test = blinded(parts["next_item_retrieval"]["align_test"])
    whole = model.answer(tasks["next_item_retrieval"], test)
    monkeypatch.setattr(surrogate, "_CHUNK_ROWS", 50)
    assert model.answer(tasks["next_item_retrieval"], test) == whole
