"""Built-in dataset formats, one module each, registered in ``registry.datasets`` by name.

``atomic`` (:mod:`.atomic`)
    RecBole atomic files ``<name>.inter`` (+ optional ``.item``, ``.user``).
``ml-100k``, ``ml-1m`` (:mod:`.movielens`)
    The raw MovieLens dumps (``u.data``/``u.item``; ``ratings.dat``/``movies.dat``).

Each module exposes ``load(directory, *, name=None) -> Dataset`` and a
:class:`~bench.data.sources.DatasetSource` record; see :mod:`bench.data.sources` for the protocol
and :mod:`bench.data.tables` for the shared parsing helpers.
"""
