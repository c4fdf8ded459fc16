"""Item metadata of the generated datasets: readable genre-flavoured titles, or opaque codes."""

from __future__ import annotations

import random

from bench.data.synthetic.structure import GENRES, randint

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

#: ``(titles, genres, years)`` of every item, in generation order.
Metadata = tuple[list[str], list[tuple[str, ...]], list[int]]


def readable_metadata(r: random.Random, s: dict) -> Metadata:
    """Unique titles from genre word lists (sequels numbered), genre names, years 1970-2020."""
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
                base = pool.pop(randint(r, 0, len(pool) - 1)) if pool else f"{GENRES[g]} Story {len(used)}"
                if r.random() < 0.5:
                    base = f"The {base}"
            used.add(base)
            title = base
            year = randint(r, 1970, 2014)
        else:
            title = f"{base} {pos + 1}"
            year = min(years[-1] + randint(r, 1, 3), 2020)
        titles.append(title)
        years.append(year)
    genres = [tuple(GENRES[g] for g in gs) for gs in s["genres"]]
    return titles, genres, years


def opaque_metadata(r: random.Random, n_items: int) -> Metadata:
    """Random unique codes ("Item QZXK-17"), genre ``"unknown"``, random years."""
    titles: list[str] = []
    used: set[str] = set()
    while len(titles) < n_items:
        code = "".join(_LETTERS[randint(r, 0, 25)] for _ in range(4))
        title = f"Item {code}-{randint(r, 1, 99)}"
        if title not in used:
            used.add(title)
            titles.append(title)
    years = [randint(r, 1970, 2020) for _ in range(n_items)]
    return titles, [("unknown",)] * n_items, years
