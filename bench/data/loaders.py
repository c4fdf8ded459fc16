"""Read interaction datasets from disk into a :class:`~bench.data.dataset.Dataset`.

Supported formats (``load_dataset(path, format=...)``):

``atomic``
    RecBole atomic files in one directory: ``<name>.inter`` (required), ``<name>.item`` and
    ``<name>.user`` (optional). Tab-separated, UTF-8, first line a typed header such as
    ``user_id:token	item_id:token	rating:float	timestamp:float``. Columns are found by field
    name (the part before the colon).
``ml-100k``
    The raw MovieLens-100k directory (``u.data``, ``u.item``, optional ``u.genre``).
``ml-1m``
    The raw MovieLens-1M directory (``ratings.dat``, optional ``movies.dat``).
``auto``
    Picks one of the above from the files present.

Index rules shared by all formats:

* items: every item in the item file gets an index in item-file order; items that only appear in
  the interactions follow in order of first appearance. When an item file is present, an
  interaction naming an item absent from it is an error (it is almost always a truncated or
  mismatched file, and a silent title-less item would later be scored as a hallucination).
* users: order of first appearance in the interactions.
* interactions keep file order; :meth:`Dataset.sequences` relies on it to break timestamp ties.
* ``sha256`` hashes the bytes of the files read, concatenated in a fixed order (interactions,
  items, then users or genre names), so ``cat x.inter x.item x.user | sha256sum`` reproduces it.

Every malformed input raises :class:`~bench.errors.DataError` naming ``file:line`` and a fix.
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

FORMATS: tuple[str, ...] = ("auto", "atomic", "ml-100k", "ml-1m")

#: The 19 genre names of MovieLens-100k, in flag order (used when ``u.genre`` is absent).
ML100K_GENRES: tuple[str, ...] = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

# Candidate field names in a RecBole .item file, in priority order.
_TITLE_FIELDS = ("movie_title", "title", "item_name")
_YEAR_FIELDS = ("release_year", "year")
_GENRE_FIELDS = ("class", "genre", "genres", "categories")

# "Toy Story (1995)" -> ("Toy Story", "1995"); MovieLens puts the year last.
_TITLE_YEAR_RE = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")
_ANY_YEAR_RE = re.compile(r"(\d{4})")


# --------------------------------------------------------------------------------------------- helpers


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}"


def _read_bytes(path: Path) -> bytes:
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


def _decode(raw: bytes, path: Path, *, encoding: str = "utf-8") -> str:
    """Decode ``raw``; on failure name the line holding the first bad byte."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path.name} is not {encoding.upper()} (undecodable byte 0x{raw[exc.start]:02x})",
            where=_where(path, line),
            fix=f"re-save {path.name} as {encoding.upper()}",
        ) from None
    # A byte-order mark would otherwise become part of the first header field.
    return text[1:] if text.startswith("\ufeff") else text


class _Table:
    """A delimited file split into fields: ``column(k)`` is field ``k`` of every non-blank data row.

    Splitting the whole text at once (instead of one ``str.split`` per line) keeps loading ML-100k
    far below a second even on slow machines; field counts are still checked per line.
    """

    def __init__(
        self,
        path: Path,
        text: str,
        *,
        sep: str,
        width: int | None,
        shape_error: Callable[[int, int, int], DataError],
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
                    where=_where(path, 1),
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
        return self._fields[k :: self.width]

    def tokens(self, k: int, what: str) -> list[str]:
        """Column ``k`` stripped; an empty token is an error naming its line."""
        col = list(map(str.strip, self.column(k)))
        if "" in col:
            no = int(self.linenos[col.index("")])
            raise DataError(
                f"empty {what}", where=_where(self.path, no), fix=f"fill in the {what} or remove the line"
            )
        return col

    def floats(self, k: int, what: str) -> np.ndarray:
        return _parse_floats(self.column(k), self.linenos, path=self.path, column=what)


def _parse_floats(values: list[str], linenos: np.ndarray, *, path: Path, column: str) -> np.ndarray:
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
                where=_where(path, int(no)),
                fix=f"write the {column} as a number (e.g. 881250949 or 4.0) or remove the line",
            )
    raise AssertionError("unreachable: numpy rejected a column that float() accepts")  # pragma: no cover


def _parse_year(value: str) -> int | None:
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


