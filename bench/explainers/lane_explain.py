"""LANE's four-step chain-of-thought explanations, written with the forced-format decoder.

The prompt is ``tasks/prompts/lane_explanation.j2`` (history titles, the usable preferences with
their single-head ``get_weight`` weights, the item). The answer follows LANE's standard template;
the decoder writes its headers and the model writes only the fields:

    Step1:
    Preference 1: <preference>            (the ``explain_analyses`` highest-weighted preferences)
    Analysis: <field>
    Step2:
    Target item introduction: <field>
    Preference fitness: <field>
    Step3:
    Interaction probability: <Low | Medium | High>   (a constrained choice)
    Reason: <field>
    Step4:
    Recommendation: <field>

Every field is capped at ``explain_max_tokens`` tokens (CPU budget). The stated decision is the
Step-3 probability, written as the explanation's first line so the explanation task's
:func:`~bench.tasks.grounding.parse_decision` reads it: ``High`` -> "Yes", ``Low`` -> "No";
``Medium`` states no decision (the line carries neither, so it counts as no decision stated).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.answers import Text
from bench.types import Instance

if TYPE_CHECKING:
    pass

LEVELS = ("Low", "Medium", "High")
_LEAD = {"High": "Yes (interaction probability: High).", "Low": "No (interaction probability: Low)."}


def cot_template(prefs: list[str], max_tokens: int) -> list[Any]:
    """The forced layout of LANE's standard template (module docstring)."""
    from bench.llm.forced_json import Choice, Field, Literal

    segs: list[Any] = [Literal("Step1:\n")]
    for j, text in enumerate(prefs, start=1):
        segs += [
            Literal(f"Preference {j}: {text}\nAnalysis: "),
            Field(f"analysis{j}", max_tokens, "\n"),
            Literal("\n"),
        ]
    segs += [
        Literal("Step2:\nTarget item introduction: "),
        Field("introduction", max_tokens, "\n"),
        Literal("\nPreference fitness: "),
        Field("fitness", max_tokens, "\n"),
        Literal("\nStep3:\nInteraction probability: "),
        Choice("probability", LEVELS),
        Literal("\nReason: "),
        Field("reason", max_tokens, "\n"),
        Literal("\nStep4:\nRecommendation: "),
        Field("recommendation", max_tokens, "\n"),
    ]
    return segs


def lead_line(level: str) -> str:
    """The first line stating the decision (``Medium``: none)."""
    return _LEAD.get(level, f"Interaction probability: {level}.")


def explain_with_cot(ex: Any, instances: list[Instance]) -> list[Text]:
    """The explanations of a fitted :class:`~bench.explainers.lane.LaneExplainer` ``ex``."""
    from bench.llm.chat import format_prompt
    from bench.llm.forced_json import fill_templates
    from bench.llm.preferences import render_template

    if not instances:
        return []
    hist = [tuple(int(x) for x in i.history) for i in instances]
    recs = ex.records(hist)
    weights = ex.head.weights(ex._data(instances))
    k = int(ex.params["explain_analyses"])
    cap = int(ex.params["explain_max_tokens"])
    prompts, templates = [], []
    for inst, rec, w in zip(instances, recs, weights, strict=True):
        usable = [j for j in range(len(rec.values)) if rec.usable[j]]
        shown = [{"text": rec.values[j], "weight": float(w[j])} for j in usable]
        prompt = render_template(
            "lane_explanation.j2",
            history=ex._titles(inst.history),
            preferences=shown,
            item=ex.ctx.catalog.title(int(inst.candidates[0])),
        )
        prompts.append(format_prompt(ex.backbone, prompt))
        top = sorted(usable, key=lambda j: -float(w[j]))[:k]
        templates.append(cot_template([rec.values[j] for j in top], cap))
    filled = fill_templates(ex.backbone, prompts, templates, batch_size=int(ex.params["explain_batch_size"]))
    out = []
    for f in filled:
        level = f.values.get("probability", "Medium")
        out.append(Text(f"{lead_line(level)}\n{f.text}"))
    return out
