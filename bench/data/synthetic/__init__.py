"""A small generated dataset with known structure, and a writer for RecBole atomic files.

:func:`make_tiny` builds, in a few milliseconds and deterministically from its seed, a dataset that
a sequential recommender learns from in seconds:

* 6 genres; each item has a primary genre and, for about a third of items, a second one.
* Items come in *chains* of 1-4 (a film and its sequels: "The Silent Harbor", "The Silent Harbor
  2", ...) within a genre. After watching a chain member, users usually watch the next one, so
  order matters; chain heads are far more popular than sequels.
* Each user prefers 1-2 genres: most picks come from them, a few are noise.
* 12-40 interactions per user (never the same item twice), integer timestamps increasing per user.
* Readable, unique titles built from genre-flavoured word lists; years 1970-2020, sequels later
  than their predecessors.

``opaque=True`` keeps exactly the same interactions but hides the structure from the metadata:
titles are random codes ("Item QZXK-17"), every genre is ``"unknown"`` and years are random. An
explainer then has only the target's behaviour (its latent factors) to go on.

``balanced_items=True`` (the ``"opaque-balanced"`` dataset) draws a different structure, built so
that an item's identity says nothing about whether a user likes it:

* ``n_clusters`` (even, default 4) taste clusters of equal size (+-1 item); no popularity skew.
* Each user likes exactly half of the clusters, and users come in pairs with complementary tastes,
  so every cluster -- hence every item -- is liked by exactly half of the users (one user of an odd
  count draws a random half).
* Within a cluster the items form one *cycle* (every item has exactly one successor and one
  predecessor, so no item is a chain head): after an item of a liked cluster, users often watch its
  successor, which gives the sequence order a target can learn. Other picks are uniform over the
  unseen items of a random liked cluster, a few over all items (noise).

Item interaction counts are then near uniform (coefficient of variation ~0.07 at 400 users x 120
items) and whether the target likes an item depends on the user, not on the item: an item-only rule
(each item's like-rate among a trained SASRec's align-train labels) scores accuracy ~0.51-0.54 and
AUC ~0.52-0.55 on align-test (three seeds), against ~0.78 / 0.80 on ``opaque``.

The hidden truth (per-item latent genres or clusters, chain successors, per-user preferred genres or
clusters) is kept in ``Dataset.extra["latent"]`` for tests and analyses; explainers are not meant to
read it.

Item indices are a random permutation of the generation order, so an index says nothing about
an item's genre or chain.
"""

from __future__ import annotations

import json
import math
import os
import random
from bisect import bisect_right
from itertools import accumulate
from pathlib import Path

import numpy as np

from bench.data.dataset import Dataset, content_sha256
from bench.errors import ConfigError, DataError

GENRES: tuple[str, ...] = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi")
_GENERATOR_VERSION = 1

_ADJECTIVES = (
    "Silent", "Midnight", "Crimson", "Golden", "Broken", "Hidden", "Last", "Wild",
    "Frozen", "Burning", "Secret", "Distant", "Electric", "Hollow", "Velvet", "Iron",
)  # fmt: skip
_NOUNS: dict[str, tuple[str, ...]] = {
    "Action": ("Fist", "Strike", "Convoy", "Mercenary", "Showdown", "Bullet", "Protocol", "Raid", "Vendetta", "Pursuit"),
    "Comedy": ("Wedding", "Roommate", "Picnic", "Vacation", "Road Trip", "Bakery", "Neighbors", "Talent Show", "Reunion", "Dinner Party"),
    "Drama": ("Harbor", "Orchard", "Letters", "Inheritance", "Verdict", "Winter", "Daughter", "Testament", "Field", "Crossing"),
    "Horror": ("Cellar", "Asylum", "Ritual", "Orphanage", "Lighthouse", "Curse", "Swamp", "Doll", "Manor", "Hunger"),
    "Romance": ("Kiss", "Serenade", "Promise", "Rendezvous", "Heart", "Valentine", "Summer", "Affair", "Waltz", "Bouquet"),
    "Sci-Fi": ("Circuit", "Nebula", "Android", "Colony", "Signal", "Singularity", "Orbit", "Reactor", "Clone", "Horizon"),
}  # fmt: skip
# Used only once a genre's adjective x noun pool is exhausted (thousands of items).
_PLACES = ("Avalon", "Brooklyn", "the North", "Marseille", "Kyoto", "the Desert", "Vienna", "the Deep")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Generator knobs; changing any of them changes the data, so bump _GENERATOR_VERSION with them.
_CHAIN_LENGTHS = (1, 2, 3, 4)
_CHAIN_LENGTH_WEIGHTS = (0.25, 0.3, 0.25, 0.2)
_P_SECOND_GENRE = 0.35
_P_TWO_PREFERENCES = 0.4
_P_FOLLOW_CHAIN = 0.7
_P_PREFERRED = 0.85
_SEQUEL_DECAY = 0.3  # weight multiplier per chain position: users start chains at their head
_MIN_LEN, _MAX_LEN = 12, 40

