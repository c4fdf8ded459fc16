"""Streaming helpers for line-per-record dumps (Amazon reviews, Steam): read huge files in bounded memory.

The delimited formats (:mod:`bench.data.tables`) read a whole file at once, which is the fast way
for MovieLens-sized files. Review dumps are different: a 10 GB file of one JSON object (or one
Python literal) per line must never sit in memory. The helpers here

* open a file gzipped or not, deciding by its **magic bytes** (``1f 8b``), not its name; a file
  named ``*.gz`` that is not gzip, or a gzip stream that is truncated or corrupt, is a one-line
  :class:`~bench.errors.DataError`;
* yield ``(line number, text)`` one line at a time, hashing the raw bytes on the way (so
  ``Dataset.sha256`` is the sha256 of the files' bytes as stored, compressed or not, without a
  second pass);
* parse a line as strict JSON or as a Python literal (``ast.literal_eval``, never ``eval``), each
  failure a :class:`DataError` naming ``file:line`` and a fix;
* build the id maps and the interaction columns incrementally (:class:`StreamBuilder`): memory
  grows with the number of distinct users/items and interactions kept (32 bytes an
  interaction), never with the size of the text.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import logging
import zlib
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.dataset import Dataset
from bench.errors import DataError

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
#: ``json.loads`` without its per-call argument checks (one decoder for every line)
_decode = json.JSONDecoder().decode
#: read buffer of the raw file (bytes)
_BUFFER = 1 << 20


class _HashingReader(io.RawIOBase):
    """A raw reader that feeds every byte it reads to ``hasher`` (the file's sha256 in one pass)."""

    def __init__(self, raw: io.BufferedIOBase, hasher: Any) -> None:
        self._raw = raw
        self._hasher = hasher

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)
        if n:
            self._hasher.update(memoryview(buffer)[:n])
        return n or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


def is_gzip(path: Path) -> bool:
    """Whether ``path`` starts with the gzip magic bytes."""
    with path.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


