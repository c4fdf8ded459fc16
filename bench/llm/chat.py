"""Prompt formatting and the tokenisation conventions shared by scoring, generation and the trie.

Conventions (the same everywhere, so a scored answer, a generated answer and a trie path for the
same text are the same token ids):

* A *prompt* is tokenised on its own by :func:`encode_prompt`: without the tokenizer's automatic
  special tokens when the text already starts with the BOS token (chat templates usually write it),
  with them otherwise (a raw prompt gets the BOS the model was trained with). A prompt that
  tokenises to nothing gets a lone BOS (or EOS) so the first answer token has something to be
  conditioned on.
* An *answer* (continuation) is tokenised on its own by :func:`encode_continuation`, never with
  special tokens, and its ids are appended after the prompt's. Tokenising ``prompt + answer`` as
  one string instead could merge characters across the boundary into one token and blur which
  tokens belong to the answer; lm-evaluation-harness splits the same way. Answers are written
  directly after the prompt text, so a prompt ending in ``"Answer:"`` wants answers such as
  ``" Yes"`` (with the space), and a chat prompt (ending in a newline) wants ``"Yes"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Used when the tokenizer has no chat template.
FALLBACK_TEMPLATE = "User: {user}\nAssistant:"


def format_prompt(backbone: Any, user_text: str, *, system: str | None = None) -> str:
    """The prompt text for one user turn, ready for an answer to be appended directly after it.

    Uses the tokenizer's chat template (with the generation prompt, e.g. ``<|im_start|>assistant\\n``)
    when it has one; otherwise ``"User: ...\\nAssistant:"``, preceded by ``"System: ...\\n"`` when a
    system message is given.
    """
    tokenizer = backbone.tokenizer
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}] if system is not None else []
        messages.append({"role": "user", "content": user_text})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if not isinstance(text, str):  # some versions return a list for a single conversation
            text = text[0]
        return text
    head = f"System: {system}\n" if system is not None else ""
    return head + FALLBACK_TEMPLATE.format(user=user_text)


def _adds_special_tokens(tokenizer: Any) -> bool:
    """Whether the tokenizer inserts special tokens on its own (e.g. Llama's BOS)."""
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    return len(with_special) != len(tokenizer("a", add_special_tokens=False)["input_ids"])


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a prompt (see the module docstring for the convention); never empty."""
    bos = tokenizer.bos_token
    add_special = _adds_special_tokens(tokenizer) and not (bos and text.startswith(bos))
    ids = list(tokenizer(text, add_special_tokens=add_special)["input_ids"])
    if not ids:
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        ids = [start]
    return ids


def encode_continuation(tokenizer: Any, text: str) -> list[int]:
    """Token ids of an answer appended after a prompt: no special tokens; ``""`` gives ``[]``."""
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    """``(input_ids, attention_mask)`` of token-id rows padded on the left to the longest one."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(seqs), width), dtype=torch.long, device=device)
    for r, s in enumerate(seqs):
        ids[r, width - len(s) :] = torch.tensor(list(s), dtype=torch.long, device=device)
        mask[r, width - len(s) :] = 1
    return ids, mask
