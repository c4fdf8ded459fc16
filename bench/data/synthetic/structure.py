"""The hidden structure of the generated datasets: item genres or clusters, chains, user sequences.

Every random draw goes through ``random.Random.random()`` alone (see :func:`randint`), in a fixed
order, so the data depends only on the seed. Changing a knob below changes the data: bump
``GENERATOR_VERSION`` (or ``BALANCED_VERSION``) with it.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate

GENRES: tuple[str, ...] = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi")
GENERATOR_VERSION = 1

# Generator knobs; changing any of them changes the data, so bump GENERATOR_VERSION with them.
_CHAIN_LENGTHS = (1, 2, 3, 4)
_CHAIN_LENGTH_WEIGHTS = (0.25, 0.3, 0.25, 0.2)
_P_SECOND_GENRE = 0.35
_P_TWO_PREFERENCES = 0.4
_P_FOLLOW_CHAIN = 0.7
_P_PREFERRED = 0.85
_SEQUEL_DECAY = 0.3  # weight multiplier per chain position: users start chains at their head
MIN_LEN, MAX_LEN = 12, 40

# Knobs of the balanced variant (``balanced_items=True``); bump BALANCED_VERSION with them.
BALANCED_VERSION = 1
_BALANCED_P_FOLLOW = 0.5  # after an item of a liked cluster: its successor in the cluster's cycle
_BALANCED_P_PREFERRED = 0.9  # otherwise: an unseen item of a random liked cluster (else any item)

#: ``pick(seen)``: an unseen item from some pool, or None when the pool has none left.
Pick = Callable[[set[int]], "int | None"]


def randint(r: random.Random, lo: int, hi: int) -> int:
    """Uniform integer in ``[lo, hi]`` from ``r.random()`` alone.

    Only ``random()`` is used so that the data cannot change with CPython's implementation of
    ``randint``/``choices``/``shuffle``; ``random()`` itself is specified (Mersenne Twister).
    """
    return lo + min(int(r.random() * (hi - lo + 1)), hi - lo)


def _weighted(r: random.Random, cum: list[float]) -> int:
    return min(bisect_right(cum, r.random() * cum[-1]), len(cum) - 1)


def shuffled(r: random.Random, n: int) -> list[int]:
    """A permutation of ``range(n)`` (Fisher-Yates on :func:`randint`)."""
    out = list(range(n))
    for k in range(n - 1, 0, -1):  # Fisher-Yates
        j = randint(r, 0, k)
        out[k], out[j] = out[j], out[k]
    return out


def _walk(
    r: random.Random,
    length: int,
    chain_next: list[int],
    *,
    may_follow: Callable[[int], bool],
    p_follow: float,
    p_preferred: float,
    preferred: Pick,
    anything: Pick,
) -> list[int]:
    """One user's sequence of ``length`` distinct items, the loop both structures share.

    Each step: with ``p_follow`` the successor of the previous item (when it has an unseen one and
    ``may_follow(previous)``); otherwise with ``p_preferred`` a ``preferred`` pick; otherwise (or
    when that found nothing) ``anything``. A draw is consumed only when its condition is reached.
    """
    seen: set[int] = set()
    seq: list[int] = []
    cur = -1
    while len(seq) < length:
        nxt: int | None = None
        if (
            cur >= 0
            and may_follow(cur)
            and chain_next[cur] >= 0
            and chain_next[cur] not in seen
            and r.random() < p_follow
        ):
            nxt = chain_next[cur]
        if nxt is None and r.random() < p_preferred:
            nxt = preferred(seen)
        if nxt is None:
            nxt = anything(seen)
        assert nxt is not None  # length <= n_items, so an unseen item always exists
        seen.add(nxt)
        seq.append(nxt)
        cur = nxt
    return seq


def structure(r: random.Random, n_users: int, n_items: int) -> dict:
    """Latent genres, chains and user sequences, in generation order (before the permutation)."""
    n_genres = len(GENRES)
    primary: list[int] = []
    chain_pos: list[int] = []
    chain_next: list[int] = []
    chain_len_cum = list(accumulate(_CHAIN_LENGTH_WEIGHTS))
    # Genre blocks of near-equal size; chains never cross a block.
    for g in range(n_genres):
        size = n_items // n_genres + (1 if g < n_items % n_genres else 0)
        left = size
        while left > 0:
            length = min(_CHAIN_LENGTHS[_weighted(r, chain_len_cum)], left)
            start = len(primary)
            for p in range(length):
                primary.append(g)
                chain_pos.append(p)
                chain_next.append(start + p + 1 if p + 1 < length else -1)
            left -= length
    genres: list[tuple[int, ...]] = []
    for g in primary:
        if r.random() < _P_SECOND_GENRE:
            other = (g + randint(r, 1, n_genres - 1)) % n_genres
            genres.append((g, other))
        else:
            genres.append((g,))
    popularity = [math.exp(r.gauss(0.0, 1.0)) * _SEQUEL_DECAY**p for p in chain_pos]
    by_genre = [[i for i in range(n_items) if g in genres[i]] for g in range(n_genres)]
    genre_cum = [list(accumulate(popularity[i] for i in items)) for items in by_genre]
    all_cum = list(accumulate(popularity))

    def draw(pool: list[int] | None, cum: list[float], seen: set[int]) -> int | None:
        for _ in range(20):  # rejection sampling: cheap while most items are unseen
            k = _weighted(r, cum)
            i = pool[k] if pool is not None else k
            if i not in seen:
                return i
        candidates = [i for i in (pool if pool is not None else range(n_items)) if i not in seen]
        return candidates[randint(r, 0, len(candidates) - 1)] if candidates else None

    user_genres: list[tuple[int, ...]] = []
    sequences: list[list[int]] = []
    for _ in range(n_users):
        first = randint(r, 0, n_genres - 1)
        prefs = (first,)
        if r.random() < _P_TWO_PREFERENCES:
            prefs = (first, (first + randint(r, 1, n_genres - 1)) % n_genres)
        user_genres.append(prefs)
        length = min(randint(r, MIN_LEN, MAX_LEN), n_items)

        def preferred(seen: set[int], prefs: tuple[int, ...] = prefs) -> int | None:
            g = prefs[randint(r, 0, len(prefs) - 1)]
            return draw(by_genre[g], genre_cum[g], seen) if by_genre[g] else None

        sequences.append(
            _walk(
                r,
                length,
                chain_next,
                may_follow=lambda _cur: True,
                p_follow=_P_FOLLOW_CHAIN,
                p_preferred=_P_PREFERRED,
                preferred=preferred,
                anything=lambda seen: draw(None, all_cum, seen),
            )
        )
    return {
        "primary": primary,
        "chain_pos": chain_pos,
        "chain_next": chain_next,
        "genres": genres,
        "user_genres": user_genres,
        "sequences": sequences,
    }


def structure_balanced(r: random.Random, n_users: int, n_items: int, n_clusters: int) -> dict:
    """The balanced variant's clusters, cycles, tastes and sequences (see :mod:`bench.data.synthetic`).

    Returns the keys of :func:`structure` (``primary``/``genres`` hold the cluster, ``chain_pos``
    is 0 everywhere: a cycle has no head) plus ``user_genres`` = each user's liked clusters.
    """
    cluster = [k % n_clusters for k in range(n_items)]
    members = [[k for k in range(n_items) if cluster[k] == c] for c in range(n_clusters)]
    chain_next = [-1] * n_items
    for items in members:
        cycle = [items[j] for j in shuffled(r, len(items))]
        for j, k in enumerate(cycle):
            chain_next[k] = cycle[(j + 1) % len(cycle)] if len(cycle) > 1 else -1
    half = n_clusters // 2
    tastes: list[tuple[int, ...]] = []
    for u in range(n_users):
        if u % 2 == 0:
            liked = tuple(sorted(shuffled(r, n_clusters)[:half]))
        else:  # the complement of the previous user's: every cluster liked by exactly half
            liked = tuple(c for c in range(n_clusters) if c not in tastes[-1])
        tastes.append(liked)

    def pick(pool: list[int], seen: set[int]) -> int | None:
        unseen = [i for i in pool if i not in seen]
        return unseen[randint(r, 0, len(unseen) - 1)] if unseen else None

    sequences: list[list[int]] = []
    everything = list(range(n_items))
    for liked in tastes:
        length = min(randint(r, MIN_LEN, MAX_LEN), n_items)
        sequences.append(
            _walk(
                r,
                length,
                chain_next,
                may_follow=lambda cur, liked=liked: cluster[cur] in liked,
                p_follow=_BALANCED_P_FOLLOW,
                p_preferred=_BALANCED_P_PREFERRED,
                preferred=lambda seen, liked=liked: pick(members[liked[randint(r, 0, len(liked) - 1)]], seen),
                anything=lambda seen: pick(everything, seen),
            )
        )
    return {
        "primary": cluster,
        "chain_pos": [0] * n_items,
        "chain_next": chain_next,
        "genres": [(c,) for c in cluster],
        "user_genres": tastes,
        "sequences": sequences,
    }
