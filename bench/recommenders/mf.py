"""History-based matrix factorisation (asymmetric MF / FISM style).

There is no per-user parameter: a user is the mean of the *context* factors ``Q`` of the items in
their history, so any history can be scored (teacher instances, counterfactual deletions)::

    u(h) = mean_{j in h[-max_history:]} Q[j]        scores(h) = u(h) @ P.T

Training uses full-softmax cross-entropy on (history prefix -> next item) pairs: position ``t >= 1``
of a train sequence gives the pair ``(s[:t], s[t])``. Only each user's last ``max_targets`` positions
are used (like SASRec's last window: the recent past predicts the held-out items best, and it makes
an epoch 2.5x cheaper on ML-100k); each epoch visits those pairs in a seeded random order. Softmax rather than BPR because it matches how the target is evaluated
(full ranking) and needs no negative sampling.
"""

from __future__ import annotations

import dataclasses
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
    make_config,
    minibatches,
    run_training,
    seeded,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MFConfig:
    """MF hyper-parameters (tuned on ML-100k)."""

    dim: int = 64  # factor dimension of P and Q
    max_history: int = 50  # recent items averaged into the user vector (0 = all; on ML-100k 50 beats all)
    max_targets: int = (
        50  # train on each user's last N (prefix, next) pairs only (0 = all; 50: 2.5x faster, as good)
    )
    init_std: float = 0.1  # std of the normal init of P and Q
    lr: float = 2e-3  # Adam learning rate (with batch 512: as accurate as 1e-3/256, fewer optimiser steps)
    weight_decay: float = 0.0  # Adam (L2) weight decay
    batch_size: int = 512  # (prefix, next item) pairs per step
    epochs: int = 100  # upper bound on epochs
    patience: int = 5  # evaluations without validation NDCG@10 improvement before stopping
    eval_every: int = 1  # validate every this many epochs

    def __post_init__(self) -> None:
        if self.dim < 1 or self.max_history < 0 or self.max_targets < 0:
            raise UserError("mf: dim must be >= 1, max_history and max_targets >= 0")


class _MFNet(nn.Module):
    def __init__(self, n_items: int, cfg: MFConfig) -> None:
        super().__init__()
        self.P = nn.Embedding(n_items, cfg.dim)  # item (output) factors
        self.Q = nn.Embedding(n_items, cfg.dim)  # context (history) factors
        nn.init.normal_(self.P.weight, std=cfg.init_std)
        nn.init.normal_(self.Q.weight, std=cfg.init_std)

    def users(self, flat: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Mean of ``Q`` over each bag; an empty bag gives the zero vector."""
        return F.embedding_bag(flat, self.Q.weight, offsets, mode="mean")


def _bags(flat: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the slices ``flat[starts[b]:ends[b]]`` (vectorised) and their bag offsets."""
    lengths = ends - starts
    offsets = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    total = int(lengths.sum())
    # Position p of bag b reads flat[starts[b] + (p - offsets[b])].
    idx = np.repeat(starts - offsets, lengths) + np.arange(total)
    return flat[idx], offsets


class MF(TorchTarget):
    """Asymmetric (FISM-style) MF: ``scores(h) = mean(Q[h]) @ P.T``; no item bias.

    ``user_embeddings(h)`` is ``mean(Q[h[-max_history:]])`` (zeros for an empty history, which then
    scores every item 0) and ``item_embeddings()`` is ``P``.

    Args:
        n_items: catalogue size.
        **hparams: fields of :class:`MFConfig`.
    """

    name: ClassVar[str] = "mf"

    def __init__(self, n_items: int, **hparams: Any) -> None:
        self.n_items = int(n_items)
        self.cfg = make_config(MFConfig, "mf", hparams)
        self._device = torch.device("cpu")
        # Placeholder weights (fit() re-initialises, load_target() overwrites); built under a fixed seed so
        # constructing a target neither consumes nor depends on the caller's global RNG.
        with seeded(0):
            self._net = _MFNet(self.n_items, self.cfg)
        self._fitted = False
        self.fit_report: FitReport | None = None

    def config(self) -> dict[str, Any]:
        return {"n_items": self.n_items, **dataclasses.asdict(self.cfg)}

    def _window(self, histories: Sequence[np.ndarray]) -> list[np.ndarray]:
        m = self.cfg.max_history
        return [h[-m:] if m else h for h in histories]

    def _user_vectors(self, histories: list[np.ndarray]) -> torch.Tensor:
        hs = self._window(histories)
        offsets = np.zeros(len(hs), dtype=np.int64)
        np.cumsum([len(h) for h in hs[:-1]], out=offsets[1:])
        flat = np.concatenate(hs) if hs else np.zeros(0, dtype=np.int64)
        return self._net.users(
            torch.from_numpy(flat.astype(np.int64)).to(self._device),
            torch.from_numpy(offsets).to(self._device),
        )

    def _item_vectors(self) -> torch.Tensor:
        return self._net.P.weight

    def fit(
        self, split: Split, *, seed: int, device: str = "cpu", disable_progress: bool = False
    ) -> FitReport:
        """Train on all (prefix, next item) pairs of ``split.train``; early stopping on valid NDCG@10."""
        check_n_items(self.n_items, split, self.name)
        cfg = self.cfg
        self._device = torch.device(device)
        train = split.train
        lengths = np.array([len(s) for s in train], dtype=np.int64)
        flat = np.concatenate(train).astype(np.int64) if len(train) else np.zeros(0, dtype=np.int64)
        seq_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        # Pair (r, t) for t in 1..len-1: history flat[start + max(0, t - m) : start + t], target flat[start + t].
        rows = np.repeat(np.arange(len(train)), np.maximum(lengths - 1, 0))
        t = np.concatenate([np.arange(1, n) for n in lengths]) if len(train) else np.zeros(0, np.int64)
        t = t.astype(np.int64)
        if cfg.max_targets:
            keep = t >= np.repeat(lengths - cfg.max_targets, np.maximum(lengths - 1, 0))
            rows, t = rows[keep], t[keep]
        if len(t) == 0:
            raise UserError("mf: no user has two or more train items; nothing to train on")
        ends = seq_start[rows] + t
        starts = seq_start[rows] + (np.maximum(t - cfg.max_history, 0) if cfg.max_history else 0)
        pair_targets = torch.from_numpy(flat[ends])

        with seeded(seed, self._device) as rng:
            self._net = _MFNet(self.n_items, cfg).to(self._device)
            opt = torch.optim.Adam(self._net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

            def train_epoch(epoch: int) -> float:
                total = 0.0
                for idx in minibatches(len(ends), cfg.batch_size, rng):
                    bag, offsets = _bags(flat, starts[idx], ends[idx])
                    u = self._net.users(
                        torch.from_numpy(bag).to(self._device), torch.from_numpy(offsets).to(self._device)
                    )
                    logits = u @ self._net.P.weight.T
                    loss = F.cross_entropy(logits, pair_targets[idx].to(self._device))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(idx)
                return total / len(ends)

            def validate() -> dict[str, float]:
                return evaluate_full_ranking(self, train, split.valid, ks=(10,))

            self._fitted = True  # validation scores the network while it trains
            try:
                report = run_training(
                    self._net,
                    train_epoch=train_epoch,
                    validate=validate,
                    max_epochs=cfg.epochs,
                    patience=cfg.patience,
                    eval_every=cfg.eval_every,
                    desc="mf",
                    disable_progress=disable_progress,
                )
            except BaseException:
                self._fitted = False
                raise
        self.fit_report = report
        return report
