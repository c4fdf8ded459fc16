"""LANE's alignment head for the ``lane`` explainer, and its training on ``f``'s outputs.

Scores (``u`` = f's user vector, ``P`` = preference embeddings, ``t_i`` = item ``i``'s title
embedding):

* ``z = PreferenceAttention(W_u u, P)`` (:mod:`bench.recommenders.lane_sasrec`);
* ``s_i = <z, W_i t_i> / sqrt(d)`` (``W_i`` starts at the identity);
* like probability ``sigmoid(a · s_i + b)``.

Losses on align-train, summed over the kinds present: retrieval — cross-entropy of ``f``'s top-1
over the whole catalog; ranking — ListMLE of ``f``'s order of the candidates
(``-Σ_j log softmax(s_{π_j..π_n})[0]``); classification — binary cross-entropy of ``f``'s
like/dislike. Adam; full passes in mini-batches; early stopping on the align-valid loss
(``patience`` epochs), the best epoch's weights kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench import seeds
from bench.recommenders.lane_sasrec import PreferenceAttention, get_weight
from bench.recommenders.torch_target import seeded
from bench.types import Instance


@dataclass(frozen=True)
class HeadData:
    """Inputs of the head for a list of instances."""

    users: np.ndarray  # [n, user_dim] f's user vectors
    prefs: np.ndarray  # [n, P, d] preference embeddings
    mask: np.ndarray  # [n, P] usable preferences


class LaneHead(nn.Module):
    """Query projection + LANE's preference attention + item projection (module docstring)."""

    def __init__(self, user_dim: int, dim: int, n_heads: int = 4, dropout: float = 0.5) -> None:
        super().__init__()
        self.dim = dim
        self.query = nn.Linear(user_dim, dim)
        self.attn = PreferenceAttention(dim, n_heads=n_heads, dropout=dropout)
        self.item = nn.Linear(dim, dim, bias=False)
        nn.init.eye_(self.item.weight)
        self.a = nn.Parameter(torch.tensor(1.0))
        self.b = nn.Parameter(torch.tensor(0.0))

    def represent(self, users: torch.Tensor, prefs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.attn(self.query(users), prefs, mask)

    def logits(self, z: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``[b, n_items]`` scores of every item."""
        return z @ self.item(items).T / math.sqrt(self.dim)

    @staticmethod
    def _tensors(data: HeadData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return torch.from_numpy(data.users), torch.from_numpy(data.prefs), torch.from_numpy(data.mask)

    @torch.no_grad()
    def score_items(self, data: HeadData, items: np.ndarray) -> np.ndarray:
        self.eval()
        u, p, m = self._tensors(data)
        return self.logits(self.represent(u, p, m), torch.from_numpy(items)).numpy()

    @torch.no_grad()
    def like_probability(self, data: HeadData, items: np.ndarray, which: Sequence[int]) -> np.ndarray:
        s = self.score_items(data, items)[np.arange(len(which)), list(which)]
        return torch.sigmoid(self.a * torch.from_numpy(s) + self.b).numpy()

    @torch.no_grad()
    def weights(self, data: HeadData) -> np.ndarray:
        """LANE's ``get_weight`` (single full-width head) for each instance: ``[n, P]``."""
        u, p, m = self._tensors(data)
        q = self.query(u)
        return get_weight(self.attn.linear_q.weight, self.attn.linear_k.weight, q, p, m).numpy()


def _index(label: Any) -> list[int]:
    return [int(x) for x in (label if isinstance(label, list | tuple) else [label])]


def _loss(
    head: LaneHead, kind: str, insts: Sequence[Instance], data: HeadData, idx: np.ndarray, items: torch.Tensor
) -> torch.Tensor:
    u, p, m = (torch.from_numpy(x[idx]) for x in (data.users, data.prefs, data.mask))
    logits = head.logits(head.represent(u, p, m), items)
    if kind == "retrieve":
        y = torch.tensor([_index(insts[int(j)].label)[0] for j in idx])
        return F.cross_entropy(logits, y)
    if kind == "rank":
        total = logits.new_zeros(())
        for r, j in enumerate(idx):
            s = logits[r, _index(insts[int(j)].label)]
            # ListMLE: log-likelihood of f's order under the Plackett-Luce model of the scores
            total = total - (s - torch.logcumsumexp(s.flip(0), 0).flip(0)).sum()
        return total / len(idx)
    y = torch.tensor([float(insts[int(j)].label) for j in idx])
    cand = [int(insts[int(j)].candidates[0]) for j in idx]
    s = logits[torch.arange(len(idx)), cand]
    return F.binary_cross_entropy_with_logits(head.a * s + head.b, y)


def _total(head: LaneHead, part: Mapping[str, Any], kinds: Mapping[str, str], items: torch.Tensor) -> float:
    head.eval()
    with torch.no_grad():
        out = 0.0
        for t, (insts, data) in part.items():
            if insts:
                out += float(_loss(head, kinds[t], insts, data, np.arange(len(insts)), items))
    return out


def train_head(
    items: np.ndarray,
    parts: Mapping[str, Mapping[str, Any]],
    kinds: Mapping[str, str],
    params: Mapping[str, Any],
    *,
    user_dim: int,
    seed: int,
) -> tuple[LaneHead, dict[str, Any]]:
    """A new head, initialised and trained under ``seed`` (module docstring), and its report."""
    with seeded(seeds.derive_seed(seed, "lane-head")):
        head = LaneHead(user_dim, items.shape[1], int(params["n_heads"]), float(params["dropout"]))
        report = _train(head, items, parts, kinds, params, seed=seed)
    return head, report


def _train(
    head: LaneHead,
    items: np.ndarray,
    parts: Mapping[str, Mapping[str, Any]],
    kinds: Mapping[str, str],
    params: Mapping[str, Any],
    *,
    seed: int,
) -> dict[str, Any]:
    rng = seeds.rng(seed, "lane-head-batches")
    it = torch.from_numpy(items)
    opt = torch.optim.Adam(head.parameters(), lr=float(params["lr"]), betas=(0.9, 0.98))
    bs = int(params["batch_size"])
    best, best_state, best_epoch, epochs = math.inf, None, -1, 0
    for epoch in range(int(params["epochs"])):
        epochs = epoch + 1
        head.train()
        for t, (insts, data) in parts["train"].items():
            order = rng.permutation(len(insts))
            for start in range(0, len(order), bs):
                loss = _loss(head, kinds[t], insts, data, order[start : start + bs], it)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        valid = _total(head, parts["valid"] or parts["train"], kinds, it)
        if valid < best - 1e-6:
            best, best_epoch = valid, epoch
            best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
        elif epoch - best_epoch >= int(params["patience"]):
            break
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    return {
        "epochs": epochs,
        "best_epoch": best_epoch + 1,
        "valid_loss": round(best, 5),
        "train_instances": {t: len(v[0]) for t, v in parts["train"].items()},
        "valid_instances": {t: len(v[0]) for t, v in parts["valid"].items()},
    }