# Knobs of the balanced variant (``balanced_items=True``); bump _BALANCED_VERSION with them.
_BALANCED_VERSION = 1
_BALANCED_P_FOLLOW = 0.5  # after an item of a liked cluster: its successor in the cluster's cycle
_BALANCED_P_PREFERRED = 0.9  # otherwise: an unseen item of a random liked cluster (else any item)


def _params(
    n_users: int, n_items: int, seed: int, opaque: bool, balanced_items: bool = False, n_clusters: int = 4
) -> dict:
    out = {
        "generator": "recxbench.tiny",
        "version": _GENERATOR_VERSION,
        "n_users": n_users,
        "n_items": n_items,
        "seed": seed,
        "opaque": opaque,
    }
    if balanced_items:  # only then, so the default data (and its sha256) stays what it was
        out.update(balanced_items=True, balanced_version=_BALANCED_VERSION, n_clusters=n_clusters)
    return out


def _randint(r: random.Random, lo: int, hi: int) -> int:
    """Uniform integer in ``[lo, hi]`` from ``r.random()`` alone.

    Only ``random()`` is used so that the data cannot change with CPython's implementation of
    ``randint``/``choices``/``shuffle``; ``random()`` itself is specified (Mersenne Twister).
    """
    return lo + min(int(r.random() * (hi - lo + 1)), hi - lo)


def _weighted(r: random.Random, cum: list[float]) -> int:
    return min(bisect_right(cum, r.random() * cum[-1]), len(cum) - 1)


def _shuffled(r: random.Random, n: int) -> list[int]:
    out = list(range(n))
    for k in range(n - 1, 0, -1):  # Fisher-Yates
        j = _randint(r, 0, k)
        out[k], out[j] = out[j], out[k]
    return out


def _structure(r: random.Random, n_users: int, n_items: int) -> dict:
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
            other = (g + _randint(r, 1, n_genres - 1)) % n_genres
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
        return candidates[_randint(r, 0, len(candidates) - 1)] if candidates else None

    user_genres: list[tuple[int, ...]] = []
    sequences: list[list[int]] = []
    for _ in range(n_users):
        first = _randint(r, 0, n_genres - 1)
        prefs = (first,)
        if r.random() < _P_TWO_PREFERENCES:
            prefs = (first, (first + _randint(r, 1, n_genres - 1)) % n_genres)
        user_genres.append(prefs)
        length = min(_randint(r, _MIN_LEN, _MAX_LEN), n_items)
        seen: set[int] = set()
        seq: list[int] = []
        cur = -1
        while len(seq) < length:
            nxt: int | None = None
            if (
                cur >= 0
                and chain_next[cur] >= 0
                and chain_next[cur] not in seen
                and r.random() < _P_FOLLOW_CHAIN
            ):
                nxt = chain_next[cur]
            if nxt is None and r.random() < _P_PREFERRED:
                g = prefs[_randint(r, 0, len(prefs) - 1)]
                if by_genre[g]:
                    nxt = draw(by_genre[g], genre_cum[g], seen)
            if nxt is None:
                nxt = draw(None, all_cum, seen)
            assert nxt is not None  # length <= n_items, so an unseen item always exists
            seen.add(nxt)
            seq.append(nxt)
            cur = nxt
        sequences.append(seq)
    return {
        "primary": primary,
        "chain_pos": chain_pos,
        "chain_next": chain_next,
        "genres": genres,
        "user_genres": user_genres,
        "sequences": sequences,
    }


