"""Built-in dataset formats, one module each, registered in ``registry.datasets`` by name.

``atomic`` (:mod:`.atomic`)
    RecBole atomic files ``<name>.inter`` (+ optional ``.item``, ``.user``).
``ml-100k``, ``ml-1m`` (:mod:`.movielens`)
    The raw MovieLens dumps (``u.data``/``u.item``; ``ratings.dat``/``movies.dat``).
``amazon-2014``, ``amazon-2018`` (:mod:`.amazon2014`, :mod:`.amazon2018`; shared :mod:`.amazon`)
    Amazon review dumps: reviews + ``meta_`` lines, gzipped or not, streamed.
``steam`` (:mod:`.steam`)
    ``steam_reviews`` + ``steam_games`` (Python-literal lines), streamed.

Each module exposes ``load(directory, *, name=None) -> Dataset`` and a
:class:`~bench.data.sources.DatasetSource` record; see :mod:`bench.data.sources` for the protocol
and :mod:`bench.data.tables` (delimited files) or :mod:`bench.data.streaming` (line-per-record dumps,
read in bounded memory) for the shared parsing helpers.
"""
