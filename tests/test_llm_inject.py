"""bench.llm.inject and bench.llm.injected on the tiny-random backbone: placement, training, batching, loading, ablations."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from llm_fixtures import make_titles  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from bench.errors import UserError  # noqa: E402
from bench.llm.backbone import load_backbone  # noqa: E402
from bench.llm.chat import encode_continuation, encode_prompt, format_prompt  # noqa: E402
from bench.llm.inject import (  # noqa: E402
    ITEM_TOKEN,
    USER_TOKEN,
    InjectionConfig,
    Injector,
    add_placeholder_tokens,
    build_injector,
    check_target_dim,
    item_vectors,
    load_injector,
    target_vectors,
)
from bench.llm.injected import generate_injected, score_continuations_injected  # noqa: E402
from bench.llm.lora import LoraTrainConfig, TrainExample, load_adapter, train_lora  # noqa: E402
from bench.llm.trie import TitleTrie  # noqa: E402

# Resizing the vocabulary makes peft save the embedding matrices with every adapter; expected here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Setting `save_embedding_layers` to `True`:UserWarning"),
    pytest.mark.usefixtures("single_thread"),
]

TITLES = make_titles(30, seed=7)
REC_DIM = 6
ATOL = 1e-4
COLOURS = ["red", "blue", "green", "black"]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inject-home")


@pytest.fixture
def backbone(home: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh tiny-random backbone per test (placeholders mutate it); built once, then loaded."""
    monkeypatch.setenv("RECXBENCH_HOME", str(home))
    return load_backbone("tiny-random", titles=TITLES, device="cpu")


def _vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=REC_DIM).astype(np.float32)


def _instances() -> tuple[list[str], list[dict]]:
    """Prompts of different lengths with 0..3 placeholders, and their vectors."""
    prompts = [
        f"User {USER_TOKEN} watched {ITEM_TOKEN} and then {ITEM_TOKEN}. Next?",
        "A prompt with no placeholders at all, about a dark river",
        f"{ITEM_TOKEN} only {USER_TOKEN}",
        f"{USER_TOKEN}{USER_TOKEN} twins like the star night {ITEM_TOKEN}",
        f"Would {USER_TOKEN} enjoy the film?",
    ]
    extras = [
        {"user_vectors": [_vec(0)], "item_vectors": [_vec(1), _vec(2)]},
        {},
        {"user_vectors": _vec(3), "item_vectors": np.stack([_vec(4)])},  # one vector, a (1, d) array
        {"user_vectors": torch.tensor(np.stack([_vec(5), _vec(6)])), "item_vectors": [_vec(7)]},
        {"user_vectors": [_vec(8)], "item_vectors": []},
    ]
    return prompts, extras


def _pad(tok, prompts: list[str], side: str) -> torch.Tensor:
    seqs = [encode_prompt(tok, p) for p in prompts]
    width = max(map(len, seqs))
    pads = [[tok.pad_token_id] * (width - len(s)) for s in seqs]
    return torch.tensor([p + s if side == "left" else s + p for s, p in zip(seqs, pads, strict=True)])


def _expected(inj: Injector, model, ids: torch.Tensor, extras: list[dict]) -> torch.Tensor:
    """The reference: one placeholder at a time, with a loop."""
    plain = model.get_input_embeddings()(ids)
    out = plain.clone()
    user_id, item_id = inj.token_ids
    for b in range(ids.shape[0]):
        seen = {USER_TOKEN: 0, ITEM_TOKEN: 0}
        for t, tid in enumerate(ids[b].tolist()):
            if tid not in (user_id, item_id):
                continue
            token, key, proj = (
                (USER_TOKEN, "user_vectors", inj.user_proj)
                if tid == user_id
                else (ITEM_TOKEN, "item_vectors", inj.item_proj)
            )
            vecs = np.asarray(extras[b][key], dtype=np.float32).reshape(-1, REC_DIM)
            projected = proj(torch.from_numpy(vecs[seen[token]]))
            seen[token] += 1
            out[b, t] = projected if inj.config.mode == "replace" else plain[b, t] + projected
    return out


