"""Next-token log-probabilities of a few target tokens after (shared, prefix, suffix) rows.

The reader behind LLM attribute scores (:mod:`bench.llm.attributes`). A row is
``shared + prefix_i + suffix_ij``: ``shared`` (the instructions every item's prompt starts with) runs
once per call and its KV cache is reused by every prefix; each prefix (one item) runs once; each
suffix (one attribute) runs once after it; the LM head runs on the target tokens' rows only, at each
row's last position. The forward passes therefore cost ``len(shared)`` tokens once plus
``len(prefix_i) + Σ_j len(suffix_ij)`` tokens per item.

Two ways to run the suffixes after their prefix, with the same result:

* **packed** (default with SDPA or eager attention): one sequence per item,
  ``prefix_i, suffix_i1, suffix_i2, …``, after a broadcast view of the shared cache, with a 4-D
  attention mask that lets each suffix see the shared part, its prefix and its own earlier tokens
  only, and position ids that restart every suffix right after the prefix — the attention a
  suffix gets is exactly that of ``shared + prefix_i + suffix_ij`` run alone (a "tree" of
  continuations in one pass). No KV cache is copied per suffix.
* **rows**: each prefix's KV cache kept, each suffix a right-padded row after a copy of its
  prefix's cache rows (for attention implementations that take no 4-D mask, e.g. flash-attention).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bench.llm.chat import left_pad
from bench.llm.kv_cache import output_cache, with_cache
from bench.llm.scoring import (
    _MAX_ANSWER_TOKENS,
    _MAX_PROMPT_TOKENS,
    _chunks,
    _device,
    _new_cache,
    _Prefix,
    _prefix_cache,
    additive_mask,
)


def _after(
    model: Any,
    cache_rows: list[tuple[torch.Tensor, torch.Tensor]],
    mask: torch.Tensor,
    lengths: torch.Tensor,
    fed: Sequence[Sequence[int]],
    pad_id: int,
) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded token rows ``fed`` run through the decoder after cached rows (one cache row per
    fed row, attention ``mask`` and true ``lengths``). Returns the extended cache, its attention
    mask, the hidden states ``(rows, width, d)`` and each row's last real position.

    Right padding needs no masking beyond the attention mask: under causal attention a real token
    never sees a later pad, and later tokens (the suffixes) see the pads' mask zeros.
    """
    device = mask.device
    width = max(len(f) for f in fed)
    inputs = torch.full((len(fed), width), pad_id, dtype=torch.long, device=device)
    real = torch.zeros((len(fed), width), dtype=mask.dtype, device=device)
    for r, f in enumerate(fed):
        inputs[r, : len(f)] = torch.tensor(list(f), dtype=torch.long, device=device)
        real[r, : len(f)] = 1
    full_mask = torch.cat([mask, real], dim=1)
    out = model.get_decoder()(
        input_ids=inputs,
        attention_mask=full_mask,
        position_ids=lengths[:, None] + torch.arange(width, device=device),
        **with_cache(_new_cache(model, cache_rows)),
        use_cache=True,
    )
    last = torch.tensor([len(f) - 1 for f in fed], device=device)
    return output_cache(out), full_mask, out.last_hidden_state, last


def _target_logits(
    model: Any, prefix: _Prefix, rows: list[tuple[int, tuple[int, ...]]], pad_id: int, head: torch.Tensor
) -> torch.Tensor:
    """Right-padded rows run after their prefix rows, through the decoder only: the logits
    ``(rows, targets)`` (float32) at each row's last token, from the LM head's target rows ``head``
    alone (the full-vocabulary head would cost more than the decoder here)."""
    device = prefix.mask.device
    idx = torch.tensor([g for g, _ in rows], device=device)
    cache_rows = [(k.index_select(0, idx), v.index_select(0, idx)) for k, v, *_ in prefix.cache]
    _, _, hidden, last = _after(
        model,
        cache_rows,
        prefix.mask.index_select(0, idx),
        prefix.lengths.index_select(0, idx),
        [fed for _, fed in rows],
        pad_id,
    )
    return hidden[torch.arange(len(rows), device=device), last].float() @ head.T


def _item_prefixes(
    model: Any, shared: _Prefix, prefixes: list[Sequence[int]], pad_id: int, head: torch.Tensor
) -> tuple[_Prefix, torch.Tensor]:
    """The prefixes run as right-padded rows after copies of the one-row ``shared`` cache: their
    :class:`_Prefix` (attention mask ``[shared ones | prefix mask]``, a hole where a prefix is
    shorter than the widest) and the target logits at each prefix's last token (for empty suffixes)."""
    zeros = torch.zeros(len(prefixes), dtype=torch.long, device=shared.mask.device)
    cache_rows = [(k.index_select(0, zeros), v.index_select(0, zeros)) for k, v, *_ in shared.cache]
    cache, mask, hidden, last = _after(
        model,
        cache_rows,
        shared.mask.index_select(0, zeros),
        shared.lengths.index_select(0, zeros),
        prefixes,
        pad_id,
    )
    rows = torch.arange(len(prefixes), device=mask.device)
    logits = hidden[rows, last].float() @ head.T
    lengths = shared.lengths.index_select(0, zeros) + last + 1
    return _Prefix(cache=cache, last_logprobs=logits, mask=mask, lengths=lengths), logits


