"""sasrec-title-init and lane-sasrec on a tiny deterministic dataset: the item table starts from the
given vectors, the preference attention is trained and used, unknown histories fall back to SASRec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_recommenders import N_ITEMS, make_tiny

from bench.data.dataset import leave_one_out
from bench.errors import UserError
from bench.recommenders.lane_sasrec import LaneSASRec, SASRecTitleInit
from bench.recommenders.sasrec import SASRec

HP = dict(hidden_size=16, n_heads=2, inner_size=32, max_len=8, epochs=4, patience=2, batch_size=32)


@pytest.fixture(scope="module")
def split():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield leave_one_out(make_tiny())
    torch.set_num_threads(before)


def test_title_init_starts_from_the_given_table(split) -> None:
    init = np.random.default_rng(0).standard_normal((N_ITEMS, 16)).astype(np.float32)
    model = SASRecTitleInit(N_ITEMS, item_init=init, **{**HP, "epochs": 1, "lr": 1e-9})
    model.fit(split, seed=0, disable_progress=True)
    assert np.allclose(model.item_embeddings(), init, atol=1e-4)  # lr ~0: still the initial table
    assert "item_init_sha256" in model.config() and "item_init_sha256" not in SASRec(N_ITEMS, **HP).config()
    with pytest.raises(UserError):
        SASRec(N_ITEMS, item_init=init[:, :8], **HP)


def test_lane_sasrec_uses_the_preferences_of_known_histories(split) -> None:
    rng = np.random.default_rng(1)
    prefs = {}
    for s in split.train:
        prefs[tuple(int(x) for x in s)] = (rng.standard_normal((5, 16)).astype(np.float32), np.ones(5, bool))
    model = LaneSASRec(N_ITEMS, prefs=prefs, **HP)
    report = model.fit(split, seed=0, disable_progress=True)
    assert report.epochs >= 1
    known = [split.train[0]]
    with_prefs = model.user_embeddings(known)
    model.prefs = {}  # the same history without preferences: the attention adds nothing
    without = model.user_embeddings(known)
    assert not np.allclose(with_prefs, without)
    assert np.isfinite(model.scores(known, mask_history=False)).all()
