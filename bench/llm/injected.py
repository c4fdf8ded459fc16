"""Scoring and generation from prompts that carry recommender vectors (RecExplainer-I/H).

:func:`score_continuations_injected` and :func:`generate_injected` mirror
:func:`bench.llm.scoring.score_continuations` and :func:`bench.llm.generation.generate`: the prompt
pass runs on ``inputs_embeds`` built by an :class:`~bench.llm.inject.Injector` (the vectors at the
``<user>``/``<item>`` placeholders), the rest on token ids. Ablations are applied to all instances
before batching (:meth:`~bench.llm.inject.Injector.ablate`), so results never depend on ``batch_size``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.llm.chat import encode_continuation, encode_prompt, left_pad
from bench.llm.generation import GenerationOptions, run_generation
from bench.llm.inject import ITEM_TOKEN, USER_TOKEN, Injector, check_placeholders
from bench.llm.scoring import _MAX_ANSWER_TOKENS, _MAX_PROMPT_TOKENS, _chunks, _prefix_cache, _score_rest


def _prepare(backbone: Any, injector: Injector, prompts: Sequence, extras: Sequence, batch: int) -> tuple:
    """Checks shared by scoring and generation; prompt ids, ablated extras, model, tokenizer, device."""
    if len(prompts) != len(extras) or batch < 1:
        raise ValueError(f"{len(prompts)} prompts and {len(extras)} extras; batch_size {batch} (must be ≥ 1)")
    check_placeholders(backbone, injector)
    model, tok = backbone.model, backbone.tokenizer
    ids = [encode_prompt(tok, p) for p in prompts]
    return ids, injector.ablate(extras), model, tok, next(model.parameters()).device


class InjectedScorer:
    """``scorer(continuations)``: :func:`score_continuations_injected` against prompts run once.

    The injected counterpart of :class:`~bench.llm.scoring.ContinuationScorer`: each chunk of
    prompts runs from ``inputs_embeds`` at most once (its cache kept when ``keep``), then every
    call scores its answers after it with the same batches and arithmetic as a single call, so
    results are bit-identical to :func:`score_continuations_injected`. ``passes`` counts prompt passes.
    """

    def __init__(
        self,
        backbone: Any,
        injector: Injector,
        prompts: Sequence[str],
        extras_list: Sequence[Mapping[str, Any]],
        *,
        batch_size: int = 16,
        keep: bool = True,
    ) -> None:
        self.prompt_ids, self.extras, self.model, self.tok, self.device = _prepare(
            backbone, injector, prompts, extras_list, batch_size
        )
        self.injector, self.batch_size, self.keep = injector, batch_size, keep
        order = sorted(range(len(prompts)), key=lambda i: len(self.prompt_ids[i]))  # less padding
        self.groups = _chunks(order, batch_size, lambda i: len(self.prompt_ids[i]), _MAX_PROMPT_TOKENS)
        self._prefixes: dict[int, Any] = {}
        self.passes = 0

    def _prefix(self, c: int) -> Any:
        prefix = self._prefixes.get(c)
        if prefix is None:
            group = self.groups[c]
            ids, mask = left_pad([self.prompt_ids[i] for i in group], self.tok.pad_token_id, self.device)
            embeds = self.injector.build_inputs_embeds(self.model, ids, [self.extras[i] for i in group])
            prefix = _prefix_cache(self.model, attention_mask=mask, inputs_embeds=embeds)
            self.passes += 1
            if self.keep:
                self._prefixes[c] = prefix
        return prefix

    @torch.inference_mode()
    def __call__(
        self, continuations: Sequence[Sequence[str]], *, progress: bool = False
    ) -> list[list[float]]:
        if len(self.prompt_ids) != len(continuations):
            raise ValueError(f"{len(self.prompt_ids)} prompts but {len(continuations)} continuation lists")
        model, tok, batch_size = self.model, self.tok, self.batch_size
        answer_ids = [[encode_continuation(tok, c) for c in conts] for conts in continuations]
        if any(set(self.injector.token_ids) & set(a) for answers in answer_ids for a in answers):
            raise ValueError(f"{USER_TOKEN}/{ITEM_TOKEN} may only occur in prompts, not in continuations")
        results = [[0.0] * len(answers) for answers in answer_ids]
        bar = tqdm(total=len(answer_ids), desc="scoring", unit="prompt", disable=not progress)
        for c, group in enumerate(self.groups):
            if not any(answer_ids[i] for i in group):
                bar.update(len(group))
                continue  # nothing asked of these prompts in this call: no pass
            prefix = self._prefix(c)
            pending: list[tuple[int, int, int, list[int]]] = []  # (prefix row, instance, answer, ids)
            for g, i in enumerate(group):
                for j, ans in enumerate(answer_ids[i]):
                    if ans:
                        results[i][j] = prefix.last_logprobs[g, ans[0]].item()
                        if len(ans) > 1:
                            pending.append((g, i, j, ans))
            pending.sort(key=lambda p: len(p[3]))
            for chunk in _chunks(pending, batch_size, lambda p: len(p[3]), _MAX_ANSWER_TOKENS):
                rest = _score_rest(
                    model, prefix, [p[0] for p in chunk], [p[3] for p in chunk], tok.pad_token_id
                )
                for (_, i, j, _), value in zip(chunk, rest, strict=True):
                    results[i][j] += value
            bar.update(len(group))
        bar.close()
        return results


def score_continuations_injected(
    backbone: Any,
    injector: Injector,
    prompts: Sequence[str],
    extras_list: Sequence[Mapping[str, Any]],
    continuations: Sequence[Sequence[str]],
    *,
    batch_size: int = 16,
    progress: bool = False,
) -> list[list[float]]:
    """``out[i][j] = log P(continuations[i][j] | prompts[i] with extras_list[i] injected)``.

    As :func:`~bench.llm.scoring.score_continuations` (same tokenisation, KV-cache reuse, empty
    answer = 0.0), except that prompts are not deduplicated (their vectors differ) and each prompt
    group runs once from ``inputs_embeds``; answers then continue from the cache by token ids.
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuation lists")
    scorer = InjectedScorer(backbone, injector, prompts, extras_list, batch_size=batch_size, keep=False)
    return scorer(continuations, progress=progress)


@torch.inference_mode()
def generate_injected(
    backbone: Any,
    injector: Injector,
    prompts: Sequence[str],
    extras_list: Sequence[Mapping[str, Any]],
    options: GenerationOptions | None = None,
    **overrides: Any,
) -> list[list[str]]:
    """As :func:`~bench.llm.generation.generate` (same options and results), from injected prompts.

    The prompt pass runs on ``inputs_embeds`` (placeholders carry the projected vectors), the steps
    on token ids. Placeholder tokens are suppressed: a generated one would have no vector to carry.
    """
    opts = GenerationOptions.of(options, **overrides)
    prompt_ids, extras, model, tok, _ = _prepare(backbone, injector, prompts, extras_list, opts.batch_size)
    return run_generation(
        model,
        tok,
        prompt_ids,
        opts,
        embed=lambda ids, rows: injector.build_inputs_embeds(model, ids, [extras[i] for i in rows]),
        suppress=injector.token_ids,
    )
