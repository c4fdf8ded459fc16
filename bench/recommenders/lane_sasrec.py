"""LANE's preference attention (Zhao et al., arXiv 2407.02833; code ``Ming209/LANE`` ``model.py``).

:class:`PreferenceAttention` is LANE's alignment block, shared by the ``lane`` explainer and (later)
the ``lane-sasrec`` target:

* query ``q`` = a user/sequence representation ``[b, d]``; keys = values = the ``P`` preference
  embeddings of that user ``[b, P, d]`` (all-MiniLM-L6-v2, 384-d in LANE);
* ``W_q``, ``W_k``, ``W_v``: ``Linear(d, d, bias=False)``; ``h`` heads of width ``d / h``;
  ``A = softmax(q_h k_h^T / sqrt(d / h))`` over the preferences (unusable preferences masked);
  dropout on ``A``; ``W_o`` ``Linear(d, d, bias=False)``;
* ``x = LayerNorm1(W_o · (A v) + q)``; ``out = LayerNorm2(FFN(x))`` with LANE's point-wise
  feed-forward ``FFN(x) = x + Drop(W_2 · Drop(ReLU(W_1 x)))`` (two 1x1 convolutions = linears).

:func:`get_weight` is the *different* single-head formula LANE shows to the LLM:
``w = softmax((W_q q)(W_k K)^T / sqrt(d))`` with the full-width projections, one head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PointWiseFeedForward(nn.Module):
    """LANE's ``PointWiseFeedForward``: ``x + Drop(W2 Drop(ReLU(W1 x)))``."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.w1, self.w2 = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop2(self.w2(self.drop1(F.relu(self.w1(x)))))


class PreferenceAttention(nn.Module):
    """LANE's multi-head attention of a query over preference embeddings (module docstring)."""

    def __init__(self, dim: int, n_heads: int = 4, dropout: float = 0.5, eps: float = 1e-8) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim {dim} is not divisible by {n_heads} heads")
        self.dim, self.n_heads = dim, n_heads
        self.linear_q = nn.Linear(dim, dim, bias=False)
        self.linear_k = nn.Linear(dim, dim, bias=False)
        self.linear_v = nn.Linear(dim, dim, bias=False)
        self.linear_out = nn.Linear(dim, dim, bias=False)
        self.attn_drop = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.ffn = PointWiseFeedForward(dim, dropout)

    def attention(
        self, query: torch.Tensor, prefs: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(attended [b, d], weights [b, h, P])``; ``mask [b, P]`` True = usable preference. A row
        with no usable preference attends to nothing (output 0, weights 0)."""
        b, p, d = prefs.shape
        h, hd = self.n_heads, d // self.n_heads
        q = self.linear_q(query).view(b, h, 1, hd)
        k = self.linear_k(prefs).view(b, p, h, hd).transpose(1, 2)
        v = self.linear_v(prefs).view(b, p, h, hd).transpose(1, 2)
        logits = (q @ k.transpose(-1, -2)).squeeze(2) / math.sqrt(hd)  # [b, h, P]
        if mask is not None:
            logits = logits.masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)
        att = (self.attn_drop(weights).unsqueeze(2) @ v).squeeze(2)  # [b, h, hd]
        return att.reshape(b, d), weights

    def forward(
        self, query: torch.Tensor, prefs: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        att, _ = self.attention(query, prefs, mask)
        x = self.norm1(self.linear_out(att) + query)
        return self.norm2(self.ffn(x))


def get_weight(
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    query: torch.Tensor,
    prefs: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """LANE's weights shown to the LLM: ``softmax((W_q q)(W_k K)^T / sqrt(d))`` over the
    preferences, one full-width head (``w_q``, ``w_k``: ``[d, d]`` Linear weights, ``y = x W^T``).
    ``query [b, d]``, ``prefs [b, P, d]`` -> ``[b, P]``; masked preferences get weight 0."""
    d = query.shape[-1]
    q = query @ w_q.T
    k = prefs @ w_k.T
    logits = (k @ q.unsqueeze(-1)).squeeze(-1) / math.sqrt(d)
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return torch.softmax(logits, dim=-1).nan_to_num(0.0)
