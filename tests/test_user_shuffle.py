"""The ``user_shuffle`` ablation: every user gets another user's vector, item vectors stay."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from bench.explainers.base import EmbeddingView
from bench.explainers.llm_base import Shape
from bench.explainers.recexplainer_embed import RecExplainerI
from bench.types import Instance


def _explainer(ablation: str, histories: list[tuple[int, ...]]) -> RecExplainerI:
    rng = np.random.default_rng(0)
    view = EmbeddingView(rng.normal(size=(20, 4)), {h: rng.normal(size=4) for h in histories})
    view.grant(histories)
    e = object.__new__(RecExplainerI)  # no backbone: only the vector plumbing is exercised
    e.params = {"ablation": ablation}
    e.ctx = SimpleNamespace(seed=0, embeddings=view)
    e._user_remap = None
    e.item_table = view.item_vectors()
    return e


def test_user_shuffle_is_a_derangement_over_users() -> None:
    histories = [(i, i + 1, i + 2) for i in range(7)]
    e = _explainer("user_shuffle", histories)
    # three instances per user (like classification's pairs): they must move together
    insts = [Instance(f"x{k}{j}", "t", -1, h, None, (k,)) for k, h in enumerate(histories) for j in range(3)]
    own = {h: e.user_vector(Instance("o", "t", -1, h, None)) for h in histories}
    with e._user_shuffle(insts):
        got = {i.history: e.user_vector(i) for i in insts}
        per_user = {
            i.history: {e.user_vector(j).tobytes() for j in insts if j.history == i.history} for i in insts
        }
        items = e.extras(Shape("interest_classification", shows="item"), insts[0])["item_vectors"]
    assert all(len(v) == 1 for v in per_user.values())  # one vector per user
    assert all(not np.array_equal(got[h], own[h]) for h in histories)  # nobody keeps their own
    assert sorted(v.tobytes() for v in got.values()) == sorted(
        v.tobytes() for v in own.values()
    )  # a permutation
    np.testing.assert_array_equal(items[0], e.item_table[insts[0].candidates[0]])  # items intact
    assert e._user_remap is None  # only during the call


def test_no_ablation_keeps_vectors() -> None:
    histories = [(1, 2), (3, 4)]
    e = _explainer("none", histories)
    insts = [Instance("a", "t", -1, h, None, (0,)) for h in histories]
    with e._user_shuffle(insts):
        for i in insts:
            np.testing.assert_array_equal(e.user_vector(i), e.ctx.embeddings.user_vector(i.history))
