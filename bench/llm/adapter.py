"""LoRA adapters on disk: the trained bundle, its weights, epoch checkpoints, loading for inference.

An adapter directory holds peft's ``save_pretrained`` output plus, when extra modules were trained
with it (e.g. the embedding injector), ``extra_modules.safetensors``. Directories are written whole
or not at all (:func:`bench.io.atomic_dir`). Training itself is :mod:`bench.llm.lora`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bench.io import atomic_dir
from bench.llm.backbone import Backbone

logger = logging.getLogger(__name__)

EXTRA_MODULES_FILE = "extra_modules.safetensors"
STATE_FILE, OPT_FILES = "trainer_state.json", ("optimizer.pt", "scheduler.pt")

#: ``embed_hook(model, input_ids, attention_mask, extras) -> inputs_embeds`` of shape (batch, seq, hidden).
Modules = Mapping[str, nn.Module]
EmbedHook = Callable[[Any, torch.Tensor, torch.Tensor, list[Mapping[str, Any]]], torch.Tensor]


class Bundle(nn.Module):
    """The PEFT model and the extra modules under one root, so DDP syncs and accelerate wraps both."""

    def __init__(self, lm: nn.Module, extra: Modules | None, hook: EmbedHook | None) -> None:
        super().__init__()
        self.lm, self.extra, self.hook = lm, nn.ModuleDict(dict(extra or {})), hook

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, extras: list, keep: torch.Tensor
    ) -> torch.Tensor:
        """Logits at positions ``keep`` only (the LM head never runs on the prompt positions)."""
        if self.hook is None:
            out = self.lm(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=False, logits_to_keep=keep
            )
            return out.logits
        embeds = self.hook(self.lm, input_ids, attention_mask, extras)
        return self.lm(
            inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False, logits_to_keep=keep
        ).logits


def is_checkpointing(model: Any) -> bool:
    # transformers 5 renamed the flag; the old name still works but warns
    name = "is_activation_checkpointing" if hasattr(type(model), "is_activation_checkpointing") else ""
    return bool(getattr(model, name or "is_gradient_checkpointing", False))


def attach_lora(model: Any, cfg: Any, *, checkpointing: bool) -> Any:
    """``model`` wrapped by peft with the LoRA layers of ``cfg`` (a :class:`~bench.llm.lora.LoraTrainConfig`)."""
    from peft import LoraConfig, get_peft_model

    if checkpointing:
        # non-reentrant checkpointing works under DDP; input grads let it see through frozen embeddings
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # transformers 5 name; the old one warns
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        model.enable_input_require_grads()
    tied = bool(getattr(model.config, "tie_word_embeddings", False)) and bool(cfg.modules_to_save)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        modules_to_save=list(cfg.modules_to_save) or None,
        ensure_weight_tying=tied,  # keep embed_tokens / lm_head copies tied when the base ties them
    )
    return get_peft_model(model, lora)


def detach_lora(peft_model: Any, base: Any, grads: set[int], was_training: bool, was_ckpt: bool) -> None:
    """Give the caller back the base model exactly as it was (no LoRA layers, same flags)."""
    from peft.utils.other import ModulesToSaveWrapper

    inner = peft_model.base_model.model
    for name, module in list(inner.named_modules()):  # unload() would keep the *trained* copies
        if isinstance(module, ModulesToSaveWrapper):
            parent, _, child = name.rpartition(".")
            setattr(inner.get_submodule(parent) if parent else inner, child, module.original_module)
    peft_model.unload()
    if not was_ckpt and is_checkpointing(base):
        (getattr(base, "activation_checkpointing_disable", None) or base.gradient_checkpointing_disable)()
        base.disable_input_require_grads()
    for p in base.parameters():
        p.requires_grad_(id(p) in grads)
    base.train(was_training)


def save_weights(bundle: Bundle, directory: Path) -> None:
    # After new tokens are added, peft would save the full embedding and output matrices with every
    # adapter (~226 MB for SmolLM2). Their rows are rebuilt deterministically when the tokens are
    # added again, so only save them when they are trained (modules_to_save).
    cfg = next(iter(bundle.lm.peft_config.values()))
    trained = set(cfg.modules_to_save or ()) & {"embed_tokens", "lm_head"}
    bundle.lm.save_pretrained(str(directory), save_embedding_layers=bool(trained))
    if len(bundle.extra):  # copies: safetensors refuses shared storage, and they must be on CPU anyway
        state = {k: v.detach().to("cpu", copy=True) for k, v in bundle.extra.state_dict().items()}
        save_file(state, str(directory / EXTRA_MODULES_FILE))


def load_weights(bundle: Bundle, directory: Path) -> None:
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(bundle.lm, load_file(str(directory / "adapter_model.safetensors")))
    if result.unexpected_keys:
        raise RuntimeError(f"{directory}: unexpected adapter keys {result.unexpected_keys[:5]}")
    if len(bundle.extra):
        bundle.extra.load_state_dict(load_file(str(directory / EXTRA_MODULES_FILE)), strict=True)


def latest_checkpoint(root: Path) -> Path | None:
    done = [d for d in root.glob("epoch-*") if (d / STATE_FILE).exists() and (d / OPT_FILES[0]).exists()]
    return max(done, key=lambda d: int(d.name.split("-")[1]), default=None)


def save_checkpoint(accelerator: Any, root: Path, bundle: nn.Module, stateful: tuple, state: dict) -> None:
    """Write ``root/epoch-<k>`` whole or not at all, then drop older optimizer states."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final = root / f"epoch-{state['epoch']}"
        shutil.rmtree(final, ignore_errors=True)  # a stale copy (an epoch rerun after a crash)
        with atomic_dir(final) as tmp:
            save_weights(accelerator.unwrap_model(bundle), tmp)
            for obj, name in zip(stateful, OPT_FILES, strict=True):  # optimizer, scheduler
                torch.save(obj.state_dict(), tmp / name)
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))
        for old in root.glob("epoch-*"):  # resuming needs the latest only; older adapters are kept
            for name in OPT_FILES if old != final else ():
                (old / name).unlink(missing_ok=True)
    accelerator.wait_for_everyone()


def load_adapter(backbone: Backbone, adapter_dir: Path, *, extra_modules: Modules | None = None) -> Backbone:
    """A backbone whose model carries the adapter in ``adapter_dir``, in eval mode.

    peft injects the LoRA layers into ``backbone.model`` in place, so pass a base backbone, once.
    ``extra_modules`` get their trained weights strictly (a missing or unexpected key raises) and
    are moved to the backbone's device in eval mode.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise FileNotFoundError(f"{adapter_dir}: no adapter_config.json (not a trained adapter directory)")
    extra_file = adapter_dir / EXTRA_MODULES_FILE
    if extra_modules:
        if not extra_file.exists():
            raise FileNotFoundError(f"{extra_file}: missing, but extra_modules were given")
        holder = nn.ModuleDict(dict(extra_modules))
        try:
            holder.load_state_dict(load_file(str(extra_file)), strict=True)
        except RuntimeError as err:
            raise RuntimeError(f"{extra_file}: {err}") from err
        holder.to(backbone.device).eval()
    elif extra_file.exists():
        logger.warning("%s holds extra module weights but no extra_modules were given", extra_file)
    model = PeftModel.from_pretrained(backbone.model, str(adapter_dir), is_trainable=False).eval()
    return dataclasses.replace(backbone, model=model, info={**backbone.info, "adapter_dir": str(adapter_dir)})
