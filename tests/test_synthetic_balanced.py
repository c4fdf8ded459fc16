"""The balanced generated data (``opaque-balanced``): item identity alone says nothing about liking."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bench.data.resolve import resolve_dataset
from bench.data.synthetic import make_tiny
from bench.errors import ConfigError


@pytest.fixture(scope="module")
def balanced():
    return make_tiny(n_users=400, n_items=120, opaque=True, balanced_items=True)


def test_every_item_is_liked_by_half_of_the_users(balanced) -> None:
    lat = balanced.extra["latent"]
    clusters, tastes = lat["genres"], lat["user_genres"]
    assert len({c for (c,) in clusters}) == 4
    assert all(len(t) == 2 for t in tastes)  # each user likes half of the 4 clusters
    share = np.array([np.mean([c in t for t in tastes]) for (c,) in clusters])
    np.testing.assert_allclose(share, 0.5)  # complementary pairs of users: exactly half
    sizes = np.bincount([int(c[1:]) - 1 for (c,) in clusters])
    assert sizes.min() == sizes.max() == 30


def test_item_interaction_counts_are_near_uniform(balanced) -> None:
    counts = np.bincount(balanced.items, minlength=balanced.n_items)
    assert counts.min() >= 0.7 * counts.mean() and counts.max() <= 1.3 * counts.mean()
    assert counts.std() / counts.mean() < 0.12


def test_users_follow_their_tastes_and_the_cycles(balanced) -> None:
    lat = balanced.extra["latent"]
    liked = [lat["genres"][i][0] in lat["user_genres"][u] for u, i in zip(balanced.users, balanced.items)]
    assert np.mean(liked) > 0.9
    nxt = lat["chain_next"]
    assert sorted(nxt) == list(range(balanced.n_items))  # one cycle per cluster: no chain heads
    pairs = [(a, b) for s in balanced.sequences() for a, b in zip(s[:-1].tolist(), s[1:].tolist())]
    assert sum(nxt[a] == b for a, b in pairs) / len(pairs) > 0.3
    per_user = np.bincount(balanced.users)
    assert per_user.min() >= 12 and per_user.max() <= 40
    for u in range(0, balanced.n_users, 37):
        seq = balanced.items[balanced.users == u]
        assert len(set(seq.tolist())) == len(seq)
        assert np.all(np.diff(balanced.timestamps[balanced.users == u]) > 0)


def test_opaque_metadata_and_name(balanced) -> None:
    assert balanced.name == "opaque-balanced"
    assert all(re.fullmatch(r"Item [A-Z]{4}-\d{1,2}", t) for t in balanced.titles)
    assert len(set(balanced.titles)) == balanced.n_items
    assert set(balanced.genres) == {("unknown",)}
    assert balanced.extra["generator"]["balanced_items"] is True


def test_deterministic_and_distinct_from_the_default(balanced) -> None:
    again = make_tiny(n_users=400, n_items=120, opaque=True, balanced_items=True)
    for field in ("users", "items", "timestamps", "ratings"):
        np.testing.assert_array_equal(getattr(balanced, field), getattr(again, field))
    assert balanced.titles == again.titles and balanced.sha256 == again.sha256
    assert balanced.extra == again.extra
    other_seed = make_tiny(n_users=400, n_items=120, opaque=True, balanced_items=True, seed=1)
    assert other_seed.sha256 != balanced.sha256
    assert not np.array_equal(other_seed.items[:50], balanced.items[:50])
    plain = make_tiny(n_users=400, n_items=120, opaque=True)
    assert plain.name == "opaque" and plain.sha256 != balanced.sha256
    assert "balanced_items" not in plain.extra["generator"]  # the default data is unchanged


def test_resolved_by_name_and_parameters_checked() -> None:
    ds = resolve_dataset("opaque-balanced", params={"n_users": 40, "n_items": 48, "n_clusters": 6})
    assert ds.name == "opaque-balanced" and (ds.n_users, ds.n_items) == (40, 48)
    assert all(len(t) == 3 for t in ds.extra["latent"]["user_genres"])
    readable = make_tiny(n_users=20, n_items=24, balanced_items=True)
    assert readable.name == "tiny-balanced" and {g for (g,) in readable.genres} == {
        f"C{c}" for c in range(1, 5)
    }
    with pytest.raises(ConfigError):
        make_tiny(balanced_items=True, n_clusters=5)
    with pytest.raises(ConfigError):
        make_tiny(balanced_items=True, n_items=20, n_clusters=12)
