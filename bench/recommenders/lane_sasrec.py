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


# -- LANE-SASRec and its fairness ablation -----------------------------------------------------------


class _LaneNet(nn.Module):
    """SASRec's network plus LANE's preference attention on its hidden states."""

    def __init__(self, sasrec: nn.Module, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.sasrec = sasrec
        self.attn = PreferenceAttention(dim, n_heads=n_heads, dropout=dropout)

    def items(self) -> torch.Tensor:
        return self.sasrec.items()


def _lane_sasrec_classes() -> tuple[type, type]:
    """Built lazily: ``SASRec`` subclasses (importing sasrec here at module level is fine too, but
    keeps this module importable for the attention alone)."""
    import numpy as np

    from bench.recommenders.sasrec import SASRec
    from bench.recommenders.torch_target import left_pad

    class SASRecTitleInit(SASRec):
        """``sasrec-title-init``: SASRec whose item table starts from (reduced) title embeddings."""

        name = "sasrec-title-init"

    class LaneSASRec(SASRec):
        """``lane-sasrec``: title-initialised SASRec whose user vector at every position passes
        through LANE's preference attention (query = the hidden state, keys = values = the user's
        preference embeddings, reduced to ``hidden_size``), trained end to end on ground truth with
        SASRec's full-softmax loss — by SASRec's own :meth:`fit`: this class supplies only the
        network (:meth:`_new_net`), the rows' preferences (:meth:`_row_inputs`) and the
        per-position states (:meth:`_states`).

        ``prefs`` maps a history (a tuple of item indices, e.g. a user's train sequence and train +
        valid sequence) to ``(vectors [P, hidden], usable [P])``; a history it does not know gets
        no preferences (the attention adds nothing, the residual keeps SASRec's state).
        """

        name = "lane-sasrec"

        def __init__(self, n_items: int, *, prefs: dict | None = None, n_pref_heads: int = 4, **kw) -> None:
            super().__init__(n_items, **kw)
            self.prefs = dict(prefs or {})
            self.n_pref_heads = int(n_pref_heads)
            self._net = _LaneNet(self._net, self.cfg.hidden_size, self.n_pref_heads, self.cfg.hidden_dropout)
            first = next(iter(self.prefs.values()), None)
            self.n_prefs = 5 if first is None else int(first[0].shape[0])

        def _pref_tensors(self, histories: list) -> tuple[torch.Tensor, torch.Tensor]:
            d, p = self.cfg.hidden_size, self.n_prefs
            vecs = np.zeros((len(histories), p, d), dtype=np.float32)
            mask = np.zeros((len(histories), p), dtype=bool)
            for r, h in enumerate(histories):
                got = self.prefs.get(tuple(int(x) for x in h))
                if got is not None:
                    vecs[r], mask[r] = got
            return torch.from_numpy(vecs).to(self._device), torch.from_numpy(mask).to(self._device)

        def _user_vectors(self, histories: list) -> torch.Tensor:
            seq = torch.from_numpy(left_pad(histories, self.cfg.max_len)).to(self._device)
            prefs, mask = self._pref_tensors(histories)
            return self._net.attn(self._net.sasrec(seq)[:, -1], prefs, mask)

        def _new_net(self) -> nn.Module:
            return _LaneNet(
                super()._new_net(), self.cfg.hidden_size, self.n_pref_heads, self.cfg.hidden_dropout
            )

        def _row_inputs(self, rows) -> tuple[torch.Tensor, torch.Tensor]:
            return self._pref_tensors([tuple(int(x) for x in s) for s in rows])

        def _states(self, x: torch.Tensor, idx: torch.Tensor, row_inputs) -> torch.Tensor:
            """Every position's state through the attention over its row's preferences."""
            h = self._net.sasrec(x)  # [b, L, d]
            b, n, d = h.shape
            prefs, mask = row_inputs
            pv = prefs[idx].repeat_interleave(n, 0)
            pm = mask[idx].repeat_interleave(n, 0)
            return self._net.attn(h.reshape(b * n, d), pv, pm).view(b, n, d)

    return SASRecTitleInit, LaneSASRec


SASRecTitleInit, LaneSASRec = _lane_sasrec_classes()