def _structure_balanced(r: random.Random, n_users: int, n_items: int, n_clusters: int) -> dict:
    """The balanced variant's clusters, cycles, tastes and sequences (see the module docstring).

    Returns the keys of :func:`_structure` (``primary``/``genres`` hold the cluster, ``chain_pos``
    is 0 everywhere: a cycle has no head) plus ``user_genres`` = each user's liked clusters.
    """
    cluster = [k % n_clusters for k in range(n_items)]
    members = [[k for k in range(n_items) if cluster[k] == c] for c in range(n_clusters)]
    chain_next = [-1] * n_items
    for items in members:
        cycle = [items[j] for j in _shuffled(r, len(items))]
        for j, k in enumerate(cycle):
            chain_next[k] = cycle[(j + 1) % len(cycle)] if len(cycle) > 1 else -1
    half = n_clusters // 2
    tastes: list[tuple[int, ...]] = []
    for u in range(n_users):
        if u % 2 == 0:
            liked = tuple(sorted(_shuffled(r, n_clusters)[:half]))
        else:  # the complement of the previous user's: every cluster liked by exactly half
            liked = tuple(c for c in range(n_clusters) if c not in tastes[-1])
        tastes.append(liked)

    def pick(pool: list[int], seen: set[int]) -> int | None:
        unseen = [i for i in pool if i not in seen]
        return unseen[_randint(r, 0, len(unseen) - 1)] if unseen else None

    sequences: list[list[int]] = []
    everything = list(range(n_items))
    for liked in tastes:
        length = min(_randint(r, _MIN_LEN, _MAX_LEN), n_items)
        seen: set[int] = set()
        seq: list[int] = []
        cur = -1
        while len(seq) < length:
            nxt: int | None = None
            if (
                cur >= 0
                and cluster[cur] in liked
                and chain_next[cur] >= 0
                and chain_next[cur] not in seen
                and r.random() < _BALANCED_P_FOLLOW
            ):
                nxt = chain_next[cur]
            if nxt is None and r.random() < _BALANCED_P_PREFERRED:
                nxt = pick(members[liked[_randint(r, 0, len(liked) - 1)]], seen)
            if nxt is None:
                nxt = pick(everything, seen)
            assert nxt is not None  # length <= n_items, so an unseen item always exists
            seen.add(nxt)
            seq.append(nxt)
            cur = nxt
        sequences.append(seq)
    return {
        "primary": cluster,
        "chain_pos": [0] * n_items,
        "chain_next": chain_next,
        "genres": [(c,) for c in cluster],
        "user_genres": tastes,
        "sequences": sequences,
    }


def _cluster_name(c: int) -> str:
    return f"C{c + 1}"


def _readable_metadata(r: random.Random, s: dict) -> tuple[list[str], list[tuple[str, ...]], list[int]]:
    n_items = len(s["primary"])
    pools: dict[int, list[str]] = {}
    refills: dict[int, int] = {}
    used: set[str] = set()
    titles: list[str] = []
    years: list[int] = []
    base = ""
    for i in range(n_items):
        g = s["primary"][i]
        pos = s["chain_pos"][i]
        if pos == 0:
            pool = pools.setdefault(g, [])
            if not pool and refills.get(g, 0) < 2:
                # Adjective x noun first; "... of <place>" only once those are used up.
                nouns = _NOUNS[GENRES[g]]
                if refills.get(g, 0) == 0:
                    pool.extend(f"{a} {n}" for a in _ADJECTIVES for n in nouns)
                else:
                    pool.extend(f"{a} {n} of {p}" for p in _PLACES for a in _ADJECTIVES for n in nouns)
                refills[g] = refills.get(g, 0) + 1
            base = ""
            while not base or base in used:
                base = pool.pop(_randint(r, 0, len(pool) - 1)) if pool else f"{GENRES[g]} Story {len(used)}"
                if r.random() < 0.5:
                    base = f"The {base}"
            used.add(base)
            title = base
            year = _randint(r, 1970, 2014)
        else:
            title = f"{base} {pos + 1}"
            year = min(years[-1] + _randint(r, 1, 3), 2020)
        titles.append(title)
        years.append(year)
    genres = [tuple(GENRES[g] for g in gs) for gs in s["genres"]]
    return titles, genres, years


def _opaque_metadata(r: random.Random, n_items: int) -> tuple[list[str], list[tuple[str, ...]], list[int]]:
    titles: list[str] = []
    used: set[str] = set()
    while len(titles) < n_items:
        code = "".join(_LETTERS[_randint(r, 0, 25)] for _ in range(4))
        title = f"Item {code}-{_randint(r, 1, 99)}"
        if title not in used:
            used.add(title)
            titles.append(title)
    years = [_randint(r, 1970, 2020) for _ in range(n_items)]
    return titles, [("unknown",)] * n_items, years


