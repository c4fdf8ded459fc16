"""LANE's pieces on tiny fixtures: the attention and LANE's get_weight formula, the forced-format
decoder, preference usability and caching, and the head on a task only the preferences can solve."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from llm_fixtures import make_prompts

from bench import seeds
from bench.explainers.lane_head import HeadData, train_head
from bench.llm.chat import format_prompt
from bench.llm.forced_json import Choice, Field, Literal, fill_json, fill_templates
from bench.llm.preferences import PreferenceExtractor, usable_flags
from bench.recommenders.lane_sasrec import PreferenceAttention, get_weight
from bench.types import Instance

KEYS = [f"Preference{i}" for i in range(1, 6)]


# -- attention ---------------------------------------------------------------------------------------


def test_get_weight_matches_a_hand_computed_case() -> None:
    # d = 2, identity projections: logits = <q, k_j> / sqrt(2) = (1, 0, -1) / sqrt(2) for q = (1, 0)
    eye = torch.eye(2)
    q = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    e = [math.exp(x / math.sqrt(2)) for x in (1.0, 0.0, -1.0)]
    expected = [x / sum(e) for x in e]  # 2.0281, 1, 0.4931 over 3.5212
    got = get_weight(eye, eye, q, keys)[0].tolist()
    assert got == pytest.approx(expected, abs=1e-6)
    assert got == pytest.approx([0.57598, 0.28400, 0.14003], abs=1e-4)
    # a projection scales the query: W_q = 2 I doubles the logits
    got2 = get_weight(2 * eye, eye, q, keys)[0].tolist()
    e2 = [math.exp(2 * x / math.sqrt(2)) for x in (1.0, 0.0, -1.0)]
    assert got2 == pytest.approx([x / sum(e2) for x in e2], abs=1e-6)
    # a masked (unusable) preference gets weight 0, the others renormalise
    masked = get_weight(eye, eye, q, keys, torch.tensor([[True, False, True]]))[0].tolist()
    assert masked == pytest.approx([e[0] / (e[0] + e[2]), 0.0, e[2] / (e[0] + e[2])], abs=1e-6)


def test_attention_weights_sum_to_one_per_head_and_skip_masked_preferences() -> None:
    torch.manual_seed(0)
    att = PreferenceAttention(16, n_heads=4, dropout=0.0).eval()
    q, prefs = torch.randn(6, 16), torch.randn(6, 5, 16)
    mask = torch.ones(6, 5, dtype=torch.bool)
    mask[1, [0, 3]] = False
    mask[2] = False  # nothing usable
    _, w = att.attention(q, prefs, mask)
    assert w.shape == (6, 4, 5)
    sums = w.sum(-1)
    assert torch.allclose(sums[[0, 1, 3, 4, 5]], torch.ones(5, 4), atol=1e-6)
    assert torch.all(w[1][:, [0, 3]] == 0) and torch.all(w[2] == 0)
    assert torch.isfinite(att(q, prefs, mask)).all()


# -- the forced-format decoder -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forced_json_always_parses_with_every_key(tiny, single_thread, seed: int) -> None:
    rng = np.random.default_rng(seed)
    prompts = [format_prompt(tiny, p) for p in make_prompts(7, seed=seed, max_words=int(rng.integers(3, 40)))]
    n_keys = int(rng.integers(1, 6))
    keys = [f"k{j}" for j in range(n_keys)]
    filled = fill_json(
        tiny, prompts, keys, max_value_tokens=int(rng.integers(1, 7)), distinct=True, batch_size=3
    )
    for f in filled:
        parsed = json.loads(f.text)
        assert list(parsed) == keys and parsed == f.values
        assert all(v and '"' not in v and "\n" not in v for v in parsed.values())  # never empty


def test_kv_cached_decoding_does_not_depend_on_batch_mates(tiny, single_thread) -> None:
    prompts = [format_prompt(tiny, p) for p in make_prompts(5, seed=7, max_words=25)]
    one = fill_json(tiny, prompts, KEYS, max_value_tokens=5, batch_size=1)
    many = fill_json(tiny, prompts, KEYS, max_value_tokens=5, batch_size=5)
    assert [f.values for f in one] == [f.values for f in many]


def test_choices_are_always_one_of_the_options(tiny, single_thread) -> None:
    prompts = [format_prompt(tiny, p) for p in make_prompts(6, seed=4)]
    tpl = [
        Literal("A: "),
        Field("a", 3, "\n"),
        Literal("\nP: "),
        Choice("p", ("Low", "Medium", "High")),
        Literal("\nR: "),
        Field("r", 3, "\n"),
    ]
    for f in fill_templates(tiny, prompts, [tpl] * len(prompts), batch_size=4):
        assert f.values["p"] in ("Low", "Medium", "High")
        assert f.text.startswith("A: ") and f"\nP: {f.values['p']}\nR: " in f.text


# -- preferences ---------------------------------------------------------------------------------


def test_usable_preferences_rule() -> None:
    titles = ["Star Wars (1977)", "Toy Story (1995)", "The Godfather (1972)", "Englishman Who Went Up a Hill"]
    values = [
        "space operas",
        "Star Wars",
        "star wars movies",
        "The",
        "Space Operas!",
        "films like Toy Story and Alien and Heat",
    ]
    assert usable_flags(values, titles) == (True, False, False, False, False, True)
    assert usable_flags(["Up a Hill", "hill walking", "Wars"], titles) == (False, True, False)


def test_preferences_are_cached_and_reused_by_signal(tiny, single_thread, llm_home) -> None:
    histories = [["Alpha Beta", "Gamma"], ["Delta"], ["Alpha Beta", "Gamma"]]
    first = PreferenceExtractor(tiny, max_value_tokens=3, batch_size=2)
    got = first.extract(histories)
    assert (first.hits, first.misses) == (0, 2)  # the repeated history is extracted once
    assert got[0] == got[2] and len(got[0].values) == 5
    again = PreferenceExtractor(tiny, max_value_tokens=3, batch_size=2)
    assert again.extract(histories) == got and (again.hits, again.misses) == (3, 0)
    other = PreferenceExtractor(tiny, max_value_tokens=4, batch_size=2)  # another prompt hash
    other.extract(histories[:1])
    assert other.misses == 1 and other.directory != first.directory


# -- the head ------------------------------------------------------------------------------------


def _synthetic(n_users: int, n_items: int, dim: int, seed: int, rng_items: np.random.Generator):
    """f's user vectors are noise; one of each user's five preferences is its target item's title
    embedding (plus noise), the others random: only the preferences say which item f picks."""
    rng = seeds.rng(seed, "synthetic-lane")
    items = rng_items.standard_normal((n_items, dim)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    targets = rng.integers(0, n_items, n_users)
    prefs = rng.standard_normal((n_users, 5, dim)).astype(np.float32) / math.sqrt(dim)
    slot = rng.integers(0, 5, n_users)
    prefs[np.arange(n_users), slot] = items[targets] + 0.1 * rng.standard_normal((n_users, dim))
    users = rng.standard_normal((n_users, 8)).astype(np.float32)
    insts = [
        Instance(instance_id=str(u), task="r", user=u, history=(), label=[int(targets[u])])
        for u in range(n_users)
    ]
    return items, HeadData(users, prefs, np.ones((n_users, 5), dtype=bool)), insts, targets


def test_head_beats_chance_when_only_the_preferences_hold_the_answer() -> None:
    items, data, insts, targets = _synthetic(600, 50, 16, 0, np.random.default_rng(0))
    tr, va, te = slice(0, 400), slice(400, 480), slice(480, 600)

    def part(s: slice):
        return {"r": (insts[s], HeadData(data.users[s], data.prefs[s], data.mask[s]))}

    params = {"n_heads": 4, "dropout": 0.0, "lr": 0.01, "batch_size": 64, "epochs": 60, "patience": 10}
    head, report = train_head(
        items, {"train": part(tr), "valid": part(va)}, {"r": "retrieve"}, params, user_dim=8, seed=0
    )
    test = HeadData(data.users[te], data.prefs[te], data.mask[te])
    hit = float(np.mean(head.score_items(test, items).argmax(1) == targets[te]))
    assert hit > 5 / 50, report  # five times chance (1/50); 0.175 measured
    # the same head fed other users' preferences (the ablation) loses what it had
    perm = np.roll(np.arange(test.prefs.shape[0]), 1)
    shuffled = HeadData(test.users, test.prefs[perm], test.mask)
    hit_shuffled = float(np.mean(head.score_items(shuffled, items).argmax(1) == targets[te]))
    assert hit_shuffled < hit / 2
