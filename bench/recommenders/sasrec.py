"""SASRec: a causal self-attention sequential recommender (Kang & McAuley, 2018).

Architecture follows RecBole's SASRec (post-layer-norm transformer blocks, GELU, learnable position
embeddings, input and output item embeddings shared) trained with a full-softmax cross-entropy over
all items. Training follows the original paper: each user contributes one left-padded window (the
last ``max_len + 1`` train items) and the loss is taken at every non-padding position, so a single
forward pass trains every prefix of that window.

Internally item ``i`` is embedding row ``i + 1``; row 0 is padding (kept at zero). Unlike RecBole
(right padding), sequences are left-padded as in the original SASRec, so the most recent item always
sits at the last position and the user vector is simply the last position's output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.data.dataset import Split
from bench.errors import UserError
from bench.recommenders.base import FitReport
from bench.recommenders.evaluation import evaluate_full_ranking
from bench.recommenders.torch_target import (
    TorchTarget,
    check_n_items,
    left_pad,
    make_config,
    minibatches,
    run_training,
    seeded,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SASRecConfig:
    """SASRec hyper-parameters. Architecture defaults are RecBole's; training ones are tuned on ML-100k."""

    n_layers: int = 2  # transformer blocks
    n_heads: int = 2  # attention heads per block
    hidden_size: int = 64  # embedding / model width
    inner_size: int = 256  # feed-forward width
    max_len: int = 50  # most recent items the model reads (longer histories are truncated)
    hidden_dropout: float = 0.5  # dropout on embeddings, attention output and feed-forward output
    attn_dropout: float = 0.5  # dropout on the attention probabilities
    layer_norm_eps: float = 1e-12  # LayerNorm epsilon
    initializer_range: float = 0.02  # std of the normal init of embeddings and linear weights
    lr: float = 2e-3  # Adam learning rate (RecBole: 1e-3; 2e-3 converges in half the epochs on ML-100k)
    weight_decay: float = 0.0  # Adam (L2) weight decay
    batch_size: int = 128  # users (training windows) per step
    epochs: int = 200  # upper bound on epochs
    patience: int = 5  # evaluations without validation NDCG@10 improvement before stopping (RecBole: 10)
    eval_every: int = 1  # validate every this many epochs

    def __post_init__(self) -> None:
        if self.hidden_size % self.n_heads:
            raise UserError(
                f"sasrec: hidden_size {self.hidden_size} is not divisible by n_heads {self.n_heads}",
                fix="choose n_heads dividing hidden_size",
            )
        if self.max_len < 1:
            raise UserError(f"sasrec: max_len must be >= 1, got {self.max_len}")


class _Block(nn.Module):
    """Post-LN transformer block: causal multi-head self-attention then a GELU feed-forward."""

    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.attn_dropout = cfg.attn_dropout
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.attn_out = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.ff_in = nn.Linear(cfg.hidden_size, cfg.inner_size)
        self.ff_out = nn.Linear(cfg.inner_size, cfg.hidden_size)
        self.ff_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed, dropout_p=self.attn_dropout if self.training else 0.0
        )
        att = att.transpose(1, 2).reshape(b, n, d)
        x = self.attn_norm(x + self.dropout(self.attn_out(att)))
        return self.ff_norm(x + self.dropout(self.ff_out(F.gelu(self.ff_in(x)))))


class _SASRecNet(nn.Module):
    def __init__(self, n_items: int, cfg: SASRecConfig) -> None:
        super().__init__()
        self.max_len = cfg.max_len
        self.item_emb = nn.Embedding(n_items + 1, cfg.hidden_size, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.hidden_size)
        self.emb_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.emb_dropout = nn.Dropout(cfg.hidden_dropout)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self._init(cfg.initializer_range)

    def _init(self, std: float) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """``seq`` ``[b, max_len]`` (left-padded, 0 = pad) -> hidden states ``[b, max_len, d]``."""
        n = seq.shape[1]
        x = self.item_emb(seq) + self.pos_emb.weight[self.max_len - n :]
        x = self.emb_dropout(self.emb_norm(x))
        # Causal mask that also hides padding keys. Every position may see itself, so rows of pure
        # padding are never fully masked (that would give NaN); their outputs are never used.
        causal = torch.ones(n, n, dtype=torch.bool, device=seq.device).tril()
        allowed = causal & (seq != 0)[:, None, None, :]
        allowed = allowed | torch.eye(n, dtype=torch.bool, device=seq.device)
        for block in self.blocks:
            x = block(x, allowed)
        return x

    def items(self) -> torch.Tensor:
        """Output item table ``[n_items, d]`` (the input table without the padding row)."""
        return self.item_emb.weight[1:]


