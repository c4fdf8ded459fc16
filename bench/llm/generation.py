"""Batched deterministic generation (greedy or beam search), optionally restricted to catalog titles.

``generate(backbone, prompts)`` returns, for each prompt, ``num_return_sequences`` continuations
(the text after the prompt), each cut at the first stop string and stripped.

* Prompts are tokenised like scoring prompts (:func:`bench.llm.chat.encode_prompt`), sorted by
  length, and run in left-padded batches of ``batch_size`` with position ids from the attention
  mask, so a prompt's result does not depend on its batch mates (up to float noise).
* The loop is :func:`bench.llm.decode.decode`: one prefill per prompt (never one per beam), then
  one token per step; greedy (``num_beams=1``) or beam search, never sampled.
* Stop strings end a sequence early: when the new token could complete one, the tail of the
  sequence is decoded (a stop string may sit inside one token, e.g. ``".\\n"``); the text is then
  cut at the first stop string.
* With ``constraint=TitleTrie`` only trie continuations are allowed, so every sequence is a title
  followed by EOS; results are read back through the trie (the exact title string),
  de-duplicated, and sequences that did not end on a title (only possible when the catalog has
  fewer titles than beams) are dropped, so a prompt may get fewer than ``num_return_sequences``
  titles. Beams are ranked by total ``log P(title + EOS | prompt)`` (no length normalisation),
  the quantity :func:`~bench.llm.scoring.score_continuations` gives, so beam top-k approximates
  exact ranking of the catalog. Stop strings do not apply.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.llm.chat import encode_prompt, left_pad
from bench.llm.decode import DecodeSpec, decode
from bench.llm.trie import TitleTrie


def _stop_candidates(tokenizer: Any, stops: Sequence[str]) -> torch.Tensor:
    """Per vocabulary id: could generating this token complete a stop string?

    A stop string newly appears in the decoded text only through the newly generated token, so that
    token's text holds the stop string's last character; a token whose text alone is not clean
    (a partial UTF-8 byte, ``"\ufffd"``, or empty) is always a candidate, to stay exact.
    """
    vocab = max(len(tokenizer), max(tokenizer.get_vocab().values(), default=0) + 1)
    lasts = {s[-1] for s in stops}
    texts = tokenizer.batch_decode([[i] for i in range(vocab)], skip_special_tokens=False)
    flags = [(not t) or "\ufffd" in t or any(c in t for c in lasts) for t in texts]
    return torch.tensor(flags, dtype=torch.bool)


#: per tokenizer (weakly held: an entry goes with its tokenizer, and a new tokenizer that reuses a
#: freed one's ``id`` never finds it) and stop set: which token ids could complete a stop string
_CANDIDATES: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], torch.Tensor]] = weakref.WeakKeyDictionary()


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string, stripped."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut].strip()


@dataclass(frozen=True)
class GenerationOptions:
    """The decoding options shared by :func:`generate` and :func:`~bench.llm.injected.generate_injected`.

    Attributes:
        max_new_tokens: most tokens generated per sequence; with a constraint, raised to the
            longest title's length so no title is cut short.
        num_beams: 1 for greedy decoding, more for beam search.
        num_return_sequences: sequences returned per prompt (≤ ``num_beams``; the best beams).
        batch_size: prompts per decoding call.
        constraint: restrict outputs to the titles of this trie (see :class:`TitleTrie`).
        stop: stop strings (unconstrained decoding only); ``()`` for none.
        progress: show a progress bar.
        cpu_threads: torch intra-op threads for the per-token steps on CPU (restored
            afterwards; the prompt pass keeps the process's threads); None keeps the current
            setting. Decoding runs one small matrix product after another, and
            on a busy machine every OpenMP fork/join waits for a descheduled thread: one thread
            measured 2-60x faster than two on a loaded 2-core host (tiny-random and SmolLM2-135M).
    """

    max_new_tokens: int = 64
    num_beams: int = 1
    num_return_sequences: int = 1
    batch_size: int = 8
    constraint: TitleTrie | None = None
    stop: Sequence[str] = ("\n",)
    progress: bool = False
    cpu_threads: int | None = 1

    @classmethod
    def of(cls, options: GenerationOptions | None = None, **overrides: Any) -> GenerationOptions:
        """``options`` (or the defaults) with ``overrides`` applied; an unknown name is a TypeError."""
        return replace(options or cls(), **overrides)


#: ``embed(input_ids, rows) -> inputs_embeds`` for a left-padded batch of the prompts at ``rows``
Embed = Callable[[torch.Tensor, Sequence[int]], torch.Tensor]


@torch.inference_mode()
def generate(
    backbone: Any, prompts: Sequence[str], options: GenerationOptions | None = None, **overrides: Any
) -> list[list[str]]:
    """Decode continuations of ``prompts`` (see the module docstring).

    Options are a :class:`GenerationOptions`, or its fields as keywords (applied over ``options``).

    Returns:
        ``out[i]``: the continuations of ``prompts[i]``, best first.
    """
    tok = backbone.tokenizer
    encoded = [encode_prompt(tok, p) for p in prompts]
    return run_generation(backbone.model, tok, encoded, GenerationOptions.of(options, **overrides))


def run_generation(
    model: Any,
    tok: Any,
    encoded: Sequence[Sequence[int]],
    opts: GenerationOptions,
    *,
    embed: Embed | None = None,
    suppress: Sequence[int] = (),
) -> list[list[str]]:
    """The decoding loop of :func:`generate`: prompt ids sorted by length, left-padded batches.

    With ``embed``, the prompt pass runs on ``embed(ids, rows)`` (``inputs_embeds``, e.g. injected
    vectors) instead of the ids; ``suppress`` lists token ids never generated.
    """
    device = next(model.parameters()).device
    spec = decode_spec(
        tok,
        max_new_tokens=opts.max_new_tokens,
        num_beams=opts.num_beams,
        num_return_sequences=opts.num_return_sequences,
        constraint=opts.constraint,
        stop=opts.stop,
        suppress=suppress,
        step_threads=opts.cpu_threads if device.type == "cpu" else None,
    )
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    results: list[list[str]] = [[] for _ in encoded]
    bar = tqdm(total=len(encoded), desc="generating", unit="prompt", disable=not opts.progress)
    for start in range(0, len(order), opts.batch_size):
        batch = order[start : start + opts.batch_size]
        ids, mask = left_pad([encoded[i] for i in batch], tok.pad_token_id, device)
        if embed is None:
            hyps = decode(model, tok, spec, input_ids=ids, attention_mask=mask)
        else:
            hyps = decode(model, tok, spec, inputs_embeds=embed(ids, batch), attention_mask=mask)
        for r, i in enumerate(batch):
            results[i] = texts_of(tok, spec, hyps[r][: opts.num_return_sequences])
        bar.update(len(batch))
    bar.close()
    return results


def decode_spec(
    tokenizer: Any,
    *,
    max_new_tokens: int,
    num_beams: int,
    num_return_sequences: int,
    constraint: TitleTrie | None,
    stop: Sequence[str],
    suppress: Sequence[int] = (),
    step_threads: int | None = 1,
) -> DecodeSpec:
    """The :class:`DecodeSpec` of a :func:`generate` call (shared with injected generation).

    Raises ValueError unless ``1 ≤ num_return_sequences ≤ num_beams`` and the constraint has titles.
    """
    if num_beams < 1 or not 1 <= num_return_sequences <= num_beams:
        raise ValueError(
            f"need 1 ≤ num_return_sequences ≤ num_beams, got {num_return_sequences} and {num_beams}"
        )
    if constraint is not None and len(constraint) == 0:
        raise ValueError("the title constraint is empty (no titles)")
    stops = tuple(s for s in stop if s) if constraint is None else ()
    if constraint is not None:
        max_new_tokens = max(max_new_tokens, constraint.max_len)
        eos: tuple[int, ...] = (constraint.eos_id,)
    else:
        raw = tokenizer.eos_token_id
        eos = tuple(raw) if isinstance(raw, list | tuple) else ((raw,) if raw is not None else ())
    candidates = None
    if stops:
        per_stops = _CANDIDATES.setdefault(tokenizer, {})
        key = tuple(sorted(set(stops)))
        if key not in per_stops:
            per_stops[key] = _stop_candidates(tokenizer, stops)
        candidates = per_stops[key]
    return DecodeSpec(
        max_new_tokens=max_new_tokens,
        eos_ids=eos,
        num_beams=num_beams,
        stops=stops,
        suppress=tuple(suppress),
        constraint=constraint,
        step_threads=step_threads,
        stop_candidates=candidates,
    )


def texts_of(tokenizer: Any, spec: DecodeSpec, hyps: Sequence[tuple[float, list[int]]]) -> list[str]:
    """Decoded hypotheses: exact titles (deduplicated, non-titles dropped) or stop-cut texts."""
    if spec.constraint is not None:
        titles = (spec.constraint.lookup(seq) for _, seq in hyps)
        return list(dict.fromkeys(t for t in titles if t is not None))
    texts = tokenizer.batch_decode([seq for _, seq in hyps], skip_special_tokens=True)
    return [cut_at_stop(t, spec.stops) for t in texts]