def iter_lines(path: Path, hasher: Any | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of every non-blank line of ``path``, gzipped or not, line ending removed.

    ``hasher`` (e.g. ``hashlib.sha256()``) receives every raw byte of the file as it is read; the
    whole file is read when the iterator is exhausted.

    Raises:
        DataError: missing or unreadable file; a ``.gz`` name without gzip content; a corrupt or
            truncated gzip stream; a line that is not UTF-8.
    """
    hasher = hasher if hasher is not None else hashlib.sha256()
    try:
        raw = path.open("rb", buffering=0)
    except FileNotFoundError:
        raise DataError(f"no such file {path}", fix="check the path, or pass dataset.path=DIR") from None
    except OSError as exc:
        raise DataError(
            f"cannot read {path}: {exc.strerror or exc}", fix="check the file's permissions"
        ) from None
    buffered = io.BufferedReader(_HashingReader(raw, hasher), _BUFFER)  # type: ignore[arg-type]
    compressed = buffered.peek(2)[:2] == GZIP_MAGIC
    if not compressed and path.name.endswith(".gz"):
        head = buffered.peek(16)[:16]
        buffered.close()
        raise DataError(
            f"{path.name} is named .gz but is not gzip (it starts with {head!r})",
            where=str(path),
            fix="download it again (a failed download often saves an error page), "
            "or rename it without .gz if it is the plain, uncompressed file",
        )
    stream: Any = gzip.GzipFile(fileobj=buffered, mode="rb") if compressed else buffered
    no = 0
    try:
        with stream:
            for no, line in enumerate(stream, 1):  # noqa: B007 - ``no`` is read in the except clauses
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"{path.name} is not UTF-8 (undecodable byte 0x{line[exc.start]:02x})",
                        where=f"{path}:{no}",
                        fix=f"re-save {path.name} as UTF-8 or remove the line",
                    ) from None
                text = text.rstrip("\r\n")
                if no == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                if not no % 1_000_000:
                    log.info("%s: %d lines read", path.name, no)
                if text.strip():
                    yield no, text
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(
            f"{path.name} is not a valid gzip file after line {no} ({str(exc).rstrip('.')})",
            where=f"{path}:{no + 1}",
            fix="the download is truncated or corrupt: fetch it again (or pass the uncompressed file)",
        ) from None
    finally:
        buffered.close()


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


def parse_json(text: str, path: Path, no: int, *, fix: str) -> dict[str, Any]:
    """The JSON object on line ``no``; anything else is a :class:`DataError` with ``fix``."""
    try:
        obj = _decode(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"line is not valid JSON ({exc.msg} at column {exc.colno})", where=f"{path}:{no}", fix=fix
        ) from None
    if not isinstance(obj, dict):
        raise DataError(f"line is a JSON {type(obj).__name__}, not an object", where=f"{path}:{no}", fix=fix)
    return obj


def parse_literal(text: str, path: Path, no: int, *, fix: str) -> dict[str, Any]:
    """The Python dict literal on line ``no`` (``ast.literal_eval``: literals only, no code runs)."""
    try:
        obj = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
        what = getattr(exc, "msg", None) or type(exc).__name__
        raise DataError(
            f"line is not a Python dict literal ({_one_line(what)})", where=f"{path}:{no}", fix=fix
        ) from None
    if not isinstance(obj, dict):
        raise DataError(f"line is a {type(obj).__name__} literal, not a dict", where=f"{path}:{no}", fix=fix)
    return obj


def parse_json_or_literal(text: str, path: Path, no: int, *, fix: str) -> dict[str, Any]:
    """Strict JSON first (the common case, and fast); a Python dict literal otherwise."""
    try:
        obj = _decode(text)
    except json.JSONDecodeError:
        return parse_literal(text, path, no, fix=fix)
    if not isinstance(obj, dict):
        raise DataError(f"line is a JSON {type(obj).__name__}, not an object", where=f"{path}:{no}", fix=fix)
    return obj


def field(record: dict[str, Any], key: str, path: Path, no: int, *, fix: str) -> str:
    """``record[key]`` as a non-empty stripped string (numbers are accepted and written as text)."""
    value = record.get(key)
    if type(value) is str and value and not value[0].isspace() and not value[-1].isspace():
        return value  # the common case, without the checks below
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        found = "missing" if value is None else f"{value!r} is not a non-empty string"
        raise DataError(f"{key!r} {found}", where=f"{path}:{no}", fix=fix)
    return str(value).strip()


def number(record: dict[str, Any], key: str, path: Path, no: int, *, fix: str) -> float:
    """``record[key]`` as a finite float (a numeric string is accepted)."""
    value = record.get(key)
    if type(value) is int or type(value) is float:
        x = float(value)
        if x - x == 0.0:  # finite (inf - inf and nan - nan are nan)
            return x
    try:
        x = float(value) if not isinstance(value, bool) and value is not None else float("nan")
    except (TypeError, ValueError):
        x = float("nan")
    if not np.isfinite(x):
        found = "missing" if value is None else f"{value!r} is not a number"
        raise DataError(f"{key!r} {found}", where=f"{path}:{no}", fix=fix)
    return x


class StreamBuilder:
    """Interaction columns and id maps built one record at a time (the index rules of
    :mod:`bench.data.tables`: users and items in order of first appearance, interactions in file order)."""

    def __init__(self, *, ratings: bool) -> None:
        self.user_index: dict[str, int] = {}
        self.item_index: dict[str, int] = {}
        self._users = array("q")
        self._items = array("q")
        self._times = array("d")
        self._ratings = array("d") if ratings else None

    def add(self, user: str, item: str, time: float, rating: float | None = None) -> None:
        u = self.user_index.setdefault(user, len(self.user_index))
        i = self.item_index.setdefault(item, len(self.item_index))
        self._users.append(u)
        self._items.append(i)
        self._times.append(time)
        if self._ratings is not None:
            self._ratings.append(float("nan") if rating is None else rating)

    def __len__(self) -> int:
        return len(self._users)

    def build(
        self,
        *,
        name: str,
        meta: dict[str, tuple[str, tuple[str, ...], int | None]],
        sha256: str,
        source: Path,
        extra: dict,
        empty: Callable[[], DataError],
    ) -> Dataset:
        """The Dataset; ``meta`` maps an item id to ``(title, genres, year)`` (absent: no metadata)."""
        if not self._users:
            raise empty()
        items = tuple(self.item_index)
        none: tuple[str, tuple[str, ...], int | None] = ("", (), None)
        rows = [meta.get(i, none) for i in items]
        # frombuffer shares the arrays' memory (no copy): the numpy arrays keep them alive
        ratings = np.frombuffer(self._ratings, dtype=np.float64) if self._ratings is not None else None
        return Dataset(
            name=name,
            user_ids=tuple(self.user_index),
            item_ids=items,
            titles=tuple(r[0] for r in rows),
            genres=tuple(r[1] for r in rows),
            years=tuple(r[2] for r in rows),
            users=np.frombuffer(self._users, dtype=np.int64),
            items=np.frombuffer(self._items, dtype=np.int64),
            timestamps=np.frombuffer(self._times, dtype=np.float64),
            ratings=ratings,
            sha256=sha256,
            source=str(source),
            extra=extra,
        )


def find_one(directory: Path, patterns: tuple[str, ...], *, exclude: tuple[str, ...] = ()) -> list[Path]:
    """Files of ``directory`` matching any of ``patterns`` (glob), minus names starting with ``exclude``."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        for p in sorted(directory.glob(pattern)):
            if p.is_file() and not p.name.startswith(exclude):
                found[p] = None
    return list(found)
