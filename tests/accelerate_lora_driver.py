"""Entry point for ``accelerate launch``: LoRA training of the tiny-random backbone (tests/test_accelerate.py).

    accelerate launch --num_processes 2 --cpu tests/accelerate_lora_driver.py OUT_DIR [--crash-after-epoch K]

``RECXBENCH_HOME`` must already hold the tiny-random checkpoint (the test builds it first, so the
processes do not race to write it). The examples and the configuration are :func:`examples` and
:func:`config`, which the test also uses for its single-process reference; ``--batch`` is the
per-process batch size. ``--crash-after-epoch K`` stops every process right after the epoch-K
checkpoint is written, as a killed job would.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # llm_fixtures

from llm_fixtures import TITLES  # noqa: E402


class Crash(RuntimeError):
    """The simulated interruption."""


def examples() -> list:
    """24 title -> genre-like pairs of uneven prompt lengths (so batches are split by length too)."""
    from bench.llm.lora import TrainExample

    words = ["drama", "comedy", "war", "horror", "romance", "thriller"]
    return [
        TrainExample(f"{'Tell me about ' * (i % 4)}{TITLES[i]} is a", f" {words[i % len(words)]}")
        for i in range(24)
    ]


def config(batch_size: int, **overrides: object):
    """The run's LoRA config: no dropout, so that processes draw no different masks; length groups on."""
    from bench.llm.lora import LoraTrainConfig

    base = dict(rank=4, alpha=8, dropout=0.0, lr=1e-2, epochs=2, batch_size=batch_size, max_length=64, seed=3)
    base["group_by_length"] = True  # the grouped path, with uneven group counts across processes
    return LoraTrainConfig(**{**base, **overrides})


def main(argv: list[str] | None = None) -> int:
    import torch

    import bench.llm.lora as lora
    from bench.llm.backbone import load_backbone

    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--batch", type=int, default=4, help="examples per process and step")
    ap.add_argument("--crash-after-epoch", type=int, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if os.environ.get("DRIVER_DUMP_S"):  # a hung collective prints every thread's stack and exits
        faulthandler.dump_traceback_later(int(os.environ["DRIVER_DUMP_S"]), exit=True)
    if args.crash_after_epoch is not None:
        save = lora.save_checkpoint

        def save_then_crash(accelerator, root, bundle, stateful, state) -> None:  # type: ignore[no-untyped-def]
            save(accelerator, root, bundle, stateful, state)
            if state["epoch"] == args.crash_after_epoch:
                raise Crash(f"simulated crash after epoch {state['epoch']}")

        lora.save_checkpoint = save_then_crash
    backbone = load_backbone("tiny-random", titles=TITLES, seed=0, device="cpu")
    try:
        lora.train_lora(backbone, examples(), config(args.batch), out_dir=args.out_dir, progress=False)
    except Crash:
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
