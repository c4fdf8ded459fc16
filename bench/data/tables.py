"""Public helpers for writing a dataset loader: read a delimited file, map raw ids, build a Dataset.

A format loader (see :mod:`bench.data.sources`) typically does::

    raw = read_bytes(path)                                   # DataError naming the path if unreadable
    table = fixed_table(path, decode(raw, path), sep="\\t", width=4, layout="user<TAB>item<TAB>...")
    builder = DatasetBuilder()
    builder.add_items(item_table, ids, titles, genres, years)  # optional: fixes the item order
    return builder.build(name=..., inter=table, users_raw=table.tokens(0, "user id"), ...)

Index rules shared by all formats (enforced by :class:`DatasetBuilder`):

* items: every item in the item file gets an index in item-file order; items that only appear in
  the interactions follow in order of first appearance. When an item file is present, an
  interaction naming an item absent from it is an error (it is almost always a truncated or
  mismatched file, and a silent title-less item would later be scored as a hallucination).
* users: order of first appearance in the interactions.
* interactions keep file order; :meth:`Dataset.sequences` relies on it to break timestamp ties.
* ``sha256`` hashes the bytes of the files read, concatenated in the order the loader passes them
  (interactions first), so ``cat x.inter x.item x.user | sha256sum`` reproduces it.

Every malformed input raises a one-line :class:`~bench.errors.DataError` naming ``file:line`` and a fix.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from itertools import compress, repeat
from pathlib import Path

import numpy as np

from bench.data.dataset import Dataset, content_sha256
from bench.errors import DataError

log = logging.getLogger(__name__)

# "Toy Story (1995)" -> ("Toy Story", "1995"); MovieLens puts the year last.
_TITLE_YEAR_RE = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")
_ANY_YEAR_RE = re.compile(r"(\d{4})")

#: ``shape_error(line, fields_found, fields_expected)``: the error for a row of the wrong width.
ShapeError = Callable[[int, int, int], DataError]


def where(path: Path, line: int) -> str:
    """``"path:line"``, the ``where`` of every data error."""
    return f"{path}:{line}"


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path``; a missing or unreadable file is a :class:`DataError`."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"no such file {path}", fix="check the path, or pass dataset.path=DIR pointing at the dataset"
        ) from None
    except OSError as exc:
        raise DataError(
            f"cannot read {path}: {exc.strerror or exc}", fix="check the file's permissions"
        ) from None


def decode(raw: bytes, path: Path, *, encoding: str = "utf-8") -> str:
    """Decode ``raw``; on failure name the line holding the first bad byte. Drops a byte-order mark."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path.name} is not {encoding.upper()} (undecodable byte 0x{raw[exc.start]:02x})",
            where=where(path, line),
            fix=f"re-save {path.name} as {encoding.upper()}",
        ) from None
    # A byte-order mark would otherwise become part of the first header field.
    return text[1:] if text.startswith("\ufeff") else text


