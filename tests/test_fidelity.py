"""Grounding of explanations (bench.tasks.grounding): counterfactual fidelity, citations, decisions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from bench.data.catalog import Catalog
from bench.tasks.grounding import cited_items, counterfactual_fidelity, parse_decision

N_ITEMS = 40
HISTORY = (0, 1, 2, 3, 4, 5, 6, 7, 8)
KEYS = (2, 5)  # the only history items that move the candidate
LIKED, DISLIKED = 20, 30


class LinearTarget:
    """score(j | H) = b[j] + Σ_{h∈H} W[h, j]; W is non-zero only on the key items' rows.

    Key items push LIKED up (so a like depends on them) and DISLIKED down (so a dislike does).
    """

    name = "linear"
    n_items = N_ITEMS

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.bias = rng.normal(0.0, 1.0, N_ITEMS)
        # Without the key items LIKED would sit near the bottom and DISLIKED near the top.
        self.bias[LIKED], self.bias[DISLIKED] = -2.0, 2.0
        self.W = np.zeros((N_ITEMS, N_ITEMS))
        for k in KEYS:
            self.W[k, LIKED] = 3.0
            self.W[k, DISLIKED] = -3.0
        self.calls = 0

    def scores(self, histories: Sequence[Sequence[int]], *, mask_history: bool = True) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(histories), N_ITEMS), dtype=np.float32)
        for r, h in enumerate(histories):
            out[r] = self.bias + self.W[list(h)].sum(axis=0)
            if mask_history and len(h):
                out[r, list(h)] = -np.inf
        return out


def fidelity(cited, *, item=LIKED, like=True, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return counterfactual_fidelity(LinearTarget(), HISTORY, item, cited, rng=rng, like=like, **kw)


def test_citing_the_key_items_scores_high_and_irrelevant_items_near_zero():
    key = fidelity(KEYS)
    irrelevant = fidelity((0, 8))
    assert key["cites"] == 1 and key["n_cited"] == 2
    assert key["drop_cited"] > 0.2  # LIKED falls far down the ranking without its two supports
    assert key["fidelity"] > 0.2
    assert irrelevant["drop_cited"] == 0.0
    # random baselines sometimes hit a key item, so the difference is small but not exactly 0
    assert abs(irrelevant["fidelity"]) < key["fidelity"] / 2
    assert irrelevant["fidelity"] <= 0.0


def test_score_measure():
    key = fidelity(KEYS, measure="score")
    assert key["drop_cited"] == pytest.approx(6.0, abs=1e-4)  # two weights of 3 removed
    assert key["fidelity"] > 3.0
    assert fidelity((0, 8), measure="score")["drop_cited"] == pytest.approx(0.0, abs=1e-6)


def test_dislike_sign_convention():
    # Deleting the key items lifts DISLIKED (they held it down): for a dislike that is fidelity > 0.
    dislike = fidelity(KEYS, item=DISLIKED, like=False)
    assert dislike["sign"] == -1
    assert dislike["drop_cited"] < 0  # the item rose
    assert dislike["fidelity"] > 0.2
    # The same citation read as a *like* explanation would be unfaithful.
    assert fidelity(KEYS, item=DISLIKED, like=True)["fidelity"] < -0.2


def test_random_baseline_is_deterministic_given_the_seed():
    a, b = fidelity((0, 8), seed=7), fidelity((0, 8), seed=7)
    assert a["random_sets"] == b["random_sets"]
    assert a["fidelity"] == b["fidelity"]
    sets = {tuple(map(tuple, fidelity((0, 8), seed=s)["random_sets"])) for s in range(6)}
    assert len(sets) > 1
    for r in a["random_sets"]:  # random deletions never touch the cited items
        assert not set(r) & {0, 8} and len(r) == 2


def test_nothing_cited_and_everything_cited():
    none = fidelity(())
    assert none == {"cites": 0, "n_cited": 0, "measure": "rank", "sign": 1, "fidelity": 0.0}
    # Cited items outside the history are ignored.
    assert fidelity((33,))["cites"] == 0
    # Citing the whole history: the baseline deletes the same items, so nothing is earned.
    everything = fidelity(HISTORY)
    assert everything["fidelity"] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        fidelity(KEYS, measure="bogus")


def test_one_scores_call_per_explanation():
    target = LinearTarget()
    counterfactual_fidelity(target, HISTORY, LIKED, KEYS, rng=np.random.default_rng(0), draws=5)
    assert target.calls == 1


# -- citations --------------------------------------------------------------------------------------

TITLES = [
    "Toy Story",
    "Toy Story 2",
    "Fargo",
    "Seven (Se7en)",
    "Usual Suspects, The",
    "It",
    "Heat",
    "Star Wars",
    "Alien",
    "Aliens",
    "Schindler's List",
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(TITLES, years=[1995] * len(TITLES))


def test_cited_items_substrings_aliases_and_masking(catalog):
    history = [0, 2, 3, 4, 5, 8]  # Toy Story, Fargo, Seven, Usual Suspects, It, Alien
    text = (
        "Yes. Like Fargo and the usual suspects (1995), and Seven, it is a crime story; "
        "Toy Story 2 is the candidate."
    )
    c = cited_items(text, history, catalog, item=1)
    # "Toy Story 2" (the candidate) does not cite "Toy Story"; the short title "It" needs quotes.
    assert c.items == (2, 3, 4)
    assert c.hallucinated == ()
    assert c.hallucination_share == 0.0
    # "Aliens" does not cite "Alien" (whole words only)
    assert cited_items("They loved Aliens.", history, catalog).items == ()


def test_quoted_titles_and_hallucinations(catalog):
    history = [0, 2, 5]
    text = (
        "Because they watched \u201cStar Wars\u201d and 'It', and the 'feel-good' vibe of "
        '"Toy Story", plus "The Matrix Reloaded"; the user\'s taste is clear.'
    )
    c = cited_items(text, history, catalog, item=6)
    assert c.items == (0, 5)  # Toy Story (substring and quoted), It (quoted)
    # Star Wars is a catalog item the user never watched; The Matrix Reloaded is no item at all;
    # 'feel-good' is lower-case scare quotes and ignored.
    assert set(c.hallucinated) == {"Star Wars", "The Matrix Reloaded"}
    assert c.hallucination_share == pytest.approx(2 / 4)
    # The candidate item quoted is neither a citation nor a hallucination.
    assert cited_items('"Heat" fits.', history, catalog, item=6).n_titles == 0


def test_apostrophes_do_not_open_quotes(catalog):
    c = cited_items("The user's taste for Schindler's List isn't 'random'", [10], catalog)
    assert c.items == (10,) and c.hallucinated == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes, because they love crime films.", 1),
        ("No. This is too dark.", 0),
        ("**Yes** - it fits.", 1),
        ("Recommendation: No - too violent.", 0),
        ("**Answer:** Yes, it fits.", 1),
        ("I would recommend it: it matches their taste.", 1),
        ("The system would not recommend it to this user.", 0),
        ("The user wouldn't enjoy this one.", 0),
        ("This is unlikely to appeal to them.", 0),
        ("They will probably enjoy it. It is not a comedy.", 1),
        ("It is a good fit for the user.", 1),
        ("The film was released in 1995.", None),
        ("", None),
        (None, None),
        ("Nobody knows.", None),
    ],
)
def test_parse_decision(text, expected):
    assert parse_decision(text) == expected
