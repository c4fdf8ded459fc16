"""Content hashes: the cache keys and fingerprints every stage uses."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(obj: Any) -> str:
    """``sha256`` of ``obj`` as canonical JSON (sorted keys; non-JSON values via ``str``).

    Equal for equal content across processes and machines, so it keys on-disk caches.
    """
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