def make_tiny(
    *,
    n_users: int = 300,
    n_items: int = 120,
    seed: int = 0,
    opaque: bool = False,
    balanced_items: bool = False,
    n_clusters: int = 4,
) -> Dataset:
    """The generated ``"tiny"`` dataset (see the module docstring).

    Deterministic in its arguments; ``opaque`` changes only the metadata. ``balanced_items``
    switches to the balanced structure (every item liked by half of the users, ``n_clusters`` taste
    clusters; the dataset is then named ``"opaque-balanced"`` or ``"tiny-balanced"``);
    ``n_clusters`` is used only then. ``sha256`` hashes the JSON of these parameters and the
    generator version.
    """
    if n_users < 1:
        raise ConfigError(
            f"tiny dataset needs n_users >= 1, got {n_users}", fix="set dataset.n_users to 1 or more"
        )
    if n_items < len(GENRES) * 2:
        raise ConfigError(
            f"tiny dataset needs n_items >= {len(GENRES) * 2} (two per genre), got {n_items}",
            fix=f"set dataset.n_items to {len(GENRES) * 2} or more",
        )
    if balanced_items and (n_clusters < 2 or n_clusters % 2 or n_items < 2 * n_clusters):
        raise ConfigError(
            f"balanced tiny dataset needs an even n_clusters >= 2 and n_items >= 2 * n_clusters, "
            f"got n_clusters={n_clusters}, n_items={n_items}",
            fix="set dataset.params.n_clusters to an even number and n_items to at least twice it",
        )
    params = _params(n_users, n_items, seed, opaque, balanced_items, n_clusters)
    if balanced_items:
        s = _structure_balanced(random.Random(seed), n_users, n_items, n_clusters)
        genre_name = _cluster_name
    else:
        s = _structure(random.Random(seed), n_users, n_items)
        genre_name = GENRES.__getitem__
    # A separate stream for the metadata keeps the interactions identical with and without opaque.
    meta_rng = random.Random(seed * 1_000_003 + 7919)
    perm_rng = random.Random(seed * 1_000_003 + 104_729)
    if opaque:
        titles, genres, years = _opaque_metadata(meta_rng, n_items)
    elif balanced_items:
        # Readable titles (words flavoured by cluster mod 6), the cluster as the genre.
        flavoured = {**s, "primary": [c % len(GENRES) for c in s["primary"]]}
        titles, _, years = _readable_metadata(meta_rng, flavoured)
        genres = [tuple(_cluster_name(c) for c in gs) for gs in s["genres"]]
    else:
        titles, genres, years = _readable_metadata(meta_rng, s)

    # Final index of generated item k is new_index[k]; titles are permuted along with the items.
    order = _shuffled(perm_rng, n_items)  # order[j] = generated item at final index j
    new_index = [0] * n_items
    for j, k in enumerate(order):
        new_index[k] = j

    time_rng = random.Random(seed * 1_000_003 + 15_485_863)
    users: list[int] = []
    items: list[int] = []
    stamps: list[float] = []
    ratings: list[float] = []
    for u, seq in enumerate(s["sequences"]):
        t = 880_000_000 + _randint(time_rng, 0, 20_000_000)
        prefs = s["user_genres"][u]
        for k in seq:
            t += _randint(time_rng, 1, 86_400)
            users.append(u)
            items.append(new_index[k])
            stamps.append(float(t))
            liked = any(g in prefs for g in s["genres"][k])
            ratings.append(float(_randint(time_rng, 4, 5) if liked else _randint(time_rng, 1, 3)))

    latent_next = [-1] * n_items
    for k, nxt in enumerate(s["chain_next"]):
        if nxt >= 0:
            latent_next[new_index[k]] = new_index[nxt]
    return Dataset(
        name=("opaque" if opaque else "tiny") + ("-balanced" if balanced_items else ""),
        user_ids=tuple(str(u + 1) for u in range(n_users)),
        item_ids=tuple(str(j + 1) for j in range(n_items)),
        titles=tuple(titles[k] for k in order),
        genres=tuple(genres[k] for k in order),
        years=tuple(years[k] for k in order),
        users=np.array(users, dtype=np.int64),
        items=np.array(items, dtype=np.int64),
        timestamps=np.array(stamps, dtype=np.float64),
        ratings=np.array(ratings, dtype=np.float64),
        sha256=content_sha256(json.dumps(params, sort_keys=True).encode("utf-8")),
        source="generated: " + ", ".join(f"{k}={v}" for k, v in params.items() if k != "generator"),
        extra={
            "generator": params,
            "latent": {
                "genres": [tuple(genre_name(g) for g in s["genres"][k]) for k in order],
                "chain_next": latent_next,
                "user_genres": [tuple(genre_name(g) for g in gs) for gs in s["user_genres"]],
            },
        },
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


def _write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


def write_atomic(ds: Dataset, directory: Path | str) -> Path:
    """Write ``ds`` as RecBole atomic files ``<name>.inter`` and ``<name>.item`` in ``directory``.

    The inter file has ``user_id``, ``item_id``, ``rating`` (when the dataset has ratings) and
    ``timestamp`` in the dataset's interaction order; the item file lists items in index order
    with ``movie_title``, ``release_year`` and ``class`` (genres joined by spaces). Loading the
    result with :func:`bench.data.loaders.load_dataset` gives back the same ids, arrays, titles,
    genres and years, provided users first appear in index order (true for every loaded or
    generated dataset). Each file is written to a temporary name and renamed into place.

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

    _write_text_atomically(directory / f"{ds.name}.item", "\n".join(item_lines) + "\n")
    _write_text_atomically(directory / f"{ds.name}.inter", "\n".join(inter_lines) + "\n")
    return directory
