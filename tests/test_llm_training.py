"""Tests for bench.llm.lora (LoRA training) and bench.llm.adapter on a tiny random Llama with a BPE tokenizer trained in the test."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("accelerate")
tokenizers = pytest.importorskip("tokenizers")

from safetensors.torch import load_file  # noqa: E402

from bench.llm.adapter import Bundle, is_checkpointing  # noqa: E402
from bench.llm.backbone import Backbone  # noqa: E402
from bench.llm.lora import (  # noqa: E402
    IGNORE_INDEX,
    LoraTrainConfig,
    TrainExample,
    _batch_nll,
    collate,
    encode_example,
    load_adapter,
    train_lora,
)

COLOURS = ["red", "blue", "green", "black", "white", "pink", "grey", "gold"]


def _prompt(i: int) -> str:
    return f"Q: colour of item {i}?\nA:"


CORPUS = [_prompt(i) + f" {c}" for i, c in enumerate(COLOURS)] + [
    "Item <emb> colour? the quick brown fox jumps over the lazy dog",
    "a long context about items, users, histories and recommendations",
] * 3


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<eos>", "<unk>", "<emb>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.padding_side = "left"
    return fast


def _backbone(tokenizer, seed: int = 0) -> Backbone:
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        initializer_range=0.2,  # larger than HF's 0.02 so tied tiny embeddings can express sharp logits
    )
    model = transformers.LlamaForCausalLM(config).eval()
    return Backbone(spec="test", model=model, tokenizer=tokenizer, device="cpu", dtype="float32", sha256="x")


def _answer_loglik(model, tokenizer, prompt: str, answer: str) -> float:
    """Sum of log p(answer tokens + EOS | prompt), by a manual forward pass."""
    enc = encode_example(tokenizer, prompt, answer, max_length=512)
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    targets = ids[0, 1:]
    picked = logp[torch.arange(len(targets)), targets]
    return float(picked[enc.n_prompt - 1 :].sum())


def _colour_examples() -> list[TrainExample]:
    return [TrainExample(_prompt(i), f" {c}") for i, c in enumerate(COLOURS)]


# --------------------------------------------------------------------------------------------------
# tokenisation
# --------------------------------------------------------------------------------------------------


def test_labels_cover_only_answer_tokens(tokenizer) -> None:
    pairs = [(_prompt(3), " black"), ("Item <emb> colour?", " a long answer about the lazy dog")]
    encoded = [encode_example(tokenizer, p, a, max_length=64) for p, a in pairs]
    batch = collate([(enc, i) for i, enc in enumerate(encoded)], pad_id=tokenizer.pad_token_id)
    assert batch["index"].tolist() == [0, 1]
    for row, ((prompt, answer), enc) in enumerate(zip(pairs, encoded, strict=False)):
        n = len(enc.input_ids)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert enc.input_ids == prompt_ids + answer_ids and enc.n_prompt == len(prompt_ids)
        labels = batch["labels"][row]
        assert (labels[: enc.n_prompt] == IGNORE_INDEX).all()  # prompt
        assert labels[enc.n_prompt : n].tolist() == answer_ids  # answer + EOS
        assert (labels[n:] == IGNORE_INDEX).all()  # right padding
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (batch["labels"].shape[1] - n)
        assert (batch["input_ids"][row, n:] == tokenizer.pad_token_id).all()
        supervised = labels[labels != IGNORE_INDEX].tolist()
        assert tokenizer.decode(supervised[:-1]) == answer


def test_batch_nll_on_kept_positions_equals_a_full_forward(tokenizer) -> None:
    # The LM head runs only where some row predicts an answer token; per row the summed NLL must
    # still be the full-sequence value (rows of different lengths, answers at different places).
    bb = _backbone(tokenizer)
    pairs = [
        (_prompt(3), " black"),
        ("Item <emb> colour?", " a long answer about the lazy dog"),
        ("Q:", " red"),
    ]
    examples = [TrainExample(p, a) for p, a in pairs]
    encoded = [encode_example(tokenizer, p, a, max_length=64) for p, a in pairs]
    batch = collate([(enc, i) for i, enc in enumerate(encoded)], pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        nll, count = _batch_nll(Bundle(bb.model, None, None), batch, examples)
    for row, ((prompt, answer), enc) in enumerate(zip(pairs, encoded, strict=True)):
        assert count[row].item() == len(enc.input_ids) - enc.n_prompt
        assert nll[row].item() == pytest.approx(
            -_answer_loglik(bb.model, tokenizer, prompt, answer), abs=1e-4
        )


def test_left_truncation_keeps_the_answer(tokenizer) -> None:
    prompt = "a long context about items, users, histories and recommendations " * 6 + _prompt(2)
    answer = " green"
    full = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    enc = encode_example(tokenizer, prompt, answer, max_length=16)
    assert len(enc.input_ids) == 16 and not enc.answer_truncated
    assert enc.input_ids[enc.n_prompt :] == answer_ids  # answer intact
    assert enc.input_ids[: enc.n_prompt] == full[-enc.n_prompt :]  # the prompt's end is kept
    # an answer that alone exceeds max_length loses its end (and EOS), keeping one prompt token
    long = encode_example(tokenizer, prompt, " the quick brown fox jumps over the lazy dog" * 3, max_length=8)
    assert long.answer_truncated and len(long.input_ids) == 8 and long.n_prompt == 1
    assert tokenizer.eos_token_id not in long.input_ids


# --------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------


def test_loss_decreases_and_model_prefers_trained_answer(tokenizer, tmp_path: Path) -> None:
    backbone = _backbone(tokenizer)
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    examples = _colour_examples()
    base_ll = {c: _answer_loglik(backbone.model, tokenizer, _prompt(3), f" {c}") for c in COLOURS}
    cfg = LoraTrainConfig(dropout=0.0, lr=2e-2, epochs=6, batch_size=4, warmup_ratio=0.05)
    report = train_lora(
        backbone, examples * 4, cfg, out_dir=tmp_path, progress=False, valid_examples=examples
    )
    assert report.steps == 48 and len(report.losses) == 48 and report.resumed_from is None
    assert sum(report.losses[-8:]) / 8 < 0.25 * sum(report.losses[:8]) / 8
    assert report.examples == 32 and report.tokens > 0 and report.tokens_per_second > 0
    assert len(report.valid_losses) == 6 and report.valid_losses[-1] < 0.25 * report.valid_losses[0]
    assert (tmp_path / "done.json").exists() and (report.adapter_dir / "adapter_config.json").exists()

    # the caller's model is given back untouched
    assert not any("lora" in name for name, _ in backbone.model.named_parameters())
    after = backbone.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)

    tuned = load_adapter(backbone, report.adapter_dir)
    assert not tuned.model.training
    ll = {c: _answer_loglik(tuned.model, tokenizer, _prompt(3), f" {c}") for c in COLOURS}
    assert max(ll, key=ll.get) == "black" and ll["black"] > base_ll["black"] + 2.0
    best = [
        max(COLOURS, key=lambda c: _answer_loglik(tuned.model, tokenizer, _prompt(i), f" {c}"))
        for i in range(8)
    ]
    assert (
        sum(b == c for b, c in zip(best, COLOURS, strict=False)) >= 6
    )  # item-specific, not just "the likeliest colour"


def _crashing_hook(crash_at: int | None):
    """An embed_hook that looks up embeddings normally and raises on its ``crash_at``-th call."""
    calls = {"n": 0}

    def hook(model, input_ids, attention_mask, extras):
        calls["n"] += 1
        if crash_at is not None and calls["n"] >= crash_at:
            raise KeyboardInterrupt("simulated crash")
        return model.get_input_embeddings()(input_ids)

    return hook, calls


def test_resume_matches_uninterrupted_run_and_done_short_circuits(tokenizer, tmp_path: Path) -> None:
    examples = _colour_examples()
    # dropout > 0 and grad_accum > 1: resume must restore the optimizer, the schedule and the RNG
    cfg = LoraTrainConfig(dropout=0.1, lr=5e-3, epochs=2, batch_size=2, grad_accum=2)
    hook, _ = _crashing_hook(None)
    full = train_lora(
        _backbone(tokenizer), examples, cfg, out_dir=tmp_path / "a", embed_hook=hook, progress=False
    )
    assert full.steps == 4 and full.epochs == 2

    backbone = _backbone(tokenizer)
    hook, _ = _crashing_hook(crash_at=5)  # 4 micro-batches per epoch: dies on the 1st batch of epoch 2
    with pytest.raises(KeyboardInterrupt):
        train_lora(backbone, examples, cfg, out_dir=tmp_path / "b", embed_hook=hook, progress=False)
    assert (tmp_path / "b/checkpoints/epoch-1/optimizer.pt").exists()
    assert not (tmp_path / "b/checkpoints/epoch-2").exists() and not (tmp_path / "b/done.json").exists()

    hook, calls = _crashing_hook(None)  # same backbone: train_lora restored it after the crash
    resumed = train_lora(backbone, examples, cfg, out_dir=tmp_path / "b", embed_hook=hook, progress=False)
    assert resumed.resumed_from == 1 and calls["n"] == 4  # only epoch 2 was trained
    assert resumed.steps == full.steps and resumed.losses == pytest.approx(full.losses, abs=1e-6)
    a = load_file(str(full.adapter_dir / "adapter_model.safetensors"))
    b = load_file(str(resumed.adapter_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not (tmp_path / "b/checkpoints/epoch-1/optimizer.pt").exists()  # pruned: epoch-2 is newer

    hook, calls = _crashing_hook(crash_at=1)  # done.json: returns the stored report, no training
    again = train_lora(backbone, examples, cfg, out_dir=tmp_path / "b", embed_hook=hook, progress=False)
    assert calls["n"] == 0 and again == resumed


def test_extra_modules_trained_saved_and_loaded_strictly(tokenizer, tmp_path: Path) -> None:
    emb_id = tokenizer.convert_tokens_to_ids("<emb>")
    torch.manual_seed(1)
    projector = torch.nn.Linear(4, 64)
    initial = projector.weight.detach().clone()
    seen_grad = []

    def hook(model, input_ids, attention_mask, extras):
        embeds = model.get_input_embeddings()(input_ids)
        vecs = torch.stack([torch.as_tensor(e["vec"], dtype=torch.float32) for e in extras])
        injected = projector(vecs)[:, None, :].expand_as(embeds)
        if injected.requires_grad:
            injected.register_hook(lambda g: seen_grad.append(float(g.abs().sum())))
        return torch.where((input_ids == emb_id)[..., None], injected.to(embeds.dtype), embeds)

    examples = [
        TrainExample("Item <emb> colour?", f" {COLOURS[k]}", {"vec": torch.eye(4)[k]}) for k in range(4)
    ]
    cfg = LoraTrainConfig(dropout=0.0, lr=1e-2, epochs=3, batch_size=2)
    report = train_lora(
        _backbone(tokenizer),
        examples,
        cfg,
        out_dir=tmp_path,
        extra_modules={"proj": projector},
        embed_hook=hook,
        progress=False,
    )
    assert seen_grad and max(seen_grad) > 0  # gradients reach the injected embeddings
    assert not torch.allclose(projector.weight.detach(), initial)  # and the projector was updated
    saved = load_file(str(report.adapter_dir / "extra_modules.safetensors"))
    assert set(saved) == {"proj.weight", "proj.bias"}
    assert torch.equal(saved["proj.weight"], projector.weight.detach())

    fresh = torch.nn.Linear(4, 64)
    tuned = load_adapter(_backbone(tokenizer), report.adapter_dir, extra_modules={"proj": fresh})
    assert torch.equal(fresh.weight, saved["proj.weight"]) and not fresh.training
    assert hasattr(tuned.model, "peft_config")
    with pytest.raises(RuntimeError, match="other.weight"):  # a module the file does not hold
        load_adapter(
            _backbone(tokenizer),
            report.adapter_dir,
            extra_modules={"proj": torch.nn.Linear(4, 64), "other": torch.nn.Linear(2, 2)},
        )
    with pytest.raises(RuntimeError, match="proj.bias"):  # a key the module does not have
        load_adapter(
            _backbone(tokenizer),
            report.adapter_dir,
            extra_modules={"proj": torch.nn.Linear(4, 64, bias=False)},
        )


def test_max_steps_caps_training_and_long_answers_are_logged_once(tokenizer, tmp_path: Path, caplog) -> None:
    examples = [
        TrainExample(_prompt(i), " the quick brown fox jumps over the lazy dog" * 4) for i in range(6)
    ]
    cfg = LoraTrainConfig(epochs=3, batch_size=2, max_length=12, max_steps=4)
    with caplog.at_level(logging.WARNING, logger="bench.llm.lora"):
        report = train_lora(_backbone(tokenizer), examples, cfg, out_dir=tmp_path, progress=False)
    assert report.steps == 4 and report.epochs == 2  # 3 steps per epoch: stops inside epoch 2
    cut = [r for r in caplog.records if "longer than max_length" in r.getMessage()]
    assert len(cut) == 1 and "6 answer(s)" in cut[0].getMessage()
    # resume=False starts over instead of returning the stored report
    again = train_lora(
        _backbone(tokenizer),
        examples,
        LoraTrainConfig(batch_size=6),
        out_dir=tmp_path,
        progress=False,
        resume=False,
    )
    assert again.steps == 1 and not (tmp_path / "checkpoints/epoch-2").exists()


def test_checkpointing_and_bf16_paths_restore_the_base_model(tokenizer, tmp_path: Path) -> None:
    # the CUDA defaults (activation checkpointing + bf16 autocast), forced on CPU
    backbone = _backbone(tokenizer)
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    cfg = LoraTrainConfig(
        epochs=1, batch_size=4, gradient_checkpointing="on", bf16="on", modules_to_save=("lm_head",)
    )
    report = train_lora(backbone, _colour_examples(), cfg, out_dir=tmp_path, progress=False)
    assert report.steps == 2 and all(loss == loss for loss in report.losses)  # finite, not nan
    model = backbone.model
    assert not is_checkpointing(model) and not model.training
    assert not any("lora" in n or "modules_to_save" in n for n, _ in model.named_parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    saved = load_file(str(report.adapter_dir / "adapter_model.safetensors"))
    assert any("lm_head" in k for k in saved)  # the trained copy travels with the adapter
