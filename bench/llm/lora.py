"""LoRA fine-tuning of a backbone on (prompt, answer) pairs, with epoch checkpoints and exact resume.

The loss covers the answer tokens (+ EOS) only. An optional ``embed_hook`` builds ``inputs_embeds``
(e.g. projected recommender embeddings injected at placeholder tokens); the parameters of
``extra_modules`` (e.g. that projector) are trained with the adapter and saved next to it.

Layout of ``out_dir``::

    checkpoints/epoch-<k>/  adapter (save_pretrained), extra_modules.safetensors, trainer_state.json,
                            optimizer.pt + scheduler.pt (latest epoch only; older ones are pruned)
    adapter/                the final adapter (+ extra_modules.safetensors), for load_adapter
    done.json               the TrainReport; while it exists train_lora returns it at once

The data order is a function of (seed, epoch) and dropout is reseeded from (seed, epoch, process) at
every epoch start, so a run resumed from ``epoch-<k>`` ends with the same weights as an uninterrupted
one. The same code trains on several GPUs (DDP) when the entry point is started through accelerate::

    accelerate launch --multi_gpu --num_processes 4 "$(which recxbench)" run suite.yaml

Every rank loads the backbone on ``cuda`` and ``prepare`` moves it to the rank's own GPU; each rank
trains on its shard of every batch, and only the main process writes files, logs and draws the
progress bar. DeepSpeed and FSDP are not supported (optimizer state is saved as a plain state dict).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from bench.io import atomic_dir, atomic_write_text, fault_point
from bench.llm.adapter import (
    EXTRA_MODULES_FILE,
    OPT_FILES,
    STATE_FILE,
    Bundle,
    EmbedHook,
    Modules,
    attach_lora,
    detach_lora,
    is_checkpointing,
    latest_checkpoint,
    load_adapter,
    load_weights,
    save_checkpoint,
    save_weights,
)
from bench.llm.backbone import Backbone
from bench.llm.train_data import (
    IGNORE_INDEX,
    EncodedExample,
    TrainExample,
    _encode_all,
    _EpochShuffle,
    collate,
    encode_example,
)
from bench.llm.train_step import GROUP_OVERHEAD_TOKENS, _batch_nll, forward_backward, length_groups

__all__ = ["EXTRA_MODULES_FILE", "EncodedExample", "LoraTrainConfig", "TrainExample", "TrainReport"]
__all__ += [
    "GROUP_OVERHEAD_TOKENS",
    "IGNORE_INDEX",
    "collate",
    "encode_example",
    "length_groups",
    "load_adapter",
    "train_lora",
]

logger = logging.getLogger(__name__)

_DONE_FILE = "done.json"


@dataclass(frozen=True)
class LoraTrainConfig:
    """Hyper-parameters of one LoRA fine-tuning run."""

    rank: int = 8  # LoRA rank r
    alpha: int = 16  # LoRA scaling numerator (scale = alpha / rank)
    dropout: float = 0.05  # dropout on the LoRA branch input
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # modules given LoRA
    modules_to_save: tuple[str, ...] = ()  # fully trained copies, e.g. ("embed_tokens", "lm_head")
    lr: float = 2e-4  # peak AdamW learning rate
    warmup_ratio: float = 0.1  # fraction of the optimizer steps spent in linear warmup
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    epochs: int = 1  # passes over the training examples
    batch_size: int = 8  # examples per micro-batch and process
    grad_accum: int = 1  # micro-batches per optimizer step
    max_length: int = 512  # tokens per example (the prompt is cut from the left, the answer kept)
    max_grad_norm: float = 1.0  # gradient clipping norm (<= 0: no clipping)
    seed: int = 0  # seeds the LoRA init, the data order and dropout
    gradient_checkpointing: str = "auto"  # "auto" (on for CUDA, off on CPU), "on" or "off"
    bf16: str = "auto"  # "auto" (bf16 autocast on CUDA, fp32 on CPU), "on" or "off"
    max_steps: int | None = None  # optional cap on the total optimizer steps (CPU budgets)
    group_by_length: bool = False  # run each micro-batch as length groups (less padding; other dropout draws)

    def __post_init__(self) -> None:
        for name in ("rank", "epochs", "batch_size", "grad_accum", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"LoraTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if {self.gradient_checkpointing, self.bf16} - {"auto", "on", "off"}:
            raise ValueError("LoraTrainConfig.gradient_checkpointing and .bf16 must be 'auto', 'on' or 'off'")
        if (self.max_steps is not None and self.max_steps < 1) or not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("LoraTrainConfig needs max_steps >= 1 (or None) and 0 <= warmup_ratio < 1")


@dataclass(frozen=True)
class TrainReport:
    """What a training run did, cumulative over resumed calls."""

    steps: int  # optimizer steps taken
    epochs: int  # epochs run (the last one may be partial when max_steps stopped it)
    examples: int  # training examples in the data set
    tokens: int  # prompt + answer tokens processed (all processes, padding excluded)
    seconds: float  # wall time of the training loops (checkpointing and validation excluded)
    tokens_per_second: float  # tokens / seconds
    final_loss: float  # loss of the last optimizer step (nan if none)
    losses: list[float]  # mean answer-token loss of every optimizer step
    resumed_from: int | None  # the epoch checkpoint this call resumed from; None for a fresh start
    adapter_dir: Path  # the final adapter directory (for load_adapter)
    valid_losses: list[float] = field(default_factory=list)  # per-epoch validation loss, if any

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "adapter_dir": str(self.adapter_dir)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainReport:
        return cls(**{**data, "adapter_dir": Path(data["adapter_dir"])})


def _make_accelerator(grad_accum: int, *, bf16: bool, cpu: bool) -> Any:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    kwargs = dict(gradient_accumulation_steps=grad_accum, mixed_precision="bf16" if bf16 else "no", cpu=cpu)
    try:
        return Accelerator(**kwargs)
    except ValueError:  # the state is a per-process singleton fixed by the first run's precision
        if PartialState().num_processes > 1:
            raise
        AcceleratorState._reset_state()  # one process may train at several precisions in turn
        return Accelerator(**kwargs)


def _resolve(flag: str, on_cuda: bool) -> bool:
    return on_cuda if flag == "auto" else flag == "on"


def _config_json(cfg: LoraTrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg)))  # tuples become lists, as when read back from disk


# --------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------


def train_lora(
    backbone: Backbone,
    examples: Sequence[TrainExample],
    cfg: LoraTrainConfig,
    *,
    out_dir: Path,
    valid_examples: Sequence[TrainExample] | None = None,
    extra_modules: Modules | None = None,
    embed_hook: EmbedHook | None = None,
    progress: bool = True,
    resume: bool = True,
) -> TrainReport:
    """Fine-tune a LoRA adapter on ``examples`` and write it to ``out_dir/adapter``.

    ``backbone.model`` is wrapped in place for the run and given back as it was afterwards (also on
    error), so the backbone can then go to :func:`load_adapter`. With ``resume`` an existing
    ``done.json`` is returned as is, else training continues from the latest epoch checkpoint;
    ``resume=False`` deletes earlier checkpoints and results in ``out_dir`` and starts over. The
    global RNGs are seeded from ``cfg.seed`` (LoRA init, dropout).
    """
    from accelerate.utils import set_seed
    from transformers import get_linear_schedule_with_warmup

    out_dir = Path(out_dir)
    ckpt_root, done_file = out_dir / "checkpoints", out_dir / _DONE_FILE
    if resume and done_file.exists():
        stored = json.loads(done_file.read_text())
        if stored.get("config") != _config_json(cfg):
            logger.warning("%s was written with a different config; returning it anyway", done_file)
        return TrainReport.from_json(stored["report"])
    if not examples:
        raise ValueError("train_lora needs at least one training example")
    on_cuda = str(backbone.device).startswith("cuda")
    use_bf16 = _resolve(cfg.bf16, on_cuda)
    accelerator = _make_accelerator(cfg.grad_accum, bf16=use_bf16, cpu=not on_cuda)
    main, n_proc = accelerator.is_main_process, accelerator.num_processes
    if main:
        if not resume:
            shutil.rmtree(ckpt_root, ignore_errors=True)
            done_file.unlink(missing_ok=True)
        ckpt_root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    tok = backbone.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def loader_of(data: Sequence[TrainExample], sampler: Sampler | None) -> DataLoader:
        items = _encode_all(tok, data, cfg.max_length)
        return DataLoader(
            items, cfg.batch_size, sampler=sampler, collate_fn=lambda b: collate(b, pad_id=pad_id)
        )

    base = backbone.model
    grads = {id(p) for p in base.parameters() if p.requires_grad}
    was_training, was_ckpt = base.training, is_checkpointing(base)
    set_seed(cfg.seed)  # the LoRA init
    peft_model = attach_lora(base, cfg, checkpointing=_resolve(cfg.gradient_checkpointing, on_cuda))
    try:
        bundle = Bundle(peft_model, extra_modules, embed_hook)
        bundle.extra.requires_grad_(True)
        params = [p for p in bundle.parameters() if p.requires_grad]
        if use_bf16:  # trainable weights stay fp32 under autocast, so AdamW updates are not rounded away
            for p in params:
                p.data = p.data.float()
        n_train, n_all = sum(p.numel() for p in params), sum(p.numel() for p in bundle.parameters())
        logger.info("trainable parameters: %d of %d (%.3f%%)", n_train, n_all, 100 * n_train / n_all)

        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        loader = loader_of(examples, _EpochShuffle(len(examples), cfg.seed))
        bundle, optimizer, loader = accelerator.prepare(bundle, optimizer, loader)
        total = min(math.ceil(len(loader) / cfg.grad_accum) * cfg.epochs, cfg.max_steps or math.inf)
        warmup = math.ceil(cfg.warmup_ratio * total)
        # prepared after the loader so that `total` counts per-process steps; a prepared scheduler
        # is stepped once per process at every optimizer step, hence the factor
        scheduler = get_linear_schedule_with_warmup(optimizer.optimizer, warmup * n_proc, total * n_proc)
        scheduler = accelerator.prepare(scheduler)
        valid_loader = accelerator.prepare(loader_of(valid_examples, None)) if valid_examples else None

        state = dict(epoch=0, step=0, losses=[], valid_losses=[], tokens=0, seconds=0.0)
        latest = latest_checkpoint(ckpt_root) if resume else None
        if latest is not None:
            state = json.loads((latest / STATE_FILE).read_text())
            if state.pop("config", None) != _config_json(cfg):
                logger.warning("resuming %s with a different config than it was written with", latest)
            load_weights(accelerator.unwrap_model(bundle), latest)
            for obj, name in zip((optimizer, scheduler), OPT_FILES, strict=True):
                obj.load_state_dict(torch.load(latest / name, map_location="cpu", weights_only=True))
            logger.info("resuming from %s (step %d)", latest, state["step"])

        bar = tqdm(total=total, initial=state["step"], unit="step", disable=not (progress and main))
        ema = None
        while state["epoch"] < cfg.epochs and state["step"] < total:
            set_seed(cfg.seed + 1000 * (state["epoch"] + 1), device_specific=True)  # dropout
            # the prepared loader re-sets its sampler's epoch from its own pass counter at every
            # __iter__, and that counter restarts at 0 after a resume: set the counter itself
            loader.set_epoch(state["epoch"])
            bundle.train()
            t0, tokens, pending = time.perf_counter(), 0, []
            for batch in loader:
                with accelerator.accumulate(bundle):
                    loss = forward_backward(accelerator, bundle, batch, examples, group=cfg.group_by_length)
                    if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                tokens += int(batch["attention_mask"].sum())
                pending.append(loss.detach())
                if accelerator.sync_gradients:
                    step_loss = accelerator.reduce(torch.stack(pending).mean(), "mean").item()
                    pending, state["step"] = [], state["step"] + 1
                    state["losses"].append(step_loss)
                    ema = step_loss if ema is None else 0.9 * ema + 0.1 * step_loss
                    rate = tokens * n_proc / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(loss=f"{ema:.4f}", tok_s=f"{rate:.0f}", refresh=False)
                    bar.update(1)
                    fault_point("lora:step")  # optimizer stepped, the epoch's checkpoint not yet written
                    if state["step"] >= total:
                        break
            state["seconds"] += time.perf_counter() - t0
            state["tokens"] += int(accelerator.reduce(torch.tensor(tokens, device=accelerator.device), "sum"))
            state["epoch"] += 1
            if valid_loader is not None:
                state["valid_losses"].append(_validate(accelerator, bundle, valid_loader, valid_examples))
            valid = f", valid loss {state['valid_losses'][-1]:.4f}" if state["valid_losses"] else ""
            if main:
                logger.info("epoch %d: step %d, loss %.4f%s", state["epoch"], state["step"], ema, valid)
            save_checkpoint(
                accelerator, ckpt_root, bundle, (optimizer, scheduler), {**state, "config": asdict(cfg)}
            )
        bar.close()

        report = TrainReport(
            steps=state["step"],
            epochs=state["epoch"],
            examples=len(examples),
            tokens=state["tokens"],
            seconds=state["seconds"],
            tokens_per_second=state["tokens"] / state["seconds"] if state["seconds"] > 0 else 0.0,
            final_loss=state["losses"][-1] if state["losses"] else math.nan,
            losses=list(state["losses"]),
            resumed_from=int(latest.name.split("-")[1]) if latest is not None else None,
            adapter_dir=out_dir / "adapter",
            valid_losses=list(state["valid_losses"]),
        )
        accelerator.wait_for_everyone()
        if main:
            shutil.rmtree(report.adapter_dir, ignore_errors=True)  # a stale one (no done.json)
            with atomic_dir(report.adapter_dir) as tmp:
                save_weights(accelerator.unwrap_model(bundle), tmp)
            # written last and atomically: its presence says the adapter is complete
            atomic_write_text(done_file, json.dumps({"report": report.to_json(), "config": asdict(cfg)}))
            logger.info("done: %d steps, %.0f tokens/s", report.steps, report.tokens_per_second)
        accelerator.wait_for_everyone()
        return report
    finally:
        accelerator.free_memory()
        detach_lora(peft_model, base, grads, was_training, was_ckpt)


@torch.no_grad()
def _validate(accelerator: Any, bundle: nn.Module, loader: DataLoader, examples: Sequence) -> float:
    """Mean answer-token loss on the validation set (exact under DDP: padded duplicates are dropped)."""
    bundle.eval()
    sums, counts = torch.zeros((), device=accelerator.device), torch.zeros((), device=accelerator.device)
    for batch in loader:
        nll, count = accelerator.gather_for_metrics(_batch_nll(bundle, batch, examples))
        sums, counts = sums + nll.sum(), counts + count.sum()
    bundle.train()
    return float(sums / counts.clamp(min=1))
