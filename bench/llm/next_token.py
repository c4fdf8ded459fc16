"""Next-token log-probabilities of a few target tokens after (prefix, suffix) rows.

The reader behind LLM attribute scores (:mod:`bench.llm.attributes`): each prefix's KV cache is
computed once and shared by all its suffixes, and the LM head runs on the target tokens' rows only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bench.llm.chat import left_pad
from bench.llm.scoring import (
    _MAX_ANSWER_TOKENS,
    _MAX_PROMPT_TOKENS,
    _chunks,
    _device,
    _new_cache,
    _Prefix,
    _prefix_cache,
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