class Table:
    """A delimited file split into fields: ``column(k)`` is field ``k`` of every non-blank data row.

    With ``width=None`` the first non-blank line is a header (kept in ``header``) that fixes the
    width; otherwise every row must have ``width`` fields. A row of another width raises
    ``shape_error(line, found, width)``; blank lines are skipped. ``linenos[r]`` is the 1-based
    file line of data row ``r``, for error messages.

    Splitting the whole text at once (instead of one ``str.split`` per line) keeps loading ML-100k
    far below a second even on slow machines; field counts are still checked per line.
    """

    def __init__(
        self, path: Path, text: str, *, sep: str, width: int | None, shape_error: ShapeError
    ) -> None:
        self.path = path
        if "\r\n" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        first = 0
        self.header: list[str] | None = None
        if width is None:  # typed header: the first non-blank line
            while first < len(lines) and not lines[first].strip():
                first += 1
            if first == len(lines):
                raise DataError(
                    f"{path.name} is empty",
                    where=where(path, 1),
                    fix="the first line must be a tab-separated typed header, e.g. "
                    "'user_id:token<TAB>item_id:token<TAB>timestamp:float'",
                )
            self.header = lines[first].split(sep)
            width = len(self.header)
            first += 1
        body = lines[first:]
        counts = np.fromiter(map(str.count, body, repeat(sep)), dtype=np.int64, count=len(body))
        odd = np.flatnonzero(counts != width - 1)
        keep = np.ones(len(body), dtype=bool)
        for k in odd.tolist():
            if body[k].strip():
                raise shape_error(first + k + 1, int(counts[k]) + 1, width)
            keep[k] = False  # blank line: harmless, skipped
        if len(odd):
            body = list(compress(body, keep.tolist()))
        self.linenos: np.ndarray = np.flatnonzero(keep) + first + 1
        self.width = width
        self.n_rows = len(body)
        self._fields = sep.join(body).split(sep) if body else []

    def column(self, k: int) -> list[str]:
        """Field ``k`` of every data row, verbatim."""
        return self._fields[k :: self.width]

    def tokens(self, k: int, what: str) -> list[str]:
        """Column ``k`` stripped; an empty token is an error naming its line."""
        col = list(map(str.strip, self.column(k)))
        if "" in col:
            no = int(self.linenos[col.index("")])
            raise DataError(
                f"empty {what}", where=where(self.path, no), fix=f"fill in the {what} or remove the line"
            )
        return col

    def floats(self, k: int, what: str) -> np.ndarray:
        """Column ``k`` as float64; a non-finite or non-numeric value is an error naming its line."""
        return parse_floats(self.column(k), self.linenos, path=self.path, column=what)


def fixed_table(path: Path, text: str, *, sep: str, width: int, layout: str) -> Table:
    """A headerless :class:`Table` of ``width`` fields; a bad row's error quotes ``layout``."""

    def shape_error(no: int, got: int, want: int) -> DataError:
        return DataError(
            f"expected {want} {sep!r}-separated fields, found {got}",
            where=where(path, no),
            fix=f"keep the {path.name} layout: {layout}",
        )

    return Table(path, text, sep=sep, width=width, shape_error=shape_error)


def parse_floats(values: list[str], linenos: np.ndarray, *, path: Path, column: str) -> np.ndarray:
    """Parse a numeric column; errors name the offending line."""
    try:
        arr = np.array(values, dtype=np.float64)
    except ValueError:
        arr = None  # find the bad line below; numpy does not say which one it was
    if arr is not None and bool(np.isfinite(arr).all()):
        return arr
    for value, no in zip(values, linenos, strict=True):
        try:
            ok = math.isfinite(float(value))
        except ValueError:
            ok = False
        if not ok:
            raise DataError(
                f"{column} {value!r} is not a finite number",
                where=where(path, int(no)),
                fix=f"write the {column} as a number (e.g. 881250949 or 4.0) or remove the line",
            )
    raise AssertionError("unreachable: numpy rejected a column that float() accepts")  # pragma: no cover


def parse_year(value: str) -> int | None:
    """A year from ``"1995"``, ``"1995.0"`` or a date like ``"01-Jan-1995"``; None when absent.

    Years are metadata only, so a bad one is not an error (RecBole's own ml-100k.item has
    ``"unkonwn"`` and ``"V"`` in its year column).
    """
    value = value.strip()
    if not value:
        return None
    try:
        return int(float(value))
    except (ValueError, OverflowError):  # "unknown", "nan", "inf"
        pass
    m = _ANY_YEAR_RE.search(value)
    return int(m.group(1)) if m else None


