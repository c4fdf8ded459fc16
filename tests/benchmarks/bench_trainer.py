"""LoRA training throughput: ``bench.llm.lora.train_lora`` against HF ``Trainer`` + peft.

Run from the repository root (SmolLM2-135M must be in the recxbench cache)::

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_trainer.py [--steps 12] [--rounds 2] [--threads 1]

Both loops train the same LoRA (r 8, alpha 16, dropout 0.05 on q/k/v/o) on SmolLM2-135M in fp32 on
the CPU, from the same initial adapter (same seed), over the same examples in the same order
(``Trainer`` gets our sampler), with the same batch size, learning rate, linear warmup schedule,
gradient clipping and ``max_length``. The examples are quick-like: ML-100k users' 5-item histories
rendered with the alignment prompts (interest classification, Yes/No; next-item retrieval, a title)
plus item-knowledge examples (title -> genres), chat-formatted for SmolLM2.

Measured per run: the wall time of the training loop (Trainer: ``on_train_begin`` to ``on_train_end``
through a callback; ours: ``TrainReport.seconds``), the non-padding tokens it processed (the same for
both) and the per-step losses. The runs are interleaved (ours, Trainer, ours, Trainer, ...) so that
a shared machine's load hits both alike; the load average is printed with every figure.

FLOP utilisation: a trained token costs ~4 x N_params FLOPs with frozen base weights (forward 2N,
backward 2N for the input gradients only; LoRA and attention add a little), i.e. ~0.54 GFLOP for
SmolLM2-135M; ``--peak`` (GFLOP/s, default 150 = 2 AVX2-FMA cores at ~2.3 GHz with 32 fp32 FLOP/cycle)
turns that into a token/s ceiling. With ``--threads 1`` the ceiling is half of that.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import jinja2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.llm.lora import LoraTrainConfig, TrainExample, train_lora  # noqa: E402
from bench.llm.train_data import _encode_all, _EpochShuffle  # noqa: E402

log = logging.getLogger("bench_trainer")


# --------------------------------------------------------------------------------------------------
# examples
# --------------------------------------------------------------------------------------------------


def quick_examples(backbone: Any, n: int, *, seed: int = 0, history_len: int = 5) -> list[TrainExample]:
    """``n`` quick-like training examples from ML-100k (classification, retrieval, item knowledge)."""
    from bench.data.loaders import load_dataset
    from bench.llm.chat import format_prompt
    from bench.wheels import cache_root as home

    ds = load_dataset(home() / "datasets" / "ml-100k", name="ml-100k")
    prompts = yaml.safe_load((REPO / "tasks" / "prompts" / "alignment.yaml").read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    render = {k: [env.from_string(t) for t in v] for k, v in prompts.items() if isinstance(v, list)}
    rng = np.random.default_rng(seed)
    order = np.lexsort((ds.timestamps, ds.users))
    users, items = ds.users[order], ds.items[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    seqs = [items[a:b] for a, b in zip(starts, [*starts[1:], len(items)], strict=True)]
    seqs = [s for s in seqs if len(s) > history_len + 1]
    out: list[TrainExample] = []
    while len(out) < n:
        kind = rng.choice(["classification", "classification", "retrieval", "item"])
        seq = seqs[int(rng.integers(len(seqs)))]
        cut = int(rng.integers(history_len, len(seq)))
        history = [ds.titles[int(i)] for i in seq[cut - history_len : cut]]
        if kind == "classification":
            liked = bool(rng.random() < 0.5)
            item = int(seq[cut]) if liked else int(rng.integers(ds.n_items))
            t = render["interest_classification"][int(rng.integers(3))]
            q, a = t.render(history=history, item=ds.titles[item]), "Yes" if liked else "No"
        elif kind == "retrieval":
            t = render["next_item_retrieval"][int(rng.integers(len(render["next_item_retrieval"])))]
            q, a = t.render(history=history, k=1), ds.titles[int(seq[cut])]
        else:
            item = int(rng.integers(ds.n_items))
            q = render["item_to_genres"][int(rng.integers(2))].render(item=ds.titles[item])
            a = ", ".join(ds.genres[item])
        out.append(TrainExample(format_prompt(backbone, q), a))
    return out


# --------------------------------------------------------------------------------------------------
# the two loops
# --------------------------------------------------------------------------------------------------


def run_ours(backbone: Any, examples: list[TrainExample], cfg: LoraTrainConfig) -> dict[str, Any]:
    """``train_lora`` with length-grouped micro-batches (``group_by_length``)."""
    return run_plain(backbone, examples, dataclasses.replace(cfg, group_by_length=True))


def run_plain(backbone: Any, examples: list[TrainExample], cfg: LoraTrainConfig) -> dict[str, Any]:
    """``train_lora`` with each micro-batch as one padded batch (the default)."""
    with tempfile.TemporaryDirectory() as tmp:
        rep = train_lora(backbone, examples, cfg, out_dir=Path(tmp), progress=False, resume=False)
    return {"seconds": rep.seconds, "tokens": rep.tokens, "losses": rep.losses}


def run_trainer(backbone: Any, examples: list[TrainExample], cfg: LoraTrainConfig) -> dict[str, Any]:
    """HF Trainer + peft, configured like ``cfg``; our sampler so that the batches are the same."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

    tok = backbone.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    items = _encode_all(tok, examples, cfg.max_length)
    rows = [
        {"input_ids": enc.input_ids, "labels": [-100] * enc.n_prompt + enc.input_ids[enc.n_prompt :]}
        for enc, _ in items
    ]

    def collate(batch: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in batch)
        ids = torch.full((len(batch), width), pad_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, r in enumerate(batch):
            n = len(r["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = (
                torch.tensor(r["input_ids"]),
                torch.tensor(r["labels"]),
                1,
            )
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    class Timer(TrainerCallback):
        def on_train_begin(self, *a: Any, **k: Any) -> None:
            self.t0 = time.perf_counter()

        def on_train_end(self, *a: Any, **k: Any) -> None:
            self.seconds = time.perf_counter() - self.t0

    class SameOrder(Trainer):
        def _get_train_sampler(self, *a: Any, **k: Any) -> Any:
            return _EpochShuffle(len(rows), cfg.seed)

    base = backbone.model
    set_seed(cfg.seed)
    model = get_peft_model(
        base,
        LoraConfig(
            task_type="CAUSAL_LM",
            r=cfg.rank,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=list(cfg.target_modules),
        ),
    )
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.grad_accum,
            learning_rate=cfg.lr,
            weight_decay=cfg.weight_decay,
            warmup_steps=int(np.ceil(cfg.warmup_ratio * cfg.max_steps)),
            lr_scheduler_type="linear",
            max_grad_norm=cfg.max_grad_norm,
            max_steps=cfg.max_steps,
            num_train_epochs=cfg.epochs,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=cfg.seed,
            data_seed=cfg.seed,
            disable_tqdm=True,
            dataloader_num_workers=0,
            remove_unused_columns=False,
            optim="adamw_torch",
        )
        trainer = SameOrder(
            model=model, args=args, train_dataset=rows, data_collator=collate, callbacks=[timer]
        )
        try:
            trainer.train()
        finally:
            model.unload()
            for p in base.parameters():
                p.requires_grad_(False)
            base.eval()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    order = list(_EpochShuffle(len(rows), cfg.seed))[: cfg.max_steps * cfg.batch_size * cfg.grad_accum]
    tokens = sum(len(rows[i]["input_ids"]) for i in order)
    return {"seconds": timer.seconds, "tokens": tokens, "losses": losses}


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved (ours, Trainer) pairs")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--peak", type=float, default=150.0, help="GFLOP/s of the whole machine (2 cores)")
    ap.add_argument("--cores", type=int, default=2, help="cores the peak is for")
    ap.add_argument("--only", choices=["ours", "trainer", "plain"], default=None)
    ap.add_argument("--no-plain", action="store_true", help="skip train_lora without grouping")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    from bench.llm.backbone import load_backbone

    backbone = load_backbone("smollm2-135m", device="cpu")
    n_params = sum(p.numel() for p in backbone.model.parameters())
    examples = quick_examples(backbone, args.steps * args.batch)
    cfg = LoraTrainConfig(
        lr=args.lr, batch_size=args.batch, max_length=args.max_length, max_steps=args.steps, seed=0
    )
    flop_per_token = 4 * n_params
    ceiling = args.peak * 1e9 * min(args.threads, args.cores) / args.cores / flop_per_token
    runs: dict[str, list[dict]] = {"ours": [], "trainer": [], "plain": []}
    for _ in range(args.rounds):
        for name, fn in (("ours", run_ours), ("trainer", run_trainer), ("plain", run_plain)):
            if (args.only and name != args.only) or (name == "plain" and args.no_plain):
                continue
            load, cpu0 = os.getloadavg()[0], time.process_time()
            r = fn(backbone, examples, cfg)
            cpu = time.process_time() - cpu0  # setup included (small), but not other processes' time
            r.update(load=load, tokens_per_s=r["tokens"] / r["seconds"], cpu_tokens_per_s=r["tokens"] / cpu)
            runs[name].append(r)
            print(
                f"{name:8s} {r['tokens_per_s']:7.1f} tok/s ({r['cpu_tokens_per_s']:.1f} per CPU-s)  {r['seconds']:6.1f} s  {r['tokens']} tokens  "
                f"final loss {r['losses'][-1]:.4f}  load {load:.2f}",
                flush=True,
            )
    summary: dict[str, Any] = {
        "steps": args.steps,
        "batch": args.batch,
        "threads": args.threads,
        "max_length": args.max_length,
        "gflop_per_token": flop_per_token / 1e9,
        "ceiling_tokens_per_s": ceiling,
        "runs": runs,
    }
    for name, rs in runs.items():
        if rs:
            tps = statistics.median(r["tokens_per_s"] for r in rs)
            cps = statistics.median(r["cpu_tokens_per_s"] for r in rs)
            summary[name] = {"tokens_per_s": tps, "cpu_tokens_per_s": cps, "utilisation": cps / ceiling}
            print(
                f"{name}: median {tps:.1f} tok/s wall, {cps:.1f} per CPU-second = "
                f"{100 * cps / ceiling:.0f}% of the {ceiling:.0f} tok/s ceiling"
            )
    if runs["ours"] and runs["trainer"]:
        pairs = list(zip(runs["ours"], runs["trainer"], strict=False))
        ratios = [o["tokens_per_s"] / t["tokens_per_s"] for o, t in pairs]
        cpu_ratios = [o["cpu_tokens_per_s"] / t["cpu_tokens_per_s"] for o, t in pairs]
        diffs = [
            abs(o["losses"][-1] - t["losses"][-1])
            for o, t in zip(runs["ours"], runs["trainer"], strict=False)
        ]
        summary.update(ratios=ratios, cpu_ratios=cpu_ratios, final_loss_diffs=diffs)
        print(f"ratio per CPU-second: {', '.join(f'{x:.2f}' for x in cpu_ratios)}")
        print(f"ratio ours/Trainer per pair: {', '.join(f'{x:.2f}' for x in ratios)}")
        print(f"|final loss ours - Trainer| per pair: {', '.join(f'{x:.4f}' for x in diffs)}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
