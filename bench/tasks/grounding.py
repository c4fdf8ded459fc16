"""Grounding of an explanation in the target's behaviour: which history items it cites, whether
deleting them moves the item the way the explanation implies, and what decision it states.

All functions are pure (the random baseline draws from the generator passed in).

Citations (:func:`cited_items`)
    1. Every history title is looked up in the explanation after both are normalised with
       :func:`bench.data.catalog.normalise` (case, punctuation, years and leading articles do not
       matter), as a whole-word substring. A title's main part also counts when the catalog title
       carries an alternative in parentheses (``"Seven (Se7en)"`` is cited by "Seven"). Longer
       titles are matched first and masked, so "Toy Story 2" does not also cite "Toy Story", and
       the candidate item's own title is masked before any history title is looked up. Titles
       whose normalised form is shorter than ``min_chars`` (3) characters are only cited when
       quoted, because words like "it" would match everywhere.
    2. Every quoted string (``"…"``, ``“…”``, ``'…'``) is resolved with :meth:`Catalog.resolve`:
       a history item is a citation; the candidate item is neither a citation nor a hallucination;
       any other catalog item is a *hallucinated citation* (a title the user never watched); a
       string that resolves to no item is a hallucinated citation when it looks like a title (it
       starts with an upper-case letter or a digit), and is ignored otherwise (scare quotes such
       as "feel-good").

Counterfactual fidelity (:func:`counterfactual_fidelity`)
    See the function's docstring for the formula.

Stated decision (:func:`parse_decision`)
    Read from the explanation's first sentence: a leading ``Yes``/``No``, or phrases such as
    "would (not) recommend", "is (not) a good fit", "(un)likely to enjoy".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bench.data.catalog import Catalog, normalise

Measure = Literal["rank", "score"]
MEASURES: tuple[str, ...] = ("rank", "score")

_QUOTED = (
    re.compile(r"\u201c([^\u201d\n]{1,150})\u201d"),  # “…”
    re.compile(r'"([^"\n]{1,150})"'),
    # '…' only where the quotes stand apart from words, so apostrophes ("user's") never open one.
    re.compile(r"(?<![\w'])'([^'\n]{1,150})'(?![\w'])"),
    re.compile(r"\u2018([^\u2019\n]{1,150})\u2019(?!\w)"),  # ‘…’
)
_PAREN = re.compile(r"^(.*\S)\s*\([^()]*\)$")
_YEAR = re.compile(r"\s*[(\[]\s*\d{4}\s*[)\]]\s*$")


@dataclass(frozen=True)
class Citations:
    """What an explanation cites.

    Attributes:
        items: distinct history items it names, in history order.
        hallucinated: quoted titles that name no history item (nor the candidate), de-duplicated.
    """

    items: tuple[int, ...]
    hallucinated: tuple[str, ...]

    @property
    def n_titles(self) -> int:
        """Titles cited in all: real history items plus hallucinated ones."""
        return len(self.items) + len(self.hallucinated)

    @property
    def hallucination_share(self) -> float:
        """``|hallucinated| / (|items| + |hallucinated|)``, 0.0 when nothing is cited."""
        return len(self.hallucinated) / self.n_titles if self.n_titles else 0.0


def _keys(catalog: Catalog, i: int) -> list[str]:
    """Normalised forms that cite item ``i``: its title and, if it has one, its main part."""
    keys = [catalog.normalised_title(i)]
    main = _PAREN.match(_YEAR.sub("", catalog.title(i).strip()))
    if main:
        keys.append(normalise(main.group(1)))
    return [k for k in dict.fromkeys(keys) if k]


def _quoted(text: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for pattern in _QUOTED:
        found += [(m.start(), m.group(1).strip()) for m in pattern.finditer(text)]
    return [q for _, q in sorted(found) if q]


def cited_items(
    text: str,
    history: Sequence[int],
    catalog: Catalog,
    *,
    item: int | None = None,
    min_chars: int = 3,
) -> Citations:
    """The history items ``text`` names and its hallucinated citations (rules in the module docstring).

    Args:
        text: the explanation.
        history: the history shown to the explainer (internal item indices).
        catalog: titles and title resolution.
        item: the candidate item (its title is neither a citation nor a hallucination).
        min_chars: shortest normalised title cited without quotes.
    """
    hist = list(dict.fromkeys(int(h) for h in history))
    hist_set = set(hist)
    norm = f" {normalise(text)} "
    # (key, item or None for the candidate), longest first so a longer title masks its prefixes.
    entries = [(k, h) for h in hist for k in _keys(catalog, h)]
    if item is not None:
        entries += [(k, None) for k in _keys(catalog, item)]
    entries.sort(key=lambda e: (-len(e[0]), e[1] is not None))
    found: set[int] = set()
    for key, h in entries:
        if h is not None and len(key) < min_chars:
            continue
        needle = f" {key} "
        if needle in norm:
            if h is not None:
                found.add(h)
            norm = norm.replace(needle, " \x00 ")
    hallucinated: dict[str, str] = {}
    for q in _quoted(text):
        idx = catalog.resolve(q)
        if idx is not None and idx in hist_set:
            found.add(idx)
        elif idx is not None and idx == item:
            continue
        elif idx is not None or q[0].isupper() or q[0].isdigit():
            hallucinated.setdefault(normalise(q) or q, q)
    return Citations(items=tuple(h for h in hist if h in found), hallucinated=tuple(hallucinated.values()))


# -- counterfactual fidelity -------------------------------------------------------------------------


def _standing(row: np.ndarray, item: int, pool: np.ndarray, measure: str) -> float:
    """``rank / n_items`` (rank among ``pool``, 0 = best, ties to the smaller index) or the score."""
    s = float(row[item])
    if measure == "score":
        return s
    others = row[pool]
    better = int(np.sum(others > s)) + int(np.sum((others == s) & (pool < item)))
    return better / row.shape[0]


def counterfactual_fidelity(
    target: Any,
    history: Sequence[int],
    item: int,
    cited: Sequence[int],
    *,
    rng: np.random.Generator,
    like: bool = True,
    draws: int = 5,
    measure: Measure = "rank",
) -> dict[str, Any]:
    """Does deleting the cited history items move ``item`` the way the explanation implies?

    Let ``H`` be the history, ``C ⊆ H`` the cited items (``k = |C|``), ``R_1..R_D`` (``D = draws``)
    random ``k``-subsets of ``H \\ C`` (of ``H`` when ``H \\ C`` has fewer than ``k`` items, so
    citing the whole history earns nothing), and ``σ = +1`` for a *like* decision, ``−1`` for a
    *dislike*. With ``f``'s scores for each history (``target.scores``), the item's *standing* and
    its *drop* after deleting a set ``S`` are

    * ``measure="rank"``: ``rank_f(item | H) / n_items`` where the rank counts the items unseen in
      the original ``H`` (a fixed pool, 0 = best) that ``f`` scores higher, and
      ``drop(S) = (rank(H \\ S) − rank(H)) / n_items`` (positive when the item falls);
    * ``measure="score"``: ``drop(S) = f(item | H) − f(item | H \\ S)``.

    Then ::

        fidelity = σ · ( drop(C) − (1/D) Σ_d drop(R_d) )

    A *like* explanation cites the reasons the item ranks high, so deleting them should make it fall
    (positive drop); a *dislike* explanation cites why it ranks low, so deleting them should lift it
    (negative drop), hence ``σ = −1``. Subtracting the random baseline removes the effect of merely
    shortening the history. Deleting every item scores the empty history (the target handles it).
    With nothing cited the fidelity is defined as 0.0 and ``cites`` is 0.

    Returns:
        ``{"cites", "n_cited", "measure", "sign", "standing_before", "standing_cited",
        "standing_random", "drop_cited", "drop_random", "random_sets", "fidelity"}`` (JSON-ready).
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    if draws < 0:
        raise ValueError(f"draws must be ≥ 0, got {draws}")
    hist = [int(h) for h in history]
    distinct = list(dict.fromkeys(hist))
    cut = [h for h in distinct if h in set(int(c) for c in cited)]
    sign = 1 if like else -1
    if not cut:
        return {"cites": 0, "n_cited": 0, "measure": measure, "sign": sign, "fidelity": 0.0}
    k = len(cut)
    rest = [h for h in distinct if h not in cut]
    source = rest if len(rest) >= k else distinct
    random_sets = [
        sorted(int(x) for x in rng.choice(np.asarray(source), size=k, replace=False)) for _ in range(draws)
    ]
    variants = [hist, [h for h in hist if h not in cut]]
    variants += [[h for h in hist if h not in set(r)] for r in random_sets]
    scores = np.asarray(target.scores(variants), dtype=np.float64)
    pool = np.setdiff1d(np.arange(scores.shape[1]), np.asarray(distinct))
    standing = [_standing(row, int(item), pool, measure) for row in scores]

    def drop(after: float) -> float:
        # rank: a larger rank is worse; score: a smaller score is worse. Both: positive = fell.
        return after - standing[0] if measure == "rank" else standing[0] - after

    drop_cited = drop(standing[1])
    drop_random = [drop(s) for s in standing[2:]]
    baseline = float(np.mean(drop_random)) if drop_random else 0.0
    return {
        "cites": 1,
        "n_cited": k,
        "measure": measure,
        "sign": sign,
        "standing_before": standing[0],
        "standing_cited": standing[1],
        "standing_random": standing[2:],
        "drop_cited": drop_cited,
        "drop_random": baseline,
        "random_sets": random_sets,
        "fidelity": float(sign * (drop_cited - baseline)),
    }


