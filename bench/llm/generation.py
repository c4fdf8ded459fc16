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

from collections.abc import Callable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from bench.llm.chat import encode_prompt
from bench.llm.trie import TitleTrie


def _stop_criterion(tokenizer: Any, stops: Sequence[str], prompt_len: int) -> Any:
    """A ``StoppingCriteria`` that marks a sequence done once its new text contains a stop string."""
    from transformers import StoppingCriteria

    # A stop string of m characters lies within the last 4m tokens (a character is at most 4 bytes).
    window = 4 * max(len(s) for s in stops) + 4

    class _StopOnStrings(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
            tails = input_ids[:, max(prompt_len, input_ids.shape[1] - window) :].tolist()
            texts = tokenizer.batch_decode(tails, skip_special_tokens=True)
            done = [any(s in t for s in stops) for t in texts]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return _StopOnStrings()


def _trie_fn(trie: TitleTrie, prompt_len: int) -> Callable[[int, torch.Tensor], list[int]]:
    """``prefix_allowed_tokens_fn`` for ``model.generate``: trie continuations of the new tokens."""

    def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        nxt = trie.allowed(input_ids[prompt_len:].tolist())
        # Empty means the sequence already ended (EOS, then padding) or left the trie (a beam
        # forced past its last valid option); its next token is discarded, but transformers
        # needs at least one allowed token.
        return nxt or [trie.eos_id]

    return allowed


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

    Returns:
        ``out[i]``: the continuations of ``prompts[i]``, best first.
    """
    if num_beams < 1 or not 1 <= num_return_sequences <= num_beams:
        raise ValueError(
            f"need 1 ≤ num_return_sequences ≤ num_beams, got {num_return_sequences} and {num_beams}"
        )
    if constraint is not None and len(constraint) == 0:
        raise ValueError("the title constraint is empty (no titles)")
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
