"""How far to trust a judge: its agreement with a hand-graded set of explanations.

The shipped set ``tasks/judge_check/ml-100k.jsonl`` holds 24 explanations written for real
MovieLens-100k titles, six per rubric level, with lengths mixed so that length does not predict the
grade (short grade-3 and long grade-1 cases). One JSON object per line::

    {"id", "history": [titles], "item": title, "decision": "Yes"|"No",
     "explanation": text, "grade": 0..3, "why": one sentence}

:func:`judge_check` reports, with ``y`` the gold grades and ``ŷ`` the judge's (an unreadable reply
counts as grade 0, the task's policy, and is counted in ``parse_failures``):

* ``accuracy`` = mean(ŷ = y), and ``per_level_accuracy[k]`` = mean(ŷ = y | y = k);
* ``kappa`` — Cohen's κ = (p_o − p_e)/(1 − p_e), unweighted; ``kappa_quadratic`` — with weights
  (i − j)²/9 (near misses cost less), both by :func:`sklearn.metrics.cohen_kappa_score` over the
  labels 0..3;
* ``spearman`` — Spearman's ρ between y and ŷ (``None`` when either is constant);
* ``confusion`` — 4×4 counts, rows = gold grade, columns = judge grade;
* ``length_spearman_gold`` / ``length_spearman_judge`` — ρ between word count and the gold / the
  judge's grades: a judge whose second figure is far above the first rewards length.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import DataError
from bench.judge.prompt import GRADES, Judge, JudgeItem

log = logging.getLogger(__name__)

_FIELDS = ("id", "history", "item", "decision", "explanation", "grade")


@dataclass(frozen=True)
class GradedExample:
    """One hand-graded explanation."""

    id: str
    item: JudgeItem
    grade: int
    why: str = ""


def default_path() -> Path:
    """The shipped graded set (``tasks/judge_check/ml-100k.jsonl`` beside the task YAMLs)."""
    from bench.resources import tasks_dir

    return tasks_dir() / "judge_check" / "ml-100k.jsonl"


def load_examples(path: Path | str | None = None) -> list[GradedExample]:
    """Read and validate a graded set (default: the shipped one).

    Raises:
        DataError: a missing file, a malformed line, a missing field or an out-of-range grade
            (names the file and line).
    """
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise DataError(
            f"no graded set at {path}", fix="pass the path of a JSONL file of graded explanations"
        )
    out: list[GradedExample] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"not JSON: {exc}", where=where, fix="one JSON object per line") from None
        missing = [f for f in _FIELDS if f not in rec]
        if missing:
            raise DataError(f"missing field(s) {', '.join(missing)}", where=where, fix=f"give {_FIELDS}")
        if rec["grade"] not in GRADES or rec["decision"] not in ("Yes", "No"):
            raise DataError(
                f"grade {rec['grade']!r} / decision {rec['decision']!r} out of range",
                where=where,
                fix="grade is 0..3 and decision is Yes or No",
            )
        item = JudgeItem(
            history=tuple(str(t) for t in rec["history"]),
            item=str(rec["item"]),
            decision=rec["decision"],
            explanation=str(rec["explanation"]),
        )
        out.append(GradedExample(str(rec["id"]), item, int(rec["grade"]), str(rec.get("why", ""))))
    if not out:
        raise DataError(f"{path} holds no examples", fix="add graded explanations, one per line")
    return out


def _spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(set(a)) < 2 or len(set(b)) < 2:
        return None
    rho = float(spearmanr(a, b).statistic)
    return None if math.isnan(rho) else rho


def _kappa(y: Sequence[int], p: Sequence[int], weights: str | None) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    # Both raters constant on the same grade: p_e = 1 and κ is undefined (sklearn gives NaN).
    value = float(cohen_kappa_score(y, p, labels=list(GRADES), weights=weights))
    return None if math.isnan(value) else value


def judge_check(judge: Judge, examples: Sequence[GradedExample]) -> dict[str, Any]:
    """Grade ``examples`` with ``judge`` and measure agreement with the gold grades (module docstring)."""
    t0 = time.perf_counter()
    results = judge.grade([ex.item for ex in examples])
    seconds = time.perf_counter() - t0
    gold = [ex.grade for ex in examples]
    raw = [r.grade for r in results]
    pred = [g if g is not None else 0 for g in raw]
    lengths = [len(ex.item.explanation.split()) for ex in examples]
    confusion = np.zeros((len(GRADES), len(GRADES)), dtype=int)
    for y, p in zip(gold, pred, strict=True):
        confusion[y, p] += 1
    per_level = {
        str(k): (float(confusion[k, k] / confusion[k].sum()) if confusion[k].sum() else None) for k in GRADES
    }
    return {
        "judge": judge.id,
        "n": len(examples),
        "accuracy": float(np.mean(np.asarray(gold) == np.asarray(pred))),
        "kappa": _kappa(gold, pred, None),
        "kappa_quadratic": _kappa(gold, pred, "quadratic"),
        "spearman": _spearman(gold, pred),
        "confusion": confusion.tolist(),
        "per_level_accuracy": per_level,
        "parse_failures": sum(g is None for g in raw),
        "mean_grade_gold": float(np.mean(gold)),
        "mean_grade_judge": float(np.mean(pred)),
        "length_spearman_gold": _spearman(lengths, gold),
        "length_spearman_judge": _spearman(lengths, pred),
        "seconds": round(seconds, 2),
        "samples": [
            {"id": ex.id, "gold": ex.grade, "judge": g, "words": w, "transcript": r.transcript}
            for ex, g, w, r in zip(examples, raw, lengths, results, strict=True)
        ],
    }


def run_judge_check(
    judge_spec: str | Mapping[str, Any],
    *,
    model: str | None = None,
    api_key_env: str | None = None,
    device: str = "auto",
    mode: str = "loglik",
    path: Path | str | None = None,
) -> dict[str, Any]:
    """Build the judge from ``judge_spec`` (see :func:`bench.judge.make_judge`; a URL needs
    ``model``) and run :func:`judge_check` on the graded set at ``path`` (default: the shipped one).
    Nothing is cached: the check measures the judge as it is now."""
    from bench.judge import make_judge

    examples = load_examples(path)
    judge = make_judge(judge_spec, model=model, api_key_env=api_key_env, device=device, mode=mode)
    result = judge_check(judge, examples)
    result["graded_set"] = str(Path(path) if path is not None else default_path())
    return result


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_report(result: Mapping[str, Any]) -> str:
    """A Markdown report of a :func:`judge_check` result."""
    lines = [
        f"## Judge check: `{result['judge']}`",
        "",
        f"{result['n']} hand-graded explanations"
        + (f" from `{result['graded_set']}`" if result.get("graded_set") else "")
        + f"; judged in {result['seconds']:.1f} s.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| accuracy (exact grade) | {_fmt(result['accuracy'])} |",
        f"| Cohen's κ (unweighted) | {_fmt(result['kappa'])} |",
        f"| Cohen's κ (quadratic weights) | {_fmt(result['kappa_quadratic'])} |",
        f"| Spearman ρ (gold vs judge) | {_fmt(result['spearman'])} |",
        f"| unreadable replies (counted as grade 0) | {result['parse_failures']} |",
        f"| mean grade: gold / judge | {result['mean_grade_gold']:.2f} / {result['mean_grade_judge']:.2f} |",
        f"| ρ(length, grade): gold / judge | {_fmt(result['length_spearman_gold'])} / "
        f"{_fmt(result['length_spearman_judge'])} |",
        "",
        "Per-level accuracy: "
        + ", ".join(f"grade {k}: {_fmt(v)}" for k, v in result["per_level_accuracy"].items()),
        "",
        "Confusion matrix (rows = gold grade, columns = judge grade):",
        "",
        "| gold \\ judge | 0 | 1 | 2 | 3 |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {k} | " + " | ".join(str(c) for c in row) + " |" for k, row in enumerate(result["confusion"])
    ]
    return "\n".join(lines) + "\n"


def record_agreement(result: Mapping[str, Any], path: Path | None = None) -> Path:
    """Store a check's headline figures under the judge's id in ``tasks/judge_check/agreement.json``,
    where the leaderboard looks them up (so every board graded by this judge shows them)."""
    import datetime as _dt

    from bench.io import read_json, write_json

    path = Path(path) if path is not None else default_path().parent / "agreement.json"
    data = read_json(path) if path.exists() else {}
    data[str(result["judge"])] = {
        "accuracy": result["accuracy"],
        "kappa": result["kappa"],
        "weighted_kappa": result["kappa_quadratic"],
        "spearman": result["spearman"],
        "n": result["n"],
        "graded_set": Path(str(result.get("graded_set") or default_path())).name,
        "date": _dt.date.today().isoformat(),
    }
    write_json(path, data)
    return path