@pytest.mark.parametrize("mode", ["replace", "add"])
def test_injection_places_vectors_exactly_at_placeholders(backbone, mode: str) -> None:
    inj = build_injector(backbone, rec_dim=REC_DIM, config=InjectionConfig(mode=mode))
    assert add_placeholder_tokens(backbone) == inj.token_ids  # idempotent
    tok, model = backbone.tokenizer, backbone.model
    assert tok.tokenize(f"a{USER_TOKEN}b {ITEM_TOKEN}").count(USER_TOKEN) == 1  # never split
    rows = model.get_input_embeddings().weight
    assert rows.shape[0] == len(tok) and model.get_output_embeddings().weight.shape[0] == len(tok)
    mean = rows[: min(inj.token_ids)].mean(0)
    assert torch.allclose(rows[list(inj.token_ids)], mean.expand(2, -1))
    assert inj.user_proj.net[0].out_features == 32  # LLM hidden 64 // 2

    prompts, extras = _instances()
    with torch.no_grad():
        for side in ("left", "right"):
            ids = _pad(tok, prompts, side)
            got = inj.build_inputs_embeds(model, ids, extras)
            want = _expected(inj, model, ids, extras)
            assert got.dtype == rows.dtype and got.shape == want.shape
            assert torch.allclose(got, want, atol=1e-6)
            placeholders = (ids == inj.token_ids[0]) | (ids == inj.token_ids[1])
            plain = model.get_input_embeddings()(ids)
            assert torch.equal(got[~placeholders], plain[~placeholders])
            assert not torch.allclose(got[placeholders], plain[placeholders])

        ids = _pad(tok, prompts[:1], "left")
        with pytest.raises(ValueError, match="2 <item> placeholder.*1 vector"):
            inj.build_inputs_embeds(model, ids, [{"user_vectors": [_vec(0)], "item_vectors": [_vec(1)]}])
        with pytest.raises(ValueError, match="1 <user> placeholder.*0 vector"):
            inj.build_inputs_embeds(model, ids, [{"item_vectors": [_vec(1), _vec(2)]}])
        with pytest.raises(ValueError, match="dimension 6"):
            inj.build_inputs_embeds(
                model, ids, [{"user_vectors": [[1.0]], "item_vectors": [_vec(1), _vec(2)]}]
            )


def _colour_examples(rng: np.random.Generator, n_per_class: int, backbone) -> tuple[list, list[int]]:
    """Prompts identical up to the injected user vector; its class alone decides the colour."""
    prompt = format_prompt(backbone, f"Which colour does the user {USER_TOKEN} like?")
    codes = np.eye(4, REC_DIM, dtype=np.float32) * 3.0
    labels = [k for k in range(4) for _ in range(n_per_class)]
    examples = [
        TrainExample(prompt, COLOURS[k], {"user_vectors": [codes[k] + rng.normal(0, 0.3, REC_DIM)]})
        for k in labels
    ]
    return examples, labels


def _accuracy(backbone, inj: Injector, examples: list, labels: list[int]) -> float:
    scores = score_continuations_injected(
        backbone,
        inj,
        [ex.prompt for ex in examples],
        [ex.extras for ex in examples],
        [COLOURS] * len(examples),
        batch_size=16,
    )
    return float(np.mean([int(np.argmax(s)) == k for s, k in zip(scores, labels, strict=True)]))


@pytest.mark.parametrize("mode", ["replace", "add"])
def test_train_then_load_and_score_end_to_end(backbone, tmp_path: Path, mode: str) -> None:
    config = InjectionConfig(mode=mode)
    inj = build_injector(backbone, rec_dim=REC_DIM, config=config)
    initial = copy.deepcopy(inj.state_dict())
    examples, _ = _colour_examples(np.random.default_rng(0), 2, backbone)
    cfg = LoraTrainConfig(dropout=0.0, lr=1e-2, batch_size=4, epochs=2)
    report = train_lora(
        backbone,
        examples,
        cfg,
        out_dir=tmp_path,
        extra_modules={"injector": inj},
        embed_hook=inj.embed_hook,
        progress=False,
    )
    assert report.steps == 4 and all(math.isfinite(x) for x in report.losses)
    trained = inj.state_dict()
    assert not torch.equal(trained["user_proj.net.0.weight"], initial["user_proj.net.0.weight"])
    assert torch.equal(trained["item_proj.net.0.weight"], initial["item_proj.net.0.weight"])  # no <item>

    # a fresh process: new backbone, placeholders, an injector of another seed, then the adapter
    fresh = load_backbone("tiny-random", titles=TITLES, device="cpu")
    other = build_injector(fresh, rec_dim=REC_DIM, config=config, seed=1)
    tuned = load_adapter(fresh, report.adapter_dir, extra_modules={"injector": other})
    assert all(torch.equal(v, trained[k]) for k, v in other.state_dict().items())
    loaded = load_injector(report.adapter_dir, rec_dim=REC_DIM, llm_hidden=64, config=config)
    assert loaded.token_ids == inj.token_ids and not loaded.training
    assert all(torch.equal(v, trained[k]) for k, v in loaded.state_dict().items())

    scores = score_continuations_injected(
        tuned,
        loaded,
        [ex.prompt for ex in examples],
        [ex.extras for ex in examples],
        [COLOURS] * 8,
        batch_size=3,
    )
    assert all(math.isfinite(x) for row in scores for x in row)
    texts = generate_injected(
        tuned,
        loaded,
        [ex.prompt for ex in examples[:3]],
        [ex.extras for ex in examples[:3]],
        max_new_tokens=4,
    )
    assert len(texts) == 3 and all(len(t) == 1 and isinstance(t[0], str) for t in texts)