def split_title_year(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", 1995)``; a title without ``(year)`` keeps None."""
    title = title.strip()
    m = _TITLE_YEAR_RE.match(title)
    if m:
        return m.group(1), int(m.group(2))
    return title, None


class DatasetBuilder:
    """Accumulates item metadata and turns raw id columns into a Dataset with the shared index rules.

    Call :meth:`add_items` (at most once per item file, before :meth:`build`) when the format has
    an item file; then :meth:`build` once with the interaction columns.
    """

    def __init__(self) -> None:
        self.item_index: dict[str, int] = {}
        self.item_ids: list[str] = []
        self.titles: list[str] = []
        self.genres: list[tuple[str, ...]] = []
        self.years: list[int | None] = []
        self.item_file: Path | None = None

    def add_items(
        self,
        table: Table,
        ids: list[str],
        titles: list[str] | None = None,
        genres: list[tuple[str, ...]] | None = None,
        years: list[int | None] | None = None,
    ) -> None:
        """Register the items of ``table`` in order (``ids[r]`` is data row ``r``); missing metadata is empty.

        From now on an interaction naming an item not listed here is an error.
        """
        n = len(ids)
        self.item_file = table.path
        for k, item_id in enumerate(ids):
            if item_id in self.item_index:
                raise DataError(
                    f"duplicate item id {item_id!r}",
                    where=where(table.path, int(table.linenos[k])),
                    fix=f"keep one line per item in {table.path.name}",
                )
            self.item_index[item_id] = len(self.item_index)
        self.item_ids.extend(ids)
        self.titles.extend(titles if titles is not None else [""] * n)
        self.genres.extend(genres if genres is not None else [()] * n)
        self.years.extend(years if years is not None else [None] * n)

    def build(
        self,
        *,
        name: str,
        inter: Table,
        users_raw: list[str],
        items_raw: list[str],
        timestamps: np.ndarray,
        ratings: np.ndarray | None = None,
        blobs: Sequence[bytes],
        source: Path,
        extra: dict | None = None,
    ) -> Dataset:
        """The Dataset: ``users_raw[r]``/``items_raw[r]`` are data row ``r`` of ``inter``.

        ``blobs`` are the raw bytes of the files read (their concatenation is hashed into
        ``sha256``); ``extra`` lands in ``Dataset.extra`` (by convention ``format`` and ``files``).
        """
        if not users_raw:
            raise DataError(
                f"{inter.path.name} has no interactions",
                where=where(inter.path, 1),
                fix="add interaction lines (one per user-item event)",
            )
        # dict.fromkeys keeps first-appearance order and runs at C speed.
        user_index = {u: k for k, u in enumerate(dict.fromkeys(users_raw))}
        if self.item_file is not None:
            unknown = set(items_raw).difference(self.item_index)
            if unknown:
                k = next(k for k, i in enumerate(items_raw) if i in unknown)
                raise DataError(
                    f"unknown item id {items_raw[k]!r} (not in {self.item_file.name})",
                    where=where(inter.path, int(inter.linenos[k])),
                    fix=f"add it to {self.item_file.name} or remove the line",
                )
        else:
            for item_id in dict.fromkeys(items_raw):
                if item_id not in self.item_index:
                    self.item_index[item_id] = len(self.item_index)
                    self.item_ids.append(item_id)
                    self.titles.append("")
                    self.genres.append(())
                    self.years.append(None)
        n = len(users_raw)
        users = np.fromiter(map(user_index.__getitem__, users_raw), dtype=np.int64, count=n)
        items = np.fromiter(map(self.item_index.__getitem__, items_raw), dtype=np.int64, count=n)
        log.debug(
            "loaded %s: %d users, %d items, %d interactions", name, len(user_index), len(self.item_ids), n
        )
        return Dataset(
            name=name,
            user_ids=tuple(user_index),
            item_ids=tuple(self.item_ids),
            titles=tuple(self.titles),
            genres=tuple(self.genres),
            years=tuple(self.years),
            users=users,
            items=items,
            timestamps=timestamps,
            ratings=ratings,
            sha256=content_sha256(*blobs),
            source=str(source),
            extra=extra if extra is not None else {},
        )
