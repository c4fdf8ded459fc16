"""The one-pass GGUF reader and the vectorised dequantisation behind the fast conversion.

The end-to-end check (the converted SmolLM2 checkpoint equals transformers' direct GGUF load, weight
for weight) is the slow test in ``test_llm_backbone.py``; here the parts are checked against the
``gguf`` package itself on small files written with its writer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf.quants import dequantize as reference  # noqa: E402
from gguf.quants import quantize  # noqa: E402

from bench.llm.gguf_fast import dequantize, read_gguf  # noqa: E402


def _write(path: Path, tensors: dict[str, tuple[np.ndarray, Q]], arch: str = "llama") -> None:
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(2)
    w.add_context_length(128)
    w.add_float32("test.eps", 1e-5)
    w.add_bool("test.flag", True)
    w.add_string("general.name", "tiny test model")
    w.add_token_list(["<unk>", "a", "b", "ab", "é"])
    w.add_token_types([2, 1, 1, 1, 1])
    w.add_array("test.ints", [3, -1, 7])
    for name, (values, qtype) in tensors.items():
        data = values if qtype == Q.F32 else quantize(values, qtype)
        w.add_tensor(name, data, raw_dtype=qtype if qtype != Q.F32 else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture
def small_gguf(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "small.gguf"
    _write(
        path,
        {
            "token_embd.weight": (rng.normal(size=(6, 64)).astype(np.float32), Q.Q4_1),
            "blk.0.attn_q.weight": (rng.normal(size=(8, 32)).astype(np.float32), Q.Q8_0),
            "output_norm.weight": (rng.normal(size=(64,)).astype(np.float32), Q.F32),
            "blk.1.ffn_up.weight": (rng.normal(size=(3, 96)).astype(np.float32) * 40, Q.Q4_1),
        },
    )
    return path


def test_reader_matches_the_gguf_package(small_gguf: Path) -> None:
    ours = read_gguf(small_gguf)
    theirs = gguf.GGUFReader(str(small_gguf))
    md = ours.metadata
    assert md["general.architecture"] == "llama" and md["general.name"] == "tiny test model"
    assert md["llama.block_count"] == 2 and md["test.flag"] is True
    assert md["test.eps"] == pytest.approx(1e-5) and isinstance(md["test.eps"], float)
    assert md["tokenizer.ggml.tokens"] == ["<unk>", "a", "b", "ab", "é"]
    assert md["tokenizer.ggml.token_type"].tolist() == [2, 1, 1, 1, 1]
    assert md["test.ints"].tolist() == [3, -1, 7]
    assert [t.name for t in ours.tensors] == [t.name for t in theirs.tensors]
    for mine, ref in zip(ours.tensors, theirs.tensors, strict=True):
        assert mine.ggml_type == int(ref.tensor_type)
        assert np.array_equal(mine.raw.reshape(-1), np.asarray(ref.data).view(np.uint8).reshape(-1)), (
            mine.name
        )
        got = dequantize(mine)
        want = np.asarray(reference(ref.data, ref.tensor_type), dtype=np.float32).reshape(got.shape)
        assert got.shape == tuple(int(d) for d in reversed(ref.shape)) or got.size == want.size
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), mine.name  # bit for bit


def test_q4_1_dequantisation_is_bit_identical_to_gguf() -> None:
    rng = np.random.default_rng(1)
    for shape, scale in [((4, 32), 1.0), ((17, 256), 1e-3), ((3, 64), 1e4)]:
        values = (rng.normal(size=shape) * scale).astype(np.float32)
        raw = quantize(values, Q.Q4_1)
        want = np.asarray(reference(raw, Q.Q4_1), dtype=np.float32)
        from bench.llm.gguf_fast import GgufTensor

        got = dequantize(GgufTensor("x", shape, int(Q.Q4_1), raw))
        assert np.array_equal(got.view(np.uint32), want.reshape(shape).view(np.uint32))
        assert np.abs(got - values).max() <= np.abs(values).max() / 15 + 1e-6  # and it is Q4_1


def test_not_a_gguf_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"NOPE" + bytes(32))
    with pytest.raises(ValueError, match="not a GGUF"):
        read_gguf(bad)


def test_files_the_fast_path_does_not_know_go_to_transformers(tmp_path: Path) -> None:
    """Another architecture (or a llama file without a BPE tokenizer) is left to transformers'
    loader: ``fast_convert`` writes nothing and says so."""
    pytest.importorskip("transformers")
    from bench.llm.convert import _hf_name, _unpermute, fast_convert

    path = tmp_path / "other.gguf"
    _write(path, {"output_norm.weight": (np.ones(64, dtype=np.float32), Q.F32)}, arch="gpt2")
    out = tmp_path / "out"
    out.mkdir()
    assert fast_convert(path, out) is None and list(out.iterdir()) == []
    llama_without_bpe = tmp_path / "llama.gguf"
    _write(llama_without_bpe, {"output_norm.weight": (np.ones(64, dtype=np.float32), Q.F32)})
    assert fast_convert(llama_without_bpe, out) is None and list(out.iterdir()) == []
    assert _hf_name("blk.12.ffn_down.weight") == "model.layers.12.mlp.down_proj.weight"
    assert _hf_name("token_embd.weight") == "model.embed_tokens.weight"
    assert _hf_name("blk.1.ffn_gate_exps.weight") is None
    # undoing llama.cpp's rotary permutation: rows (h, 2, d/2) -> (h, d/2, 2) order per head
    w = np.arange(8)[:, None] * np.ones((1, 2))
    assert _unpermute(w, 1)[:, 0].tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
