"""LANE's preference extraction: five short preferences per history, written by the suite's LLM
in a forced JSON format, checked for usability and cached on disk.

Prompt: ``tasks/prompts/lane_preferences.j2`` (LANE's structure — role, task, requirements, the
answer format, the history as titles — in recxbench's own words), rendered in a sandboxed Jinja2
environment with the last ``max_titles`` titles of the history (LANE: 200).

Two modes (``mode``, part of the prompt hash):

* ``"free"`` — LANE's protocol: :func:`bench.llm.forced_json.fill_json` with ``distinct=True`` (no
  two values start with the same token) and the shown titles' first tokens banned as starts,
  ``max_value_tokens`` per value, many histories per forward pass;
* ``"lexicon"`` — the five phrases of ``tasks/prompts/lane_lexicon_<lexicon>.txt`` the LLM scores
  highest for the history against a history-free prompt (``calibration``), skipping phrases that
  are unusable for it (:mod:`bench.llm.preference_lexicon`; a deviation from LANE, see
  docs/LANE.md: greedy free text from a 135M model is mostly titles).

A preference is **usable** when (:func:`usable_flags`), after :func:`bench.data.catalog.normalise`
(case, punctuation, years, articles):

1. it has a content word (three or more letters, not a stop word such as "the", "and");
2. it is not a duplicate of an earlier preference of the same user;
3. it is not a copy of a shown title: its words are not a contiguous run of a title's words (a
   title or a fragment of one: "Star Wars", "Up a Hill" of "The Englishman Who Went Up a Hill…"),
   and no title whose words occur contiguously in it makes up half or more of its words ("Star
   Wars movies" is a copy; "space operas such as Star Wars and Alien" is not).

Unusable preferences are kept in the record (the explainer masks them out of the attention); the
share of histories with five usable preferences and the repair/drop counts are reported.

Cache: one JSON file per history under
``$RECXBENCH_HOME/lane-preferences/<backbone sha256[:16]>-<prompt hash[:16]>/<history hash>.json``,
the prompt hash covering the template text, every decoding parameter and the backbone's dtype; the history is keyed by
its titles. :attr:`PreferenceExtractor.hits` / ``misses`` count reads and new extractions (the
signal tests check reuse by).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import wheels
from bench.data.catalog import normalise
from bench.errors import UserError
from bench.io import atomic_write_text
from bench.resources import tasks_dir

log = logging.getLogger(__name__)

#: words that alone make no preference
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "are",
        "was",
        "his",
        "her",
        "its",
        "their",
        "who",
        "what",
        "when",
        "into",
    ]
)
_MODES = ("free", "lexicon")
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


@dataclass(frozen=True)
class Preferences:
    """The preferences extracted from one history."""

    values: tuple[str, ...]
    usable: tuple[bool, ...]
    #: values cleaned or cut at the token limit
    repaired: int = 0
    #: values empty after cleaning
    dropped: int = 0

    @property
    def complete(self) -> bool:
        """All preferences usable."""
        return all(self.usable)


def usable_flags(values: Sequence[str], titles: Sequence[str]) -> tuple[bool, ...]:
    """Whether each value is a usable preference (rules in the module docstring)."""
    title_words = [w for w in (normalise(t).split() for t in titles) if w]
    seen: set[str] = set()
    out = []
    for value in values:
        key = normalise(value) if value else ""
        words = key.split()
        content = any(len(w) >= 3 and w.isalpha() and w not in _STOP for w in words)
        ok = content and key not in seen
        if ok:
            for tw in title_words:
                n, m = len(tw), len(words)
                title_in_value = any(words[i : i + n] == tw for i in range(m - n + 1))
                value_in_title = any(tw[i : i + m] == words for i in range(n - m + 1))
                if value_in_title or (title_in_value and 2 * n >= m):
                    ok = False
                    break
        seen.add(key)
        out.append(ok)
    return tuple(out)


def render_template(name: str, **values: Any) -> str:
    """Render ``tasks/prompts/<name>`` in a sandboxed Jinja2 environment (strict undefined)."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    path = tasks_dir() / "prompts" / name
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    return env.from_string(path.read_text(encoding="utf-8")).render(**values).strip()


