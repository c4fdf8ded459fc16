"""Interpretable (history, item) features of the surrogate-tree explainer.

Item tables (popularity, year, genres) and the train-split item co-occurrence are built once per
dataset; :meth:`Features.block` turns one history and a set of items into feature rows, named by
``Features.names`` (the explanation phrases them). See :mod:`bench.explainers.surrogate`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from bench.data.dataset import Dataset, Split

#: genre tokens that carry no information (ML-100k's "unknown", MovieLens' "(no genres listed)").
_NO_GENRE = frozenset({"", "unknown", "(no genres listed)", "none", "n/a"})
#: above this many items, retrieval scores a pool of popular and co-occurring items, not all
LARGE_CATALOG = 5000
#: the genre-overlap features use a dense item x genre matrix; cap its width for huge vocabularies.
_MAX_MATCH_GENRES = 256


class Features:
    """Item tables and the train co-occurrence, built once; turns (history, items) into feature rows."""

    def __init__(self, dataset: Dataset, split: Split, *, max_genres: int) -> None:
        n = self.n_items = dataset.n_items
        pop = np.asarray(split.item_popularity, dtype=np.float64)
        self.pop_log = np.log1p(pop)
        # percentile = share of items strictly less popular, so "top (100 - p) %" reads naturally
        self.pop_pct = 100.0 * np.searchsorted(np.sort(pop), pop, side="left") / max(1, n)
        known = [int(y) for y in dataset.years if y is not None]
        self.median_year = float(np.median(known)) if known else 0.0
        self.year = np.array([self.median_year if y is None else float(y) for y in dataset.years])

        counts = Counter(g for gs in dataset.genres for g in set(gs) if g.strip().lower() not in _NO_GENRE)
        vocab = [g for g, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:_MAX_MATCH_GENRES]
        col = {g: j for j, g in enumerate(vocab)}
        self.genres = np.zeros((n, len(vocab)), dtype=np.float32)
        for i, gs in enumerate(dataset.genres):
            self.genres[i, [col[g] for g in gs if g in col]] = 1.0
        self.n_genres = self.genres.sum(axis=1)
        self.onehot = vocab[:max_genres]  # most frequent first, so the one-hot columns are a prefix

        # Item-item cosine on the binary user x item incidence of the train split (sparse: n_items
        # can be thousands); the diagonal is zeroed so an item never "co-occurs" with itself.
        rows = np.concatenate([np.full(len(s), r, dtype=np.int64) for r, s in enumerate(split.train)] or [[]])
        cols = np.concatenate(list(split.train) or [[]]).astype(np.int64)
        inc = sp.csr_matrix((np.ones(len(cols)), (rows.astype(np.int64), cols)), shape=(len(split.train), n))
        inc.data[:] = 1.0  # repeats were summed; a user either has the item or not
        co = (inc.T @ inc).tocsr()
        inv = sp.diags(1.0 / np.sqrt(np.maximum(co.diagonal(), 1.0)))
        co = inv @ co @ inv
        self.cooc = (co - sp.diags(co.diagonal())).tocsr().astype(np.float32)
        self.cooc.eliminate_zeros()

        self.names = ["popularity_log", "popularity_percentile", "year", "year_gap"]
        self.names += [f"genre={g}" for g in self.onehot]
        self.names += ["genre_match", "max_genre_share", "genre_jaccard_mean", "genre_jaccard_max"]
        self.names += ["cooc_mean", "cooc_max", "cooc_last", "history_len"]

    def block(self, history: Sequence[int], items: Sequence[int]) -> tuple[np.ndarray, ...]:
        """Feature rows ``[len(items), n_features]`` plus the co-occurrence and genre Jaccard of each
        item with each history item, ``[len(items), len(history)]`` (explanations cite from them)."""
        h, it = np.asarray(history, dtype=np.int64), np.asarray(items, dtype=np.int64)
        x = np.zeros((len(it), len(self.names)), dtype=np.float32)
        x[:, 0], x[:, 1], x[:, 2] = self.pop_log[it], self.pop_pct[it], self.year[it]
        x[:, 3] = np.abs(self.year[it] - (self.year[h].mean() if len(h) else self.median_year))
        g_i, g_h = self.genres[it], self.genres[h]
        c = 4 + len(self.onehot)
        x[:, 4:c] = g_i[:, : len(self.onehot)]
        share = g_h.mean(axis=0) if len(h) else np.zeros(g_i.shape[1], dtype=np.float32)
        x[:, c] = (g_i @ share) / np.maximum(self.n_genres[it], 1.0)
        if g_i.shape[1]:
            x[:, c + 1] = (g_i * share).max(axis=1)
        inter = g_i @ g_h.T
        union = self.n_genres[it][:, None] + self.n_genres[h][None, :] - inter
        jac = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        cooc = self.cooc[h].toarray()[:, it].T if len(h) else np.zeros((len(it), 0), dtype=np.float32)
        if len(h):
            x[:, c + 2], x[:, c + 3] = jac.mean(axis=1), jac.max(axis=1)
            x[:, c + 4], x[:, c + 5], x[:, c + 6] = cooc.mean(axis=1), cooc.max(axis=1), cooc[:, -1]
        x[:, c + 7] = len(h)
        return x, cooc, jac

    def pool(self, history: Sequence[int], size: int) -> np.ndarray:
        """Unseen items to score for retrieval: all of them, or a popular + co-occurring pool."""
        seen = np.zeros(self.n_items, dtype=bool)
        seen[list(history)] = True
        if self.n_items <= LARGE_CATALOG:
            return np.flatnonzero(~seen)
        pool = np.argsort(-self.pop_log, kind="stable")[:size]
        if len(history):
            affinity = np.asarray(self.cooc[list(history)].sum(axis=0)).ravel()
            pool = np.union1d(pool, np.argsort(-affinity, kind="stable")[:size])
        return np.sort(pool[~seen[pool]])
