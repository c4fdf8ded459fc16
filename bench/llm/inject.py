"""Recommender embeddings as a second LLM modality (RecExplainer-I/H).

A prompt names the target recommender's user and items with the placeholder tokens ``<user>`` and
``<item>``; an :class:`Injector` projects the recommender's vectors into the LLM's embedding space
and puts them at those positions of ``inputs_embeds`` (replacing the placeholder's token embedding,
as in the paper, or added to it, as in the released code). Each kind has its own two-layer MLP.

Extras convention (one mapping per instance, the ``extras`` of a ``TrainExample``):
``{"user_vectors": [[...]], "item_vectors": [[...], ...]}`` — one vector per ``<user>`` / ``<item>``
occurrence, in prompt order; a kind that does not occur may be left out. Placeholders only occur in
prompts, never in answers.

Training: ``train_lora(..., extra_modules={"injector": inj}, embed_hook=inj.embed_hook)`` saves the
injector beside the adapter (back with ``load_adapter(..., extra_modules={"injector": inj})`` or
:func:`load_injector`). Inference: :mod:`bench.llm.injected` (scoring and generation). Ablations are
applied there to all instances before batching (:meth:`Injector.ablate`), so results never depend on
``batch_size``; :meth:`Injector.build_inputs_embeds` (hence training) never ablates.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from bench.errors import UserError
from bench.llm.adapter import EXTRA_MODULES_FILE

USER_TOKEN, ITEM_TOKEN = "<user>", "<item>"
USER_KEY, ITEM_KEY = "user_vectors", "item_vectors"
_KINDS = ((USER_TOKEN, USER_KEY, "user_proj"), (ITEM_TOKEN, ITEM_KEY, "item_proj"))


@dataclass(frozen=True)
class InjectionConfig:
    """How projected recommender vectors enter the prompt."""

    mode: str = "replace"  # "replace" the placeholder's token embedding (paper) or "add" to it (code)
    hidden: int | None = None  # projector hidden width; None = LLM hidden size // 2 (released code)
    ablation: str = "none"  # inference only: "none", "zero" vectors or "shuffle" them across instances
    seed: int = 0  # seeds the "shuffle" permutation

    def __post_init__(self) -> None:
        if self.mode not in ("replace", "add") or self.ablation not in ("none", "zero", "shuffle"):
            raise ValueError(f"InjectionConfig: bad mode {self.mode!r} or ablation {self.ablation!r}")
        if self.hidden is not None and self.hidden < 1:
            raise ValueError(f"InjectionConfig.hidden must be >= 1 (or None), got {self.hidden}")


def add_placeholder_tokens(backbone: Any) -> tuple[int, int]:
    """Add ``<user>`` and ``<item>`` as special tokens and give them embedding rows; their ids.

    Idempotent. Call it on the base backbone, before training or ``load_adapter``. New rows are set
    to the mean of the existing rows (deterministically, unlike transformers' ``mean_resizing``,
    which samples around the mean): in ``add`` mode that row is the base the projected vector is
    added to, and the mean is a neutral point of the embedding distribution where a random row
    could have any scale; on the output side (tied or not) a mean row gives the new tokens an
    average logit, so the distribution over the existing vocabulary barely moves.
    """
    tok, model = backbone.tokenizer, backbone.model
    before = len(tok)
    # transformers 5 renamed "additional_special_tokens" to "extra_special_tokens"; keep existing ones
    kind = (
        "extra"
        if "replace_extra_special_tokens" in inspect.signature(tok.add_special_tokens).parameters
        else "additional"
    )
    tok.add_special_tokens(
        {f"{kind}_special_tokens": [USER_TOKEN, ITEM_TOKEN]}, **{f"replace_{kind}_special_tokens": False}
    )
    ids = (tok.convert_tokens_to_ids(USER_TOKEN), tok.convert_tokens_to_ids(ITEM_TOKEN))
    rows = model.get_input_embeddings().weight.shape[0]
    if max(ids) >= rows:
        model.resize_token_embeddings(max(len(tok), max(ids) + 1), mean_resizing=False)
    # Rows this call created, or spare (padding) rows of a larger matrix that the new ids landed on.
    fresh = [i for i in ids if i >= rows or i >= before]
    if fresh:
        layers = (model.get_input_embeddings(), model.get_output_embeddings())
        with torch.no_grad():  # a tied lm_head is the same tensor, set twice to the same value
            for weight in (layer.weight for layer in layers if layer is not None):
                weight[fresh] = weight[: min(before, rows)].float().mean(0).to(weight.dtype)
    backbone.info["placeholder_tokens"] = {USER_TOKEN: ids[0], ITEM_TOKEN: ids[1]}
    return ids


class Projector(nn.Module):
    """``Linear(rec_dim → hidden) → GELU → Linear(hidden → llm_hidden)``."""

    def __init__(self, rec_dim: int, hidden: int, llm_hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(rec_dim, hidden), nn.GELU(), nn.Linear(hidden, llm_hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _as_matrix(value: Any, rec_dim: int, what: str) -> torch.Tensor:
    """``value`` (None, one vector, or a sequence / array of vectors) as a float32 CPU ``(k, rec_dim)``."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        value = torch.stack([v.detach().to("cpu").reshape(-1) for v in value])
    if isinstance(value, torch.Tensor):
        mat = value.detach().to("cpu", torch.float32)
    else:
        mat = torch.from_numpy(np.asarray([] if value is None else value, dtype=np.float32))
    if mat.numel() == 0:
        return torch.zeros((0, rec_dim))
    mat = mat[None] if mat.ndim == 1 else mat
    if mat.ndim != 2 or mat.shape[1] != rec_dim:
        raise ValueError(f"{what}: expected vectors of dimension {rec_dim}, got shape {tuple(mat.shape)}")
    return mat


