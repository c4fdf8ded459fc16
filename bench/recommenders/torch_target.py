"""Shared machinery for the torch targets: seeding, padding, batching, the early-stopping loop.

:class:`TorchTarget` holds what SASRec and MF have in common (inference batching, history masking,
save). :func:`run_training` is the epoch loop with early stopping on validation NDCG@10, best-state
restore, a tqdm bar and wall time; the models only supply "train one epoch" and "validate".
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from bench import seeds
from bench.errors import UserError
from bench.recommenders.base import FitReport
from bench.recommenders.evaluation import as_histories, mask_items

log = logging.getLogger(__name__)

#: the metric early stopping watches (computed by ``evaluate_full_ranking`` with ``ks=(10,)``).
EARLY_STOPPING_METRIC = "ndcg@10"


def progress_disabled(disable_progress: bool) -> bool:
    """True when the bar should stay quiet: asked to, or stderr is not a terminal (logs, CI)."""
    return disable_progress or not sys.stderr.isatty()


@contextlib.contextmanager
def seeded(seed: int, device: str | torch.device = "cpu") -> Iterator[np.random.Generator]:
    """Seed torch for the duration of the block and yield a numpy generator from the same seed.

    The global torch RNG is forked, so fitting a target does not change the random stream of the
    code that called it (explainers seed themselves and must not depend on whether a target was
    trained or loaded from the cache).
    """
    dev = torch.device(device)
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield seeds.rng(seed)


def left_pad(histories: Sequence[np.ndarray], max_len: int, *, offset: int = 1) -> np.ndarray:
    """``[n, max_len]`` int64 of the last ``max_len`` items of each history, shifted by ``offset``.

    With ``offset=1`` item ``i`` becomes ``i + 1`` and ``0`` is padding; padding goes on the *left*
    so that the most recent item is always the last column.
    """
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for r, h in enumerate(histories):
        tail = h[-max_len:] if max_len > 0 else h[:0]
        if len(tail):
            out[r, max_len - len(tail) :] = tail + offset
    return out


def minibatches(n: int, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Index batches over ``range(n)``; shuffled with ``rng`` when given (the last batch may be short)."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def check_n_items(model_n_items: int, split: Any, name: str) -> None:
    """Fail clearly when a target is fitted on a dataset with a different catalogue size."""
    n = split.dataset.n_items
    if n != model_n_items:
        raise UserError(
            f"{name} was built for {model_n_items} items but the dataset has {n}",
            fix="construct the target with n_items=split.dataset.n_items",
        )


def make_config(cls: type, name: str, hparams: dict[str, Any]) -> Any:
    """Build a config dataclass, turning an unknown key into a :class:`UserError` that lists valid ones."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(hparams) - fields)
    if unknown:
        raise UserError(
            f"{name}: unknown hyper-parameter(s) {', '.join(unknown)}",
            fix=f"valid ones: {', '.join(sorted(fields))}",
        )
    return cls(**hparams)


def run_training(
    module: torch.nn.Module,
    *,
    train_epoch: Callable[[int], float],
    validate: Callable[[], dict[str, float]],
    max_epochs: int,
    patience: int,
    eval_every: int = 1,
    desc: str = "train",
    disable_progress: bool = False,
) -> FitReport:
    """Train with early stopping on validation NDCG@10 and restore the best weights.

    Args:
        module: the network; its ``state_dict`` is snapshotted at every improvement and restored at the end.
        train_epoch: runs one epoch (epoch number from 1) and returns the mean training loss.
        validate: returns metrics including ``ndcg@10``.
        max_epochs: upper bound on epochs.
        patience: stop after this many *evaluations* without improvement.
        eval_every: validate every this many epochs (and after the last one).
        desc: progress-bar label.
        disable_progress: silence the bar (it is also silent when stderr is not a TTY).

    Returns:
        A :class:`FitReport`; ``history`` holds one entry per evaluation (epoch, loss, metrics).
    """
    if max_epochs < 1 or patience < 1 or eval_every < 1:
        raise ValueError("max_epochs, patience and eval_every must be >= 1")
    start = time.perf_counter()
    best_value = -np.inf
    best_epoch = 0
    best_metrics: dict[str, float] = {}
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = []
    stale = 0
    epoch = 0
    bar = tqdm(
        total=max_epochs, desc=desc, unit="ep", leave=False, disable=progress_disabled(disable_progress)
    )
    try:
        for epoch in range(1, max_epochs + 1):
            module.train()
            loss = float(train_epoch(epoch))
            bar.update(1)
            if not np.isfinite(loss):
                # A diverged run would otherwise early-stop on garbage and be cached as a target.
                raise RuntimeError(
                    f"{desc}: training loss is {loss} at epoch {epoch}; lower the learning rate"
                )
            if epoch % eval_every and epoch != max_epochs:
                bar.set_postfix(loss=f"{loss:.4f}")
                continue
            metrics = {k: float(v) for k, v in validate().items()}
            value = metrics[EARLY_STOPPING_METRIC]
            history.append({"epoch": float(epoch), "loss": loss, **metrics})
            if value > best_value:
                best_value, best_epoch, best_metrics, stale = value, epoch, metrics, 0
                # deepcopy, not state_dict() alone: the latter aliases the live parameters.
                best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
            bar.set_postfix(loss=f"{loss:.4f}", ndcg=f"{value:.4f}", best=f"{best_value:.4f}@{best_epoch}")
            log.debug("%s epoch %d loss %.4f valid %s", desc, epoch, loss, metrics)
            if stale >= patience:
                break
    finally:
        bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    seconds = time.perf_counter() - start
    log.info(
        "%s: %d epochs, best epoch %d, valid %s=%.4f, %.1fs",
        desc,
        epoch,
        best_epoch,
        EARLY_STOPPING_METRIC,
        best_value,
        seconds,
    )
    return FitReport(
        epochs=epoch, best_epoch=best_epoch, best_valid=best_metrics, seconds=seconds, history=history
    )