class _Builder:
    """Accumulates item metadata and turns raw id columns into a Dataset with the shared index rules."""

    def __init__(self) -> None:
        self.item_index: dict[str, int] = {}
        self.item_ids: list[str] = []
        self.titles: list[str] = []
        self.genres: list[tuple[str, ...]] = []
        self.years: list[int | None] = []
        self.item_file: Path | None = None

    def add_items(
        self,
        table: _Table,
        ids: list[str],
        titles: list[str],
        genres: list[tuple[str, ...]],
        years: list[int | None],
    ) -> None:
        self.item_file = table.path
        for k, item_id in enumerate(ids):
            if item_id in self.item_index:
                raise DataError(
                    f"duplicate item id {item_id!r}",
                    where=_where(table.path, int(table.linenos[k])),
                    fix=f"keep one line per item in {table.path.name}",
                )
            self.item_index[item_id] = len(self.item_index)
        self.item_ids.extend(ids)
        self.titles.extend(titles)
        self.genres.extend(genres)
        self.years.extend(years)

    def build(
        self,
        *,
        name: str,
        inter: _Table,
        users_raw: list[str],
        items_raw: list[str],
        timestamps: np.ndarray,
        ratings: np.ndarray | None,
        blobs: Sequence[bytes],
        source: Path,
        extra: dict,
    ) -> Dataset:
        if not users_raw:
            raise DataError(
                f"{inter.path.name} has no interactions",
                where=_where(inter.path, 1),
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
                    where=_where(inter.path, int(inter.linenos[k])),
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
            extra=extra,
        )


# --------------------------------------------------------------------------------------------- atomic


def _atomic_table(path: Path, raw: bytes) -> tuple[_Table, dict[str, int]]:
    """Parse a RecBole atomic file; returns the table and ``field name -> column``."""

    def shape_error(no: int, got: int, want: int) -> DataError:
        return DataError(
            f"expected {want} tab-separated fields (as in the header), found {got}",
            where=_where(path, no),
            fix="separate fields with single tabs and keep one record per line",
        )

    table = _Table(path, _decode(raw, path), sep="\t", width=None, shape_error=shape_error)
    columns: dict[str, int] = {}
    for k, field in enumerate(table.header or []):
        # Keep the first occurrence so a duplicated column cannot silently shift meaning.
        columns.setdefault(field.split(":", 1)[0].strip(), k)
    return table, columns


def _require(columns: dict[str, int], column: str, path: Path, *, typ: str) -> int:
    if column not in columns:
        raise DataError(
            f"missing required column '{column}' in the header of {path.name} (found: {', '.join(columns)})",
            where=_where(path, 1),
            fix=f"add a '{column}:{typ}' column to the tab-separated header line",
        )
    return columns[column]


