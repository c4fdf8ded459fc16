"""A persistent cache of judge results, so each explanation is judged once per judge.

Key of one result:

    sha256( judge.id ‖ judge.fingerprint ‖ PROMPT_VERSION.PARSER_VERSION ‖ canonical_prompt(item) )

(``‖`` = a NUL separator; ``canonical_prompt`` is the system + user text, which holds the history,
the item, the decision and the explanation). So adding an explainer to a board judges only its
explanations, and changing the judge, its weights, its decoding settings, the rubric's wording or
the grade parser judges everything again.

Storage: one JSON Lines file per judge, ``<cache_dir>/<slug>-<sha8>.jsonl``, one line
``{"key", "grade", "transcript"}`` per result. Misses are sent to the judge in chunks of
``chunk`` items and every result is appended and flushed as soon as its chunk returns, so a judge
that fails half-way (a server going down) keeps what it had judged; the next run asks only for the
rest. A torn last line (a crash while writing) is skipped on load. Ungraded results (an HTTP judge
whose retries were spent) are returned but never stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from bench.io import fault_point
from bench.judge.prompt import PARSER_VERSION, PROMPT_VERSION, Judge, JudgeItem, JudgeResult, canonical_prompt

log = logging.getLogger(__name__)


def cache_key(judge: Judge, item: JudgeItem) -> str:
    """The sha256 hex key of ``item`` graded by ``judge`` (formula in the module docstring)."""
    parts = [judge.id, judge.fingerprint, f"v{PROMPT_VERSION}.{PARSER_VERSION}", canonical_prompt(item)]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "judge"


class CachedJudge:
    """Wraps a :class:`~bench.judge.prompt.Judge` with the on-disk cache (itself a Judge).

    Args:
        judge: the judge to ask on cache misses.
        cache_dir: directory of the cache files (created on first write).
        chunk: misses sent to the judge per call (results are saved after each call).
    """

    def __init__(self, judge: Judge, cache_dir: Path | str, *, chunk: int = 8) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be ≥ 1, got {chunk}")
        self.judge = judge
        self.cache_dir = Path(cache_dir)
        self.chunk = int(chunk)
        self.hits = 0
        self.misses = 0
        self._memory: dict[str, JudgeResult] | None = None
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.judge.id

    @property
    def fingerprint(self) -> str:
        return self.judge.fingerprint

    @property
    def path(self) -> Path:
        """This judge's cache file (judge id and fingerprint both select it)."""
        digest = hashlib.sha256(f"{self.judge.id}\0{self.judge.fingerprint}".encode()).hexdigest()[:8]
        return self.cache_dir / f"{_slug(self.judge.id)}-{digest}.jsonl"

    def _load(self) -> dict[str, JudgeResult]:
        if self._memory is not None:
            return self._memory
        memory: dict[str, JudgeResult] = {}
        if self.path.is_file():
            with self.path.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    try:
                        rec = json.loads(line)
                        grade = rec["grade"]
                        memory[rec["key"]] = JudgeResult(
                            grade=None if grade is None else int(grade),
                            transcript=str(rec["transcript"]),
                            cached=True,
                        )
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                        log.warning("judge cache %s: skipping unreadable line %d", self.path, n)
        self._memory = memory
        return memory

    def _append(self, pairs: Sequence[tuple[str, JudgeResult]]) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            for key, res in pairs:
                rec = {"key": key, "grade": res.grade, "transcript": res.transcript}
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()

    def grade(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """Cached results where present; the judge is asked only for the rest (saved as they come)."""
        memory = self._load()
        keys = [cache_key(self.judge, it) for it in items]
        out: list[JudgeResult | None] = [memory.get(k) for k in keys]
        # Identical cases (same key) are judged once.
        todo: dict[str, list[int]] = {}
        for i, (k, res) in enumerate(zip(keys, out, strict=True)):
            if res is None:
                todo.setdefault(k, []).append(i)
        hits = len(items) - sum(len(v) for v in todo.values())
        self.hits += hits
        self.misses += len(todo)
        pending = list(todo.items())
        for start in range(0, len(pending), self.chunk):
            part = pending[start : start + self.chunk]
            results = self.judge.grade([items[idx[0]] for _, idx in part])
            if len(results) != len(part):
                raise RuntimeError(f"judge {self.judge.id} returned {len(results)} results for {len(part)}")
            # an ungraded result (the server kept failing) is not a judgement: never cached, so the
            # next run asks for exactly these
            self._append([(k, r) for (k, _), r in zip(part, results, strict=True) if not r.ungraded])
            fault_point("judge:chunk")  # some grades stored, the rest not asked yet
            log.info(
                "judge %s: %d/%d judged", self.judge.id, min(start + self.chunk, len(pending)), len(pending)
            )
            for (k, idx), r in zip(part, results, strict=True):
                fresh = JudgeResult(grade=r.grade, transcript=r.transcript, ungraded=r.ungraded)
                if not r.ungraded:
                    memory[k] = JudgeResult(grade=r.grade, transcript=r.transcript, cached=True)
                for i in idx:
                    out[i] = fresh
        if todo:
            log.info("judge %s: %d cached, %d judged now", self.judge.id, hits, len(todo))
        left = sum(1 for r in out if r is not None and r.ungraded)
        if left:
            log.warning(
                "judge %s: %d of %d explanations left UNGRADED after the bounded retries (marked "
                "'[ungraded]' in the samples); rerun the same command to grade only these",
                self.judge.id,
                left,
                len(items),
            )
        return [r for r in out if r is not None]
