"""Log-probabilities of answers given prompts, reusing each prompt's KV cache across its answers.

``score_continuations(backbone, prompts, continuations)`` returns, for each prompt ``i`` and each
answer ``c`` in ``continuations[i]``, ``log P(c | prompt_i)`` (natural log, summed over ``c``'s
tokens). Tokenisation: the prompt and the answer are tokenised separately and their ids concatenated
(see :mod:`bench.llm.chat`), so an answer's tokens are exactly ``encode_continuation(answer)``
whatever the prompt ends with; an empty answer scores 0.0.

How it runs (each step exists to avoid recomputing or materialising something):

1. Prompts are deduplicated by token ids and grouped by a long common start (one user's several
   classification questions share the history; see :func:`_share_prefixes`). Each group's shared
   start (or a lone prompt, whole) runs once, in left-padded batches of up to ``batch_size`` with
   explicit position ids, keeping the KV cache and only the last position's logits
   (``logits_to_keep=1``).
2. A lone prompt's answers take their first token from those last logits; a one-token answer
   (``" Yes"``/``" No"``) needs no further pass at all.
3. Everything else — a grouped prompt's own remainder plus its answer, or a lone prompt's answer
   tokens after the first — runs as right-padded rows after a copy of its group's cache rows
   (``index_select`` on every layer, in a fresh ``DynamicCache`` so the shared cache is never
   mutated), with position ids continuing from the shared start. Equal rows run once (a prompt's
   one-token answers share one row), and the LM head runs only at positions that predict an answer
   token. Right padding needs no masking beyond the attention mask: under causal attention a real
   token never sees a later pad.

The result matches one plain forward pass over prompt + answer to ~1e-5 in float32.

``next_token_logits(model, prefixes, suffixes, targets)`` (:mod:`bench.llm.next_token`) is the same
machinery for a different question: the next-token logits of a few target tokens right after
``shared + prefix + suffix``, for many suffixes of one prefix (guided-embedding's attributes of one
item): the shared start runs once, each prefix once, and the LM head runs only at each suffix's
last position and only for the target tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.llm.chat import encode_continuation, encode_prompt, left_pad
from bench.llm.kv_cache import output_cache, with_cache

#: Most answer tokens scored in one forward pass (bounds the ``rows × length × vocab`` logits).
_MAX_ANSWER_TOKENS = 4096
#: Most prompt tokens (including padding) run in one forward pass.
_MAX_PROMPT_TOKENS = 16384


@dataclass
class _Prefix:
    """A group of prompts after one forward pass (batch dimension = prompts of the group)."""

    cache: Any  # DynamicCache
    last_logprobs: torch.Tensor  # (k, vocab) float32: log P(next token | prompt)
    mask: torch.Tensor  # (k, P) attention mask of the left-padded prompts
    lengths: torch.Tensor  # (k,) true prompt lengths


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def additive_mask(allowed: torch.Tensor, model: Any) -> torch.Tensor:
    """``allowed`` (``[batch, queries, keys]`` booleans) as the 4-D additive attention mask
    ``[batch, 1, queries, keys]`` a model's eager or SDPA attention takes: 0 where a query may
    attend, the dtype's minimum elsewhere, in the model's dtype (SDPA wants the queries' dtype)."""
    dtype = next(model.parameters()).dtype
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def _new_cache(model: Any, layers: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> Any:
    from transformers import DynamicCache

    return DynamicCache(layers, config=model.config)


def _prefix_cache(
    model: Any,
    *,
    attention_mask: torch.Tensor,
    input_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
) -> _Prefix:
    """Run left-padded prompts once (ids or embeddings) and keep what answers need from them."""
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=input_ids,
        inputs_embeds=inputs_embeds,
        attention_mask=attention_mask,
        position_ids=position_ids,
        **with_cache(_new_cache(model)),
        use_cache=True,
        logits_to_keep=1,
    )
    return _Prefix(
        cache=output_cache(out),
        last_logprobs=out.logits[:, -1].float().log_softmax(-1),
        mask=attention_mask,
        lengths=attention_mask.sum(-1),
    )


def _score_rest(
    model: Any, prefix: _Prefix, rows: list[int], answers: list[list[int]], pad_id: int
) -> list[float]:
    """Sum of log P(answer[t] | prompt, answer[:t]) for t ≥ 1, for answers of ≥ 2 tokens.

    ``rows[r]`` is the prefix row (prompt) that ``answers[r]`` continues.
    """
    device = prefix.mask.device
    fed = [(g, tuple(ans[:-1])) for g, ans in zip(rows, answers, strict=True)]
    logprobs = _fed_logprobs(model, prefix, fed, pad_id, list(range(max(len(a) for a in answers) - 1)))
    return [
        logprobs[r, torch.arange(len(ans) - 1, device=device), torch.tensor(ans[1:], device=device)]
        .sum()
        .item()
        for r, ans in enumerate(answers)
    ]


def _chunks(items: list[Any], size: int, cost: Any, budget: int) -> list[list[Any]]:
    """Consecutive chunks of at most ``size`` items whose ``len(chunk) × max cost`` fits ``budget``."""
    out: list[list[Any]] = []
    cur: list[Any] = []
    widest = 0
    for item in items:
        c = cost(item)
        if cur and (len(cur) >= size or (len(cur) + 1) * max(widest, c) > budget):
            out.append(cur)
            cur, widest = [], 0
        cur.append(item)
        widest = max(widest, c)
    if cur:
        out.append(cur)
    return out


def _share_prefixes(keys: list[tuple[int, ...]], min_shared: int) -> list[tuple[tuple[int, ...], list]]:
    """Group prompts that start alike: ``(shared prefix, member prompts)``, each member longer than it.

    Prompts are sorted, so prompts with a long common start are neighbours; a neighbour joins the
    current group while the common prefix stays at least ``min_shared`` tokens and half of what
    the group shared so far (so one user's questions group together, not every prompt that merely
    starts with the same template header). A prompt that shares nothing is its own group, with
    itself as the prefix (and an empty suffix).
    """
    groups: list[tuple[tuple[int, ...], list]] = []
    cur: list[tuple[int, ...]] = []
    shared = 0
    for key in sorted(keys):
        if cur:
            lcp = 0
            limit = min(shared, len(key))
            while lcp < limit and cur[0][lcp] == key[lcp]:
                lcp += 1
            if lcp >= min_shared and 2 * lcp >= shared:
                cur.append(key)
                shared = lcp
                continue
            groups.append(_close(cur, shared))
        cur, shared = [key], len(key)
    if cur:
        groups.append(_close(cur, shared))
    return groups


def _close(members: list[tuple[int, ...]], shared: int) -> tuple[tuple[int, ...], list]:
    if len(members) == 1:
        return members[0], members
    # Every member keeps at least one token of its own, whose logits give its answers' first token.
    shared = min(shared, min(len(m) for m in members) - 1)
    return members[0][:shared], members


def _fed_logprobs(
    model: Any, prefix: _Prefix, rows: list[tuple[int, tuple[int, ...]]], pad_id: int, keep: list[int]
) -> torch.Tensor:
    """Right-padded token rows run after their prefix rows: log-probabilities ``(rows, len(keep), vocab)``
    at fed positions ``keep`` only (the LM head and softmax never run where nothing is scored)."""
    device = prefix.mask.device
    idx = torch.tensor([g for g, _ in rows], device=device)
    width = max(len(fed) for _, fed in rows)
    inputs = torch.full((len(rows), width), pad_id, dtype=torch.long, device=device)
    real = torch.zeros((len(rows), width), dtype=prefix.mask.dtype, device=device)
    for r, (_, fed) in enumerate(rows):
        inputs[r, : len(fed)] = torch.tensor(fed, device=device)
        real[r, : len(fed)] = 1
    cache = _new_cache(model, [(k.index_select(0, idx), v.index_select(0, idx)) for k, v, *_ in prefix.cache])
    out = model(
        input_ids=inputs,
        attention_mask=torch.cat([prefix.mask.index_select(0, idx), real], dim=1),
        position_ids=prefix.lengths.index_select(0, idx)[:, None] + torch.arange(width, device=device),
        **with_cache(cache),
        use_cache=True,
        logits_to_keep=torch.tensor(keep, device=device),
    )
    return out.logits.float().log_softmax(-1)


class PromptScorer:
    """Prompts run once, their answers scored in any number of calls (:meth:`score`).

    A ranking built position by position asks about the same prompts again and again with longer
    answers; this keeps each prompt chunk's pass (its KV cache and last log-probabilities) from
    the first call, so later calls only run the answer rows. The plan, batches and arithmetic are
    those of :func:`score_token_ids` (which is ``PromptScorer(..., keep=False).score(answers)``),
    so a kept pass gives bit-identical results. ``keep=False`` frees each pass after its chunk
    (one call only); with ``keep=True`` the caches of all prompts stay in memory until the scorer
    goes (callers bound that by giving it a block of prompts at a time).

    ``passes`` counts prompt-chunk passes run so far (tests check the reuse with it).
    """

    def __init__(
        self,
        model: Any,
        prompt_ids: Sequence[Sequence[int]],
        *,
        pad_id: int,
        batch_size: int = 16,
        min_shared: int = 16,
        keep: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.model, self.pad_id, self.batch_size, self.keep = model, pad_id, batch_size, keep
        self.n = len(prompt_ids)
        # The same prompt text is run once, however many instances share it.
        self.unique: dict[tuple[int, ...], list[int]] = {}
        for i, ids in enumerate(prompt_ids):
            if not ids:
                raise ValueError(f"prompt {i} has no tokens")
            self.unique.setdefault(tuple(ids), []).append(i)
        plan = sorted(_share_prefixes(list(self.unique), min_shared), key=lambda g: len(g[0]))  # less padding
        self.chunks = _chunks(plan, batch_size, lambda g: len(g[0]), _MAX_PROMPT_TOKENS)
        self._prefixes: dict[int, _Prefix] = {}
        self.passes = 0
        self.device = _device(model)

    def _prefix(self, c: int) -> _Prefix:
        prefix = self._prefixes.get(c)
        if prefix is None:
            ids, mask = left_pad([pre for pre, _ in self.chunks[c]], self.pad_id, self.device)
            prefix = _prefix_cache(self.model, input_ids=ids, attention_mask=mask)
            self.passes += 1
            if self.keep:
                self._prefixes[c] = prefix
        return prefix

    @torch.inference_mode()
    def score(
        self, answer_ids: Sequence[Sequence[Sequence[int]]], *, progress: bool = False
    ) -> list[list[float]]:
        """``out[i][j] = log P(answer_ids[i][j] | prompt i)`` (an empty answer scores 0.0)."""
        if len(answer_ids) != self.n:
            raise ValueError(f"{self.n} prompts but {len(answer_ids)} continuation lists")
        model, pad_id, batch_size, device, unique = (
            self.model,
            self.pad_id,
            self.batch_size,
            self.device,
            self.unique,
        )
        results = [[0.0] * len(answers) for answers in answer_ids]
        bar = tqdm(total=self.n, desc="scoring", unit="prompt", disable=not progress)
        for c, groups in enumerate(self.chunks):
            if not any(answer_ids[i] for _, members in groups for k in members for i in unique[k]):
                bar.update(sum(len(unique[k]) for _, members in groups for k in members))
                continue  # nothing asked of these prompts in this call: no pass
            prefix = self._prefix(c)
            first = prefix.last_logprobs
            # Rows to run after a prefix: (prefix row, fed ids) -> [(instance, answer, offset, ids)];
            # the answer's token t is predicted at fed position offset + t. Equal rows run once.
            rows: dict[tuple[int, tuple[int, ...]], list[tuple[int, int, int, list[int]]]] = {}
            for g, (pre, members) in enumerate(groups):
                for key in members:
                    suffix = list(key[len(pre) :])
                    for i in unique[key]:
                        for j, ans in enumerate(answer_ids[i]):
                            if not ans:
                                continue
                            if suffix:
                                fed = (*suffix, *ans[:-1])
                                rows.setdefault((g, fed), []).append((i, j, len(suffix) - 1, list(ans)))
                                continue
                            results[i][j] = first[g, ans[0]].item()
                            if len(ans) > 1:
                                rows.setdefault((g, tuple(ans[:-1])), []).append((i, j, 0, list(ans[1:])))
            keys = sorted(rows, key=lambda r: len(r[1]))
            for chunk in _chunks(keys, batch_size, lambda r: len(r[1]), _MAX_ANSWER_TOKENS):
                keep = sorted(
                    {offset + t for row in chunk for _, _, offset, ans in rows[row] for t in range(len(ans))}
                )
                column = {p: k for k, p in enumerate(keep)}
                logprobs = _fed_logprobs(model, prefix, chunk, pad_id, keep)
                for r, row in enumerate(chunk):
                    for i, j, offset, ans in rows[row]:
                        cols = torch.tensor([column[offset + t] for t in range(len(ans))], device=device)
                        tgt = torch.tensor(ans, device=device)
                        results[i][j] += logprobs[r, cols, tgt].sum().item()
            bar.update(sum(len(unique[k]) for _, members in groups for k in members))
        bar.close()
        return results


@torch.inference_mode()
def score_token_ids(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    answer_ids: Sequence[Sequence[Sequence[int]]],
    *,
    pad_id: int,
    batch_size: int = 16,
    progress: bool = False,
    min_shared: int = 16,
) -> list[list[float]]:
    """:func:`score_continuations` on token ids (each prompt non-empty; answers may be empty).

    ``min_shared``: prompts whose token ids start with at least this many equal tokens share one
    pass over that common start (see :func:`_share_prefixes`); a very large value turns it off.
    """
    if len(prompt_ids) != len(answer_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(answer_ids)} continuation lists")
    scorer = PromptScorer(
        model, prompt_ids, pad_id=pad_id, batch_size=batch_size, min_shared=min_shared, keep=False
    )
    return scorer.score(answer_ids, progress=progress)


def score_continuations(
    backbone: Any,
    prompts: Sequence[str],
    continuations: Sequence[Sequence[str]],
    *,
    batch_size: int = 16,
    progress: bool = False,
) -> list[list[float]]:
    """``out[i][j] = log P(continuations[i][j] | prompts[i])``, summed over the answer's tokens.

    Args:
        backbone: a loaded :class:`~bench.llm.backbone.Backbone`.
        prompts: prompt texts (e.g. from :func:`~bench.llm.chat.format_prompt`).
        continuations: for each prompt, the answers to score; each is appended directly after the
            prompt text (mind the leading space after ``"Answer:"``). An empty answer scores 0.0.
        batch_size: most prompts, and most answers, per forward pass.
        progress: show a progress bar.
    """
    tok = backbone.tokenizer
    prompt_ids = [encode_prompt(tok, p) for p in prompts]
    answer_ids = [[encode_continuation(tok, c) for c in conts] for conts in continuations]
    return score_token_ids(
        backbone.model,
        prompt_ids,
        answer_ids,
        pad_id=tok.pad_token_id,
        batch_size=batch_size,
        progress=progress,
    )


class ContinuationScorer:
    """``scorer(continuations)``: :func:`score_continuations` against prompts tokenised and run once.

    Text in, :class:`PromptScorer` underneath (``passes`` counts its prompt passes); a prompt whose
    continuation list is empty costs nothing in a call.
    """

    def __init__(self, backbone: Any, prompts: Sequence[str], *, batch_size: int = 16) -> None:
        self.tokenizer = backbone.tokenizer
        self.scorer = PromptScorer(
            backbone.model,
            [encode_prompt(self.tokenizer, p) for p in prompts],
            pad_id=self.tokenizer.pad_token_id,
            batch_size=batch_size,
        )

    @property
    def passes(self) -> int:
        return self.scorer.passes

    def __call__(self, continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        tok = self.tokenizer
        return self.scorer.score([[encode_continuation(tok, c) for c in conts] for conts in continuations])
