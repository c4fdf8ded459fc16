"""Built-in datasets, fetched once into a local cache.

ML-100k comes from the RecBole 1.2.1 wheel on PyPI, which ships the dataset as RecBole atomic
files (``recbole/dataset_example/ml-100k/ml-100k.{inter,item,user}``). Using ``pip download``
means the fetch goes through the same index, proxy and certificate settings the user already has
for installing packages, and the wheel's pinned sha256 makes the bytes reproducible.

Cache layout: ``$RECXBENCH_HOME`` (default ``~/.cache/recxbench``) /
``datasets/ml-100k/ml-100k.{inter,item,user}`` plus ``SOURCE.json`` (provenance).

Offline machines: put the three files in that directory (or pass ``dataset.path=DIR``), or point
``RECXBENCH_RECBOLE_WHEEL`` at a local copy of the wheel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from bench.errors import DataError, UserError

log = logging.getLogger(__name__)

RECBOLE_REQUIREMENT = "recbole==1.2.1"
#: sha256 of ``recbole-1.2.1-py3-none-any.whl`` as published on PyPI.
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
ML100K_MEMBER_DIR = "recbole/dataset_example/ml-100k/"
ML100K_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
MARKER = "SOURCE.json"
#: Upper bound on one extracted member (the real files are < 2 MB); guards against zip bombs.
_MAX_MEMBER_BYTES = 64 * 1024 * 1024
_PIP_TIMEOUT_S = 600


def cache_root() -> Path:
    """``$RECXBENCH_HOME`` if set, else ``~/.cache/recxbench``."""
    home = os.environ.get("RECXBENCH_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "recxbench"


def ml100k_dir() -> Path:
    """Where the ML-100k atomic files live in the cache."""
    return cache_root() / "datasets" / "ml-100k"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _offline_fix(target: Path) -> str:
    return (
        f"on an offline machine put {', '.join(ML100K_FILES)} in {target} "
        f"(or set RECXBENCH_RECBOLE_WHEEL=/path/to/recbole-1.2.1-py3-none-any.whl), "
        "or pass dataset.path=DIR"
    )


def _download_wheel(dest: Path, target: Path) -> Path:
    """``pip download`` the pinned RecBole wheel into ``dest``; returns the wheel's path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        RECBOLE_REQUIREMENT,
        "-d",
        str(dest),
    ]
    log.info("fetching ml-100k: downloading the %s wheel (about 2 MB) with pip ...", RECBOLE_REQUIREMENT)
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
    raise UserError(f"cannot fetch ml-100k: pip download failed ({reason})", fix=_offline_fix(target))


def _safe_member_name(name: str) -> str | None:
    """The file name to write for a wheel member, or None if the member is not wanted.

    Only direct children of ``recbole/dataset_example/ml-100k/`` ending in .inter/.item/.user are
    wanted. Anything under that prefix that would leave the target directory is refused outright:
    a wheel that tries is not the pinned RecBole wheel.
    """
    if not name.startswith(ML100K_MEMBER_DIR) or not name.endswith((".inter", ".item", ".user")):
        return None
    rest = name[len(ML100K_MEMBER_DIR) :].replace("\\", "/")
    parts = PurePosixPath(rest).parts
    if rest.startswith("/") or ".." in parts or ":" in rest or "\x00" in rest:
        raise DataError(
            f"refusing to extract unsafe path {name!r} from the wheel",
            fix="use the official recbole-1.2.1-py3-none-any.whl from PyPI",
        )
    return parts[0] if len(parts) == 1 else None  # nested members are not the dataset


def _extract_ml100k(wheel: Path, out: Path) -> list[str]:
    """Write the wanted members of ``wheel`` into directory ``out``; returns the file names."""
    written: list[str] = []
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                fname = _safe_member_name(info.filename)
                if fname is None or info.is_dir():
                    continue
                if info.file_size > _MAX_MEMBER_BYTES:
                    raise DataError(
                        f"wheel member {info.filename} is implausibly large ({info.file_size} bytes)",
                        fix="use the official recbole-1.2.1-py3-none-any.whl from PyPI",
                    )
                # Read and write ourselves (never ZipFile.extract): the output path is ours alone.
                with zf.open(info) as src, (out / fname).open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                written.append(fname)
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"{wheel} is not a valid wheel (zip): {exc}", fix="delete it and fetch again"
        ) from None
    missing = [f for f in ML100K_FILES if f not in written]
    if missing:
        raise DataError(
            f"{wheel.name} lacks {', '.join(ML100K_MEMBER_DIR + m for m in missing)}",
            fix="use the official recbole-1.2.1-py3-none-any.whl from PyPI",
        )
    return sorted(written)