def _packed(
    model: Any,
    shared: _Prefix | None,
    items: list[tuple[Sequence[int], list[tuple[int, ...]]]],
    pad_id: int,
    head: torch.Tensor,
) -> list[torch.Tensor]:
    """Each item's prefix and all its suffixes in one sequence (see the module docstring): for item
    ``r``, the target logits ``(len(suffixes_r), targets)`` at each suffix's last token (at the
    prefix's last token for an empty suffix)."""
    device = head.device
    seqs, groups, positions, reads = [], [], [], []
    base = int(shared.lengths[0]) if shared is not None else 0
    for prefix, suffixes in items:
        seq, grp = list(prefix), [0] * len(prefix)
        pos = list(range(base, base + len(prefix)))
        read = []
        for j, suffix in enumerate(suffixes, start=1):
            seq += suffix
            grp += [j] * len(suffix)
            pos += range(base + len(prefix), base + len(prefix) + len(suffix))
            read.append(len(seq) - 1 if suffix else len(prefix) - 1)
        seqs.append(seq)
        groups.append(grp)
        positions.append(pos)
        reads.append(read)
    width = max(len(x) for x in seqs)
    inputs = torch.full((len(seqs), width), pad_id, dtype=torch.long, device=device)
    group = torch.full((len(seqs), width), -1, dtype=torch.long, device=device)
    pos_ids = torch.zeros((len(seqs), width), dtype=torch.long, device=device)
    for r, (seq, grp, pos) in enumerate(zip(seqs, groups, positions, strict=True)):
        inputs[r, : len(seq)] = torch.tensor(seq, dtype=torch.long, device=device)
        group[r, : len(seq)] = torch.tensor(grp, dtype=torch.long, device=device)
        pos_ids[r, : len(seq)] = torch.tensor(pos, dtype=torch.long, device=device)
    q, k = group[:, :, None], group[:, None, :]
    causal = torch.ones((width, width), dtype=torch.bool, device=device).tril()
    # a token sees the prefix and its own suffix's earlier tokens; a pad sees only itself (no empty row)
    allowed = causal & (q >= 0) & ((k == 0) | (k == q))
    allowed |= torch.eye(width, dtype=torch.bool, device=device)
    if base:  # every token sees all of the shared start
        allowed = torch.cat(
            [torch.ones((len(seqs), width, base), dtype=torch.bool, device=device), allowed], dim=2
        )
    cache = None
    if shared is not None:
        # broadcast views of the one-row shared cache: the layers' concatenation copies them once
        rows = [
            (kk.expand(len(seqs), -1, -1, -1), vv.expand(len(seqs), -1, -1, -1))
            for kk, vv, *_ in shared.cache
        ]
        cache = _new_cache(model, rows)
    hidden = model.get_decoder()(
        input_ids=inputs,
        attention_mask=additive_mask(allowed, model),
        position_ids=pos_ids,
        **with_cache(cache),
        use_cache=cache is not None,
    ).last_hidden_state
    return [hidden[r, torch.tensor(read, device=device)].float() @ head.T for r, read in enumerate(reads)]


def _packs(model: Any) -> bool:
    """Whether the model's attention takes a custom 4-D additive mask (SDPA and eager do)."""
    return getattr(model.config, "_attn_implementation", None) in ("sdpa", "eager")


