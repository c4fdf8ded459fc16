"""Target recommenders on a tiny generated dataset: contract, determinism, checkpoints, learning."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from bench.data.dataset import Dataset, Split, leave_one_out
from bench.errors import UserError
from bench.recommenders.checkpoint import checkpoint_hash, load_target
from bench.recommenders.evaluation import (
    evaluate_full_ranking,
    mask_items,
    metrics_from_ranks,
    target_card,
)
from bench.recommenders.mf import MF
from bench.recommenders.popularity import Popularity
from bench.recommenders.sasrec import SASRec

N_USERS, N_ITEMS = 60, 40

# Small and fast but the same code paths as the defaults.
SASREC_HP = dict(
    hidden_size=32,
    inner_size=64,
    max_len=10,
    hidden_dropout=0.1,
    attn_dropout=0.1,
    lr=5e-3,
    batch_size=32,
    epochs=60,
    patience=8,
)
MF_HP = dict(dim=16, lr=1e-2, batch_size=64, epochs=15, patience=3)


def make_tiny() -> Dataset:
    """User ``u`` watches ``s, s+1, s+2, ...`` (mod 40) from ``s = u % 40``: next item = current + 1."""
    users, items, ts = [], [], []
    for u in range(N_USERS):
        start, length = u % N_ITEMS, 8 + u % 5
        for k in range(length):
            users.append(u)
            items.append((start + k) % N_ITEMS)
            ts.append(float(k))
    return Dataset(
        name="tiny",
        user_ids=tuple(str(u) for u in range(N_USERS)),
        item_ids=tuple(str(i) for i in range(N_ITEMS)),
        titles=("",) * N_ITEMS,
        genres=((),) * N_ITEMS,
        years=(None,) * N_ITEMS,
        users=np.array(users, dtype=np.int64),
        items=np.array(items, dtype=np.int64),
        timestamps=np.array(ts),
        sha256="tiny",
    )


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny tensors: intra-op threads only add synchronisation (and stall badly on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def split() -> Split:
    return leave_one_out(make_tiny())


def _build(name: str):
    if name == "sasrec":
        return SASRec(N_ITEMS, **SASREC_HP)
    if name == "mf":
        return MF(N_ITEMS, **MF_HP)
    return Popularity(N_ITEMS)


@pytest.fixture(scope="module")
def fitted(split: Split) -> dict:
    models = {}
    for name in ("sasrec", "mf", "popularity"):
        m = _build(name)
        m.fit(split, seed=0, disable_progress=True)
        models[name] = m
    return models


HISTORIES = [[0, 1, 2], [5], [], [39, 38, 0, 0], list(range(25))]
MODELS = ["sasrec", "mf", "popularity"]


@pytest.mark.parametrize("name", MODELS)
def test_scores_contract(fitted: dict, name: str) -> None:
    m = fitted[name]
    s = m.scores(HISTORIES)
    assert s.shape == (len(HISTORIES), N_ITEMS) and s.dtype == np.float32
    for r, h in enumerate(HISTORIES):
        assert np.all(np.isneginf(s[r, h]))
        rest = np.setdiff1d(np.arange(N_ITEMS), h)
        assert np.all(np.isfinite(s[r, rest]))
    raw = m.scores(HISTORIES, mask_history=False)
    assert np.all(np.isfinite(raw))
    u, i = m.user_embeddings(HISTORIES), m.item_embeddings()
    assert u.shape[0] == len(HISTORIES) and i.shape == (N_ITEMS, u.shape[1])
    assert u.dtype == np.float32 and i.dtype == np.float32
    np.testing.assert_allclose(raw, u @ i.T, rtol=1e-4, atol=1e-4)
    assert m.scores([]).shape == (0, N_ITEMS)


@pytest.mark.parametrize("name", MODELS)
def test_config_is_json(fitted: dict, name: str) -> None:
    cfg = fitted[name].config()
    assert cfg["n_items"] == N_ITEMS
    assert json.loads(json.dumps(cfg)) == cfg


@pytest.mark.parametrize("name", MODELS)
def test_rejects_out_of_range_items(fitted: dict, name: str) -> None:
    with pytest.raises(ValueError, match="outside"):
        fitted[name].scores([[0, N_ITEMS]])
    with pytest.raises(ValueError, match="outside"):
        fitted[name].scores([[-1]])


@pytest.mark.parametrize("name", ["sasrec", "mf"])
def test_unfitted_model_refuses_to_score(name: str) -> None:
    with pytest.raises(RuntimeError, match="fit"):
        _build(name).scores([[1]])


def test_unknown_hyper_parameter_is_user_error() -> None:
    with pytest.raises(UserError, match="hiden_size"):
        SASRec(N_ITEMS, hiden_size=3)


@pytest.mark.parametrize("name", ["sasrec", "mf"])
def test_same_seed_same_scores(split: Split, fitted: dict, name: str) -> None:
    again = _build(name)
    again.fit(split, seed=0, disable_progress=True)
    np.testing.assert_array_equal(again.scores(HISTORIES), fitted[name].scores(HISTORIES))


def test_fit_does_not_disturb_global_rng(split: Split) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MF(N_ITEMS, **{**MF_HP, "epochs": 1}).fit(split, seed=5, disable_progress=True)
    assert torch.equal(torch.rand(3), expected)


def test_sasrec_learns_successor(fitted: dict) -> None:
    m = fitted["sasrec"]
    # A one-item history is the rarest prefix in training (first position of a window only), and
    # early stopping fires as soon as validation saturates, so "most" here means more than half.
    top1 = m.scores([[i] for i in range(N_ITEMS)]).argmax(axis=1)
    assert np.mean(top1 == (np.arange(N_ITEMS) + 1) % N_ITEMS) > 0.5
    longer = m.scores([[(i + k) % N_ITEMS for k in range(4)] for i in range(N_ITEMS)]).argmax(axis=1)
    assert np.mean(longer == (np.arange(N_ITEMS) + 4) % N_ITEMS) >= 0.9
    assert fitted["sasrec"].fit_report.best_valid["hr@10"] > 0.9


def test_mf_beats_popularity_on_tiny(split: Split, fitted: dict) -> None:
    mf = target_card(fitted["mf"], split)["test"]
    pop = target_card(fitted["popularity"], split)["test"]
    assert mf["ndcg@10"] > pop["ndcg@10"]


def test_popularity_counts_and_ties(split: Split, fitted: dict) -> None:
    pop = fitted["popularity"]
    np.testing.assert_array_equal(pop.counts, split.item_popularity)
    s = pop.scores([[]])[0]
    # Higher counts first; equal counts ordered by item index.
    order = np.argsort(-s, kind="stable")
    keys = list(zip(-split.item_popularity[order], order, strict=True))
    assert keys == sorted(keys)
    np.testing.assert_array_equal(pop.user_embeddings([[1], []]), np.ones((2, 1), dtype=np.float32))


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(fitted: dict, name: str, tmp_path: Path) -> None:
    m = fitted[name]
    m.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"model.safetensors", "config.json"}
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["name"] == name and meta["format_version"] == 1 and meta["config"] == m.config()
    loaded = load_target(tmp_path)
    assert type(loaded) is type(m) and loaded.config() == m.config()
    np.testing.assert_array_equal(loaded.scores(HISTORIES), m.scores(HISTORIES))
    np.testing.assert_array_equal(loaded.item_embeddings(), m.item_embeddings())
    h = checkpoint_hash(tmp_path)
    assert len(h) == 64
    loaded.save(tmp_path / "again")
    assert checkpoint_hash(tmp_path / "again") == h


def _tamper(directory: Path, edit) -> None:
    path = directory / "model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("kind", ["missing", "unexpected", "shape"])
def test_strict_loading(fitted: dict, name: str, kind: str, tmp_path: Path) -> None:
    fitted[name].save(tmp_path)
    key = sorted(load_file(str(tmp_path / "model.safetensors")))[0]

    def edit(t: dict) -> None:
        if kind == "missing":
            del t[key]
        elif kind == "unexpected":
            t["extra.weight"] = torch.zeros(2)
        else:
            t[key] = torch.zeros(*[d + 1 for d in t[key].shape])

    _tamper(tmp_path, edit)
    with pytest.raises(UserError) as err:
        load_target(tmp_path)
    msg = str(err.value)
    assert "model.safetensors" in msg
    assert ("extra.weight" if kind == "unexpected" else key) in msg


def test_load_errors_are_user_errors(fitted: dict, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="config.json"):
        load_target(tmp_path / "nowhere")
    fitted["mf"].save(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "name": "sasrek"}))
    with pytest.raises(UserError, match="sasrec"):
        load_target(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "config": {**cfg["config"], "dim": 8}}))
    with pytest.raises(UserError, match="shape"):
        load_target(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="model.safetensors"):
        load_target(tmp_path)


# -- evaluation -------------------------------------------------------------------------------------


class _FixedScores:
    """A fake target returning a fixed score matrix, row ``r`` for the ``r``-th history it is asked about."""

    name = "fixed"

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix
        self.n_items = matrix.shape[1]
        self.calls = 0

    def scores(self, histories, *, mask_history: bool = True) -> np.ndarray:
        out = self.matrix[self.calls : self.calls + len(histories)].copy()
        self.calls += len(histories)
        if mask_history:
            mask_items(out, [np.asarray(h, dtype=np.int64) for h in histories])
        return out


def _brute_force(matrix, histories, targets, k, mask):
    hr = ndcg = mrr = 0.0
    for r, (h, t) in enumerate(zip(histories, targets, strict=True)):
        candidates = [i for i in range(matrix.shape[1]) if i == t or not (mask and i in h)]
        rank = sum(1 for i in candidates if matrix[r, i] > matrix[r, t])
        if rank < k:
            hr += 1
            ndcg += 1 / math.log2(rank + 2)
            mrr += 1 / (rank + 1)
    n = len(targets)
    return {f"hr@{k}": hr / n, f"ndcg@{k}": ndcg / n, f"mrr@{k}": mrr / n}


@pytest.mark.parametrize("mask", [True, False])
def test_evaluate_full_ranking_matches_brute_force(mask: bool) -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 50, 30
    matrix = rng.normal(size=(n_users, n_items)).astype(np.float32)
    matrix[:, :3] = np.round(matrix[:, :3])  # a few ties
    histories = [
        rng.choice(n_items, size=rng.integers(0, 12), replace=False).tolist() for _ in range(n_users)
    ]
    targets = rng.integers(0, n_items, size=n_users)
    targets[:5] = [h[0] if h else 0 for h in histories[:5]]  # repeat consumption: target in history
    got = evaluate_full_ranking(_FixedScores(matrix), histories, targets, ks=(1, 5, 10), mask_history=mask)
    for k in (1, 5, 10):
        want = _brute_force(matrix, histories, targets, k, mask)
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-12), key


def test_metrics_from_ranks() -> None:
    m = metrics_from_ranks(np.array([0, 1, 9, 10]), ks=(10,))
    assert m["hr@10"] == pytest.approx(0.75)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 10) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(11)) / 4)


def test_target_card_histories(split: Split, fitted: dict) -> None:
    card = target_card(fitted["sasrec"], split, ks=(5, 10))
    assert set(card) == {"valid", "test"}
    assert set(card["test"]) == {"hr@5", "ndcg@5", "mrr@5", "hr@10", "ndcg@10", "mrr@10"}
    # The successor pattern is learnt: the test item (last + 1) is found for nearly everyone.
    assert card["test"]["hr@10"] > 0.9
