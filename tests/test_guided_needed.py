"""guided-embedding under `items: needed`: which items it scores, the context sample, the short
attribute list, and how the board states the items left at the neutral vector."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import seeds
from bench.answers import Permutation, RankedItems, YesNo
from bench.errors import UserError
from bench.types import Instance


@dataclass
class _Task:
    answer: Any


@dataclass
class _Ctx:
    """What GuidedEmbedding._learned reads of an ExplainerContext."""

    tasks: dict[str, _Task] = field(
        default_factory=lambda: {
            "next_item_retrieval": _Task(RankedItems),
            "item_ranking": _Task(Permutation),
            "interest_classification": _Task(YesNo),
        }
    )
    seed: int = 0

    def rng(self, *purpose: int | str) -> np.random.Generator:
        return seeds.rng(self.seed, *purpose)


def _data(n_users: int) -> dict[str, list[Instance]]:
    """Per user one latest context shared by every task, plus an earlier prefix only retrieval has."""
    out: dict[str, list[Instance]] = {t: [] for t in _Ctx().tasks}
    for u in range(n_users):
        hist = (u, u + 100, u + 200)
        out["next_item_retrieval"].append(Instance(f"r{u}", "next_item_retrieval", u, hist, [300 + u]))
        out["next_item_retrieval"].append(Instance(f"e{u}", "next_item_retrieval", u, hist[:2], [400 + u]))
        cands = (500 + u, 600 + u)
        out["item_ranking"].append(Instance(f"k{u}", "item_ranking", u, hist, list(cands), cands))
        for j, c in enumerate((700 + u, 800 + u)):
            out["interest_classification"].append(
                Instance(f"c{u}-{j}", "interest_classification", u, hist, j, (c,))
            )
    return out


def test_a_context_sample_keeps_every_task_of_the_sampled_contexts() -> None:
    from bench.explainers.guided import GuidedEmbedding

    data = _data(30)
    ex = GuidedEmbedding(max_train_contexts=4)
    got = ex._learned(data, _Ctx(), "train")
    contexts = {t: {(i.user, i.history) for i in insts} for t, insts in got.items()}
    # 4 contexts, each one that all three tasks have (the retrieval-only prefixes come last)
    assert len(set.union(*contexts.values())) == 4
    assert contexts["item_ranking"] == contexts["interest_classification"] == contexts["next_item_retrieval"]
    assert len(got["interest_classification"]) == 8 and len(got["item_ranking"]) == 4
    # the same draw again, another one for align-valid
    assert ex._learned(data, _Ctx(), "train") == got
    assert ex._learned(data, _Ctx(), "valid") != got
    # fewer items to score than the same number of instances drawn per task
    per_task = GuidedEmbedding(max_train_instances=4)._learned(data, _Ctx(), "train")
    assert sum(map(len, per_task.values())) == 12 <= sum(map(len, got.values()))
    assert len(GuidedEmbedding._items_of(got)) < 2 * len(GuidedEmbedding._items_of(per_task))
    # null keeps everything
    assert GuidedEmbedding()._learned(data, _Ctx(), "train") == {t: list(v) for t, v in data.items()}


def test_contexts_beyond_the_shared_ones_fill_the_sample() -> None:
    from bench.explainers.guided import GuidedEmbedding

    got = GuidedEmbedding(max_train_contexts=35)._learned(_data(30), _Ctx(), "train")
    assert len(got["item_ranking"]) == 30  # all 30 shared contexts, then 5 retrieval-only prefixes
    assert len(got["next_item_retrieval"]) == 35


def test_the_short_movie_list_is_a_subset_of_the_full_one_with_a_counterpart_each() -> None:
    from bench.llm.attributes import load_attributes

    short, full = load_attributes("movies-short"), load_attributes("movies")
    described = {a.name: a.description for a in full.attributes}
    assert len(short.attributes) == 6
    assert all(described[a.name] == a.description for a in short.attributes)
    assert set(short.validity["ml-100k"]) == set(short.names)
    assert short.sha256 != full.sha256  # cached apart


def test_an_attribute_with_an_unknown_key_is_an_error(tmp_path: Path) -> None:
    from bench.llm.attributes import load_attributes

    path = tmp_path / "bad.yaml"
    # an unquoted comma in a flow mapping makes "b" a key and cuts the description at "a"
    path.write_text("attributes:\n  - {name: x, description: a, b}\n", encoding="utf-8")
    with pytest.raises(UserError, match="unknown key"):
        load_attributes(str(path))


def test_the_card_says_how_many_items_carry_the_neutral_vector() -> None:
    from bench.report.attributes import attribute_card, attribute_markdown

    card = {
        "dataset": "ml-100k",
        "attributes": "movies-short",
        "n_items": 500,
        "catalog_items": 1682,
        "retrieval_returned": 200,
        "retrieval_returned_unscored": 37,
        "metric": "ROC AUC",
        "rows": [{"attribute": "humour", "metadata": "Comedy", "positives": 80, "auc": 0.6}],
    }
    fields = {f.label: f.value for f in attribute_card({"attribute_validity": {"g": card}}).fields}
    text = fields["Unscored items (g)"]
    assert "1182 of 1682" in text and "37 of 200 returned" in text
    lines = attribute_markdown({"attribute_validity": {"g": card}}, level=2, table=lambda t: "")
    assert any("1182 of 1682" in x for x in lines)
    whole = {**card, "n_items": 1682}
    labels = [f.label for f in attribute_card({"attribute_validity": {"g": whole}}).fields]
    assert not any(x.startswith("Unscored") for x in labels)
