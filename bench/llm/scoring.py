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

``next_token_logits(model, prefixes, suffixes, targets)`` is the same machinery for a different
question: the next-token logits of each of a few target tokens right after ``prefix + suffix``, for many
suffixes of one prefix (guided-embedding's attribute questions about one item). The prefix runs once
(step 1), every suffix runs as a row after a copy of its cache (step 3), and the LM head runs only at
each row's last position and only for the target tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.llm.chat import encode_continuation, encode_prompt, left_pad

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
        past_key_values=_new_cache(model),
        use_cache=True,
        logits_to_keep=1,
    )
    return _Prefix(
        cache=out.past_key_values,
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
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=torch.tensor(keep, device=device),
    )
    return out.logits.float().log_softmax(-1)


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
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    results = [[0.0] * len(answers) for answers in answer_ids]
    # The same prompt text is run once, however many instances share it.
    unique: dict[tuple[int, ...], list[int]] = {}
    for i, ids in enumerate(prompt_ids):
        if not ids:
            raise ValueError(f"prompt {i} has no tokens")
        unique.setdefault(tuple(ids), []).append(i)
    plan = sorted(_share_prefixes(list(unique), min_shared), key=lambda g: len(g[0]))  # less padding
    device = _device(model)
    bar = tqdm(total=len(prompt_ids), desc="scoring", unit="prompt", disable=not progress)
    for groups in _chunks(plan, batch_size, lambda g: len(g[0]), _MAX_PROMPT_TOKENS):
        ids, mask = left_pad([pre for pre, _ in groups], pad_id, device)
        prefix = _prefix_cache(model, input_ids=ids, attention_mask=mask)
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
            column = {p: c for c, p in enumerate(keep)}
            logprobs = _fed_logprobs(model, prefix, chunk, pad_id, keep)
            for r, row in enumerate(chunk):
                for i, j, offset, ans in rows[row]:
                    cols = torch.tensor([column[offset + t] for t in range(len(ans))], device=device)
                    tgt = torch.tensor(ans, device=device)
                    results[i][j] += logprobs[r, cols, tgt].sum().item()
        bar.update(sum(len(unique[k]) for _, members in groups for k in members))
    bar.close()
    return results


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


def _target_logits(
    model: Any, prefix: _Prefix, rows: list[tuple[int, tuple[int, ...]]], pad_id: int, head: torch.Tensor
) -> torch.Tensor:
    """Right-padded rows run after their prefix rows (as :func:`_fed_logprobs`), but through the
    decoder only: the logits ``(rows, targets)`` at each row's last token, from the LM head's target
    rows ``head`` alone (the full-vocabulary head would cost more than the decoder here)."""
    device = prefix.mask.device
    idx = torch.tensor([g for g, _ in rows], device=device)
    width = max(len(fed) for _, fed in rows)
    inputs = torch.full((len(rows), width), pad_id, dtype=torch.long, device=device)
    real = torch.zeros((len(rows), width), dtype=prefix.mask.dtype, device=device)
    for r, (_, fed) in enumerate(rows):
        inputs[r, : len(fed)] = torch.tensor(fed, device=device)
        real[r, : len(fed)] = 1
    cache = _new_cache(model, [(k.index_select(0, idx), v.index_select(0, idx)) for k, v, *_ in prefix.cache])
    hidden = model.get_decoder()(
        input_ids=inputs,
        attention_mask=torch.cat([prefix.mask.index_select(0, idx), real], dim=1),
        position_ids=prefix.lengths.index_select(0, idx)[:, None] + torch.arange(width, device=device),
        past_key_values=cache,
        use_cache=True,
    ).last_hidden_state
    last = torch.tensor([len(fed) - 1 for _, fed in rows], device=device)
    return (hidden[torch.arange(len(rows), device=device), last] @ head.T).float()


@torch.inference_mode()
def next_token_logits(
    model: Any,
    prefix_ids: Sequence[Sequence[int]],
    suffix_ids: Sequence[Sequence[Sequence[int]]],
    targets: Sequence[int],
    *,
    pad_id: int,
    batch_size: int = 8,
) -> list[np.ndarray]:
    """``out[i][j, t] = log P(targets[t] | prefix_ids[i] + suffix_ids[i][j]) + c_ij``: the next-token
    log-probabilities of ``targets`` up to one constant per (prefix, suffix) row, so a softmax over
    ``targets`` is exact while the LM head runs on the target rows only.

    Each prefix runs once, in left-padded batches of ``batch_size`` prefixes; its suffixes run after
    copies of its KV cache, ``4 × batch_size`` rows per pass at most (an empty suffix reads the
    prefix's own last logits). Equal (prefix, suffix) rows run once. Needs an LM head that is a plain
    linear map of the decoder's last hidden state (Llama-style models; no logit soft-capping).
    """
    if len(prefix_ids) != len(suffix_ids):
        raise ValueError(f"{len(prefix_ids)} prefixes but {len(suffix_ids)} suffix lists")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    device = _device(model)
    tgt = torch.tensor(list(targets), dtype=torch.long, device=device)
    lm_head = model.get_output_embeddings()
    head = lm_head.weight.index_select(0, tgt)
    if getattr(lm_head, "bias", None) is not None:
        raise ValueError("next_token_logits needs an LM head without bias")
    out: list[np.ndarray] = [np.zeros((len(s), len(targets)), dtype=np.float64) for s in suffix_ids]
    order = sorted(range(len(prefix_ids)), key=lambda i: len(prefix_ids[i]))  # less padding
    for chunk in _chunks(order, batch_size, lambda i: len(prefix_ids[i]), _MAX_PROMPT_TOKENS):
        if any(not prefix_ids[i] for i in chunk):
            raise ValueError("a prefix has no tokens")
        ids, mask = left_pad([prefix_ids[i] for i in chunk], pad_id, device)
        prefix = _prefix_cache(model, input_ids=ids, attention_mask=mask)
        where: dict[tuple[int, tuple[int, ...]], list[tuple[int, int]]] = {}
        for g, i in enumerate(chunk):
            for j, suffix in enumerate(suffix_ids[i]):
                if suffix:
                    where.setdefault((g, tuple(int(x) for x in suffix)), []).append((i, j))
                else:
                    out[i][j] = prefix.last_logprobs[g, tgt].double().cpu().numpy()
        rows = sorted(where, key=lambda r: len(r[1]))
        for sub in _chunks(rows, 4 * batch_size, lambda r: len(r[1]), 4 * _MAX_ANSWER_TOKENS):
            logits = _target_logits(model, prefix, sub, pad_id, head).double().cpu().numpy()
            for r, row in enumerate(sub):
                for i, j in where[row]:
                    out[i][j] = logits[r]
    return out
