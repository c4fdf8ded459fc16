"""sasrec-guided: SASRec whose item table is [gain ⊙ frozen attribute z-scores ; free embedding]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("single_thread")

torch = pytest.importorskip("torch")

from bench.data.dataset import leave_one_out  # noqa: E402
from bench.data.synthetic import make_tiny  # noqa: E402
from bench.errors import UserError  # noqa: E402
from bench.recommenders.sasrec_guided import SASRecGuided, load_attribute_matrix  # noqa: E402


@pytest.fixture
def scores_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "attributes.npz"
    items = np.arange(0, 40, 2)  # half the catalog scored: the rest is neutral
    np.savez(path, items=items, scores=rng.uniform(size=(len(items), 4)).astype(np.float32))
    return path


def test_the_attribute_matrix_is_z_scored_with_unscored_items_neutral(scores_file: Path) -> None:
    z, n = load_attribute_matrix(scores_file, 40)
    assert n == 20 and z.shape == (40, 4)
    np.testing.assert_allclose(z[::2].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[::2].std(0), 1.0, atol=1e-3)
    assert not z[1::2].any()
    with pytest.raises(UserError, match="no attribute score file"):
        load_attribute_matrix(scores_file.with_name("missing.npz"), 40)


def test_it_trains_with_the_attributes_frozen_and_the_padding_row_zero(scores_file: Path) -> None:
    split = leave_one_out(make_tiny(n_users=60, n_items=40))
    model = SASRecGuided(
        40, attribute_scores=str(scores_file), epochs=2, patience=1, hidden_size=16, n_heads=2
    )
    z = model.z.copy()
    report = model.fit(split, seed=0, disable_progress=True)
    assert report.epochs >= 1
    table = model._net.item_emb
    np.testing.assert_array_equal(table.z[1:].numpy(), z)  # the attribute scores never move
    w = table.weight.detach()
    assert not w[0].any()  # padding
    gain = table.gain.detach()
    np.testing.assert_allclose(w[1:, :4].numpy(), (table.z[1:] * gain).numpy(), rtol=1e-6)
    assert model.item_embeddings().shape == (40, 16)
    s = model.scores([[0, 1, 2]])
    assert s.shape == (1, 40) and np.isneginf(s[0, [0, 1, 2]]).all()
    assert model.config()["attribute_scores_sha256"]


def test_too_many_attributes_for_the_width_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "wide.npz"
    np.savez(path, items=np.arange(10), scores=np.random.default_rng(0).uniform(size=(10, 16)))
    with pytest.raises(UserError, match="no free width"):
        SASRecGuided(10, attribute_scores=str(path), hidden_size=16, n_heads=2)


def test_item_init_is_refused_not_silently_lost(scores_file: Path) -> None:
    with pytest.raises(UserError, match="item_init"):
        SASRecGuided(10, attribute_scores=str(scores_file), item_init=np.zeros((10, 64), dtype=np.float32))