def _find_inter(directory: Path, name: str | None) -> Path:
    if name is not None:
        path = directory / f"{name}.inter"
        if not path.is_file():
            raise DataError(
                f"no {name}.inter in {directory}",
                fix=f"put {name}.inter there, or pass a dataset name matching the .inter file's stem",
            )
        return path
    preferred = directory / f"{directory.name}.inter"
    if preferred.is_file():
        return preferred
    found = sorted(directory.glob("*.inter"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(
            f"no .inter file in {directory}", fix="put <name>.inter (RecBole atomic format) there"
        )
    raise DataError(
        f"several .inter files in {directory}: {', '.join(p.name for p in found)}",
        fix="pass the dataset name (the .inter file's stem) to choose one",
    )


def _load_atomic(directory: Path, name: str | None) -> Dataset:
    inter_path = _find_inter(directory, name)
    stem = inter_path.name[: -len(".inter")]
    item_path = directory / f"{stem}.item"
    user_path = directory / f"{stem}.user"
    builder = _Builder()
    inter_raw = _read_bytes(inter_path)
    blobs = [inter_raw]
    extra: dict = {"format": "atomic", "files": [inter_path.name]}

    # The item file first: it fixes the item order and lets interactions be validated against it.
    if item_path.is_file():
        item_raw = _read_bytes(item_path)
        blobs.append(item_raw)
        extra["files"].append(item_path.name)
        _parse_atomic_items(item_path, item_raw, builder)

    if user_path.is_file():
        # Validated for shape only: user order follows the interactions (see the module docstring).
        user_raw = _read_bytes(user_path)
        blobs.append(user_raw)
        extra["files"].append(user_path.name)
        _, user_columns = _atomic_table(user_path, user_raw)
        _require(user_columns, "user_id", user_path, typ="token")
        extra["user_fields"] = [c for c in user_columns if c != "user_id"]

    table, columns = _atomic_table(inter_path, inter_raw)
    cu = _require(columns, "user_id", inter_path, typ="token")
    ci = _require(columns, "item_id", inter_path, typ="token")
    ct = _require(columns, "timestamp", inter_path, typ="float")
    cr = columns.get("rating")
    return builder.build(
        name=name or stem,
        inter=table,
        users_raw=table.tokens(cu, "user_id"),
        items_raw=table.tokens(ci, "item_id"),
        timestamps=table.floats(ct, "timestamp"),
        ratings=table.floats(cr, "rating") if cr is not None else None,
        blobs=blobs,
        source=directory,
        extra=extra,
    )


def _parse_atomic_items(path: Path, raw: bytes, builder: _Builder) -> None:
    table, columns = _atomic_table(path, raw)
    ci = _require(columns, "item_id", path, typ="token")
    ct = next((columns[f] for f in _TITLE_FIELDS if f in columns), None)
    cy = next((columns[f] for f in _YEAR_FIELDS if f in columns), None)
    cg = next((columns[f] for f in _GENRE_FIELDS if f in columns), None)
    n = table.n_rows
    builder.add_items(
        table,
        table.tokens(ci, "item_id"),
        list(map(str.strip, table.column(ct))) if ct is not None else [""] * n,
        # token_seq: space-separated tokens, kept verbatim (Amazon categories included).
        [tuple(g.split()) for g in table.column(cg)] if cg is not None else [()] * n,
        [_parse_year(y) for y in table.column(cy)] if cy is not None else [None] * n,
    )


# --------------------------------------------------------------------------------------------- MovieLens


def _split_title_year(title: str) -> tuple[str, int | None]:
    title = title.strip()
    m = _TITLE_YEAR_RE.match(title)
    if m:
        return m.group(1), int(m.group(2))
    return title, None


def _fixed_table(path: Path, text: str, *, sep: str, width: int, layout: str) -> _Table:
    def shape_error(no: int, got: int, want: int) -> DataError:
        return DataError(
            f"expected {want} {sep!r}-separated fields, found {got}",
            where=_where(path, no),
            fix=f"keep the {path.name} layout: {layout}",
        )

    return _Table(path, text, sep=sep, width=width, shape_error=shape_error)


def _load_ml100k(directory: Path, name: str | None) -> Dataset:
    data_path = directory / "u.data"
    item_path = directory / "u.item"
    genre_path = directory / "u.genre"
    if not data_path.is_file():
        hint = (
            "this directory holds RecBole atomic files; pass dataset.format=atomic (or auto)"
            if any(directory.glob("*.inter"))
            else "point dataset.path at the unpacked ml-100k directory (it holds u.data and u.item)"
        )
        raise DataError(f"no u.data in {directory}", fix=hint)
    builder = _Builder()
    data_raw = _read_bytes(data_path)
    blobs = [data_raw]
    files = ["u.data"]

    genre_names = list(ML100K_GENRES)
    genre_raw = _read_bytes(genre_path) if genre_path.is_file() else None
    if genre_raw is not None:
        genre_table = _fixed_table(
            genre_path, genre_raw.decode("latin-1"), sep="|", width=2, layout="'Action|1'"
        )
        genre_names = list(map(str.strip, genre_table.column(0)))

    if item_path.is_file():
        item_raw = _read_bytes(item_path)
        blobs.append(item_raw)
        files.append("u.item")
        width = 5 + len(genre_names)
        # u.item is latin-1 ("Misérables, Les"); latin-1 decodes any byte, so there is no error path.
        table = _fixed_table(
            item_path,
            item_raw.decode("latin-1"),
            sep="|",
            width=width,
            layout=f"id|title (year)|release date|video release date|IMDb URL|{len(genre_names)} genre flags",
        )
        titles: list[str] = []
        years: list[int | None] = []
        for title_raw, date in zip(table.column(1), table.column(2), strict=True):
            title, year = _split_title_year(title_raw)
            if year is None:  # a few titles lack "(year)"; the release date usually has it
                year = _parse_year(date)
            titles.append(title)
            years.append(year)
        flag_columns = [table.column(5 + g) for g in range(len(genre_names))]
        genres = [
            tuple(g for g, f in zip(genre_names, flags, strict=True) if f.strip() == "1")
            for flags in zip(*flag_columns, strict=True)
        ] or [()] * table.n_rows
        builder.add_items(table, table.tokens(0, "item id"), titles, genres, years)
    if genre_raw is not None:
        blobs.append(genre_raw)
        files.append("u.genre")

    inter = _fixed_table(
        data_path,
        _decode(data_raw, data_path),
        sep="\t",
        width=4,
        layout="user<TAB>item<TAB>rating<TAB>timestamp",
    )
    return builder.build(
        name=name or "ml-100k",
        inter=inter,
        users_raw=inter.tokens(0, "user id"),
        items_raw=inter.tokens(1, "item id"),
        timestamps=inter.floats(3, "timestamp"),
        ratings=inter.floats(2, "rating"),
        blobs=blobs,
        source=directory,
        extra={"format": "ml-100k", "files": files},
    )


def _load_ml1m(directory: Path, name: str | None) -> Dataset:
    data_path = directory / "ratings.dat"
    item_path = directory / "movies.dat"
    if not data_path.is_file():
        raise DataError(
            f"no ratings.dat in {directory}",
            fix="point dataset.path at the unpacked ml-1m directory (it holds ratings.dat and movies.dat)",
        )
    builder = _Builder()
    data_raw = _read_bytes(data_path)
    blobs = [data_raw]
    files = ["ratings.dat"]
    if item_path.is_file():
        item_raw = _read_bytes(item_path)
        blobs.append(item_raw)
        files.append("movies.dat")
        table = _fixed_table(
            item_path,
            item_raw.decode("latin-1"),
            sep="::",
            width=3,
            layout="MovieID::Title (Year)::Genre|Genre",
        )
        titles, years = [], []
        for title_raw in table.column(1):
            title, year = _split_title_year(title_raw)
            titles.append(title)
            years.append(year)
        genres = [tuple(g.strip() for g in gs.split("|") if g.strip()) for gs in table.column(2)]
        builder.add_items(table, table.tokens(0, "movie id"), titles, genres, years)

    inter = _fixed_table(
        data_path,
        _decode(data_raw, data_path),
        sep="::",
        width=4,
        layout="UserID::MovieID::Rating::Timestamp",
    )
    return builder.build(
        name=name or "ml-1m",
        inter=inter,
        users_raw=inter.tokens(0, "user id"),
        items_raw=inter.tokens(1, "movie id"),
        timestamps=inter.floats(3, "timestamp"),
        ratings=inter.floats(2, "rating"),
        blobs=blobs,
        source=directory,
        extra={"format": "ml-1m", "files": files},
    )


# --------------------------------------------------------------------------------------------- entry


def detect_format(directory: Path) -> str:
    """``"atomic"``, ``"ml-100k"`` or ``"ml-1m"`` from the files present in ``directory``."""
    if any(directory.glob("*.inter")):
        return "atomic"
    if (directory / "u.data").is_file():
        return "ml-100k"
    if (directory / "ratings.dat").is_file():
        return "ml-1m"
    raise DataError(
        f"cannot tell the dataset format of {directory}: no <name>.inter, u.data or ratings.dat",
        fix="point dataset.path at a directory with RecBole atomic files or a raw MovieLens-100k/1M dump",
    )


_LOADERS = {"atomic": _load_atomic, "ml-100k": _load_ml100k, "ml-1m": _load_ml1m}


def load_dataset(path: str | Path, *, format: str = "auto", name: str | None = None) -> Dataset:
    """Load a dataset directory (see the module docstring for formats and index rules).

    Args:
        path: the dataset directory; a file inside it (``x.inter``, ``u.data``, ``ratings.dat``) is
            accepted too and stands for its directory (and, for ``.inter``, the name).
        format: ``"auto"`` (default), ``"atomic"``, ``"ml-100k"`` or ``"ml-1m"``.
        name: dataset name; for ``atomic`` it also selects ``<name>.inter`` when the directory holds
            several. Defaults to the ``.inter`` stem, or ``"ml-100k"`` / ``"ml-1m"``.

    Raises:
        DataError: missing path or files, unknown format, or a malformed line (``where`` = ``file:line``).
    """
    if format not in FORMATS:
        raise DataError(f"unknown dataset format {format!r}", fix=f"use one of: {', '.join(FORMATS)}")
    directory = Path(path).expanduser()
    if directory.is_file():
        if directory.suffix == ".inter" and name is None:
            name = directory.stem
        directory = directory.parent
    if not directory.is_dir():
        raise DataError(
            f"no such directory {directory}",
            fix="pass dataset.path=DIR pointing at an existing dataset directory",
        )
    fmt = detect_format(directory) if format == "auto" else format
    return _LOADERS[fmt](directory, name)
