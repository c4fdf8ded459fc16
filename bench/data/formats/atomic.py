"""RecBole atomic files: read (``load``) and write (:func:`write_atomic`).

One directory holds ``<name>.inter`` (required), ``<name>.item`` and ``<name>.user`` (optional).
Tab-separated, UTF-8, first line a typed header such as
``user_id:token	item_id:token	rating:float	timestamp:float``. Columns are found by field name (the
part before the colon). ``sha256`` hashes the files in the order inter, item, user.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.dataset import Dataset
from bench.data.sources import DatasetSource
from bench.data.tables import DatasetBuilder, Table, decode, parse_year, read_bytes, where
from bench.errors import DataError
from bench.io import atomic_write_text

# Candidate field names in a RecBole .item file, in priority order.
_TITLE_FIELDS = ("movie_title", "title", "item_name")
_YEAR_FIELDS = ("release_year", "year")
_GENRE_FIELDS = ("class", "genre", "genres", "categories")


def atomic_table(path: Path, raw: bytes) -> tuple[Table, dict[str, int]]:
    """Parse a RecBole atomic file; returns the table and ``field name -> column``."""

    def shape_error(no: int, got: int, want: int) -> DataError:
        return DataError(
            f"expected {want} tab-separated fields (as in the header), found {got}",
            where=where(path, no),
            fix="separate fields with single tabs and keep one record per line",
        )

    table = Table(path, decode(raw, path), sep="\t", width=None, shape_error=shape_error)
    columns: dict[str, int] = {}
    for k, field in enumerate(table.header or []):
        # Keep the first occurrence so a duplicated column cannot silently shift meaning.
        columns.setdefault(field.split(":", 1)[0].strip(), k)
    return table, columns


def _require(columns: dict[str, int], column: str, path: Path, *, typ: str) -> int:
    if column not in columns:
        raise DataError(
            f"missing required column '{column}' in the header of {path.name} (found: {', '.join(columns)})",
            where=where(path, 1),
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


def _add_items(path: Path, raw: bytes, builder: DatasetBuilder) -> None:
    table, columns = atomic_table(path, raw)
    ci = _require(columns, "item_id", path, typ="token")
    ct = next((columns[f] for f in _TITLE_FIELDS if f in columns), None)
    cy = next((columns[f] for f in _YEAR_FIELDS if f in columns), None)
    cg = next((columns[f] for f in _GENRE_FIELDS if f in columns), None)
    builder.add_items(
        table,
        table.tokens(ci, "item_id"),
        list(map(str.strip, table.column(ct))) if ct is not None else None,
        # token_seq: space-separated tokens, kept verbatim (Amazon categories included).
        [tuple(g.split()) for g in table.column(cg)] if cg is not None else None,
        [parse_year(y) for y in table.column(cy)] if cy is not None else None,
    )


def load(directory: Path, *, name: str | None = None) -> Dataset:
    """Load ``<name>.inter`` (+ ``.item``/``.user``) from ``directory``.

    ``name`` selects the ``.inter`` file when the directory holds several; by default the one
    named after the directory, else the only one. The dataset is named after the file's stem.
    """
    inter_path = _find_inter(directory, name)
    stem = inter_path.name[: -len(".inter")]
    item_path = directory / f"{stem}.item"
    user_path = directory / f"{stem}.user"
    builder = DatasetBuilder()
    inter_raw = read_bytes(inter_path)
    blobs = [inter_raw]
    extra: dict = {"format": "atomic", "files": [inter_path.name]}

    # The item file first: it fixes the item order and lets interactions be validated against it.
    if item_path.is_file():
        item_raw = read_bytes(item_path)
        blobs.append(item_raw)
        extra["files"].append(item_path.name)
        _add_items(item_path, item_raw, builder)

    if user_path.is_file():
        # Validated for shape only: user order follows the interactions (see bench.data.tables).
        user_raw = read_bytes(user_path)
        blobs.append(user_raw)
        extra["files"].append(user_path.name)
        _, user_columns = atomic_table(user_path, user_raw)
        _require(user_columns, "user_id", user_path, typ="token")
        extra["user_fields"] = [c for c in user_columns if c != "user_id"]

    table, columns = atomic_table(inter_path, inter_raw)
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


def detect(directory: Path) -> bool:
    """Whether ``directory`` holds a ``.inter`` file."""
    return any(directory.glob("*.inter"))


SOURCE = DatasetSource(
    load=load, detect=detect, description="RecBole atomic files: <name>.inter (+ .item, .user)"
)


# --------------------------------------------------------------------------------------------- writer


def _number(x: float) -> str:
    # Integral values without ".0" (as RecBole's files have them); others with repr, which
    # round-trips a float64 exactly.
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**53 else repr(float(x))


def _check_field(value: str, what: str, *, space_ok: bool = True) -> str:
    bad = "\t\n\r" if space_ok else "\t\n\r "
    if any(c in value for c in bad):
        raise DataError(
            f"cannot write {what} {value!r} as an atomic-file field (it contains "
            + ("a tab or newline" if space_ok else "whitespace")
            + ")",
            fix="remove tabs and newlines from titles and ids, and spaces from genre names",
        )
    return value


def write_atomic(ds: Dataset, directory: Path | str) -> Path:
    """Write ``ds`` as RecBole atomic files ``<name>.inter`` and ``<name>.item`` in ``directory``.

    The inter file has ``user_id``, ``item_id``, ``rating`` (when the dataset has ratings) and
    ``timestamp`` in the dataset's interaction order; the item file lists items in index order
    with ``movie_title``, ``release_year`` and ``class`` (genres joined by spaces). Loading the
    result with :func:`load` gives back the same ids, arrays, titles, genres and years, provided
    users first appear in index order (true for every loaded or generated dataset). Each file is
    written atomically (:func:`bench.io.atomic_write_text`).

    Returns:
        The directory.

    Raises:
        DataError: a title or id holds a tab or newline, or a genre holds whitespace (the
            atomic format cannot represent them).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    item_ids = [_check_field(i, "item id", space_ok=False) for i in ds.item_ids]
    user_ids = [_check_field(u, "user id", space_ok=False) for u in ds.user_ids]

    item_lines = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    for i, item_id in enumerate(item_ids):
        genres = " ".join(_check_field(g, "genre", space_ok=False) for g in ds.genres[i])
        year = "" if ds.years[i] is None else str(ds.years[i])
        item_lines.append(f"{item_id}\t{_check_field(ds.titles[i].strip(), 'title')}\t{year}\t{genres}")

    has_ratings = ds.ratings is not None
    header = (
        ["user_id:token", "item_id:token"] + (["rating:float"] if has_ratings else []) + ["timestamp:float"]
    )
    inter_lines = ["\t".join(header)]
    users = ds.users.tolist()
    items = ds.items.tolist()
    stamps = ds.timestamps.tolist()
    rates = ds.ratings.tolist() if ds.ratings is not None else None
    for k in range(len(users)):
        fields = [user_ids[users[k]], item_ids[items[k]]]
        if rates is not None:
            fields.append(_number(rates[k]))
        fields.append(_number(stamps[k]))
        inter_lines.append("\t".join(fields))

    atomic_write_text(directory / f"{ds.name}.item", "\n".join(item_lines) + "\n")
    atomic_write_text(directory / f"{ds.name}.inter", "\n".join(inter_lines) + "\n")
    return directory
