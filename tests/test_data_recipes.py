"""Preprocessing recipes (none, recexplainer, lane) on fixtures, with counts computed independently."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import amazon2018, review

from bench.data.dataset import Dataset
from bench.data.loaders import load_dataset
from bench.data.recipes import apply_recipe, check_recipe
from bench.errors import ConfigError, DataError


def _ds(events: list[tuple[str, str, float]], titles: dict[str, str] | None = None) -> Dataset:
    """A dataset from (user, item, time) events in file order (first appearance indexing)."""
    users = list(dict.fromkeys(u for u, _, _ in events))
    items = list(dict.fromkeys(i for _, i, _ in events))
    titles = titles or {}
    return Dataset(
        name="t",
        user_ids=tuple(users),
        item_ids=tuple(items),
        titles=tuple(titles.get(i, f"title {i}") for i in items),
        genres=tuple(() for _ in items),
        years=tuple(None for _ in items),
        users=np.array([users.index(u) for u, _, _ in events], dtype=np.int64),
        items=np.array([items.index(i) for _, i, _ in events], dtype=np.int64),
        timestamps=np.array([t for _, _, t in events], dtype=np.float64),
        sha256="src",
    )


def _events(ds: Dataset) -> list[tuple[str, str, float]]:
    return [
        (ds.user_ids[u], ds.item_ids[i], t)
        for u, i, t in zip(ds.users.tolist(), ds.items.tolist(), ds.timestamps.tolist(), strict=True)
    ]


def _naive_kcore(events: list[tuple[str, str, float]], k: int) -> set[tuple[str, str]]:
    """Remove one failing user or item at a time until none fails (the k-core is order-independent)."""
    pairs = {(u, i) for u, i, _ in events}
    while True:
        cu = Counter(u for u, _ in pairs)
        ci = Counter(i for _, i in pairs)
        bad_u = next((u for u in cu if cu[u] < k), None)
        if bad_u is not None:
            pairs = {p for p in pairs if p[0] != bad_u}
            continue
        bad_i = next((i for i in ci if ci[i] < k), None)
        if bad_i is None:
            return pairs
        pairs = {p for p in pairs if p[1] != bad_i}


def test_none_is_the_dataset_itself() -> None:
    ds = _ds([("u", "i", 1.0)])
    assert apply_recipe(ds, "none") is ds


def test_five_core_needs_several_rounds() -> None:
    """Y (4 users) goes in round 1, so V1 falls to 4 (round 2), so X1 falls to 4 (round 3), so
    V2..V5 fall to 4 (round 4); the 6x6 block and W1..W3 remain."""
    ev: list[tuple[str, str, float]] = []
    t = 0.0

    def add(u: str, items: list[str]) -> None:
        nonlocal t
        for i in items:
            t += 1
            ev.append((u, i, t))

    core = [f"C{j}" for j in range(6)]
    for u in range(6):
        add(f"U{u}", core)
    add("V1", ["Y", "X1", "C0", "C1", "C2"])
    for v in range(2, 6):
        add(f"V{v}", ["X1", "C0", "C1", "C2", "C3"])
    for w in range(1, 4):
        add(f"W{w}", ["Y", *core])
    out = apply_recipe(_ds(ev), "recexplainer", {"core": 5})
    assert out.extra["recipe"]["kcore_rounds"] == 4
    assert set(out.item_ids) == set(core)
    assert set(out.user_ids) == {f"U{u}" for u in range(6)} | {"W1", "W2", "W3"}
    assert {(u, i) for u, i, _ in _events(out)} == _naive_kcore(ev, 5)


def test_kcore_matches_a_naive_reference_on_random_data() -> None:
    rng = random.Random(3)
    ev = [(f"u{rng.randint(0, 80)}", f"i{int(rng.paretovariate(1.2)) % 60}", float(k)) for k in range(1500)]
    ev = list({(u, i): (u, i, t) for u, i, t in ev}.values())  # no duplicates: compare pairs
    out = apply_recipe(_ds(ev), "recexplainer", {"core": 5})
    assert {(u, i) for u, i, _ in _events(out)} == _naive_kcore(ev, 5)
    assert out.extra["recipe"]["kcore_rounds"] >= 2


def test_recexplainer_titles_duplicates_and_time_order() -> None:
    ev = [
        ("a", "x", 5.0), ("a", "y", 3.0), ("a", "x", 1.0),  # duplicate (a, x): the first line (t=5) is kept
        ("a", "z", 3.0), ("a", "untitled", 0.0),  # z ties y at t=3: file order (y first)
        ("b", "x", 2.0), ("b", "y", 2.0),
    ]  # fmt: skip
    out = apply_recipe(_ds(ev, {"untitled": ""}), "recexplainer", {"core": 1})
    assert "untitled" not in out.item_ids
    assert _events(out) == [
        ("b", "x", 2.0),
        ("b", "y", 2.0),
        ("a", "y", 3.0),
        ("a", "z", 3.0),
        ("a", "x", 5.0),
    ]
    assert [out.item_ids[i] for i in out.sequences()[out.user_ids.index("a")]] == ["y", "z", "x"]


def test_caps_keep_the_most_frequent_items_then_users_ties_by_first_seen() -> None:
    ev = []
    for u in range(10):
        for i in range(6):
            if (u + i) % 3 or i < 2:  # items 0 and 1 are the most frequent
                ev.append((f"u{u}", f"i{i}", float(len(ev))))
    item_counts = Counter(i for _, i, _ in ev)
    order = sorted(item_counts, key=lambda i: (-item_counts[i], int(i[1:])))  # ties: seen first (= index)
    top_items = set(order[:3])
    kept = [e for e in ev if e[1] in top_items]
    user_counts = Counter(u for u, _, _ in kept)
    top_users = set(sorted(user_counts, key=lambda u: (-user_counts[u], int(u[1:])))[:4])
    expected = {(u, i) for u, i, _ in kept if u in top_users}
    out = apply_recipe(_ds(ev), "recexplainer", {"core": 1, "max_items": 3, "max_users": 4})
    assert {(u, i) for u, i, _ in _events(out)} == expected
    # with core 2 the caps are followed by another k-core (a user left with one item goes)
    out2 = apply_recipe(_ds(ev), "recexplainer", {"core": 2, "max_items": 3, "max_users": 4})
    assert {(u, i) for u, i, _ in _events(out2)} == _naive_kcore([(u, i, 0.0) for u, i in expected], 2)


def test_recipes_are_deterministic_and_move_the_sha256() -> None:
    ev = [(f"u{k % 7}", f"i{k % 5}", float(k)) for k in range(60)]
    a = apply_recipe(_ds(ev), "recexplainer", {"core": 2})
    b = apply_recipe(_ds(ev), "recexplainer", {"core": 2})
    c = apply_recipe(_ds(ev), "recexplainer", {"core": 3})
    assert _events(a) == _events(b) and a.sha256 == b.sha256
    assert len({a.sha256, c.sha256, "src"}) == 3
    assert a.extra["recipe"]["params"] == {
        "core": 2,
        "max_items": None,
        "max_users": None,
        "require_title": True,
    }


def test_lane_merges_items_with_the_same_title(tmp_path: Path) -> None:
    reviews = [
        review("U1", "A1", 1), review("U1", "A2", 2),  # A1 and A2 share a title: one item, U1 counted once
        review("U2", "A2", 3), review("U2", "A3", 4), review("U3", "A1", 5), review("U3", "A3", 6),
    ]  # fmt: skip
    meta = [
        {"asin": "A1", "title": "Mascara"},
        {"asin": "A2", "title": "Mascara"},
        {"asin": "A3", "title": "Blush"},
    ]
    ds = load_dataset(amazon2018(tmp_path / "b", reviews, meta))
    out = apply_recipe(ds, "lane", {"k": 1})
    assert out.item_ids == ("A1", "A3") and out.titles == ("Mascara", "Blush")  # the first ASIN represents
    assert _events(out) == [
        ("U1", "A1", 1.0),
        ("U2", "A1", 3.0),
        ("U2", "A3", 4.0),
        ("U3", "A1", 5.0),
        ("U3", "A3", 6.0),
    ]
    assert out.extra["recipe"]["merged_items"] == 1
    kept = apply_recipe(ds, "lane", {"k": 1, "merge_titles": False})
    assert kept.n_items == 3 and kept.n_interactions == 6
    # one pass: k=2 keeps users and items with >= 2 counted once, without a recount
    two = apply_recipe(ds, "lane", {"k": 2})
    assert two.n_users == 2 and two.n_interactions == 4  # U1 (1 after the merge) goes


def test_lane_on_an_ml1m_shaped_fixture_matches_an_independent_count(tmp_path: Path) -> None:
    rng = random.Random(11)
    d = tmp_path / "ml-1m"
    d.mkdir()
    movies, title_of = [], {}
    for m in range(1, 121):
        # movies 101-119 repeat the title and year of movies 1-19 (another MovieID): they merge
        title = title_of[str(m - 100)] if m > 100 else f"Movie {m} ({1990 + m % 3})"
        if m == 120:
            title = "Movie 20 (1999)"  # same name, another year: not merged
        title_of[str(m)] = title
        movies.append(f"{m}::{title}::Drama|Comedy")
    (d / "movies.dat").write_text("\n".join(movies) + "\n", encoding="latin-1")
    lines = []
    for u in range(1, 151):
        for m in rng.sample(range(1, 121), rng.randint(2, 30)):
            lines.append(f"{u}::{m}::{rng.randint(1, 5)}::{978300000 + len(lines)}")
    (d / "ratings.dat").write_text("\n".join(lines) + "\n", encoding="latin-1")

    # independent: title identity, first of duplicate (user, title) pairs, one pass of k = 5
    seen, rows = set(), []
    for line in lines:
        u, m, _, _ = line.split("::")
        key = (u, title_of[m])
        if key not in seen:
            seen.add(key)
            rows.append(key)
    cu, ci = Counter(u for u, _ in rows), Counter(t for _, t in rows)
    kept = [(u, t) for u, t in rows if cu[u] >= 5 and ci[t] >= 5]
    assert len(rows) < len(lines)  # the fixture does merge titles

    out = apply_recipe(load_dataset(d, format="ml-1m"), "lane", {"k": 5})
    s = out.summary()
    assert (s["users"], s["items"], s["interactions"]) == (
        len({u for u, _ in kept}),
        len({t for _, t in kept}),
        len(kept),
    )
    assert s["sparsity"] == pytest.approx(1 - len(kept) / (s["users"] * s["items"]))


def test_recipe_errors_name_the_key() -> None:
    with pytest.raises(
        ConfigError,
        match=r"dataset.recipe.name: unknown dataset recipe 'recexplaner'.*did you mean 'recexplainer'",
    ):
        check_recipe("recexplaner")
    with pytest.raises(
        ConfigError, match=r"dataset.recipe.params: bad parameter for recipe 'lane'.*takes: k, merge_titles"
    ):
        check_recipe("lane", {"core": 5})
    with pytest.raises(ConfigError, match=r"dataset.recipe.params.core"):
        apply_recipe(_ds([("u", "i", 1.0)]), "recexplainer", {"core": 0})
    with pytest.raises(DataError, match="left no interactions"):
        apply_recipe(_ds([("u", "i", 1.0)], {"i": ""}), "recexplainer")