# -- stated decision ---------------------------------------------------------------------------------

_FIRST_SENTENCE = re.compile(r"^(.*?)(?:[.!?\n]\s|$)", re.DOTALL)
_LEAD = re.compile(
    r"^\W*(?:(?:answer|decision|recommendation|verdict|prediction|recommend)\W{0,3}\s*)?(yes|no)\b",
    re.IGNORECASE,
)
_VERB = r"(?:recommend|like|enjoy|love|appreciate|suit|fit|want|be (?:interested|a good))"
_NEG = re.compile(
    rf"\b(?:would|will|should|does|do|did|could|might)(?:n['’]?t|\s+not)\s+(?:\w+\s+)?{_VERB}"
    rf"|\bwon['’]?t\s+(?:\w+\s+)?{_VERB}"
    r"|\bnot\s+(?:be\s+)?(?:recommended|a good|likely|suited|a (?:good |strong )?(?:fit|match|choice)|interested|for)\b"
    r"|\bunlikely\b|\bpoor (?:fit|match|choice)\b",
    re.IGNORECASE,
)
_POS = re.compile(
    rf"\b(?:would|will|should|do|does|could|might)\s+(?:\w+\s+)?{_VERB}"
    r"|\brecommend(?:ed|s)?\b|\blikely to (?:enjoy|like|love|appreciate)\b"
    r"|\b(?:good|great|strong) (?:fit|match|choice)\b",
    re.IGNORECASE,
)


def parse_decision(text: str | None) -> int | None:
    """The decision an explanation states at its start: 1 (recommend), 0 (not), or ``None``.

    Rule: a leading ``Yes``/``No`` (optionally after ``Answer:``, ``Decision:``, ``Recommend:``…)
    decides; otherwise the first sentence is searched, negative
    phrases first ("would not recommend", "won't enjoy", "unlikely", "not a good fit"), then
    positive ones ("would recommend", "will enjoy", "likely to like", "a good fit").
    """
    if not text or not text.strip():
        return None
    lead = _LEAD.match(text)
    if lead:
        return 1 if lead.group(1).lower() == "yes" else 0
    m = _FIRST_SENTENCE.match(text.strip())
    first = m.group(1) if m else text
    if _NEG.search(first):
        return 0
    if _POS.search(first):
        return 1
    return None