def template_sha256(name: str) -> str:
    return hashlib.sha256((tasks_dir() / "prompts" / name).read_bytes()).hexdigest()


class PreferenceExtractor:
    """Extracts ``n`` preferences per history with ``backbone`` (see the module docstring)."""

    template = "lane_preferences.j2"

    def __init__(
        self,
        backbone: Any,
        *,
        n: int = 5,
        max_titles: int = 200,
        max_value_tokens: int = 12,
        batch_size: int = 16,
        mode: str = "free",
        lexicon: str = "movies",
        calibration: float = 1.0,
        cache_root: Path | None = None,
    ) -> None:
        if mode not in _MODES:
            raise UserError(f"unknown preference_mode {mode!r}", fix=f"use one of: {', '.join(_MODES)}")
        self.backbone, self.n, self.max_titles = backbone, int(n), int(max_titles)
        self.max_value_tokens, self.batch_size = int(max_value_tokens), int(batch_size)
        self.mode, self.calibration = mode, float(calibration)
        self.keys = [f"Preference{i}" for i in range(1, self.n + 1)]
        params: dict[str, Any] = {
            "template": template_sha256(self.template),
            "n": self.n,
            "max_titles": self.max_titles,
            # bf16 (CUDA) and fp32 (CPU) can pick differently: a cache never mixes them
            "dtype": str(getattr(backbone, "dtype", "float32")),
        }
        if mode == "free":
            params |= {
                "max_value_tokens": self.max_value_tokens,
                "distinct": True,
                "decoder": "forced-json/2, distinct starts, no title starts",
            }
        else:
            from bench.llm.preference_lexicon import load_lexicon

            self.lexicon_name, self.lexicon = lexicon, load_lexicon(lexicon)
            params |= {"mode": mode, "lexicon": list(self.lexicon), "calibration": self.calibration}
        self._null: Any = None
        self.prompt_hash = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        root = cache_root if cache_root is not None else wheels.cache_root() / "lane-preferences"
        self.directory = root / f"{str(backbone.sha256)[:16]}-{self.prompt_hash[:16]}"
        self.hits = 0
        self.misses = 0
        self.seconds = 0.0  # wall time of the extractions that ran (cache misses)

    def prompt(self, titles: Sequence[str]) -> str:
        from bench.llm.chat import format_prompt

        shown = self.shown(titles)
        text = render_template(self.template, titles=shown, n=self.n, n_word=_WORDS.get(self.n, str(self.n)))
        return format_prompt(self.backbone, text)

    def shown(self, titles: Sequence[str]) -> list[str]:
        """The titles the prompt shows: the last ``max_titles``."""
        return list(titles)[-self.max_titles :] if self.max_titles else list(titles)

    def _path(self, titles: Sequence[str]) -> Path:
        shown = self.shown(titles)
        digest = hashlib.sha256("\x1f".join(shown).encode("utf-8")).hexdigest()
        return self.directory / f"{digest[:32]}.json"

    def extract(self, histories: Sequence[Sequence[str]]) -> list[Preferences]:
        """Preferences of each history (a list of titles, oldest first), from the cache when known."""
        out: list[Preferences | None] = [None] * len(histories)
        todo: dict[Path, list[int]] = {}
        for i, titles in enumerate(histories):
            path = self._path(titles)
            if path.is_file():
                data = _from_json(json.loads(path.read_text(encoding="utf-8")))
                # usability is recomputed, never read back: the cache holds only what the LLM wrote
                data["usable"] = usable_flags(data["values"], self.shown(titles))
                out[i] = Preferences(**data)
                self.hits += 1
            else:
                todo.setdefault(path, []).append(i)
        if todo:
            paths = list(todo)
            firsts = [todo[p][0] for p in paths]
            t0 = time.perf_counter()
            made = (
                self._lexicon(histories, firsts) if self.mode == "lexicon" else self._free(histories, firsts)
            )
            self.seconds += time.perf_counter() - t0
            self.misses += len(paths)
            self.directory.mkdir(parents=True, exist_ok=True)
            for path, i, (values, repaired, dropped) in zip(paths, firsts, made, strict=True):
                usable = usable_flags(values, self.shown(histories[i]))
                prefs = Preferences(values, usable, repaired, dropped)
                atomic_write_text(path, json.dumps(asdict(prefs), ensure_ascii=False) + "\n")
                for j in todo[path]:
                    out[j] = prefs
        return [p for p in out if p is not None]

    def _free(self, histories: Sequence[Sequence[str]], rows: Sequence[int]) -> list[tuple[Any, int, int]]:
        """LANE's free text in the forced JSON format: ``(values, repaired, dropped)`` per row."""
        from bench.llm.forced_json import fill_json

        filled = fill_json(
            self.backbone,
            [self.prompt(histories[i]) for i in rows],
            self.keys,
            max_value_tokens=self.max_value_tokens,
            batch_size=self.batch_size,
            distinct=True,
            avoid=[self.shown(histories[i]) for i in rows],
        )
        return [(tuple(f.values[k] for k in self.keys), len(f.repaired), len(f.dropped)) for f in filled]

    def answer_start(self) -> str:
        """The forced start of the JSON answer, up to the first value."""
        return "{" + json.dumps(self.keys[0]) + ': "'

    def _lexicon(self, histories: Sequence[Sequence[str]], rows: Sequence[int]) -> list[tuple[Any, int, int]]:
        """Lexicon phrases the LLM prefers for each history (:mod:`bench.llm.preference_lexicon`)."""
        from bench.llm.preference_lexicon import choose, phrase_logprobs

        def score(prompts: list[str]) -> Any:
            return phrase_logprobs(self.backbone, prompts, self.lexicon, batch_size=self.batch_size)

        if self._null is None:  # the history-free prompt, once per extractor
            self._null = score([self.prompt([]) + self.answer_start()])[0]
        cond = score([self.prompt(histories[i]) + self.answer_start() for i in rows])
        shown = [self.shown(histories[i]) for i in rows]
        picked = choose(
            cond - self.calibration * self._null,
            self.lexicon,
            self.n,
            lambda r, values: usable_flags(values, shown[r]),
        )
        return [(values, 0, sum(not v for v in values)) for values in picked]

    def info(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "prompt_hash": self.prompt_hash[:16],
            "n": self.n,
            "max_titles": self.max_titles,
            "max_value_tokens": self.max_value_tokens,
            "mode": self.mode,
            **(
                {"lexicon": self.lexicon_name, "calibration": self.calibration}
                if self.mode == "lexicon"
                else {}
            ),
            "cache": {"directory": self.directory.name, "hits": self.hits, "misses": self.misses},
            "extraction_seconds": round(self.seconds, 2),
        }


def _from_json(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "values": tuple(data["values"]),
        "usable": tuple(bool(x) for x in data["usable"]),
        "repaired": int(data["repaired"]),
        "dropped": int(data["dropped"]),
    }


def summary(prefs: Sequence[Preferences]) -> dict[str, Any]:
    """Counts for ``results.json``: histories, with five usable preferences (count and share),
    values repaired, dropped (empty) and unusable (empty, duplicate or a title copy)."""
    n = len(prefs)
    complete = sum(p.complete for p in prefs)
    return {
        "histories": n,
        "five_usable": complete,
        "five_usable_share": round(complete / n, 4) if n else None,
        "values": sum(len(p.values) for p in prefs),
        "repaired": sum(p.repaired for p in prefs),
        "dropped": sum(p.dropped for p in prefs),
        "unusable": sum(len(p.usable) - sum(p.usable) for p in prefs),
    }