def _is_complete(target: Path) -> bool:
    return all((target / f).is_file() for f in ML100K_FILES)


def ensure_ml100k(*, allow_download: bool = True) -> Path:
    """Return the cache directory holding ``ml-100k.{inter,item,user}``, fetching it if needed.

    A directory with the three files is used as is: with ``SOURCE.json`` it came from a verified
    wheel; without it the user put the files there (the offline route), which is logged.
    Otherwise the pinned RecBole wheel is taken from ``$RECXBENCH_RECBOLE_WHEEL`` or downloaded
    with ``pip download``, its sha256 is checked, the three files are extracted into a temporary
    directory next to the target together with ``SOURCE.json``, and the directory is renamed into
    place in one step, so a crash never leaves a half-written dataset behind.

    Raises:
        UserError: the download failed or is not allowed (message says how to proceed offline).
        DataError: the wheel's sha256 differs, or it lacks or misplaces the dataset files.
    """
    target = ml100k_dir()
    if _is_complete(target):
        if not (target / MARKER).is_file():
            log.info("using ml-100k files placed by hand in %s (no %s; not verified)", target, MARKER)
        return target
    if not allow_download:
        raise UserError(
            f"ml-100k is not in the cache ({target}) and downloading is disabled", fix=_offline_fix(target)
        )

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
        tmpdir = Path(tmp)
        local = os.environ.get("RECXBENCH_RECBOLE_WHEEL")
        if local:
            wheel = Path(local).expanduser()
            if not wheel.is_file():
                raise UserError(
                    f"RECXBENCH_RECBOLE_WHEEL={local} is not a file",
                    fix="point it at recbole-1.2.1-py3-none-any.whl, or unset it to download",
                )
            origin = str(wheel)
            log.info("fetching ml-100k: using the local wheel %s", wheel)
        else:
            (tmpdir / "dl").mkdir()
            wheel = _download_wheel(tmpdir / "dl", target)
            origin = f"pip download {RECBOLE_REQUIREMENT}"
        digest = _sha256_file(wheel)
        if digest != RECBOLE_WHEEL_SHA256:
            raise DataError(
                f"sha256 mismatch for {wheel.name}: got {digest}, expected {RECBOLE_WHEEL_SHA256}",
                fix=f"use the official {RECBOLE_REQUIREMENT} wheel from PyPI (the file may be corrupt or a different build)",
            )
        staging = tmpdir / "ml-100k"
        staging.mkdir()
        files = _extract_ml100k(wheel, staging)
        marker = {
            "dataset": "ml-100k",
            "wheel": wheel.name,
            "sha256": digest,
            "origin": origin,
            "members": [ML100K_MEMBER_DIR + f for f in files],
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (staging / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")

        if target.exists():
            # An incomplete directory (e.g. only some files put by hand): keep it aside, never delete it.
            aside = target.with_name(f"ml-100k.incomplete-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}")
            log.warning("moving the incomplete %s aside to %s", target, aside)
            target.rename(aside)
        try:
            staging.rename(target)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not _is_complete(target):
                raise
    log.info("ml-100k ready in %s", target)
    return target


_BUILTIN = {"ml-100k": ensure_ml100k}


def fetch(name: str, *, allow_download: bool = True) -> Path:
    """The local directory of built-in dataset ``name`` (fetched on first use)."""
    if name not in _BUILTIN:
        raise UserError(
            f"unknown built-in dataset {name!r}",
            fix=f"use one of: {', '.join(sorted(_BUILTIN))}; or pass dataset.path=DIR for your own data",
        )
    return _BUILTIN[name](allow_download=allow_download)
