"""The raw MovieLens dumps: ``ml-100k`` (``u.data``, ``u.item``, optional ``u.genre``) and ``ml-1m``
(``ratings.dat``, optional ``movies.dat``).

``ml-100k`` is also the name of the built-in dataset (RecBole's atomic copy, fetched from PyPI by
:mod:`bench.data.movielens_download`), so its record has both ``load`` and ``make``.
``sha256`` hashes the files in the order ratings, items, then genre names.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.dataset import Dataset
from bench.data.sources import DatasetSource
from bench.data.tables import DatasetBuilder, decode, fixed_table, parse_year, read_bytes, split_title_year
from bench.errors import DataError

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


def load_ml100k(directory: Path, *, name: str | None = None) -> Dataset:
    """Load the raw MovieLens-100k directory (``u.data``, optional ``u.item`` and ``u.genre``)."""
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
    builder = DatasetBuilder()
    data_raw = read_bytes(data_path)
    blobs = [data_raw]
    files = ["u.data"]

    genre_names = list(ML100K_GENRES)
    genre_raw = read_bytes(genre_path) if genre_path.is_file() else None
    if genre_raw is not None:
        genre_table = fixed_table(
            genre_path, genre_raw.decode("latin-1"), sep="|", width=2, layout="'Action|1'"
        )
        genre_names = list(map(str.strip, genre_table.column(0)))

    if item_path.is_file():
        item_raw = read_bytes(item_path)
        blobs.append(item_raw)
        files.append("u.item")
        width = 5 + len(genre_names)
        # u.item is latin-1 ("Misérables, Les"); latin-1 decodes any byte, so there is no error path.
        table = fixed_table(
            item_path,
            item_raw.decode("latin-1"),
            sep="|",
            width=width,
            layout=f"id|title (year)|release date|video release date|IMDb URL|{len(genre_names)} genre flags",
        )
        titles: list[str] = []
        years: list[int | None] = []
        for title_raw, date in zip(table.column(1), table.column(2), strict=True):
            title, year = split_title_year(title_raw)
            if year is None:  # a few titles lack "(year)"; the release date usually has it
                year = parse_year(date)
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

    inter = fixed_table(
        data_path,
        decode(data_raw, data_path),
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


def load_ml1m(directory: Path, *, name: str | None = None) -> Dataset:
    """Load the raw MovieLens-1M directory (``ratings.dat``, optional ``movies.dat``)."""
    data_path = directory / "ratings.dat"
    item_path = directory / "movies.dat"
    if not data_path.is_file():
        raise DataError(
            f"no ratings.dat in {directory}",
            fix="point dataset.path at the unpacked ml-1m directory (it holds ratings.dat and movies.dat)",
        )
    builder = DatasetBuilder()
    data_raw = read_bytes(data_path)
    blobs = [data_raw]
    files = ["ratings.dat"]
    if item_path.is_file():
        item_raw = read_bytes(item_path)
        blobs.append(item_raw)
        files.append("movies.dat")
        table = fixed_table(
            item_path,
            item_raw.decode("latin-1"),
            sep="::",
            width=3,
            layout="MovieID::Title (Year)::Genre|Genre",
        )
        titles, years = [], []
        for title_raw in table.column(1):
            title, year = split_title_year(title_raw)
            titles.append(title)
            years.append(year)
        genres = [tuple(g.strip() for g in gs.split("|") if g.strip()) for gs in table.column(2)]
        builder.add_items(table, table.tokens(0, "movie id"), titles, genres, years)

    inter = fixed_table(
        data_path,
        decode(data_raw, data_path),
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


def builtin_ml100k(**_params: object) -> Dataset:
    """The built-in ``ml-100k`` dataset: RecBole's atomic files, fetched and cached on first use.

    Takes no parameters; ``dataset.params`` is ignored (as it always was), so a suite switched from
    a generated dataset to ml-100k with ``--set dataset.name=ml-100k`` keeps working.
    """
    from bench.data.formats import atomic
    from bench.data.movielens_download import ensure_ml100k

    return atomic.load(ensure_ml100k(), name="ml-100k")


ML100K = DatasetSource(
    load=load_ml100k,
    make=builtin_ml100k,
    detect=lambda d: (d / "u.data").is_file(),
    description="MovieLens-100k (RecBole 1.2.1 atomic files, fetched from PyPI on first use)",
)


def builtin_ml1m() -> Dataset:
    """``ml-1m`` as a name: the raw files in the local cache (``recxbench data fetch ml-1m``); never downloads."""
    from bench.data.downloads import load_cached

    return load_cached("ml-1m")


ML1M = DatasetSource(
    load=load_ml1m,
    make=builtin_ml1m,
    detect=lambda d: (d / "ratings.dat").is_file(),
    description="raw MovieLens-1M directory (ratings.dat, movies.dat); as a name: the cache of "
    "`recxbench data fetch ml-1m`",
)