class Injector(nn.Module):
    """The user and item projectors, and the placeholder ids they write at.

    The ids are a persistent buffer, so a saved injector carries the ids it was trained with and
    :func:`check_placeholders` can tell when a backbone's tokenizer disagrees.
    """

    def __init__(
        self,
        *,
        rec_dim: int,
        llm_hidden: int,
        token_ids: tuple[int, int] = (-1, -1),
        config: InjectionConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config or InjectionConfig()
        self.rec_dim, self.llm_hidden = int(rec_dim), int(llm_hidden)
        hidden = self.config.hidden or max(self.llm_hidden // 2, 1)
        self.user_proj = Projector(self.rec_dim, hidden, self.llm_hidden)
        self.item_proj = Projector(self.rec_dim, hidden, self.llm_hidden)
        self.register_buffer("placeholder_ids", torch.tensor(token_ids, dtype=torch.long))

    @property
    def token_ids(self) -> tuple[int, int]:
        """``(<user> id, <item> id)``."""
        user, item = self.placeholder_ids.tolist()
        return int(user), int(item)

    def build_inputs_embeds(
        self, model: Any, input_ids: torch.Tensor, extras_list: Sequence[Mapping[str, Any]]
    ) -> torch.Tensor:
        """Token embeddings of ``input_ids`` with the projected vectors at the placeholders.

        Works with any padding side and any number of placeholders per row; raises ValueError when
        a row's vector count differs from its placeholder count. Never applies the ablation.
        """
        if len(extras_list) != input_ids.shape[0]:
            raise ValueError(f"{input_ids.shape[0]} rows but {len(extras_list)} extras")
        if min(self.token_ids) < 0:
            raise ValueError("injector has no placeholder ids: build it with build_injector() or load it")
        embeds = model.get_input_embeddings()(input_ids)
        if embeds.shape[-1] != self.llm_hidden:
            raise ValueError(f"injector projects to {self.llm_hidden} dims, the LLM has {embeds.shape[-1]}")
        for token_id, (token, key, proj_name) in zip(self.token_ids, _KINDS, strict=True):
            # nonzero is row-major: each row's placeholders come in prompt order, matching its vectors
            rows, cols = (input_ids == token_id).nonzero(as_tuple=True)
            counts = torch.bincount(rows, minlength=len(extras_list)).tolist()
            vectors = []
            for r, extras in enumerate(extras_list):
                mat = _as_matrix(extras.get(key), self.rec_dim, f"row {r} {key}")
                if mat.shape[0] != counts[r]:
                    raise ValueError(
                        f"row {r}: {counts[r]} {token} placeholder(s) but {mat.shape[0]} vector(s) in {key!r}"
                    )
                vectors.append(mat)
            if rows.numel() == 0:
                continue
            proj = getattr(self, proj_name)
            weight = proj.net[0].weight
            injected = proj(torch.cat(vectors).to(weight.device, weight.dtype))
            injected = injected.to(embeds.device, embeds.dtype)  # the model's dtype (bf16 on CUDA)
            # out-of-place index_put: autograd reaches both the projector and the token embeddings
            embeds = embeds.index_put((rows, cols), injected, accumulate=self.config.mode == "add")
        return embeds

    def embed_hook(
        self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, extras_list: Sequence
    ) -> torch.Tensor:
        """``train_lora``'s ``embed_hook``: :meth:`build_inputs_embeds` (the mask is not needed)."""
        return self.build_inputs_embeds(model, input_ids, extras_list)

    def ablate(self, extras_list: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``extras_list`` under the configured ablation, over all instances at once.

        ``zero``: every vector becomes zeros. ``shuffle``: per kind, all vectors of all instances are
        pooled and moved along one random cycle (seeded by ``config.seed``), so each lands in
        another slot — no instance keeps its own vector by chance — and each row keeps its count.
        """
        out = [dict(e) for e in extras_list]
        if self.config.ablation == "none":
            return out
        for _, key, _ in _KINDS:
            mats = [
                _as_matrix(e.get(key), self.rec_dim, f"instance {i} {key}") for i, e in enumerate(extras_list)
            ]
            pooled = torch.cat(mats)
            if self.config.ablation == "zero":
                pooled = torch.zeros_like(pooled)
            elif len(pooled) > 1:
                perm = torch.randperm(len(pooled), generator=torch.Generator().manual_seed(self.config.seed))
                source = torch.empty_like(perm)
                source[perm] = perm.roll(-1)  # slot perm[j] takes the vector of slot perm[j + 1]
                pooled = pooled[source]
            for e, part in zip(out, pooled.split([len(m) for m in mats]), strict=True):
                if key in e or len(part):
                    e[key] = part.numpy()
        return out


def build_injector(
    backbone: Any, *, rec_dim: int, config: InjectionConfig | None = None, seed: int = 0
) -> Injector:
    """A fresh injector for ``backbone`` (placeholders added), initialised from ``seed``, on its device."""
    ids = add_placeholder_tokens(backbone)
    hidden = backbone.model.get_input_embeddings().weight.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        injector = Injector(rec_dim=rec_dim, llm_hidden=hidden, token_ids=ids, config=config)
    return injector.to(backbone.device)


def load_injector(
    path: Path | str,
    *,
    rec_dim: int,
    llm_hidden: int,
    config: InjectionConfig | None = None,
    prefix: str = "injector",
) -> Injector:
    """An injector with the weights in ``path``, loaded strictly, on CPU in eval mode.

    ``path`` is an adapter directory written by ``train_lora`` (its ``extra_modules.safetensors``,
    keys under ``prefix.``) or a safetensors file of the injector's own state dict.

    Raises:
        UserError: unreadable file, or missing / unexpected keys or shape mismatches.
    """
    path = Path(path)
    file = path / EXTRA_MODULES_FILE if path.is_dir() else path
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"cannot read injector weights ({err})", where=str(file)) from None
    head = f"{prefix}." if prefix else ""
    if head and any(k.startswith(head) for k in tensors):
        tensors = {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}
    injector = Injector(rec_dim=rec_dim, llm_hidden=llm_hidden, config=config)
    try:  # torch names every missing / unexpected key and every shape mismatch
        injector.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise UserError(
            f"weights do not match the injector (rec_dim={rec_dim}, llm_hidden={llm_hidden}): "
            + " ".join(str(err).split()),
            where=str(file),
            fix="pass the rec_dim / config the injector was trained with, or retrain it",
        ) from None
    return injector.eval()


def check_placeholders(backbone: Any, injector: Injector) -> None:
    """Raise ValueError unless the backbone's tokenizer maps the placeholders to the injector's ids."""
    tok = backbone.tokenizer
    have = tuple(tok.convert_tokens_to_ids(t) for t in (USER_TOKEN, ITEM_TOKEN))
    if have != injector.token_ids:
        raise ValueError(
            f"the tokenizer maps {USER_TOKEN}/{ITEM_TOKEN} to {have} but the injector writes at "
            f"{injector.token_ids}; call add_placeholder_tokens(backbone) on the backbone it was trained on"
        )


def target_vectors(target: Any, histories: Sequence[Sequence[int]]) -> np.ndarray:
    """The target's user vector for each history, float32 ``[len(histories), dim]``."""
    out = np.asarray(target.user_embeddings([list(h) for h in histories]), dtype=np.float32)
    if out.ndim != 2 or len(out) != len(histories):
        raise ValueError(f"{target.name}: user_embeddings gave {out.shape} for {len(histories)} histories")
    return out


def item_vectors(target: Any, items: Sequence[int]) -> np.ndarray:
    """The target's item vectors for ``items`` (internal indices), float32 ``[len(items), dim]``."""
    table = np.asarray(target.item_embeddings(), dtype=np.float32)
    idx = np.asarray(list(items), dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= len(table)):
        raise ValueError(
            f"{target.name}: item indices must lie in [0, {len(table)}), got {idx.min()}..{idx.max()}"
        )
    return table[idx].reshape(len(idx), table.shape[1])


def check_target_dim(target: Any, injector: Injector) -> None:
    """Raise UserError unless the target's user and item vectors have the injector's input size."""
    user, item = target_vectors(target, [[0]]).shape[1], np.shape(target.item_embeddings())[1]
    if user != injector.rec_dim or item != injector.rec_dim:
        raise UserError(
            f"target {target.name!r} has {user}-dim user / {item}-dim item vectors "
            f"but the injector expects {injector.rec_dim}",
            fix="use the target the injector was trained with, or retrain the explainer on this target",
        )