@torch.inference_mode()
def next_token_logits(
    model: Any,
    prefix_ids: Sequence[Sequence[int]],
    suffix_ids: Sequence[Sequence[Sequence[int]]],
    targets: Sequence[int],
    *,
    pad_id: int,
    shared_ids: Sequence[int] = (),
    batch_size: int = 8,
    rows_per_pass: int | None = None,
    packed: bool | None = None,
) -> list[np.ndarray]:
    """``out[i][j, t] = log P(targets[t] | shared_ids + prefix_ids[i] + suffix_ids[i][j]) + c_ij``: the
    next-token log-probabilities of ``targets`` up to one constant per row, so a softmax over
    ``targets`` is exact while the LM head runs on the target rows only.

    ``shared_ids`` (may be empty) runs once per call. Prefixes run in batches of ``batch_size``
    (shortest first, less padding). ``packed`` (default: when the attention takes a 4-D mask) runs
    each prefix with all its suffixes in one sequence; otherwise each prefix runs (left-padded when
    nothing is shared, right-padded after copies of the shared cache otherwise) and its suffixes run
    after copies of its KV cache, ``rows_per_pass`` rows per pass at most (default
    ``4 × batch_size``). An empty suffix reads the prefix's own last logits; equal suffixes of one
    prefix run once. Needs an LM head that is a plain linear map of the decoder's last hidden state
    (Llama-style models; no logit soft-capping).
    """
    if len(prefix_ids) != len(suffix_ids):
        raise ValueError(f"{len(prefix_ids)} prefixes but {len(suffix_ids)} suffix lists")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    per_pass = int(rows_per_pass or 4 * batch_size)
    device = _device(model)
    tgt = torch.tensor(list(targets), dtype=torch.long, device=device)
    lm_head = model.get_output_embeddings()
    if getattr(lm_head, "bias", None) is not None:
        raise ValueError("next_token_logits needs an LM head without bias")
    # the five-or-so target rows of the head in float32: a bf16 product would round the logits
    # (steps of ~0.06 at |logit| ≈ 10) before the softmax over the targets
    head = lm_head.weight.index_select(0, tgt).float()
    out: list[np.ndarray] = [np.zeros((len(s), len(targets)), dtype=np.float64) for s in suffix_ids]
    shared = None
    if len(shared_ids) and len(prefix_ids):
        ids, mask = left_pad([list(shared_ids)], pad_id, device)
        shared = _prefix_cache(model, input_ids=ids, attention_mask=mask)
    if any(not p for p in prefix_ids):
        raise ValueError("a prefix has no tokens")
    if packed if packed is not None else _packs(model):
        return _run_packed(model, shared, prefix_ids, suffix_ids, out, pad_id, batch_size, head)
    order = sorted(range(len(prefix_ids)), key=lambda i: len(prefix_ids[i]))  # less padding
    budget = _MAX_PROMPT_TOKENS - len(shared_ids)
    for chunk in _chunks(order, batch_size, lambda i: len(prefix_ids[i]), max(budget, 1)):
        if shared is None:
            ids, mask = left_pad([prefix_ids[i] for i in chunk], pad_id, device)
            prefix = _prefix_cache(model, input_ids=ids, attention_mask=mask)
            last_logits = prefix.last_logprobs.index_select(1, tgt)
        else:
            prefix, last_logits = _item_prefixes(model, shared, [prefix_ids[i] for i in chunk], pad_id, head)
        where: dict[tuple[int, tuple[int, ...]], list[tuple[int, int]]] = {}
        for g, i in enumerate(chunk):
            for j, suffix in enumerate(suffix_ids[i]):
                if suffix:
                    where.setdefault((g, tuple(int(x) for x in suffix)), []).append((i, j))
                else:
                    out[i][j] = last_logits[g].double().cpu().numpy()
        rows = sorted(where, key=lambda r: len(r[1]))
        for sub in _chunks(rows, per_pass, lambda r: len(r[1]), 4 * _MAX_ANSWER_TOKENS):
            logits = _target_logits(model, prefix, sub, pad_id, head).double().cpu().numpy()
            for r, row in enumerate(sub):
                for i, j in where[row]:
                    out[i][j] = logits[r]
    return out


def _run_packed(
    model: Any,
    shared: _Prefix | None,
    prefix_ids: Sequence[Sequence[int]],
    suffix_ids: Sequence[Sequence[Sequence[int]]],
    out: list[np.ndarray],
    pad_id: int,
    batch_size: int,
    head: torch.Tensor,
) -> list[np.ndarray]:
    """:func:`next_token_logits` through :func:`_packed`, ``batch_size`` items per pass."""
    unique = [
        list(dict.fromkeys(tuple(int(x) for x in s) for s in suffix_ids[i])) for i in range(len(prefix_ids))
    ]

    def width(i: int) -> int:
        return len(prefix_ids[i]) + sum(len(s) for s in unique[i])

    order = sorted(range(len(prefix_ids)), key=width)  # less padding
    budget = max(_MAX_PROMPT_TOKENS - (int(shared.lengths[0]) if shared is not None else 0), 1)
    for chunk in _chunks(order, batch_size, width, budget):
        logits = _packed(model, shared, [(prefix_ids[i], unique[i]) for i in chunk], pad_id, head)
        for i, rows in zip(chunk, logits, strict=True):
            at = {s: r for r, s in enumerate(unique[i])}
            values = rows.double().cpu().numpy()
            for j, s in enumerate(suffix_ids[i]):
                out[i][j] = values[at[tuple(int(x) for x in s)]]
    return out
