"""A judge run locally on a ``bench.llm`` backbone (default ``smollm2-135m``), deterministic.

Two modes:

* ``"loglik"`` (the default for local judges): the grade is

  .. math:: \\hat g = \\arg\\max_{g \\in \\{0,1,2,3\\}} \\log P(\\texttt{"GRADE: g"} \\mid \\text{prompt})

  computed by :func:`bench.llm.scoring.score_continuations`. The four answers share the prefix
  ``"GRADE: "``, so this compares the model's probabilities of the four digits in the answer form
  the prompt asks for. Why the default: a 135M model often ignores the requested format, rambles,
  or echoes the rubric, which would make many grades unreadable; the log-likelihood reading
  always yields a grade, costs one forward pass per prompt, and involves no decoding choices.
  Ties (equal log-likelihoods) go to the lower grade.
* ``"generate"``: greedy decoding of up to ``max_new_tokens`` tokens, then
  :func:`~bench.judge.prompt.parse_grade`; an unreadable reply gives ``grade=None``.

Either way the transcript holds the full prompt and the four log-likelihoods or the reply.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from bench.judge.prompt import (
    GRADE_ANSWERS,
    GRADES,
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    JudgeItem,
    JudgeResult,
    parse_grade,
    render,
)

log = logging.getLogger(__name__)

Mode = Literal["loglik", "generate"]
MODES: tuple[str, ...] = ("loglik", "generate")


class LocalJudge:
    """A judge on a local backbone.

    Args:
        spec: a backbone spec (see :mod:`bench.llm.backbone`): ``smollm2-135m``, ``tiny-random``,
            a model directory or a GGUF file.
        device: ``auto``, ``cpu`` or ``cuda``.
        max_new_tokens: reply budget in ``generate`` mode.
        mode: ``"loglik"`` or ``"generate"`` (see the module docstring).
        batch_size: prompts per forward pass.
        backbone: an already loaded backbone (skips loading; ``spec`` is then only its name).
        titles: catalog titles, needed only by ``tiny-random`` (its tokenizer is trained on them).
        loader: a backbone loader (the run's ``BackboneLoader``): the backbone is its shared copy
            instead of a second load (the judge only reads it).
    """

    def __init__(
        self,
        spec: str = "smollm2-135m",
        *,
        device: str = "auto",
        max_new_tokens: int = 48,
        mode: Mode = "loglik",
        batch_size: int = 8,
        backbone: Any = None,
        titles: Sequence[str] | None = None,
        loader: Any = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"judge mode must be one of {MODES}, got {mode!r}")
        self.spec = spec
        self.device = device
        self.max_new_tokens = int(max_new_tokens)
        self.mode = mode
        self.batch_size = int(batch_size)
        self._titles = titles
        self._backbone = backbone
        self._loader = loader
        self.id = f"local:{spec}/{mode}"

    @property
    def backbone(self) -> Any:
        """The backbone, loaded on first use (judging is the only thing that needs it)."""
        if self._backbone is None and self._loader is not None:  # the run's load, shared read-only
            self._backbone = self._loader.shared(self.spec, device=self.device, titles=self._titles)
        elif self._backbone is None:
            from bench.llm.backbone import load_backbone

            self._backbone = load_backbone(self.spec, device=self.device, titles=self._titles)
        return self._backbone

    @property
    def fingerprint(self) -> str:
        """Weights hash + decoding settings: a different checkpoint or budget never reuses grades."""
        budget = f";max_new_tokens={self.max_new_tokens}" if self.mode == "generate" else ""
        return f"weights={self.backbone.sha256};mode={self.mode}{budget};prompt=v{PROMPT_VERSION}"

    def prompts(self, items: Sequence[JudgeItem]) -> list[str]:
        """The chat-formatted judge prompts (system rubric + the case)."""
        from bench.llm.chat import format_prompt

        return [format_prompt(self.backbone, render(it), system=SYSTEM_PROMPT) for it in items]

    def grade(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        """One result per item, same order (greedy / argmax: deterministic)."""
        if not items:
            return []
        prompts = self.prompts(items)
        if self.mode == "loglik":
            return self._grade_loglik(prompts)
        return self._grade_generate(prompts)

    def _grade_loglik(self, prompts: list[str]) -> list[JudgeResult]:
        from bench.llm.scoring import score_continuations

        scores = score_continuations(
            self.backbone, prompts, [list(GRADE_ANSWERS)] * len(prompts), batch_size=self.batch_size
        )
        out = []
        for prompt, row in zip(prompts, scores, strict=True):
            # max() keeps the first maximum: ties go to the lower grade.
            best = max(GRADES, key=lambda g: row[g])
            figures = "\n".join(f"log P({a!r}) = {v:.4f}" for a, v in zip(GRADE_ANSWERS, row, strict=True))
            transcript = f"{prompt}\n[log-likelihoods]\n{figures}\n[chosen]\n{GRADE_ANSWERS[best]}"
            out.append(JudgeResult(grade=best, transcript=transcript))
        return out

    def _grade_generate(self, prompts: list[str]) -> list[JudgeResult]:
        from bench.llm.generation import generate

        # No stop string: a model may put the grade on its second line.
        replies = generate(
            self.backbone, prompts, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size, stop=()
        )
        out = []
        for prompt, reply in zip(prompts, replies, strict=True):
            text = reply[0] if reply else ""
            out.append(JudgeResult(grade=parse_grade(text), transcript=f"{prompt}{text}"))
        return out