class TorchTarget:
    """Base for targets whose scores are ``user_vector @ item_table.T`` computed by a torch module.

    Subclasses set ``name``, build ``self._net`` and implement :meth:`_user_vectors` and
    :meth:`_item_vectors`; everything the protocol needs on top of those lives here.
    """

    name: ClassVar[str] = ""
    #: histories scored per forward pass at inference; memory-bound, does not change results.
    inference_batch_size: ClassVar[int] = 512

    n_items: int
    _net: torch.nn.Module
    _device: torch.device
    _fitted: bool
    fit_report: FitReport | None

    # -- to implement -------------------------------------------------------------------------------
    def _user_vectors(self, histories: list[np.ndarray]) -> torch.Tensor:
        """User-tower output ``[len(histories), d]`` on ``self._device`` (called under no_grad, eval mode)."""
        raise NotImplementedError

    def _item_vectors(self) -> torch.Tensor:
        """Item table ``[n_items, d]`` on ``self._device``."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if not self._fitted:
            # Scoring an untrained network would silently produce a random target.
            raise RuntimeError(f"{self.name}: call fit() or load it with load_target() before scoring")

    def _batched(
        self, histories: Sequence[Sequence[int]], fn: Callable[[list[np.ndarray]], torch.Tensor]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Validated histories and ``fn``'s outputs per inference batch (no grad, eval mode)."""
        hs = as_histories(histories, self.n_items)
        self._require_fitted()
        self._net.eval()
        out: list[np.ndarray] = []
        with torch.no_grad():
            for start in range(0, len(hs), self.inference_batch_size):
                out.append(fn(hs[start : start + self.inference_batch_size]).float().cpu().numpy())
        return hs, out

    def user_embeddings(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """User vectors ``[len(histories), d]`` (float32)."""
        hs, out = self._batched(histories, self._user_vectors)
        if not out:
            return np.zeros((0, self._embedding_dim()), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def item_embeddings(self) -> np.ndarray:
        """Item table ``[n_items, d]`` (float32); ``scores(h, mask_history=False) == U @ I.T``."""
        self._require_fitted()
        with torch.no_grad():
            return self._item_vectors().float().cpu().numpy().astype(np.float32, copy=True)

    def _embedding_dim(self) -> int:
        with torch.no_grad():
            return int(self._item_vectors().shape[1])

    def scores(self, histories: Sequence[Sequence[int]], *, mask_history: bool = True) -> np.ndarray:
        """Scores ``[len(histories), n_items]`` float32; history items are ``-inf`` when masked."""
        items = None

        def score(batch: list[np.ndarray]) -> torch.Tensor:
            nonlocal items
            if items is None:
                items = self._item_vectors()
            return self._user_vectors(batch) @ items.T

        hs, out = self._batched(histories, score)
        result = (
            np.concatenate(out).astype(np.float32, copy=False)
            if out
            else np.zeros((0, self.n_items), dtype=np.float32)
        )
        if mask_history:
            mask_items(result, hs)
        return result

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors saved in ``model.safetensors`` (the network's state dict)."""
        return dict(self._net.state_dict())

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load weights (keys and shapes already checked by :func:`bench.recommenders.checkpoint.load_target`)."""
        self._net.load_state_dict(tensors, strict=True)
        self._net.to(self._device).eval()
        self._fitted = True

    def to(self, device: str | torch.device) -> TorchTarget:
        """Move the network to ``device`` (inference after loading on a GPU, for instance)."""
        self._device = torch.device(device)
        self._net.to(self._device)
        return self

    def save(self, directory: Path) -> None:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``."""
        from bench.recommenders.checkpoint import save_target

        self._require_fitted()
        save_target(self, directory)
