"""Content hashes: the cache keys and fingerprints every stage uses."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def stable_hash(obj: Any) -> str:
    """``sha256`` of ``obj`` as canonical JSON (sorted keys; non-JSON values via ``str``).

    Equal for equal content across processes and machines, so it keys on-disk caches.
    """
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (checksums of wheels and checkpoints)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