class SASRec(TorchTarget):
    """Self-attentive sequential recommender; ``scores = last hidden state @ item_emb.T``.

    The user embedding is the final block's output (after its LayerNorm) at the last position of the
    left-padded history, truncated to its ``max_len`` most recent items. An empty history gives the
    output of an all-padding sequence (position embedding only): a fixed, valid vector.

    Args:
        n_items: catalogue size.
        item_init: optional ``[n_items, hidden_size]`` array that initialises the item table at
            ``fit`` (e.g. reduced title embeddings, LANE); the rows stay trainable.
        **hparams: fields of :class:`SASRecConfig`.
    """

    name: ClassVar[str] = "sasrec"

    def __init__(self, n_items: int, *, item_init: np.ndarray | None = None, **hparams: Any) -> None:
        self.n_items = int(n_items)
        self.cfg = make_config(SASRecConfig, "sasrec", hparams)
        self.item_init = None if item_init is None else np.asarray(item_init, dtype=np.float32)
        if self.item_init is not None and self.item_init.shape != (self.n_items, self.cfg.hidden_size):
            raise UserError(
                f"sasrec: item_init has shape {self.item_init.shape}, "
                f"not ({self.n_items}, {self.cfg.hidden_size})",
                fix="reduce the vectors to hidden_size (e.g. PCA) and give one row per item",
            )
        self._device = torch.device("cpu")
        # Placeholder weights (fit() re-initialises, load_target() overwrites); built under a fixed seed so
        # constructing a target neither consumes nor depends on the caller's global RNG.
        with seeded(0):
            self._net = _SASRecNet(self.n_items, self.cfg)
        self._fitted = False
        self.fit_report: FitReport | None = None

    def config(self) -> dict[str, Any]:
        out = {"n_items": self.n_items, **dataclasses.asdict(self.cfg)}
        if self.item_init is not None:  # only when set, so plain SASRec configs are unchanged
            out["item_init_sha256"] = hashlib.sha256(self.item_init.tobytes()).hexdigest()
        return out

    def _init_items(self, net: _SASRecNet) -> None:
        """Copy ``item_init`` into the item table (row 0, the padding, stays zero)."""
        if self.item_init is not None:
            with torch.no_grad():
                net.item_emb.weight[1:] = torch.from_numpy(self.item_init).to(net.item_emb.weight.device)

    def _user_vectors(self, histories: list[np.ndarray]) -> torch.Tensor:
        seq = torch.from_numpy(left_pad(histories, self.cfg.max_len)).to(self._device)
        return self._net(seq)[:, -1]

    def _item_vectors(self) -> torch.Tensor:
        return self._net.items()

    def _windows(self, rows: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (1-based, left-padded) and 0-based targets (-1 = padding, no loss) of each row's
        last window (rows of two or more items)."""
        L = self.cfg.max_len
        inputs = left_pad([s[-(L + 1) : -1] for s in rows], L)
        targets = left_pad([s[-L:] for s in rows], L, offset=1) - 1  # pad 0 -> -1
        return torch.from_numpy(inputs), torch.from_numpy(targets)

    def _new_net(self) -> nn.Module:
        """A freshly initialised network (the caller seeds): the item table from ``item_init`` if
        given. Variants with another item table (``sasrec-guided``) or more modules (``lane-sasrec``)
        override this, not :meth:`fit`."""
        net = _SASRecNet(self.n_items, self.cfg)
        self._init_items(net)
        return net

    def _row_inputs(self, rows: Sequence[np.ndarray]) -> Any:
        """What a variant needs per training row besides its window (``lane-sasrec``: the rows'
        preferences), built once by :meth:`fit` and handed to :meth:`_states`; SASRec needs none."""
        return None

    def _states(self, x: torch.Tensor, idx: torch.Tensor, row_inputs: Any) -> torch.Tensor:
        """Hidden states ``[b, L, d]`` of the training windows ``x`` (rows ``idx`` of the training
        set, ``row_inputs`` from :meth:`_row_inputs`); the loss reads them at every real position."""
        return self._net(x)

    def fit(
        self, split: Split, *, seed: int, device: str = "cpu", disable_progress: bool = False
    ) -> FitReport:
        """Train on ``split.train`` with early stopping on validation NDCG@10 (history = train)."""
        check_n_items(self.n_items, split, self.name)
        cfg = self.cfg
        self._device = torch.device(device)
        rows = [s for s in split.train if len(s) >= 2]  # one item gives no (input, next) pair
        if not rows:
            raise UserError(f"{self.name}: no user has two or more train items; nothing to train on")
        inputs, targets = self._windows(rows)
        inputs, targets = inputs.to(self._device), targets.to(self._device)
        row_inputs = self._row_inputs(rows)
        with seeded(seed, self._device) as rng:
            self._net = self._new_net().to(self._device)
            opt = torch.optim.Adam(self._net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

            def train_epoch(epoch: int) -> float:
                total, count = 0.0, 0
                for idx in minibatches(len(inputs), cfg.batch_size, rng):
                    idx_t = torch.from_numpy(idx).to(self._device)
                    x, y = inputs[idx_t], targets[idx_t]
                    keep = y >= 0
                    # Logits only at real positions: the [positions, n_items] product dominates the cost.
                    logits = self._states(x, idx_t, row_inputs)[keep] @ self._net.items().T
                    loss = F.cross_entropy(logits, y[keep])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(idx)
                    count += len(idx)
                return total / max(count, 1)

            def validate() -> dict[str, float]:
                return evaluate_full_ranking(self, split.train, split.valid, ks=(10,))

            self._fitted = True  # validation scores the network while it trains
            try:
                report = run_training(
                    self._net,
                    train_epoch=train_epoch,
                    validate=validate,
                    max_epochs=cfg.epochs,
                    patience=cfg.patience,
                    eval_every=cfg.eval_every,
                    desc=self.name,
                    disable_progress=disable_progress,
                )
            except BaseException:
                self._fitted = False
                raise
        self.fit_report = report
        return report
