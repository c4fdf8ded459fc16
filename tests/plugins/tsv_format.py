"""Example plugin: a new dataset format in one file.

A directory holding ``interactions.tsv``, no header, one event a line:
``user<TAB>item<TAB>time<TAB>title`` (an item's first title wins). Importing this module registers
the format ``tsv``; use it with
``recxbench run tiny --plugin plugins.tsv_format --set dataset.path=DIR --set dataset.format=tsv``.
"""

from __future__ import annotations

from pathlib import Path

from bench import registry
from bench.data.dataset import Dataset
from bench.data.sources import DatasetSource
from bench.data.tables import DatasetBuilder, decode, fixed_table, read_bytes

FILE = "interactions.tsv"


def load(directory: Path, *, name: str | None = None) -> Dataset:
    """Read ``directory/interactions.tsv`` (bad lines raise a DataError naming ``file:line``)."""
    path = directory / FILE
    raw = read_bytes(path)
    table = fixed_table(path, decode(raw, path), sep="\t", width=4, layout="user<TAB>item<TAB>time<TAB>title")
    items = table.tokens(1, "item")
    titles: dict[str, str] = {}
    for item, title in zip(items, table.column(3), strict=True):
        titles.setdefault(item, title.strip())
    builder = DatasetBuilder()
    builder.add_items(table, list(titles), list(titles.values()))
    return builder.build(
        name=name or directory.name,
        inter=table,
        users_raw=table.tokens(0, "user"),
        items_raw=items,
        timestamps=table.floats(2, "time"),
        blobs=[raw],
        source=directory,
        extra={"format": "tsv", "files": [FILE]},
    )


registry.datasets.register(
    "tsv",
    DatasetSource(
        load=load,
        detect=lambda d: (d / FILE).is_file(),
        description="user<TAB>item<TAB>time<TAB>title lines in interactions.tsv",
    ),
)
