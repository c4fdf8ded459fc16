"""SASRec whose item table is the guided (refined) embedding (arXiv 2504.11658's recommender claim).

Item ``i``'s row of the (input and output) item table is::

    e_i = [ g ⊙ z_i ; E_i ]     z_i ∈ R^m: the item's LLM attribute scores, z-scored over the scored
                                items (frozen; 0 = neutral for an item without scores)
                                g ∈ R^m: a trainable per-attribute gain (starts at initializer_range,
                                the scale of a fresh embedding, so neither part dominates at start)
                                E_i ∈ R^{d−m}: a trainable embedding of reduced width d − m

so the model keeps SASRec's width ``d`` (``hidden_size``) and its ``d − m`` free dimensions are the
"reduced-dimension base embedding". Everything else (blocks, loss, early stopping) is
:class:`~bench.recommenders.sasrec.SASRec`'s; this module subclasses it and leaves it untouched.

The scores come from a file (``attribute_scores``: an ``.npz`` with ``items`` and ``scores`` arrays, as
written by :class:`bench.llm.attributes.AttributeScorer`'s cache): targets sit below the LLM layer, so
they read the scores, never compute them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UserError
from bench.hashing import sha256_file
from bench.recommenders.sasrec import SASRec, SASRecConfig, _SASRecNet
from bench.recommenders.torch_target import seeded

log = logging.getLogger(__name__)


def load_attribute_matrix(path: str | Path, n_items: int) -> tuple[np.ndarray, int]:
    """``[n_items, m]`` z-scored attribute scores from an ``.npz`` (items, scores) and how many items
    had scores; items without scores get 0 (the neutral vector)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(
            f"sasrec-guided: no attribute score file {p}",
            where="target.params.attribute_scores",
            fix="score the catalog first (tests/benchmarks/bench_sasrec_guided.py --score writes one)",
        )
    with np.load(p) as z:
        items, scores = z["items"].astype(np.int64), z["scores"].astype(np.float64)
    if len(items) and (items.min() < 0 or items.max() >= n_items):
        raise UserError(f"sasrec-guided: {p} names items outside the catalog of {n_items}", where=str(p))
    mu, sd = scores.mean(0), scores.std(0) + 1e-6
    out = np.zeros((n_items, scores.shape[1]), dtype=np.float32)
    out[items] = (scores - mu) / sd
    return out, int(len(items))


class _FusedItems(nn.Module):
    """The item table ``[pad ; (g ⊙ z_i ; E_i)]``; row 0 (padding) is always zero."""

    def __init__(self, z: np.ndarray, width: int, std: float) -> None:
        super().__init__()
        m = z.shape[1]
        if m >= width:
            raise UserError(f"sasrec-guided: {m} attributes leave no free width in hidden_size {width}")
        self.register_buffer("z", torch.cat([torch.zeros(1, m), torch.as_tensor(z, dtype=torch.float32)]))
        self.gain = nn.Parameter(torch.full((m,), float(std)))
        self.free = nn.Parameter(torch.randn(z.shape[0] + 1, width - m) * std)
        keep = torch.ones(z.shape[0] + 1, 1)
        keep[0] = 0.0
        self.register_buffer("keep", keep)

    @property
    def weight(self) -> torch.Tensor:
        return torch.cat([self.z * self.gain, self.free], dim=1) * self.keep

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.weight)


class _GuidedNet(_SASRecNet):
    def __init__(self, n_items: int, cfg: SASRecConfig, z: np.ndarray) -> None:
        super().__init__(n_items, cfg)
        self.item_emb = _FusedItems(z, cfg.hidden_size, cfg.initializer_range)  # type: ignore[assignment]


class SASRecGuided(SASRec):
    """SASRec on refined item embeddings; see the module docstring.

    Args:
        n_items: catalogue size.
        attribute_scores: path of the ``.npz`` attribute scores.
        **hparams: fields of :class:`~bench.recommenders.sasrec.SASRecConfig`.
    """

    name: ClassVar[str] = "sasrec-guided"

    def __init__(self, n_items: int, attribute_scores: str = "", **hparams: Any) -> None:
        hparams.pop("attribute_scores_sha256", None)  # provenance in config(), not a hyper-parameter
        if hparams.get("item_init") is not None:
            # its item table is computed (g ⊙ z ; E): SASRec's copy into `weight` would be lost
            raise UserError(
                "sasrec-guided does not take item_init",
                where="target.params.item_init",
                fix="drop item_init (the attribute part of the table comes from attribute_scores)",
            )
        super().__init__(n_items, **hparams)
        self.attribute_scores = str(attribute_scores)
        self.z, self.n_scored = load_attribute_matrix(self.attribute_scores, self.n_items)
        with seeded(0):
            self._net = _GuidedNet(self.n_items, self.cfg, self.z)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "attribute_scores": self.attribute_scores,
            "attribute_scores_sha256": sha256_file(self.attribute_scores),
        }

    def _new_net(self) -> nn.Module:
        """SASRec's network with the guided item table (SASRec's :meth:`~SASRec.fit` trains it)."""
        return _GuidedNet(self.n_items, self.cfg, self.z)
