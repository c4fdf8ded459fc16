"""The decoding loop behind :func:`bench.llm.generate`: one prefill per prompt, then one token per step.

Why not ``model.generate``: transformers' beam search repeats every prompt ``num_beams`` times
*before* the prefill, so a beam-3 retrieval pays three full prompt passes per instance, and on
small CPUs the prefill (compute-bound, gains from every core) and the steps (one small matrix
product after another, faster on one thread) want different thread counts. Here the prompts run
once with the process's threads (a start that every prompt of the batch shares, such as few-shot
examples, runs once for all of them), their KV cache rows are copied to the beams, and the steps
run with ``step_threads``.

Semantics (both deterministic, never sampled):

* greedy (``num_beams == 1``): ``argmax`` at every step; a row stops at an EOS id, at a stop
  string (checked only when the new token could complete one), or at ``max_new_tokens``. Finished
  rows leave the batch, so long answers do not make short ones pay.
* beam search: at each step every live beam of a prompt is extended by every allowed token and
  the best ``2 × num_beams`` candidates are read in order of total log-probability; an EOS
  candidate becomes a finished hypothesis, the others become the next beams until ``num_beams``
  are kept. Scores are summed log-probabilities with no length normalisation (transformers'
  ``length_penalty=0``). A prompt is done once ``num_beams`` hypotheses have finished and none of
  its live beams scores higher than the worst of them (log-probabilities only fall, so none could
  ever overtake it); at ``max_new_tokens`` the live beams join the finished ones.
* ``constraint``: only trie continuations are allowed (every finished sequence is a title + EOS);
  ``suppress``: ids that are never generated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from bench.llm.kv_cache import with_cache
from bench.llm.scoring import _new_cache, _prefix_cache
from bench.llm.trie import TitleTrie

_NEG_INF = float("-inf")


@dataclass(frozen=True, eq=False)
class DecodeSpec:
    """What to decode (see the module docstring)."""

    max_new_tokens: int
    eos_ids: tuple[int, ...]
    num_beams: int = 1
    stops: tuple[str, ...] = ()
    suppress: tuple[int, ...] = ()
    constraint: TitleTrie | None = None
    #: torch intra-op threads for the per-token steps on CPU (None: unchanged).
    step_threads: int | None = 1
    #: per vocabulary id, whether the token could complete a stop string (see generation.py).
    stop_candidates: torch.Tensor | None = None
    #: a batch whose prompts all start with this many equal tokens runs that start once.
    min_shared: int = 16


@contextmanager
def _intra_op_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads (unchanged for None), restoring the count afterwards."""
    prev = torch.get_num_threads()
    if n is None or n == prev:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


@dataclass
class _Beam:
    score: float
    tokens: list[int]
    node: Any  # trie node of ``tokens`` (None without a constraint)
    row: int  # the cache row this beam's next step reads


