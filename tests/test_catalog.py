"""Catalog: title normalisation and free-text resolution."""

from __future__ import annotations

import pytest
from real_data import REAL_ML100K

from bench.data.catalog import DEFAULT_FUZZY_THRESHOLD, Catalog, normalise
from bench.data.loaders import load_dataset
from bench.data.synthetic import make_tiny


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Toy Story", "toy story"),
        ("The Usual Suspects", "usual suspects"),
        ("Usual Suspects, The", "usual suspects"),
        ("usual suspects, the (1995)", "usual suspects"),
        ("  USUAL   Suspects,The  ", "usual suspects"),
        ("Star Is Born, A (1954)", "star is born"),
        ("An American Werewolf in London", "american werewolf in london"),
        ("Misérables, Les (1995)", "les misérables"),
        ("Cérémonie, La", "la cérémonie"),
        ("Schindler's List", "schindlers list"),
        ("Schindler\u2019s List", "schindlers list"),
        ("Romeo & Juliet", "romeo and juliet"),
        ("Face/Off (1997)", "face off"),
        (
            "Dr. Strangelove or: How I Learned to Stop Worrying",
            "dr strangelove or how i learned to stop worrying",
        ),
        ("\uff34\uff4f\uff59 \uff33\uff54\uff4f\uff52\uff59", "toy story"),  # full-width (NFKC)
        ("\ufb01ght club", "fight club"),  # ligature (NFKC)
        ("STRAßE", "strasse"),  # casefold
        ("Se7en", "se7en"),
        ("Apollo 13 (1995)", "apollo 13"),
        ("1984", "1984"),  # a bare year is a title, not a trailing "(year)"
        ("The", "the"),  # never normalised to nothing
        ("", ""),
        ("?!", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


TITLES = [
    "Toy Story",  # 0
    "Usual Suspects, The",  # 1
    "Seven (Se7en)",  # 2
    "Cape Fear",  # 3 (1991)
    "Cape Fear",  # 4 (1962)
    "Misérables, Les",  # 5
    "Toy Story",  # 6: duplicate title
    "Star Trek III: The Search for Spock",  # 7
    "Godfather: Part II, The",  # 8
    "",  # 9: unknown title
    "Contempt (Mépris, Le)",  # 10
    "Seven",  # 11: a full title equal to item 2's alias
]
YEARS = [1995, 1995, 1995, 1991, 1962, 1995, 1996, 1984, 1974, None, 1963, 1979]


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(TITLES, [("Animation",)] * len(TITLES), YEARS)


def test_accessors(catalog: Catalog) -> None:
    assert len(catalog) == len(TITLES)
    assert catalog.title(1) == "Usual Suspects, The"
    assert catalog.genres(0) == ("Animation",)
    assert catalog.year(3) == 1991
    assert catalog.fuzzy_threshold == DEFAULT_FUZZY_THRESHOLD == 90
    assert Catalog(["A"]).genres(0) == () and Catalog(["A"]).year(0) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Usual Suspects", 1),
        ("usual suspects, the (1995)", 1),
        ("Usual Suspect", 1),  # fuzzy
        ("Usual Suspects, The", 1),
        ("Les Misérables", 5),
        ("Les Miserables", 5),  # fuzzy (accent)
        ("Se7en", 2),  # alias from the parenthetical
        ("Le Mépris", 10),
        ("Contempt", 10),
        ("Seven", 11),  # a full title wins over another item's alias
        ("Star Trek III: The Search for Spock (1984)", 7),
        ("Star Trek III The Serch for Spock", 7),  # fuzzy
        ("The Godfather Part 2", 8),  # roman numeral and digit agree
        ("Asdfgh Qwerty", None),
        ("A movie that does not exist at all", None),
        ("", None),
        ("   ", None),
    ],
)
def test_resolve(catalog: Catalog, text: str, expected: int | None) -> None:
    assert catalog.resolve(text) == expected


