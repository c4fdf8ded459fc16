"""Unaligned LLM baselines: the same prompts as the aligned explainers, no training.

``zero-shot-llm`` answers from the prompt alone; ``few-shot-llm`` first shows ``few_shot`` (2)
align-train instances of the task with the target's answers (the paper's ICL rows).
"""

from __future__ import annotations

from typing import Any

from bench.explainers.llm_base import LLMExplainer


class ZeroShotLLM(LLMExplainer):
    name = "zero-shot-llm"
    access = "behavior"
    summary = "an unaligned LLM with the text prompts (no examples, no training)"


class FewShotLLM(LLMExplainer):
    name = "few-shot-llm"
    access = "behavior"
    summary = "an unaligned LLM with 2 align-train examples in the prompt"

    def __init__(self, **params: Any) -> None:
        super().__init__(**{"few_shot": 2, **params})