def _forward(
    model: Any, cache: Any, tokens: list[int], mask: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """One step for every row: log-probabilities of the next token, (rows, vocab) float32."""
    device = mask.device
    out = model(
        input_ids=torch.tensor(tokens, dtype=torch.long, device=device)[:, None],
        attention_mask=mask,
        position_ids=positions[:, None],
        **with_cache(cache),
        use_cache=True,
    )
    return out.logits[:, -1].float().log_softmax(-1)


def _restrict(logp: torch.Tensor, spec: DecodeSpec, nodes: Sequence[Any] | None) -> torch.Tensor:
    """Apply ``suppress`` and, per row, the trie's allowed tokens (in place; returns ``logp``)."""
    if spec.suppress:
        logp[:, list(spec.suppress)] = _NEG_INF
    if spec.constraint is not None and nodes is not None:
        allowed = torch.full_like(logp, _NEG_INF)
        for r, node in enumerate(nodes):
            ids = TitleTrie.sorted_children(node) or [spec.constraint.eos_id]
            allowed[r, ids] = 0.0
        logp += allowed
    return logp


def _hits_stop(tokenizer: Any, spec: DecodeSpec, tokens: list[int]) -> bool:
    """Whether the newest token completed a stop string in the decoded tail."""
    if not spec.stops or spec.stop_candidates is None:
        return False
    last = tokens[-1]
    cands = spec.stop_candidates
    if last < len(cands) and not bool(cands[last]):
        return False
    window = 4 * max(len(s) for s in spec.stops) + 4
    text = tokenizer.decode(tokens[-window:], skip_special_tokens=True)
    return any(s in text for s in spec.stops)


def _common_start(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> int:
    """How many leading real tokens every left-padded row shares (each row keeps at least one)."""
    lengths = attention_mask.sum(-1).tolist()
    width = input_ids.shape[1]
    rows = [input_ids[r, width - n :] for r, n in enumerate(lengths)]
    limit = min(lengths) - 1
    if limit <= 0:
        return 0
    first = rows[0][:limit]
    same = torch.ones(limit, dtype=torch.bool, device=input_ids.device)
    for row in rows[1:]:
        same &= row[:limit] == first
    return limit if bool(same.all()) else int(torch.nonzero(~same)[0, 0])


def _prefill(
    model: Any,
    attention_mask: torch.Tensor,
    input_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    min_shared: int,
) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Run the prompts once; returns (cache, last log-probabilities, attention mask of the cache).

    When every prompt of the batch starts with the same ``≥ min_shared`` tokens (a template's
    header, few-shot examples), that start runs once and its cache rows are copied to every
    prompt; each prompt's own remainder then runs left-padded *after* it (pads masked, positions
    continuing from the shared start), so the cache layout is ``[shared | pads | own tokens]``.
    """
    shared = 0
    if input_ids is not None and input_ids.shape[0] > 1:
        shared = _common_start(input_ids, attention_mask)
    if shared < min_shared:
        prefix = _prefix_cache(
            model, attention_mask=attention_mask, input_ids=input_ids, inputs_embeds=inputs_embeds
        )
        return prefix.cache, prefix.last_logprobs, attention_mask
    assert input_ids is not None
    n, width = input_ids.shape
    lengths = attention_mask.sum(-1)
    start = int(width - lengths[0])
    head = input_ids[:1, start : start + shared]
    cache = _new_cache(model)
    model(
        input_ids=head,
        position_ids=torch.arange(shared, device=head.device)[None],
        **with_cache(cache),
        use_cache=True,
        logits_to_keep=1,
    )
    cache.batch_repeat_interleave(n)
    own = lengths - shared
    tail_width = int(own.max())
    tail = torch.full((n, tail_width), 0, dtype=input_ids.dtype, device=input_ids.device)
    tail_mask = torch.zeros((n, tail_width), dtype=attention_mask.dtype, device=attention_mask.device)
    for r in range(n):
        k = int(own[r])
        tail[r, tail_width - k :] = input_ids[r, width - k :]
        tail_mask[r, tail_width - k :] = 1
    mask = torch.cat([attention_mask.new_ones((n, shared)), tail_mask], dim=1)
    positions = shared + (tail_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=tail,
        attention_mask=mask,
        position_ids=positions,
        **with_cache(cache),
        use_cache=True,
        logits_to_keep=1,
    )
    return cache, out.logits[:, -1].float().log_softmax(-1), mask


@torch.inference_mode()
def decode(
    model: Any,
    tokenizer: Any,
    spec: DecodeSpec,
    *,
    attention_mask: torch.Tensor,
    input_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
) -> list[list[tuple[float, list[int]]]]:
    """Decode a left-padded batch of prompts (ids or embeddings).

    Returns, per prompt, ``(score, new token ids)`` pairs best first: one for greedy decoding
    (score = its summed log-probability), up to ``num_beams`` for beam search.
    """
    cache, logp, attention_mask = _prefill(model, attention_mask, input_ids, inputs_embeds, spec.min_shared)
    threads = spec.step_threads if attention_mask.device.type == "cpu" else None
    with _intra_op_threads(threads):
        if spec.num_beams == 1:
            return _greedy(model, tokenizer, spec, cache, logp, attention_mask)
        return _beam(model, tokenizer, spec, cache, logp, attention_mask)


def _greedy(
    model: Any, tokenizer: Any, spec: DecodeSpec, cache: Any, logp: torch.Tensor, mask: torch.Tensor
) -> list[list[tuple[float, list[int]]]]:
    n = logp.shape[0]
    lengths = mask.sum(-1)
    seqs: list[list[int]] = [[] for _ in range(n)]
    scores = [0.0] * n
    nodes: list[Any] = [spec.constraint.root if spec.constraint else None] * n
    active = list(range(n))  # prompt of each cache row
    eos = set(spec.eos_ids)
    for step in range(spec.max_new_tokens):
        logp = _restrict(logp, spec, [nodes[i] for i in active] if spec.constraint else None)
        best = logp.max(-1)
        picked = best.indices.tolist()
        values = best.values.tolist()
        keep: list[int] = []
        for r, (i, tok) in enumerate(zip(active, picked, strict=True)):
            seqs[i].append(tok)
            scores[i] += values[r]
            if spec.constraint is not None and nodes[i] is not None:
                nodes[i] = nodes[i].children.get(tok)
            if tok not in eos and not _hits_stop(tokenizer, spec, seqs[i]):
                keep.append(r)
        if not keep or step == spec.max_new_tokens - 1:
            break
        if len(keep) < len(active):
            idx = torch.tensor(keep, device=mask.device)
            cache.batch_select_indices(idx)
            mask, lengths = mask.index_select(0, idx), lengths.index_select(0, idx)
            active = [active[r] for r in keep]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        logp = _forward(model, cache, [seqs[i][-1] for i in active], mask, lengths + step)
    return [[(scores[i], seqs[i])] for i in range(n)]


def _beam(
    model: Any, tokenizer: Any, spec: DecodeSpec, cache: Any, logp: torch.Tensor, mask: torch.Tensor
) -> list[list[tuple[float, list[int]]]]:
    n, k = logp.shape[0], spec.num_beams
    root = spec.constraint.root if spec.constraint is not None else None
    eos = set(spec.eos_ids)
    # Before the first step each prompt has one "beam": its own prefill row.
    beams: list[list[_Beam]] = [[_Beam(0.0, [], root, i)] for i in range(n)]
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
    done = [False] * n
    lengths = mask.sum(-1)
    for step in range(spec.max_new_tokens):
        flat = [b for i in range(n) if not done[i] for b in beams[i]]
        logp = _restrict(logp, spec, [b.node for b in flat] if spec.constraint else None)
        base = torch.tensor([b.score for b in flat], dtype=logp.dtype, device=logp.device)
        total = logp + base[:, None]
        vocab = total.shape[-1]
        nxt_beams: list[list[_Beam]] = [[] for _ in range(n)]
        start = 0
        for i in range(n):
            if done[i]:
                continue
            mine = beams[i]
            block = total[start : start + len(mine)].reshape(-1)
            top = torch.topk(block, min(2 * k, block.numel()))
            for value, flat_idx in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                if value == _NEG_INF or len(nxt_beams[i]) == k:
                    break
                parent, tok = mine[flat_idx // vocab], flat_idx % vocab
                if tok in eos:
                    finished[i].append((value, [*parent.tokens, tok]))
                    continue
                node = parent.node.children.get(tok) if parent.node is not None else None
                nxt_beams[i].append(_Beam(value, [*parent.tokens, tok], node, start + flat_idx // vocab))
            start += len(mine)
            finished[i].sort(key=lambda h: -h[0])
            del finished[i][k:]
            best_alive = max((b.score for b in nxt_beams[i]), default=_NEG_INF)
            if not nxt_beams[i] or (len(finished[i]) == k and best_alive <= finished[i][-1][0]):
                done[i] = True
        for i in range(n):
            if not done[i]:
                beams[i] = nxt_beams[i]
        alive = [b for i in range(n) if not done[i] for b in beams[i]]
        if not alive or step == spec.max_new_tokens - 1:
            break
        idx = torch.tensor([b.row for b in alive], device=mask.device)
        cache.reorder_cache(idx)
        mask = torch.cat([mask.index_select(0, idx), mask.new_ones((len(alive), 1))], dim=1)
        lengths = lengths.index_select(0, idx)
        for r, b in enumerate(alive):
            b.row = r
        logp = _forward(model, cache, [b.tokens[-1] for b in alive], mask, lengths + step)
    for i in range(n):
        if not done[i]:  # cut off at max_new_tokens: live beams count as hypotheses too
            finished[i].extend((b.score, b.tokens) for b in beams[i])
            finished[i].sort(key=lambda h: -h[0])
            del finished[i][k:]
    return finished
