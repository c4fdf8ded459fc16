"""Explanation quality on the board: the judge card, the grade distribution and worked examples.

Built from a run's ``results["explanations"]`` block (one entry per explanation task: the judge's id,
its agreement with the shipped graded set, and a few examples) and from the task's ``rubric_eq_k``
results (the share of explanations graded k). Pure functions returning frozen dataclasses that the
HTML template and the Markdown writer render; every string is plain text that each format escapes.
A run without explanation tasks yields no views, and nothing is rendered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

import bench.report._model as m
from bench.report._model import NA, Field
from bench.report.tables import task_view

__all__ = [
    "CAUTION",
    "GRADES",
    "KAPPA_CAUTION",
    "NOT_CHECKED",
    "ExplanationView",
    "explanation_markdown",
    "explanation_view",
    "explanation_views",
]

#: Grade -> what it means (the rubric of :mod:`bench.judge.prompt`, in short).
GRADES = ("wrong decision", "insufficient / hallucinated", "acceptable", "satisfying")
#: Cohen's κ below this gets the caution line.
KAPPA_CAUTION = 0.2
CAUTION = "this judge's grades barely agree with the reference grades; read the rubric column with care"
NOT_CHECKED = "not checked; run `recxbench judge-check`"
#: Explanations longer than this (characters) are collapsed behind a preview.
LONG_TEXT = 420
PREVIEW = 220


@dataclass(frozen=True)
class Segment:
    grade: int
    share: float  # as reported (0..1)
    width: float  # percent of the bar (shares normalised to sum to 100)
    text: str  # "45 %"
    title: str  # tooltip: "grade 2 (acceptable): 45 %"


@dataclass(frozen=True)
class GradeBar:
    explainer: str
    segments: tuple[Segment, ...]
    mean: str  # mean rubric grade, or n/a
    label: str  # the whole bar in words (for screen readers and Markdown)


@dataclass(frozen=True)
class Explanation:
    explainer: str
    text: str
    preview: str  # "" unless the text is long enough to be collapsed
    words: int
    grade: int | None
    grade_text: str
    cf_text: str
    decision_ok: bool | None
    decision_text: str
    cited: tuple[str, ...]


@dataclass(frozen=True)
class Example:
    id: str
    instance_id: str
    user_id: str
    history: tuple[str, ...]
    item: str
    decision: str
    explanations: tuple[Explanation, ...]


@dataclass(frozen=True)
class ExplanationView:
    task: str
    id: str  # id stem for the task's judge card, grade bars and examples
    has_block: bool  # results["explanations"] holds this task (judge and examples known)
    judge_id: str
    agreement: tuple[Field, ...]  # empty when the judge was never checked
    agreement_line: str  # the figures in one line (Markdown), or NOT_CHECKED
    agreement_note: str  # graded set / date of the check, or NOT_CHECKED
    caution: str  # CAUTION when κ < KAPPA_CAUTION, else ""
    bars: tuple[GradeBar, ...]
    bars_na: tuple[str, ...]  # explainers without a grade distribution
    examples: tuple[Example, ...]


def _is_explanation_task(results: Mapping[str, Any], task: str) -> bool:
    return any(
        r["task"] == task and str(r["metric"]).startswith("rubric_eq_") for r in results.get("results") or []
    )


_FIGURES = (
    ("accuracy", "Accuracy", "accuracy"),
    ("kappa", "Cohen's κ", "Cohen's κ"),
    ("weighted_kappa", "Weighted κ (quadratic)", "weighted κ"),
    ("spearman", "Spearman ρ", "Spearman ρ"),
)


def _agreement(agreement: Any) -> tuple[tuple[Field, ...], str, str, str]:
    """Fields, one-line summary, note on the check, caution."""
    if not isinstance(agreement, Mapping):
        return (), NOT_CHECKED, NOT_CHECKED, ""
    fields = [Field(label, m.fmt(m.num(agreement.get(key)))) for key, label, _ in _FIGURES]
    n = m.num(agreement.get("n"))
    fields.append(Field("n (graded explanations)", NA if n is None else str(int(n))))
    line = ", ".join(f"{short} {f.value}" for (_, _, short), f in zip(_FIGURES, fields, strict=False))
    line = f"agreement with the reference grades: {line} (n = {fields[-1].value})"
    where = [f"graded set {agreement['graded_set']}"] if agreement.get("graded_set") else []
    if agreement.get("date"):
        where.append(f"checked {agreement['date']}")
    note = "Agreement with the shipped reference grades" + (f" ({', '.join(where)})" if where else "") + "."
    kappa = m.num(agreement.get("kappa"))
    return tuple(fields), line, note, CAUTION if kappa is not None and kappa < KAPPA_CAUTION else ""


def _bars(results: Mapping[str, Any], task: str) -> tuple[tuple[GradeBar, ...], tuple[str, ...]]:
    index = m.index(results)
    view = task_view(results, task)
    bars, missing = [], []
    for name in (*view.applicable, *view.not_applicable):
        shares = [m.num((index.get((name, task, f"rubric_eq_{k}")) or {}).get("value")) for k in range(4)]
        if all(s is None for s in shares):
            missing.append(name)
            continue
        values = [max(0.0, s or 0.0) for s in shares]
        total = sum(values) or 1.0
        segments = tuple(
            Segment(
                k,
                v,
                round(100 * v / total, 2),
                f"{100 * v:.0f} %",
                f"grade {k} ({GRADES[k]}): " + (NA if shares[k] is None else f"{100 * v:.0f} %"),
            )
            for k, v in enumerate(values)
        )
        mean = m.num((index.get((name, task, "rubric")) or {}).get("value"))
        label = f"{name}: " + ", ".join(f"grade {s.grade} {s.text}" for s in segments)
        bars.append(GradeBar(name, segments, m.fmt(mean, digits=2), label))
    return tuple(bars), tuple(missing)


def _preview(text: str) -> str:
    if len(text) <= LONG_TEXT:
        return ""
    cut = text[:PREVIEW]
    space = cut.rfind(" ")
    return (cut[:space] if space > PREVIEW // 2 else cut).rstrip() + " …"


def _explanation(name: str, raw: Any) -> Explanation:
    raw = raw if isinstance(raw, Mapping) else {"text": raw}
    text = "" if raw.get("text") is None else str(raw.get("text"))
    grade = m.num(raw.get("grade"))
    ok = m.num(raw.get("decision_correct"))
    decision_ok = None if ok is None else ok >= 0.5
    cited = raw.get("cited_titles") or []
    return Explanation(
        explainer=name,
        text=text,
        preview=_preview(text),
        words=len(text.split()),
        grade=None if grade is None else int(round(grade)),
        grade_text=NA if grade is None else f"{grade:g}",
        cf_text=m.fmt(m.num(raw.get("cf_fidelity")), signed=True),
        decision_ok=decision_ok,
        decision_text={None: NA, True: "right", False: "wrong"}[decision_ok],
        cited=tuple(
            str(c) for c in (cited if isinstance(cited, Sequence) and not isinstance(cited, str) else [])
        ),
    )


def _examples(block: Mapping[str, Any], stem: str) -> tuple[Example, ...]:
    out = []
    for i, ex in enumerate(block.get("examples") or []):
        if not isinstance(ex, Mapping):
            continue
        history = ex.get("history") or []
        expls = ex.get("explanations") or {}
        out.append(
            Example(
                id=f"{stem}-example-{i + 1}",
                instance_id=str(ex.get("instance_id", "")),
                user_id=str(ex.get("user_id", "?")),
                history=tuple(str(h) for h in history) if isinstance(history, Sequence) else (),
                item=str(ex.get("item", "?")),
                decision=str(ex.get("decision", "?")),
                explanations=tuple(
                    _explanation(str(k), v) for k, v in expls.items() if isinstance(expls, Mapping)
                ),
            )
        )
    return tuple(out)


def explanation_view(results: Mapping[str, Any], task: str, *, id_prefix: str = "") -> ExplanationView:
    """The judge card, grade bars and examples of one explanation task."""
    blocks = results.get("explanations")
    block = blocks.get(task) if isinstance(blocks, Mapping) else None
    has_block = isinstance(block, Mapping)
    block = block if isinstance(block, Mapping) else {}
    judge = block.get("judge") if isinstance(block.get("judge"), Mapping) else {}
    stem = f"{id_prefix}{m.slug(task)}"
    agreement, line, note, caution = _agreement(judge.get("agreement"))
    bars, bars_na = _bars(results, task)
    return ExplanationView(
        task=task,
        id=stem,
        has_block=has_block,
        judge_id=str(judge["id"]) if judge.get("id") else "not recorded",
        agreement=agreement,
        agreement_line=line,
        agreement_note=note,
        caution=caution,
        bars=bars,
        bars_na=bars_na,
        examples=_examples(block, stem),
    )


def explanation_views(results: Mapping[str, Any], *, id_prefix: str = "") -> dict[str, ExplanationView]:
    """``task -> view`` for every task with an ``explanations`` block or a grade distribution."""
    blocks = results.get("explanations")
    tasks = [t for t in m.task_names(results) if _is_explanation_task(results, t)]
    if isinstance(blocks, Mapping):
        tasks += [str(t) for t in blocks if str(t) not in tasks]
    return {t: explanation_view(results, t, id_prefix=id_prefix) for t in tasks}


# ----------------------------------------------------------------------------------- Markdown


def _md(text: str) -> str:
    """Free text (titles, explanations) for one Markdown line: no HTML, no table or emphasis marks."""
    text = m.strip_controls(text)
    for ch in "\\`*_[]<>|":
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def explanation_markdown(view: ExplanationView, *, level: int = 4) -> list[str]:
    """The compact Markdown of one explanation task: judge line, grade table, clipped examples."""
    h = "#" * level
    out: list[str] = []
    if view.has_block:
        # agreement_line is our own text (labels, numbers) and keeps `recxbench judge-check` as code
        out += [f"Judge: {_md(view.judge_id)} — {view.agreement_line}", ""]
        if view.caution:
            out += [f"Caution: {_md(view.caution)}.", ""]
    if view.bars:
        headers = ["Explainer", *(f"{k} {GRADES[k]}" for k in range(4)), "mean grade"]
        rows = [[_md(b.explainer), *(s.text for s in b.segments), b.mean] for b in view.bars]
        align = ["left", "right", "right", "right", "right", "right"]
        out += [f"{h} Grade distribution ({_md(view.task)})", ""]
        out += [tabulate(rows, headers=headers, tablefmt="github", colalign=align, disable_numparse=True), ""]
    if view.examples:
        out += [f"{h} Examples ({_md(view.task)})", ""]
    for i, ex in enumerate(view.examples, start=1):
        history = "; ".join(_md(t) for t in ex.history) or NA
        out.append(
            f"{i}. User {_md(ex.user_id)}, item *{_md(ex.item)}*, target's decision: {_md(ex.decision)}. "
            f"History: {history}"
        )
        for e in ex.explanations:
            out.append(
                f"   - {_md(e.explainer)} (grade {e.grade_text}, cf fidelity {e.cf_text}, "
                f"decision {e.decision_text}): {_md(_clip(e.text)) or '(empty explanation)'}"
            )
    return out
