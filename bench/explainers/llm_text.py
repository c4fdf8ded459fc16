"""Text in and out of the LLM explainers: answers written after a prompt, generated lists parsed.

Generated lists are split on ``;``, newlines and ``|``, with list numbering (``1.``, ``2)``, ``-``,
``*``, ``•``) removed from each piece. Ranking answers are matched to the shown candidates and
repaired (missing candidates appended in the order shown, repeated or foreign titles dropped; a
repaired answer has ``parse_ok=False``); item lists are resolved through the catalog (an unresolved
title is ``-1``, a hallucinated item).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from bench.answers import ItemList, Permutation, YesNo

_SPLIT = re.compile(r"\s*(?:;|\n|\|)\s*")
_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")


def answer_text(prompt: str, answer: str) -> str:
    """An answer as written right after ``prompt``: no leading space after a newline or space."""
    return answer if not prompt or prompt[-1].isspace() else " " + answer


def yes_no_answer(logp_yes: float, logp_no: float) -> YesNo:
    """A classification answer from the log-likelihoods of the Yes and No answers: "yes" when
    ``log P(Yes) > log P(No)``, ``score = sigmoid(log P(Yes) - log P(No))``. The one rule for every
    scorer of Yes/No answers (the LLM explainers, and lm-eval outputs brought back by
    :mod:`bench.lmeval`)."""
    ly, ln = float(logp_yes), float(logp_no)
    p_yes = 1.0 / (1.0 + math.exp(-(ly - ln))) if ln - ly < 700 else 0.0
    return YesNo(ly > ln, score=p_yes, raw=f"logP(yes)={ly:.4f} logP(no)={ln:.4f}")


def order_by_score(
    candidates: Sequence[int], titles: Sequence[str], scores: Sequence[float], sep: str
) -> Permutation:
    """The candidates ordered by a score each (highest first; ties keep the shown order), as a
    ranking answer whose ``raw`` is the titles in that order joined by ``sep``."""
    order = sorted(range(len(candidates)), key=lambda j: (-float(scores[j]), j))
    return Permutation([candidates[j] for j in order], raw=sep.join(titles[j] for j in order))


def parse_ranking(text: str, candidates: Sequence[int], titles: Sequence[str]) -> Permutation:
    """Match generated titles to the shown ``candidates`` (whose titles are ``titles``); repair and
    flag anything else."""
    from bench.data.catalog import Catalog

    cands = list(candidates)
    local = Catalog(list(titles))
    order: list[int] = []
    clean = True
    for piece in _SPLIT.split(text.strip()):
        piece = _NUMBERING.sub("", piece).strip().strip('"').strip()
        if not piece:
            continue
        j = local.resolve(piece)
        if j is None or cands[j] in order:
            clean = False
            continue
        order.append(cands[j])
    missing = [c for c in cands if c not in order]
    return Permutation(order + missing, raw=text, parse_ok=clean and not missing)


def parse_items(text: str, catalog: Any) -> ItemList:
    """The catalog items a generated list names, in order (``-1`` for a title that names none)."""
    pieces = [_NUMBERING.sub("", x).strip().strip('"') for x in _SPLIT.split(text.strip())]
    ids = [-1 if (r := catalog.resolve(x)) is None else int(r) for x in pieces if x]
    return ItemList(ids, raw=text, parse_ok=bool(ids))
