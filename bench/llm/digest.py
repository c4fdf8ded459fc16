"""Content hashes of model files, cached so a load does not re-read hundreds of MB each time.

A cached digest is trusted only while every hashed file keeps the name, size and modification time
it had when hashed (the same test ``make`` and ``rsync`` use); any change recomputes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from bench.hashing import sha256_file
from bench.io import atomic_write_text

log = logging.getLogger(__name__)

#: Tokenizer files that take part in a checkpoint's identity, when present.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
)
#: Name of the digest cache written next to checkpoints that live in our cache.
DIGEST_FILE = ".recxbench-sha256.json"


def checkpoint_files(directory: Path) -> list[Path]:
    """The files that identify an HF checkpoint: its weights plus tokenizer files, sorted by name.

    Weights are the ``*.safetensors`` files, or the ``*.bin`` files for an old-style checkpoint
    with no safetensors at all.
    """
    weights = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("*.bin"))
    tokenizer = [directory / n for n in TOKENIZER_FILES if (directory / n).is_file()]
    return sorted(weights + tokenizer, key=lambda p: p.name)


def _signature(files: list[Path]) -> list[list[str | int]]:
    out: list[list[str | int]] = []
    for f in files:
        st = f.stat()
        out.append([f.name, st.st_size, st.st_mtime_ns])
    return out


def cached_digest(files: list[Path], cache_file: Path) -> str:
    """sha256 identifying ``files``, reusing ``cache_file`` when the files are unchanged.

    One file: the plain sha256 of its bytes (so it matches ``sha256sum``). Several: the sha256 of
    the lines ``name\\0sha256(bytes)\\n`` in the given order, so renaming a file changes the digest.
    A cache that cannot be written (read-only location) is skipped with a debug log.
    """
    signature = _signature(files)
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
        if cached.get("signature") == signature and isinstance(cached.get("sha256"), str):
            return cached["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    if len(files) == 1:
        digest = sha256_file(files[0])
    else:
        h = hashlib.sha256()
        for f in files:
            h.update(f"{f.name}\0{sha256_file(f)}\n".encode())
        digest = h.hexdigest()
    try:
        atomic_write_text(cache_file, json.dumps({"sha256": digest, "signature": signature}, indent=2))
    except OSError as exc:
        log.debug("cannot cache the digest in %s: %s", cache_file, exc)
    return digest


def path_key(path: Path) -> str:
    """A short stable key for a location on disk (for digest caches kept outside that location)."""
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
