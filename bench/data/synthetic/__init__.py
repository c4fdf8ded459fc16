"""A small generated dataset with known structure.

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

Layout: :mod:`.structure` draws the hidden structure and the sequences, :mod:`.titles` the
metadata; this module assembles the Dataset and registers the presets ``tiny``, ``opaque`` and
``opaque-balanced`` (:data:`TINY`, :data:`OPAQUE`, :data:`OPAQUE_BALANCED`) as named datasets.
:func:`write_atomic` (re-exported from :mod:`bench.data.formats.atomic`) writes any Dataset as
RecBole atomic files.
"""

from __future__ import annotations

import functools
import json
import random

import numpy as np

from bench.data.dataset import Dataset, content_sha256
from bench.data.formats.atomic import write_atomic
from bench.data.sources import DatasetSource
from bench.data.synthetic.structure import (
    BALANCED_VERSION,
    GENERATOR_VERSION,
    GENRES,
    randint,
    shuffled,
    structure,
    structure_balanced,
)
from bench.data.synthetic.titles import opaque_metadata, readable_metadata
from bench.errors import ConfigError

__all__ = ["GENRES", "OPAQUE", "OPAQUE_BALANCED", "TINY", "make_tiny", "write_atomic"]


def _params(
    n_users: int, n_items: int, seed: int, opaque: bool, balanced_items: bool = False, n_clusters: int = 4
) -> dict:
    out = {
        "generator": "recxbench.tiny",
        "version": GENERATOR_VERSION,
        "n_users": n_users,
        "n_items": n_items,
        "seed": seed,
        "opaque": opaque,
    }
    if balanced_items:  # only then, so the default data (and its sha256) stays what it was
        out.update(balanced_items=True, balanced_version=BALANCED_VERSION, n_clusters=n_clusters)
    return out


def _cluster_name(c: int) -> str:
    return f"C{c + 1}"


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
        s = structure_balanced(random.Random(seed), n_users, n_items, n_clusters)
        genre_name = _cluster_name
    else:
        s = structure(random.Random(seed), n_users, n_items)
        genre_name = GENRES.__getitem__
    # A separate stream for the metadata keeps the interactions identical with and without opaque.
    meta_rng = random.Random(seed * 1_000_003 + 7919)
    perm_rng = random.Random(seed * 1_000_003 + 104_729)
    if opaque:
        titles, genres, years = opaque_metadata(meta_rng, n_items)
    elif balanced_items:
        # Readable titles (words flavoured by cluster mod 6), the cluster as the genre.
        flavoured = {**s, "primary": [c % len(GENRES) for c in s["primary"]]}
        titles, _, years = readable_metadata(meta_rng, flavoured)
        genres = [tuple(_cluster_name(c) for c in gs) for gs in s["genres"]]
    else:
        titles, genres, years = readable_metadata(meta_rng, s)

    # Final index of generated item k is new_index[k]; titles are permuted along with the items.
    order = shuffled(perm_rng, n_items)  # order[j] = generated item at final index j
    new_index = [0] * n_items
    for j, k in enumerate(order):
        new_index[k] = j

    time_rng = random.Random(seed * 1_000_003 + 15_485_863)
    users: list[int] = []
    items: list[int] = []
    stamps: list[float] = []
    ratings: list[float] = []
    for u, seq in enumerate(s["sequences"]):
        t = 880_000_000 + randint(time_rng, 0, 20_000_000)
        prefs = s["user_genres"][u]
        for k in seq:
            t += randint(time_rng, 1, 86_400)
            users.append(u)
            items.append(new_index[k])
            stamps.append(float(t))
            liked = any(g in prefs for g in s["genres"][k])
            ratings.append(float(randint(time_rng, 4, 5) if liked else randint(time_rng, 1, 3)))

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


#: Named datasets (``registry.datasets``): ``make(**params)`` is :func:`make_tiny` with the preset's
#: arguments; ``dataset.params`` may override them.
TINY = DatasetSource(
    make=functools.partial(make_tiny, opaque=False),
    description="generated: a few hundred users with genre tastes and item chains (tests, demos)",
)
OPAQUE = DatasetSource(
    make=functools.partial(make_tiny, opaque=True),
    description="generated like tiny, but titles are random strings: preferences live only in f's latent factors",
)
OPAQUE_BALANCED = DatasetSource(
    make=functools.partial(make_tiny, opaque=True, balanced_items=True),
    description="generated, titles random strings, every item liked by half of the users: "
    "item identity alone predicts nothing, only the user's taste does",
)
