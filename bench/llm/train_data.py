"""Training data for :mod:`bench.llm.lora`: examples, tokenisation, batching and the data order.

Prompt and answer are tokenised apart (so the answer boundary is exact, as in scoring), the prompt is
cut from the left when an example is too long, and labels are ``IGNORE_INDEX`` everywhere but on the
answer (+ EOS). The order of the examples is a function of (seed, epoch) only, which is what makes a
resumed run end with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Sampler

logger = logging.getLogger("bench.llm.lora")

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TrainExample:
    """One supervised pair; the answer is appended right after the prompt."""

    prompt: str  # already chat-formatted prompt text
    answer: str  # the target text; the loss is computed only on its tokens (+ EOS)
    extras: Mapping[str, Any] = field(default_factory=dict)  # passed to embed_hook (e.g. embeddings)


# --------------------------------------------------------------------------------------------------
# tokenisation and batching
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedExample:
    """``prompt + answer + EOS`` as token ids; the first ``n_prompt`` of them are the (cut) prompt."""

    input_ids: list[int]  # prompt ids, then answer ids (+ EOS unless the answer was cut)
    n_prompt: int  # number of prompt tokens (not supervised)
    answer_truncated: bool  # the answer alone did not fit in max_length and lost its end


def encode_example(tokenizer: Any, prompt: str, answer: str, *, max_length: int) -> EncodedExample:
    """Tokenise one pair for training (score answers the same way to match).

    Prompt and answer are tokenised separately, so the answer boundary is exact. The prompt gets the
    tokenizer's BOS if it adds one and the text does not already start with it. Over ``max_length``
    the prompt is cut from the left (keeping a leading BOS); an answer that alone does not fit keeps
    one prompt token (to predict its first token from) and loses its end and EOS.
    """
    eos, bos = tokenizer.eos_token_id, tokenizer.bos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token; set one before training")
    p = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    adds_bos = bos is not None and tokenizer("", add_special_tokens=True)["input_ids"][:1] == [bos]
    if adds_bos and p[:1] != [bos]:
        p = [bos, *p]
    a = [*tokenizer(answer, add_special_tokens=False)["input_ids"], eos]
    room = max_length - min(len(p), 1)  # the answer may use all but one prompt token
    truncated = len(a) > room
    a = a[: max(room, 1)]
    keep = max_length - len(a)
    if len(p) > keep:
        head = p[:1] if bos is not None and p[0] == bos and keep > 1 else []
        p = head + p[len(p) - (keep - len(head)) :] if keep > 0 else []
    return EncodedExample(p + a, len(p), truncated)


def collate(batch: Sequence[tuple[EncodedExample, int]], *, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad ``(encoded, example_index)`` pairs into input_ids / attention_mask / labels / index.

    Labels are -100 on prompt tokens and padding, so the loss covers the answer (+ EOS) only.
    """
    width = max(len(enc.input_ids) for enc, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (enc, _) in enumerate(batch):
        ids = torch.tensor(enc.input_ids, dtype=torch.long)
        input_ids[row, : len(ids)], mask[row, : len(ids)] = ids, 1
        labels[row, enc.n_prompt : len(ids)] = ids[enc.n_prompt :]
    index = torch.tensor([i for _, i in batch], dtype=torch.long)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "index": index}


def _encode_all(tokenizer: Any, examples: Sequence[TrainExample], max_length: int) -> list:
    """``(encoded, index)`` pairs (a list is a valid map-style dataset); cut answers warn once."""
    items = [
        (encode_example(tokenizer, ex.prompt, ex.answer, max_length=max_length), i)
        for i, ex in enumerate(examples)
    ]
    if cut := sum(enc.answer_truncated for enc, _ in items):
        logger.warning("%d answer(s) longer than max_length=%d were cut at the end", cut, max_length)
    return items


class _EpochShuffle(Sampler[int]):
    """A permutation drawn from ``Generator(seed + epoch)``: the order depends on nothing else."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=gen).tolist())

    def __len__(self) -> int:
        return self.n
