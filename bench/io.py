"""Atomic file and directory writes, JSON and JSON-lines helpers.

Every result file is written to a temporary sibling and renamed into place, so a crash never
leaves a half-written file that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def _default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


#: test-only crash hook: ``RECXBENCH_FAULT=POINT`` or ``POINT#N`` (see :func:`fault_point`)
FAULT_ENV = "RECXBENCH_FAULT"
_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Test-only: ``SIGKILL`` this process the ``N``-th time it reaches point ``name`` when the
    environment says ``RECXBENCH_FAULT=name#N`` (``#N`` defaults to 1).

    The crash tests (``tests/test_reliability_crash.py``) kill a run at every stage boundary and
    inside the long stages, rerun it and require the results of an uninterrupted run. Unset (every
    real run), it costs one dictionary look-up. Never set it outside tests.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, nth = spec.partition("#")
    if point != name:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if _fault_hits[name] == int(nth or 1):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Have ``write(tmp)`` write a temporary sibling of ``path``, flush it to disk, move it over
    ``path``; returns ``path``.

    The one atomic file write of the project (text, JSON, safetensors, anything a writer callback
    produces): a reader or a crashed run sees either the old file or the whole new one, never a
    prefix. The file is world-readable like the rest of a run directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        fault_point("io:replace")  # a crash here leaves only a dot-named .tmp sibling
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write` of UTF-8 ``text`` (newlines written as given)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    return atomic_write(path, write)


@contextmanager
def atomic_dir(target: str | os.PathLike[str], *, replace: bool = False) -> Iterator[Path]:
    """Build a directory in a staging sibling and move it to ``target`` only if the block succeeds.

    By default ``target`` must not exist yet (a finished cache directory is never replaced under a
    reader); if another process finished it first, the staging copy is dropped and theirs is kept.
    With ``replace=True`` an existing ``target`` (an exported baseline) is moved aside, the new one
    moved in, then the old one deleted: at every moment ``target`` is absent or complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = target.with_name(f".{target.name}.old")
    try:
        yield staging
        moved_aside = False
        if replace and target.exists():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            moved_aside = True
        try:
            staging.rename(target)
        except OSError:
            if moved_aside:  # put the previous one back: never lose both
                old.rename(target)
            elif not target.exists():
                raise
            if moved_aside:
                raise
        if moved_aside:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


#: the lock file of a run directory (held by ``flock`` while a run writes the directory)
LOCK_NAME = ".recxbench.lock"


@contextmanager
def run_lock(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``directory/.recxbench.lock`` for the block.

    A second run into the same directory fails at once with a one-line :class:`UserError` instead
    of interleaving its cache writes with the first; the kernel drops the lock when the holder
    exits, even by ``SIGKILL``, so a crashed run never leaves a stale lock behind.
    """
    import fcntl

    from bench.errors import UserError

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fh = open(directory / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise UserError(
                f"another recxbench run (pid {holder}) is writing to {directory}",
                where="--out",
                fix="wait for it to finish, or give this run another --out",
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield directory
    finally:
        fh.close()  # closing releases the lock


def check_run_dir(out: Path, suite_name: str) -> None:
    """``--out`` must be creatable and must not hold another suite's run (its cache and board
    would be mixed with this one's); raises a one-line :class:`UserError` otherwise."""
    from bench.errors import UserError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot create the run directory {out}: {err.strerror or err}",
            where="--out",
            fix="choose a writable directory for --out",
        ) from None
    try:
        other = read_json(out / "manifest.json").get("suite") if (out / "manifest.json").is_file() else None
    except (ValueError, AttributeError, OSError):
        other = None
    name = other.get("name") if isinstance(other, dict) else other
    if name is not None and name != suite_name:
        raise UserError(
            f"{out} holds a run of another suite ({name!r}, not {suite_name!r})",
            where="--out",
            fix="choose another --out (each suite gets its own run directory) or delete that one",
        )


def dumps(obj: Any, *, indent: int | None = None) -> str:
    return json.dumps(obj, default=_default, indent=indent, ensure_ascii=False, allow_nan=False)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, dumps(obj, indent=1) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(dumps(r) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[Any]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