def test_batched_and_single_outputs_agree(backbone) -> None:
    inj = build_injector(backbone, rec_dim=REC_DIM)
    prompts, extras = _instances()
    answers = [[" star night", "", " the", " dark river of love and war"]] * len(prompts)
    batched = score_continuations_injected(backbone, inj, prompts, extras, answers, batch_size=5)
    single = score_continuations_injected(backbone, inj, prompts, extras, answers, batch_size=1)
    assert np.allclose(batched, single, atol=ATOL, rtol=0)
    assert all(row[1] == 0.0 for row in batched)

    greedy = generate_injected(backbone, inj, prompts, extras, max_new_tokens=8, batch_size=5, stop=())
    assert greedy == generate_injected(
        backbone, inj, prompts, extras, max_new_tokens=8, batch_size=1, stop=()
    )
    assert any(g[0] for g in greedy)
    trie = TitleTrie.build(backbone.tokenizer, TITLES, prefix_text=" ")
    beams = dict(max_new_tokens=4, num_beams=3, num_return_sequences=2, constraint=trie)
    titles = generate_injected(backbone, inj, prompts, extras, batch_size=5, **beams)
    assert titles == generate_injected(backbone, inj, prompts, extras, batch_size=1, **beams)
    assert all(1 <= len(t) <= 2 and set(t) <= set(TITLES) for t in titles)


def test_scores_match_a_plain_forward_over_inputs_embeds(backbone) -> None:
    inj = build_injector(backbone, rec_dim=REC_DIM, config=InjectionConfig(mode="add"))
    prompts, extras = _instances()
    answers = [[" star night", " the", "", " queen of the lost island garden"]] * len(prompts)
    got = score_continuations_injected(backbone, inj, prompts, extras, answers, batch_size=2)
    tok, model = backbone.tokenizer, backbone.model
    for i, prompt in enumerate(prompts):
        p = encode_prompt(tok, prompt)
        for j, answer in enumerate(answers[i]):
            a = encode_continuation(tok, answer)
            with torch.no_grad():
                embeds = inj.build_inputs_embeds(model, torch.tensor([p + a]), [extras[i]])
                logprobs = model(inputs_embeds=embeds).logits[0].float().log_softmax(-1)
            want = sum(logprobs[len(p) + t - 1, a[t]].item() for t in range(len(a)))
            assert got[i][j] == pytest.approx(want, abs=ATOL)
    with pytest.raises(ValueError, match="only occur in prompts"):
        score_continuations_injected(backbone, inj, prompts[:1], extras[:1], [[f" {USER_TOKEN}"]])


def _popularity_target(tmp_path: Path):
    from bench.data.dataset import Dataset, leave_one_out
    from bench.recommenders.popularity import Popularity

    users, items = np.repeat(np.arange(12), 5), (np.arange(60) * 7) % 10
    data = Dataset(
        name="tiny",
        user_ids=tuple(map(str, range(12))),
        item_ids=tuple(map(str, range(10))),
        titles=("",) * 10,
        genres=((),) * 10,
        years=(None,) * 10,
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        timestamps=np.tile(np.arange(5.0), 12),
        sha256="tiny",
    )
    target = Popularity(10)
    target.fit(leave_one_out(data), seed=0)
    return target


def test_strict_loading_of_injector_and_target(backbone, tmp_path: Path) -> None:
    from bench.recommenders.checkpoint import load_target

    inj = build_injector(backbone, rec_dim=REC_DIM)
    bare = load_backbone("tiny-random", titles=TITLES, device="cpu")  # no placeholders
    with pytest.raises(ValueError, match="add_placeholder_tokens"):
        score_continuations_injected(bare, inj, ["a prompt"], [{}], [[" a"]])
    state = {f"injector.{k}": v.contiguous() for k, v in inj.state_dict().items()}
    save_file(state, str(tmp_path / "extra_modules.safetensors"))
    ok = load_injector(tmp_path, rec_dim=REC_DIM, llm_hidden=64)
    assert ok.token_ids == inj.token_ids
    with pytest.raises(UserError, match="size mismatch"):
        load_injector(tmp_path, rec_dim=REC_DIM + 1, llm_hidden=64)
    renamed = {k.replace("item_proj.net.2.bias", "item_proj.net.2.b"): v for k, v in state.items()}
    save_file(renamed, str(tmp_path / "bad.safetensors"))
    with pytest.raises(UserError, match=r"Missing key.*item_proj\.net\.2\.bias.*Unexpected key.*net\.2\.b"):
        load_injector(tmp_path / "bad.safetensors", rec_dim=REC_DIM, llm_hidden=64)

    target = _popularity_target(tmp_path)
    target.save(tmp_path / "target")
    assert np.array_equal(load_target(tmp_path / "target").item_embeddings(), target.item_embeddings())
    weights = tmp_path / "target" / "model.safetensors"
    save_file(
        {k.replace("counts", "counts_renamed"): t for k, t in load_file(str(weights)).items()}, str(weights)
    )
    with pytest.raises(UserError, match="missing keys: counts; unexpected keys: counts_renamed"):
        load_target(tmp_path / "target")

    u, i = target_vectors(target, [[0, 1], [2]]), item_vectors(target, [3, 0, 3])
    assert u.dtype == i.dtype == np.float32 and u.shape == (2, 1) and i.shape == (3, 1)
    assert np.array_equal(i[:, 0], target.item_embeddings()[[3, 0, 3], 0])
    with pytest.raises(ValueError, match="item indices"):
        item_vectors(target, [10])
    check_target_dim(target, Injector(rec_dim=1, llm_hidden=64))
    with pytest.raises(UserError, match="1-dim user / 1-dim item vectors but the injector expects 6"):
        check_target_dim(target, inj)


