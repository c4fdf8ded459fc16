"""Batched deterministic generation (greedy or beam search), optionally restricted to catalog titles.

``generate(backbone, prompts)`` returns, for each prompt, ``num_return_sequences`` continuations
(the text after the prompt), each cut at the first stop string and stripped.

* Prompts are tokenised like scoring prompts (:func:`bench.llm.chat.encode_prompt`), sorted by
  length, and run in left-padded batches of ``batch_size``; transformers derives position ids from
  the attention mask, so a prompt's result does not depend on its batch mates (up to float noise).
* Decoding is greedy (``num_beams=1``) or beam search; never sampled.
* Stop strings end a sequence early through a stopping criterion that decodes the tail of each
  sequence (a stop string may sit inside one token, e.g. ``".\\n"``), then the text is cut at the
  first stop string.
* With ``constraint=TitleTrie``, a ``prefix_allowed_tokens_fn`` only allows trie continuations, so
  every sequence is a title followed by EOS; results are read back through the trie (the exact
  title string), de-duplicated, and sequences that did not end on a title (only possible when the
  catalog has fewer titles than beams) are dropped, so a prompt may get fewer than
  ``num_return_sequences`` titles. Beams are ranked with ``length_penalty=0``: by total
  ``log P(title + EOS | prompt)``, the quantity :func:`~bench.llm.scoring.score_continuations`
  gives, so beam top-k approximates exact ranking of the catalog. Stop strings do not apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.llm.chat import encode_prompt
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


_CANDIDATES: dict[tuple[int, tuple[str, ...]], torch.Tensor] = {}


def _stop_criterion(tokenizer: Any, stops: Sequence[str], prompt_len: int) -> Any:
    """A ``StoppingCriteria`` that marks a sequence done once its new text contains a stop string.

    Only rows whose newest token could complete a stop string (see :func:`_stop_candidates`) are
    decoded, and only their last few tokens; a row once done stays done in ``model.generate``.
    """
    from transformers import StoppingCriteria

    # A stop string of m characters lies within the last 4m tokens (a character is at most 4 bytes).
    window = 4 * max(len(s) for s in stops) + 4
    key = (id(tokenizer), tuple(sorted(set(stops))))
    if key not in _CANDIDATES:
        _CANDIDATES.clear()  # one tokenizer and stop set at a time is the common case
        _CANDIDATES[key] = _stop_candidates(tokenizer, stops)
    candidates = _CANDIDATES[key]

    class _StopOnStrings(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            if input_ids.shape[1] <= prompt_len:
                return done
            last = input_ids[:, -1].cpu()
            rows = torch.nonzero(candidates[last.clamp(0, len(candidates) - 1)] | (last >= len(candidates)))
            rows = rows.flatten().tolist()
            if rows:
                tails = input_ids[rows, max(prompt_len, input_ids.shape[1] - window) :].tolist()
                texts = tokenizer.batch_decode(tails, skip_special_tokens=True)
                for r, t in zip(rows, texts, strict=True):
                    done[r] = any(s in t for s in stops)
            return done

    return _StopOnStrings()


def _trie_fn(trie: TitleTrie, prompt_len: int) -> Callable[[int, torch.Tensor], list[int]]:
    """``prefix_allowed_tokens_fn`` for ``model.generate``: trie continuations of the new tokens.

    Beams grow one token per step, so the node of each prefix is cached (keyed by the prefix) and
    a step only advances one token from its parent's node instead of re-walking from the root.
    """
    nodes: dict[tuple[int, ...], list[int]] = {(): trie.allowed_ids_root()}
    cursor: dict[tuple[int, ...], Any] = {(): trie.root}

    def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        prefix = tuple(input_ids[prompt_len:].tolist())
        nxt = nodes.get(prefix)
        if nxt is None:
            if prefix[:-1] in cursor:
                parent = cursor[prefix[:-1]]
                node = parent.children.get(prefix[-1]) if parent is not None else None
            else:
                node = trie.node(prefix)
            cursor[prefix] = node
            nxt = nodes[prefix] = trie.sorted_children(node)
        # Empty means the sequence already ended (EOS, then padding) or left the trie (a beam
        # forced past its last valid option); its next token is discarded, but transformers
        # needs at least one allowed token.
        return nxt or [trie.eos_id]

    return allowed


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


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string, stripped."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut].strip()


@torch.inference_mode()
def generate(
    backbone: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    num_beams: int = 1,
    num_return_sequences: int = 1,
    batch_size: int = 8,
    constraint: TitleTrie | None = None,
    stop: Sequence[str] = ("\n",),
    progress: bool = False,
    cpu_threads: int | None = 1,
) -> list[list[str]]:
    """Decode continuations of ``prompts`` (see the module docstring).

    Args:
        backbone: a loaded :class:`~bench.llm.backbone.Backbone`.
        prompts: prompt texts (e.g. from :func:`~bench.llm.chat.format_prompt`).
        max_new_tokens: most tokens generated per sequence; with a constraint, raised to the
            longest title's length so no title is cut short.
        num_beams: 1 for greedy decoding, more for beam search.
        num_return_sequences: sequences returned per prompt (≤ ``num_beams``; the best beams).
        batch_size: prompts per ``model.generate`` call.
        constraint: restrict outputs to the titles of this trie (see :class:`TitleTrie`).
        stop: stop strings (unconstrained decoding only); ``()`` for none.
        progress: show a progress bar.
        cpu_threads: torch intra-op threads while decoding on CPU (restored afterwards); None
            keeps the current setting. Decoding runs one small matrix product after another, and
            on a busy machine every OpenMP fork/join waits for a descheduled thread: one thread
            measured 2-60x faster than two on a loaded 2-core host (tiny-random and SmolLM2-135M).

    Returns:
        ``out[i]``: the continuations of ``prompts[i]``, best first.
    """
    if num_beams < 1 or not 1 <= num_return_sequences <= num_beams:
        raise ValueError(
            f"need 1 ≤ num_return_sequences ≤ num_beams, got {num_return_sequences} and {num_beams}"
        )
    if constraint is not None and len(constraint) == 0:
        raise ValueError("the title constraint is empty (no titles)")
    model = backbone.model
    device = next(model.parameters()).device
    with _intra_op_threads(cpu_threads if device.type == "cpu" else None):
        return _generate(
            backbone,
            prompts,
            max_new_tokens,
            num_beams,
            num_return_sequences,
            batch_size,
            constraint,
            stop,
            progress,
        )


def _generate(
    backbone: Any,
    prompts: Sequence[str],
    max_new_tokens: int,
    num_beams: int,
    num_return_sequences: int,
    batch_size: int,
    constraint: TitleTrie | None,
    stop: Sequence[str],
    progress: bool,
) -> list[list[str]]:
    model, tok = backbone.model, backbone.tokenizer
    device = next(model.parameters()).device
    encoded = [encode_prompt(tok, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    results: list[list[str]] = [[] for _ in prompts]
    stops = [s for s in stop if s]

    options: dict[str, Any] = {
        "do_sample": False,
        "num_beams": num_beams,
        "num_return_sequences": num_return_sequences,
        "pad_token_id": tok.pad_token_id,
        "max_new_tokens": max_new_tokens,
        "eos_token_id": tok.eos_token_id,
        # Unset sampling knobs a checkpoint's generation_config may carry, so they neither apply
        # nor warn ("temperature is set but do_sample=False").
        "temperature": None,
        "top_p": None,
        "top_k": None,
    }
    if constraint is not None:
        options["max_new_tokens"] = max(max_new_tokens, constraint.max_len)
        options["eos_token_id"] = constraint.eos_id
        if num_beams > 1:
            options["length_penalty"] = 0.0

    bar = tqdm(total=len(prompts), desc="generating", unit="prompt", disable=not progress)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(batch), width), dtype=torch.long, device=device)
        for r, i in enumerate(batch):
            ids[r, width - len(encoded[i]) :] = torch.tensor(encoded[i], device=device)
            mask[r, width - len(encoded[i]) :] = 1
        extra: dict[str, Any] = {}
        if constraint is not None:
            extra["prefix_allowed_tokens_fn"] = _trie_fn(constraint, width)
        elif stops:
            from transformers import StoppingCriteriaList

            extra["stopping_criteria"] = StoppingCriteriaList([_stop_criterion(tok, stops, width)])
        out = model.generate(input_ids=ids, attention_mask=mask, **options, **extra)
        new = out[:, width:].reshape(len(batch), num_return_sequences, -1).tolist()
        for r, i in enumerate(batch):
            if constraint is not None:
                titles = (constraint.lookup(seq) for seq in new[r])
                results[i] = list(dict.fromkeys(t for t in titles if t is not None))
            else:
                texts = tok.batch_decode(new[r], skip_special_tokens=True)
                results[i] = [cut_at_stop(t, stops) for t in texts]
        bar.update(len(batch))
    bar.close()
    return results
