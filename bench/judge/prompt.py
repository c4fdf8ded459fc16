"""The judge's contract and rubric: what a judge sees, what it returns, and how its grade is read.

A *judge* grades one explanation of the target's decision on a four-level rubric:

* **0** — the explanation states the wrong decision (it disagrees with the target's Yes/No);
* **1** — right decision, but the explanation is missing, too thin, off the point, or asserts
  things that are not true of the history or the item;
* **2** — right decision, the explanation agrees with the history and the item, but says little
  that would convince or inform the user;
* **3** — right decision, the explanation summarises the patterns of the history and shows how the
  item fits (or does not fit) them.

The judge sees the history titles, the item, the target's decision (``Yes``/``No``) and the
explanation, and is told that length must not change the grade. It answers ``GRADE: n``;
:func:`parse_grade` reads that (and a few looser forms). Judges always decode at temperature 0.

``PROMPT_VERSION`` and ``PARSER_VERSION`` are part of every cache key: bump the first whenever the
wording below changes and the second whenever :func:`parse_grade` changes, so stale grades are
never reused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: Bump when SYSTEM_PROMPT, USER_TEMPLATE or render() change (invalidates cached grades).
PROMPT_VERSION = 1
#: Bump when parse_grade() reads replies differently (cached grades were parsed by the old rule).
PARSER_VERSION = 1
GRADES: tuple[int, ...] = (0, 1, 2, 3)
#: The answer strings the log-likelihood judge compares (the same form the prompt asks for).
GRADE_ANSWERS: tuple[str, ...] = tuple(f"GRADE: {g}" for g in GRADES)

SYSTEM_PROMPT = (
    "You are a strict, impartial reviewer. A recommender system decided whether to recommend a "
    "movie to a user, and an assistant wrote an explanation of that decision. You grade the "
    "explanation on a scale from 0 to 3."
)

USER_TEMPLATE = """\
The user's viewing history (oldest first):
{history}

Candidate movie: {item}
The recommender's decision: {decision} ({decision_words})

Explanation to grade:
<<<
{explanation}
>>>

How to grade:
- GRADE: 0 if the explanation argues for the opposite decision (it says {wrong} when the recommender said {decision}).
- GRADE: 1 if the decision is right but the explanation is empty, vague, beside the point, or claims facts that are false for this history or this movie (for example, it names movies the user never watched).
- GRADE: 2 if the decision is right and the explanation fits the history and the movie, but it is generic: it would hardly convince or inform the user.
- GRADE: 3 if the decision is right and the explanation first sums up what the history has in common (genres, themes, era, style) and then shows how the candidate matches or clashes with that.
Judge the content only. A long explanation is not better than a short one, and a short one is not worse; repetition and filler earn nothing.

Reply with one line of the form GRADE: n, where n is 0, 1, 2 or 3."""


@dataclass(frozen=True)
class JudgeItem:
    """One explanation to grade: the history titles, the item's title, f's decision, the text."""

    history: tuple[str, ...]
    item: str
    decision: str  # "Yes" (f recommends the item) or "No"
    explanation: str

    def __post_init__(self) -> None:
        if self.decision not in ("Yes", "No"):
            raise ValueError(f"decision must be 'Yes' or 'No', got {self.decision!r}")


@dataclass(frozen=True)
class JudgeResult:
    """A judge's verdict: ``grade`` in 0..3, or ``None`` when the reply held no readable grade.

    ``transcript`` is the full exchange (prompt and reply, or the four log-likelihoods), kept for the
    samples file so every grade can be audited. ``cached`` says the result came from the cache.
    ``ungraded``: the judge could not be asked (its server kept failing after the bounded retries);
    such a result is never cached, so a rerun asks again for exactly these.
    """

    grade: int | None
    transcript: str
    cached: bool = False
    ungraded: bool = False


@runtime_checkable
class Judge(Protocol):
    """Anything that grades explanations.

    ``id`` names the judge on the board (e.g. ``local:smollm2-135m/loglik``); ``fingerprint``
    identifies everything else that changes its grades (weights hash, decoding settings) and goes
    into the cache key with ``id``.
    """

    id: str
    fingerprint: str

    def grade(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """One result per item, same order."""
        ...


def render(item: JudgeItem) -> str:
    """The user message for ``item`` (the rubric with the case filled in)."""
    history = "\n".join(f"{k}. {t}" for k, t in enumerate(item.history, 1)) or "(empty)"
    yes = item.decision == "Yes"
    return USER_TEMPLATE.format(
        history=history,
        item=item.item,
        decision=item.decision,
        decision_words="it recommends the movie" if yes else "it does not recommend the movie",
        wrong="No" if yes else "Yes",
        explanation=item.explanation.strip() or "(no explanation)",
    )


def messages(item: JudgeItem) -> list[dict[str, str]]:
    """Chat messages (system + user) for an OpenAI-style API."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": render(item)}]


def canonical_prompt(item: JudgeItem) -> str:
    """System and user text joined: the judge-independent prompt text hashed into cache keys."""
    return f"{SYSTEM_PROMPT}\n\n{render(item)}"


# -- reading a grade ---------------------------------------------------------------------------------

_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3}
_NUM = r"(\d+|zero|one|two|three)"
# "GRADE: 2", "Grade - 2", "grade=2", "Rating: 3/3", "Score 1", "level 2", "**Grade:** 2".
# Not "GRADE: 0 if ...": that is the rubric echoed back, which small models often do.
_LABELLED = re.compile(
    rf"\b(?:grade|rating|score|level)\b\s*(?:\*\*|__)?\s*(?:is|of)?\s*[:=\-–—]?\s*(?:\*\*|__)?\s*{_NUM}\b"
    r"(?!\.\d)(?!\s+(?:if|means|when|for)\b)",
    re.IGNORECASE,
)
_BOLD = re.compile(r"\*\*\s*(\d+)\s*(?:/\s*3\s*)?\*\*")
_LONE = re.compile(r"^[\s*_`\"'(\[]*(\d+)\s*(?:/\s*3)?[\s*_`\"')\].!]*$")


def _value(token: str) -> int | None:
    token = token.lower()
    return _WORDS[token] if token in _WORDS else int(token)


def parse_grade(text: str | None) -> int | None:
    """The grade in a judge's reply, or ``None`` when there is none or it is ambiguous.

    Rule: collect every *labelled* grade (``GRADE: 2``, ``Grade - 2``, ``Rating: 3/3``,
    ``score 1``, ``level two``) and every bold number (``**2**``); if there are none, accept a reply
    that is nothing but one number (``"2"``, ``"2/3"``, ``"**3**."``). A labelled number followed by
    "if", "means", "when" or "for" is the rubric echoed back (``"GRADE: 0 if the explanation..."``)
    and is skipped. The answer is that number
    when all collected numbers agree and lie in 0..3; different numbers (``GRADE: 1 ... GRADE: 3``)
    or an out-of-range one (``GRADE: 5``) give ``None``. Unlabelled digits inside prose (``"the user
    watched 3 comedies"``) are never read as a grade.
    """
    if not text:
        return None
    found = [_value(m.group(1)) for m in _LABELLED.finditer(text)]
    found += [int(m.group(1)) for m in _BOLD.finditer(text)]
    if not found:
        m = _LONE.match(text)
        if m:
            found = [int(m.group(1))]
    values = set(found)
    if len(values) != 1:
        return None
    (value,) = values
    return value if value in GRADES else None
