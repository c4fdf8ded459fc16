"""One optimizer micro-batch of :mod:`bench.llm.lora`: the answer-token loss and its backward.

With ``group_by_length`` a micro-batch runs as groups of rows of similar length
(:func:`length_groups`), so that padding costs little compute; its loss is normalised by the answer
tokens of the whole global batch (all processes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.llm.train_data import IGNORE_INDEX, TrainExample


def _batch_nll(
    model: nn.Module, batch: Mapping[str, torch.Tensor], examples: Sequence[TrainExample]
) -> tuple:
    """Per-row summed answer-token NLL (fp32) and per-row supervised-token counts.

    ``model`` is the *prepared* bundle (its forward is the one DDP and autocast wrap), or the
    unwrapped one for all but the last length group (see :func:`forward_backward`). Only the
    positions that predict an answer token in some row of the batch get logits: answers are a few
    tokens at the end of ~100-token prompts, and the ``positions × vocabulary`` logits (49k
    columns for SmolLM2) would otherwise be a quarter of the FLOPs and most of the memory traffic.
    """
    extras = [examples[i].extras for i in batch["index"].tolist()]
    labels = batch["labels"][:, 1:]
    keep = torch.nonzero((labels != IGNORE_INDEX).any(0)).flatten()
    logits = model(batch["input_ids"], batch["attention_mask"], extras, keep).float()
    labels = labels.index_select(1, keep)
    nll = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    return nll.sum(1), (labels != IGNORE_INDEX).sum(1)


#: Fixed cost of one extra forward/backward pass, in padded-token equivalents (30 layers of Python
#: and kernel launches on a CPU; measured small next to a ~100-token row). Splitting a micro-batch
#: pays it once per extra group, so groups are only formed where they save more padding than that.
GROUP_OVERHEAD_TOKENS = 16


def length_groups(lengths: Sequence[int], overhead: int = GROUP_OVERHEAD_TOKENS) -> list[list[int]]:
    """Rows of one micro-batch grouped by length so that little compute goes to padding.

    The rows are sorted by length and cut into contiguous groups minimising
    ``sum_g (|g| * max_len(g) + overhead)`` (exact dynamic programme, O(n^2) for n rows); each group is
    then run as its own forward/backward on its own width. A batch that is best left whole keeps its
    row order, so such batches train exactly as without grouping.
    """
    n = len(lengths)
    order = sorted(range(n), key=lambda i: (lengths[i], i))
    srt = [lengths[i] for i in order]
    best, cut = [0.0] + [math.inf] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            cost = best[i] + (j - i) * srt[j - 1] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    bounds, j = [], n
    while j > 0:
        bounds.append((cut[j], j))
        j = cut[j]
    if len(bounds) == 1:
        return [list(range(n))]
    return [order[a:b] for a, b in reversed(bounds)]


def forward_backward(
    accelerator: Any,
    bundle: nn.Module,
    batch: Mapping[str, torch.Tensor],
    examples: Sequence[TrainExample],
    *,
    group: bool = True,
) -> torch.Tensor:
    """Backward of ``sum(answer-token NLL) / answer tokens`` over the global micro-batch.

    With ``group`` the micro-batch runs as :func:`length_groups` (padding-free up to the groups'
    spread); the group losses share one denominator, so their gradients add up to the whole batch's
    (up to float rounding, and LoRA dropout then draws other masks than for the whole batch, which is
    why it is an option: off, one group of the batch as it is, bit-identical to earlier releases). The denominator is
    the answer-token count summed over all processes, times the process count to undo DDP's mean of
    the gradients: with several processes the loss is still the global token mean (not a mean of
    per-process means), which is what one process training on the same global batch computes.
    Only the last group's backward synchronises gradients across processes (it all-reduces the
    gradients the earlier groups accumulated too).
    Returns this process's loss times the process count, whose mean over the processes is the
    global answer-token mean (the loss one process computes on the whole global batch).
    """
    mask = batch["attention_mask"]
    counts = (batch["labels"][:, 1:] != IGNORE_INDEX).sum(1)
    total = counts.sum().clamp(min=1)
    n_proc = accelerator.num_processes
    if n_proc > 1:
        total = accelerator.reduce(total.to(accelerator.device), "sum").to(counts.device).clamp(min=1)
    groups = length_groups(mask.sum(1).tolist()) if group else [list(range(len(mask)))]
    loss = torch.zeros((), device=mask.device)
    for k, rows in enumerate(groups):
        if len(groups) == 1:
            sub = batch
        else:
            idx = torch.tensor(rows, device=mask.device)
            width = int(mask.index_select(0, idx).sum(1).max())
            sub = {
                key: batch[key].index_select(0, idx)[:, :width]
                for key in ("input_ids", "attention_mask", "labels")
            }
            sub["index"] = batch["index"].index_select(0, idx.to(batch["index"].device))
        # every group but the last runs the unwrapped module: under DDP each rank then runs exactly
        # one wrapped forward/backward per micro-batch, whatever its number of groups, so the
        # collectives of DDP's forward (buffer broadcast) and backward (gradient all-reduce) pair up
        last = k == len(groups) - 1
        nll, _ = _batch_nll(bundle if last else accelerator.unwrap_model(bundle), sub, examples)
        part = nll.sum() * n_proc / total  # a division, as before grouping, so one group is bit-exact
        accelerator.backward(part)
        loss = loss + part.detach()
    return loss  # this process's share x n_proc: the mean over processes is the global token mean