def test_ablations_zero_and_shuffle(backbone) -> None:
    inj = build_injector(backbone, rec_dim=REC_DIM)
    prompts, extras = _instances()
    zero, shuffle = copy.deepcopy(inj), copy.deepcopy(inj)
    zero.config = InjectionConfig(ablation="zero")
    shuffle.config = InjectionConfig(ablation="shuffle", seed=3)

    ablated = zero.ablate(extras)
    ids = _pad(backbone.tokenizer, prompts, "left")
    with torch.no_grad():
        embeds = zero.build_inputs_embeds(backbone.model, ids, ablated)
        assert torch.allclose(
            embeds[ids == inj.token_ids[0]], inj.user_proj(torch.zeros(REC_DIM)).expand(5, -1)
        )
        assert torch.allclose(
            embeds[ids == inj.token_ids[1]], inj.item_proj(torch.zeros(REC_DIM)).expand(4, -1)
        )

    moved = shuffle.ablate(extras)
    assert [{k: len(v) for k, v in e.items()} for e in moved] == [
        {"user_vectors": 1, "item_vectors": 2},
        {},
        {"user_vectors": 1, "item_vectors": 1},
        {"user_vectors": 2, "item_vectors": 1},
        {"user_vectors": 1, "item_vectors": 0},
    ]
    for key in ("user_vectors", "item_vectors"):
        before = np.concatenate(
            [np.asarray(e[key], dtype=np.float32).reshape(-1, REC_DIM) for e in extras if key in e]
        )
        after = np.concatenate([e[key] for e in moved if key in e])
        assert sorted(map(tuple, before)) == sorted(map(tuple, after))  # a permutation ...
        assert not (before == after).all(axis=1).any()  # ... with no vector left in place
    again = shuffle.ablate(extras)
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(moved, again, strict=True) for k in a)

    # the inference functions apply the ablation over all instances, whatever the batch size
    answers = [[" star night", " the"]] * len(prompts)
    for ablated_inj, manual in ((zero, ablated), (shuffle, moved)):
        want = score_continuations_injected(backbone, inj, prompts, manual, answers)
        for batch_size in (1, 5):
            got = score_continuations_injected(
                backbone, ablated_inj, prompts, extras, answers, batch_size=batch_size
            )
            assert np.allclose(got, want, atol=ATOL, rtol=0)


def test_the_model_learns_to_read_the_injected_vector(backbone, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    config = InjectionConfig(mode="replace")
    inj = build_injector(backbone, rec_dim=REC_DIM, config=config)
    train, _ = _colour_examples(rng, 12, backbone)
    test, labels = _colour_examples(rng, 10, backbone)
    cfg = LoraTrainConfig(dropout=0.0, lr=1e-2, batch_size=8, epochs=10, max_steps=60, warmup_ratio=0.1)
    report = train_lora(
        backbone,
        train,
        cfg,
        out_dir=tmp_path,
        extra_modules={"injector": inj},
        embed_hook=inj.embed_hook,
        progress=False,
    )
    assert report.steps == 60
    tuned = load_adapter(backbone, report.adapter_dir, extra_modules={"injector": inj})
    assert _accuracy(tuned, inj, test, labels) >= 0.9
    zero, shuffle = copy.deepcopy(inj), copy.deepcopy(inj)
    zero.config = InjectionConfig(mode="replace", ablation="zero")
    shuffle.config = InjectionConfig(mode="replace", ablation="shuffle")
    assert _accuracy(tuned, zero, test, labels) == 0.25  # identical inputs: one answer for all 4 classes
    assert _accuracy(tuned, shuffle, test, labels) <= 0.5  # chance is 0.25