def test_exact_ties_go_to_the_smallest_index_unless_the_year_says_otherwise(catalog: Catalog) -> None:
    assert catalog.resolve("Toy Story") == 0
    assert catalog.resolve("toy story (1996)") == 6
    assert catalog.resolve("Cape Fear") == 3
    assert catalog.resolve("Cape Fear (1962)") == 4
    assert catalog.resolve("Cape Fear (1991)") == 3
    assert catalog.resolve("Cape Fear (2000)") == 3  # no such year: smallest index


def test_sequels_do_not_fuzzy_match_their_original(catalog: Catalog) -> None:
    assert catalog.resolve("Toy Story 2") is None
    assert catalog.resolve("Star Trek IV: The Search for Spock") is None


def test_threshold(catalog: Catalog) -> None:
    # "toy stroy" vs "toy story" scores about 88.9: below the default, above 85.
    assert catalog.resolve("Toy Stroy") is None
    loose = Catalog(TITLES, years=YEARS, fuzzy_threshold=85)
    assert loose.resolve("Toy Stroy") == 0
    strict = Catalog(TITLES, years=YEARS, fuzzy_threshold=100)
    assert strict.resolve("Usual Suspect") is None
    assert strict.resolve("The Usual Suspects (1995)") == 1  # exact after normalisation still works
    with pytest.raises(ValueError, match="fuzzy_threshold"):
        Catalog(TITLES, fuzzy_threshold=101)
    with pytest.raises(TypeError):
        Catalog(TITLES, None, None, 85)  # type: ignore[misc]  # keyword-only


def test_resolve_many(catalog: Catalog) -> None:
    texts = ["Seven", "nonsense words here", "The Usual Suspects", "Seven"]
    assert catalog.resolve_many(texts) == [11, None, 1, 11]
    assert catalog.resolve_many(iter([])) == []


def test_fingerprint(catalog: Catalog) -> None:
    same = Catalog(TITLES)  # genres and years do not count
    assert catalog.fingerprint() == same.fingerprint()
    assert len(catalog.fingerprint()) == 64
    assert Catalog([*TITLES[:-1], "Seven 2"]).fingerprint() != catalog.fingerprint()


def test_length_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="genres"):
        Catalog(["a", "b"], [("x",)])
    with pytest.raises(ValueError, match="years"):
        Catalog(["a", "b"], years=[1])


@pytest.mark.parametrize("opaque", [False, True])
def test_generated_titles_resolve_to_themselves(opaque: bool) -> None:
    ds = make_tiny(opaque=opaque)
    cat = Catalog.from_dataset(ds)
    assert len(cat) == ds.n_items
    assert cat.resolve_many(ds.titles) == list(range(ds.n_items))
    assert cat.genres(0) == ds.genres[0] and cat.year(0) == ds.years[0]


@pytest.mark.skipif(not REAL_ML100K.is_dir(), reason="RecBole's ml-100k files are not unpacked here")
def test_real_ml100k() -> None:
    ds = load_dataset(REAL_ML100K)
    cat = Catalog.from_dataset(ds)
    target = cat.resolve("The Usual Suspects")
    assert target is not None and cat.title(target) == "Usual Suspects, The"
    assert cat.resolve("usual suspects, the (1995)") == target
    assert cat.resolve("Usual Suspect") == target
    assert cat.resolve("Xyzzy Plugh Frobnicate") is None
    assert cat.resolve("Les Misérables") == ds.titles.index("Misérables, Les")
    # Every catalog title resolves to an item with the same normalised title.
    hits = cat.resolve_many(ds.titles)
    assert all(
        h is not None and normalise(ds.titles[h]) == normalise(t)
        for h, t in zip(hits, ds.titles, strict=True)
    )
    # Speed sanity: 1000 texts that mostly need the fuzzy path.
    texts = [f"{t}s" if k % 2 else f"The {t} (1995)" for k, t in enumerate(ds.titles[:1000])]
    results = cat.resolve_many(texts)
    assert sum(r is not None for r in results) > 800
