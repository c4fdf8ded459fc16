"""The item catalog: internal item index <-> title, and free-text title resolution.

Explainers (LLMs especially) name items by title. :meth:`Catalog.resolve` maps such text back to
an internal index; text that resolves to ``None`` names no catalog item and counts as a
hallucinated item.

Normalisation (:func:`normalise`), applied to catalog titles and queries alike:

1. Unicode NFKC, then ``casefold``; surrounding whitespace stripped.
2. A trailing year in parentheses is dropped: ``"Heat (1995)"`` -> ``"heat"``.
3. A trailing article after a comma moves to the front: ``"Usual Suspects, The"`` ->
   ``"the usual suspects"``. Besides English ``the/a/an`` this covers the articles MovieLens files
   this way in other languages (``"Misérables, Les"`` -> ``"les misérables"``).
4. Apostrophes are deleted (``"Schindler's"`` -> ``"schindlers"``), ``&`` becomes ``and``, and
   every other punctuation or symbol character becomes a space.
5. Whitespace is collapsed, and one leading English article (``the``, ``a``, ``an``) is dropped
   (unless nothing would be left), so ``"The Usual Suspects"`` -> ``"usual suspects"``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

if TYPE_CHECKING:
    from bench.data.dataset import Dataset

#: Default minimum ``rapidfuzz.fuzz.ratio`` score (0-100) for a fuzzy match to count.
DEFAULT_FUZZY_THRESHOLD = 90.0

_TRAILING_YEAR_RE = re.compile(r"\s*[(\[]\s*\d{4}\s*[)\]]\s*$")
# Articles that titles carry after a comma ("Usual Suspects, The"); the non-English ones occur in
# MovieLens ("Misérables, Les", "Cérémonie, La", "Mépris, Le"). Only English ones are dropped later.
_TRAILING_ARTICLE_RE = re.compile(
    r"^(.*\S)\s*,\s*(the|an|a|les|la|le|l'|il|el|los|las|lo|die|der|das|den|det)$"
)
_LEADING_ARTICLE_RE = re.compile(r"^(?:the|an|a) (?=\S)")
_APOSTROPHES = str.maketrans("", "", "'\u2019\u2018\u02bc`\u00b4")
# A title's trailing parenthetical that is not a year is an alternative title:
# "Seven (Se7en)", "Contempt (Mépris, Le)", "Double vie de Véronique, La (Double Life of Veronique, The)".
_ALIAS_RE = re.compile(r"^(.*\S)\s*\(([^()]*[^\d()\s][^()]*)\)$")
_AKA_RE = re.compile(r"^\s*a\.?k\.?a\.?\s+", re.IGNORECASE)
# Tokens that number a title ("Toy Story 2", "Star Trek III"); a fuzzy match must agree on them.
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9"}
#: How many fuzzy candidates above the threshold are checked against the number rule.
_FUZZY_CANDIDATES = 5


def _punct_to_space(text: str) -> str:
    # unicodedata categories P* (punctuation) and S* (symbols); letters, digits and marks stay.
    return "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)


def normalise(text: str) -> str:
    """Normalise a title for matching (rules in the module docstring)."""
    s = unicodedata.normalize("NFKC", text).casefold().strip()
    s = _TRAILING_YEAR_RE.sub("", s)
    m = _TRAILING_ARTICLE_RE.match(s)
    if m:
        article = m.group(2)
        s = f"{article}{m.group(1)}" if article.endswith("'") else f"{article} {m.group(1)}"
    s = s.translate(_APOSTROPHES).replace("&", " and ")
    s = " ".join(_punct_to_space(s).split())
    dropped = _LEADING_ARTICLE_RE.sub("", s)
    return dropped or s


def _numbers(key: str) -> list[str]:
    """Number tokens of a normalised title, sorted; roman numerals ii-ix count as their digits."""
    return sorted(_ROMAN.get(t, t) for t in key.split() if t.isdigit() or t in _ROMAN)


def _year_of(text: str) -> int | None:
    m = re.search(r"[(\[]\s*(\d{4})\s*[)\]]\s*$", text.strip())
    return int(m.group(1)) if m else None


def _aliases(title: str) -> list[str]:
    """Alternative forms of a catalog title: its main part and the text of a trailing parenthetical."""
    stripped = _TRAILING_YEAR_RE.sub("", title.strip())
    m = _ALIAS_RE.match(stripped)
    if not m:
        return []
    return [m.group(1), _AKA_RE.sub("", m.group(2))]


class Catalog:
    """Item titles, genres and years, with title resolution.

    Resolution rule of :meth:`resolve`:

    1. **Exact**: the normalised text (see :func:`normalise`) equals a normalised catalog title.
       Full titles take precedence over aliases (the main part or the parenthetical of titles like
       ``"Seven (Se7en)"``). When several items share the matched normalised title, the one whose
       year equals a year written in the text (``"Cape Fear (1991)"``) wins; otherwise the
       **smallest index** wins.
    2. **Fuzzy**: otherwise ``rapidfuzz.process.extractOne`` with ``rapidfuzz.fuzz.ratio`` over
       the normalised titles and aliases; accepted only when the score is at least
       ``fuzzy_threshold`` (default **90** out of 100) and both carry the same number tokens
       (digits; roman numerals ii-ix read as digits), so a sequel never matches its original: ``"Toy Story 2"``
       scores 90 against ``"toy story"`` but is not accepted. The best-scoring acceptable
       candidate wins; ties go to the earlier entry (full titles before aliases, then smaller
       index), and the same year/smallest-index rule applies.
    3. Otherwise ``None``: the text names no catalog item (a hallucinated item).

    Args:
        titles: item titles, position = internal item index (``""`` = unknown, never matched).
        genres: per-item genres (default: none).
        years: per-item release years (default: unknown).
        fuzzy_threshold: minimum fuzzy score in ``[0, 100]``; ``100`` disables fuzzy matching
            beyond exact normalised equality.
    """

    def __init__(
        self,
        titles: Sequence[str],
        genres: Sequence[Sequence[str]] | None = None,
        years: Sequence[int | None] | None = None,
        *,
        fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD,
    ) -> None:
        if not 0 <= fuzzy_threshold <= 100:
            raise ValueError(f"fuzzy_threshold must be in [0, 100], got {fuzzy_threshold}")
        n = len(titles)
        if genres is not None and len(genres) != n:
            raise ValueError(f"genres has {len(genres)} entries for {n} titles")
        if years is not None and len(years) != n:
            raise ValueError(f"years has {len(years)} entries for {n} titles")
        self._titles = tuple(titles)
        self._genres = tuple(tuple(g) for g in genres) if genres is not None else ((),) * n
        self._years = tuple(years) if years is not None else (None,) * n
        self.fuzzy_threshold = float(fuzzy_threshold)
        self._normalised = tuple(normalise(t) for t in self._titles)

        # key -> item indices (ascending). Full titles are inserted first so that they win over
        # aliases both in the dict (setdefault) and in the fuzzy choice list (earlier on ties).
        self._index: dict[str, list[int]] = {}
        alias_index: dict[str, list[int]] = {}
        for i, key in enumerate(self._normalised):
            if key:
                self._index.setdefault(key, []).append(i)
        for i, title in enumerate(self._titles):
            for alias in _aliases(title):
                key = normalise(alias)
                if key and key not in self._index:
                    alias_index.setdefault(key, []).append(i)
        self._index.update(alias_index)
        self._keys: list[str] = list(self._index)
        self._key_items: list[list[int]] = list(self._index.values())
        self._fingerprint: str | None = None

    @classmethod
    def from_dataset(cls, dataset: Dataset, *, fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD) -> Catalog:
        """The catalog of ``dataset``'s items (titles, genres, years aligned with its item indices)."""
        return cls(dataset.titles, dataset.genres, dataset.years, fuzzy_threshold=fuzzy_threshold)

    def __len__(self) -> int:
        return len(self._titles)

    @property
    def titles(self) -> tuple[str, ...]:
        return self._titles

    def title(self, i: int) -> str:
        return self._titles[i]

    def genres(self, i: int) -> tuple[str, ...]:
        return self._genres[i]

    def year(self, i: int) -> int | None:
        return self._years[i]

    def normalised_title(self, i: int) -> str:
        return self._normalised[i]

    def _pick(self, items: list[int], text: str) -> int:
        if len(items) > 1:
            year = _year_of(text)
            if year is not None:
                for i in items:
                    if self._years[i] == year:
                        return i
        return items[0]

    def resolve(self, text: str) -> int | None:
        """The internal index of the item ``text`` names, or ``None`` (rule in the class docstring)."""
        key = normalise(text)
        if not key:
            return None
        items = self._index.get(key)
        if items is not None:
            return self._pick(items, text)
        if self.fuzzy_threshold >= 100 or not self._keys:
            return None
        # extract (not extractOne) so that a near-miss sequel can give way to the next candidate.
        hits = process.extract(
            key,
            self._keys,
            scorer=fuzz.ratio,
            processor=None,
            score_cutoff=self.fuzzy_threshold,
            limit=_FUZZY_CANDIDATES,
        )
        numbers = _numbers(key)
        for _, _, k in hits:
            if _numbers(self._keys[k]) == numbers:
                return self._pick(self._key_items[k], text)
        return None

    def resolve_many(self, texts: Iterable[str]) -> list[int | None]:
        """:meth:`resolve` for each text (repeated texts are resolved once)."""
        cache: dict[str, int | None] = {}
        out: list[int | None] = []
        for text in texts:
            if text not in cache:
                cache[text] = self.resolve(text)
            out.append(cache[text])
        return out

    def fingerprint(self) -> str:
        """sha256 of the titles (JSON list), to check that saved results match this catalog."""
        if self._fingerprint is None:
            payload = json.dumps(list(self._titles), ensure_ascii=False).encode("utf-8")
            self._fingerprint = hashlib.sha256(payload).hexdigest()
        return self._fingerprint
