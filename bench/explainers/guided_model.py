"""The scorer of guided-embedding refinement: refined embeddings and a small model trained on ``f``'s outputs.

Refined item embedding (``fusion: concat``)::

    e_i = [ A_i ; P v_i ]          A_i ∈ R^m: z-scored LLM attribute scores (frozen)
                                   v_i ∈ R^d: f's item vector, P ∈ R^{r×d}: learned reduction

Refined user embedding::

    e_u = [ a_u ; P u ]            a_u = W · mean_{h ∈ H} A_h + b   (trainable; W = I, b = 0 at start)
                                   u: f's user vector of the history H

Score (``scorer: additive``)::

    s(u, i) = Σ_k (w_k a_uk + c_k) A_ik  +  (P u)ᵀ M (P v_i)  +  β

The attribute terms are additive, so ``contribution_k(u, i) = (w_k a_uk + c_k) A_ik`` sums exactly,
with the base term and ``β``, to the score. Without attributes (the ablation) the first sum is dropped.

Losses on ``f``'s align-train answers: binary cross-entropy of ``σ(s)`` on like/dislike
(classification), Plackett–Luce negative log-likelihood of ``f``'s order (ranking:
``Σ_t [log Σ_{j≥t} e^{s_j} − s_t]``), and softmax cross-entropy of ``f``'s top-1 over the items not in
the history (retrieval). Early stopping on the same loss over align-valid.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

#: example kinds (one loss each)
KINDS = ("classification", "ranking", "retrieval")


@dataclass(frozen=True)
class Examples:
    """Training examples of one kind: per row the history's attribute mean ``[n, m]``, f's user vector
    ``[n, d]``, a history mask ``[n, n_items]`` (retrieval only), the items ``[n, K]`` and targets."""

    hist_attr: torch.Tensor
    user: torch.Tensor
    items: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def take(self, idx: torch.Tensor) -> Examples:
        return Examples(
            self.hist_attr[idx],
            self.user[idx],
            self.items[idx],
            self.target[idx],
            None if self.mask is None else self.mask[idx],
        )


class GuidedScorer(nn.Module):
    """See the module docstring. ``attributes``: ``[n_items, m]`` z-scores; ``item_table``: f's ``[n_items, d]``."""

    def __init__(
        self,
        attributes: np.ndarray,
        item_table: np.ndarray,
        *,
        reduced_dim: int,
        use_attributes: bool,
        reduction_init: str = "pca",
        seed: int = 0,
    ) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        self.use_attributes = bool(use_attributes)
        self.register_buffer("A", torch.as_tensor(np.asarray(attributes, dtype=np.float32)))
        # a copy: f's item table may come in read-only (torch warns on sharing such memory)
        self.register_buffer("V", torch.tensor(np.asarray(item_table, dtype=np.float32)))
        m, d = self.A.shape[1], self.V.shape[1]
        r = max(1, min(int(reduced_dim), d))
        self.P = nn.Parameter(self._reduction(r, reduction_init, gen))
        self.M = nn.Parameter(torch.eye(r))
        self.W = nn.Parameter(torch.eye(m))
        self.b = nn.Parameter(torch.zeros(m))
        self.w = nn.Parameter(torch.zeros(m))
        self.c = nn.Parameter(torch.zeros(m))
        self.bias = nn.Parameter(torch.zeros(()))

    def _reduction(self, r: int, init: str, gen: torch.Generator) -> torch.Tensor:
        d = self.V.shape[1]
        if init == "pca":
            centred = self.V - self.V.mean(0, keepdim=True)
            _, _, vh = torch.linalg.svd(centred, full_matrices=False)
            return vh[:r].clone()
        if init == "random":
            return torch.randn(r, d, generator=gen) / d**0.5
        raise ValueError(f"reduction_init must be 'pca' or 'random', got {init!r}")

    # -- pieces ------------------------------------------------------------------------------------

    def user_attributes(self, hist_attr: torch.Tensor) -> torch.Tensor:
        """``a_u = W · mean(A_H) + b``."""
        return hist_attr @ self.W.T + self.b

    def affinity(self, hist_attr: torch.Tensor) -> torch.Tensor:
        """Per-attribute weight of the user, ``w ⊙ a_u + c`` ``[B, m]``."""
        return self.w * self.user_attributes(hist_attr) + self.c

    def base(self, user: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        """``(P u)ᵀ M (P v_i)`` for ``items`` ``[B, K]`` (``None``: every item) -> ``[B, K]``."""
        pu = (user @ self.P.T) @ self.M
        if items is None:
            return pu @ (self.V @ self.P.T).T
        return (pu[:, None, :] * (self.V[items] @ self.P.T)).sum(-1)

    def forward(
        self, hist_attr: torch.Tensor, user: torch.Tensor, items: torch.Tensor | None
    ) -> torch.Tensor:
        s = self.base(user, items) + self.bias
        if self.use_attributes:
            aff = self.affinity(hist_attr)
            s = s + (aff @ self.A.T if items is None else (aff[:, None, :] * self.A[items]).sum(-1))
        return s

    def refined_items(self) -> torch.Tensor:
        """``[A ; P V]`` ``[n_items, m + r]`` (``P V`` alone without attributes)."""
        pv = self.V @ self.P.T
        return torch.cat([self.A, pv], dim=1) if self.use_attributes else pv

    # -- training ----------------------------------------------------------------------------------

    def loss(self, kind: str, ex: Examples) -> torch.Tensor:
        if kind == "classification":
            s = self(ex.hist_attr, ex.user, ex.items)[:, 0]
            return F.binary_cross_entropy_with_logits(s, ex.target.float())
        if kind == "ranking":
            s = self(ex.hist_attr, ex.user, ex.items)  # items in f's order, best first
            tail = torch.logcumsumexp(s.flip(-1), dim=-1).flip(-1)  # log Σ_{j ≥ t} e^{s_j}
            return (tail - s).sum(-1).mean()
        s = self(ex.hist_attr, ex.user, None)
        assert ex.mask is not None
        s = s.masked_fill(ex.mask, float("-inf"))
        return F.cross_entropy(s, ex.target)


def train_scorer(
    model: GuidedScorer,
    train: Mapping[str, Examples],
    valid: Mapping[str, Examples],
    *,
    weights: Mapping[str, float],
    epochs: int,
    patience: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
) -> dict[str, float]:
    """Adam on the weighted sum of the kinds' losses, one kind per step (minibatches of every kind
    shuffled together), early-stopped on the weighted align-valid loss; the best weights are kept."""
    gen = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    kinds = [k for k in KINDS if k in train and len(train[k]) and float(weights.get(k, 0.0)) > 0]
    if not kinds:
        raise ValueError("guided-embedding: no align-train instances of a task it learns from")

    def valid_loss() -> float:
        model.eval()
        with torch.no_grad():
            parts = [
                float(weights[k]) * float(model.loss(k, valid[k]))
                for k in kinds
                if k in valid and len(valid[k])
            ]
        return sum(parts) if parts else float("nan")

    best, best_state, best_epoch, stale, epoch = float("inf"), copy.deepcopy(model.state_dict()), 0, 0, 0
    for epoch in range(1, int(epochs) + 1):
        model.train()
        steps = []
        for k in kinds:
            order = torch.randperm(len(train[k]), generator=gen)
            steps += [(k, order[s : s + batch_size]) for s in range(0, len(order), batch_size)]
        for j in torch.randperm(len(steps), generator=gen).tolist():
            k, idx = steps[j]
            loss = float(weights[k]) * model.loss(k, train[k].take(idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        v = valid_loss()
        if not np.isfinite(v):  # no align-valid examples: train the full budget
            best_state, best_epoch = copy.deepcopy(model.state_dict()), epoch
            continue
        if v < best - 1e-6:
            best, best_state, best_epoch, stale = v, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return {
        "epochs": epoch,
        "best_epoch": best_epoch,
        "valid_loss": round(best, 5) if np.isfinite(best) else None,
    }
