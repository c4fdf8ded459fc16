"""lm-eval's outputs for one instance -> the recxbench prediction an explainer would have returned.

One function, used both by the exported task's ``process_results`` (inside lm-eval) and by
``recxbench import-lmeval`` (on lm-eval's ``--log_samples`` files), so the two can never disagree:

* classification (``YesNo``) — a ``multiple_choice`` request per answer, ``[Yes, No]``: the answer
  and its score follow :func:`bench.explainers.llm_text.yes_no_answer`, the rule of the LLM
  explainers (``score = sigmoid(log P(Yes) - log P(No))``);
* ranking (``Permutation``) — one log-likelihood per shown candidate title: the candidates ordered
  by it (:func:`bench.explainers.llm_text.order_by_score`);
* retrieval (``RankedItems``) — generated text split into titles and resolved through the run's
  catalog (:func:`bench.explainers.llm_text.parse_items`; an unresolved title is ``-1``, a
  hallucinated item).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.answers import Permutation, RankedItems, YesNo
from bench.data.catalog import Catalog
from bench.explainers.llm_text import order_by_score, parse_items, yes_no_answer
from bench.types import Prediction

#: answer types an exported task can have, and lm-eval's output type for each
OUTPUT_TYPES: dict[type, str] = {
    YesNo: "multiple_choice",
    Permutation: "multiple_choice",
    RankedItems: "generate_until",
}


def logliks(outputs: Sequence[Any]) -> list[float]:
    """Log-likelihoods from lm-eval's per-choice outputs: ``(ll, is_greedy)`` pairs (in
    ``process_results``), ``[ll, is_greedy]`` lists (in a samples file) or bare numbers."""
    return [float(x[0]) if isinstance(x, (list, tuple)) else float(x) for x in outputs]


def generated_text(outputs: Sequence[Any]) -> str:
    """The generated text from lm-eval's outputs of a ``generate_until`` request."""
    first = outputs[0] if outputs else ""
    while isinstance(first, (list, tuple)):
        first = first[0] if first else ""
    return str(first)


def prediction(answer: type, doc: Mapping[str, Any], outputs: Sequence[Any], catalog: Catalog) -> Prediction:
    """The prediction for the instance of ``doc`` (an exported row) from lm-eval's ``outputs``."""
    iid = str(doc["instance"]["instance_id"])
    if answer is YesNo:
        ly, ln = logliks(outputs)
        return yes_no_answer(ly, ln).to_prediction(iid)
    if answer is Permutation:
        cands = [int(c) for c in doc["instance"]["candidates"]]
        return order_by_score(cands, doc["titles"], logliks(outputs), str(doc["separator"])).to_prediction(
            iid
        )
    if answer is RankedItems:
        text = generated_text(outputs)
        items = parse_items(text, catalog)
        return RankedItems(items.items, raw=text, parse_ok=items.parse_ok).to_prediction(iid)
    raise ValueError(f"no lm-eval conversion for answers of type {answer.__name__}")
