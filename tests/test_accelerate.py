"""LoRA training in two processes through ``accelerate launch`` (gloo on the CPU), with a crash and a resume.

The two-process run is started as a multi-GPU job is (``accelerate launch --multi_gpu
--num_processes 2``): on a machine without CUDA, ``train_lora`` asks for a CPU accelerator and
torch.distributed falls back to gloo. (``accelerate launch --cpu --num_processes 2`` starts *one*
process in accelerate 1.x unless an MPI host file is given, so it would not test anything.)

The job is killed right after its epoch-1 checkpoint and relaunched; the relaunch must resume from
that checkpoint and end with the adapter that one process trains on the same global batch
(2 x 4 examples per step, in the same order; no dropout, so no per-process random masks).
Tolerance: every adapter tensor within ``atol = 1e-5 + 1e-4 * max|w|`` of the single-process one and
every step loss within 1e-4 relative: the two runs sum the same gradients in another order (per
process, then across processes; rows grouped by length per process), so they agree to float32
rounding amplified by 6 AdamW steps — a batch-order or normalisation bug moves them by >= 1e-2.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from accelerate_lora_driver import config, examples  # noqa: E402
from llm_fixtures import TITLES, tiny_backbone  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")

DRIVER = Path(__file__).parent / "accelerate_lora_driver.py"
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(home: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    env = {
        **os.environ,
        "RECXBENCH_HOME": str(home),
        "OMP_NUM_THREADS": "1",
        "DRIVER_DUMP_S": "400",  # a deadlock fails the test with the stacks instead of hanging it
        "CUDA_VISIBLE_DEVICES": "",  # gloo on the CPU even where a GPU is present
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [*cmd, str(DRIVER), str(out), "--batch", "4", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_two_processes_resume_and_match_one_process(tmp_path: Path) -> None:
    from bench.llm.lora import train_lora

    home = tmp_path / "home"
    single = tiny_backbone(home)  # also writes the checkpoint the two processes load
    out = tmp_path / "two"

    crashed = _launch(home, out, "--crash-after-epoch", "1")
    assert crashed.returncode != 0, crashed.stdout[-2000:] + crashed.stderr[-4000:]
    assert (out / "checkpoints" / "epoch-1" / "optimizer.pt").exists(), crashed.stderr[-4000:]
    assert not (out / "done.json").exists() and not (out / "adapter").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # nothing half-written left behind

    resumed = _launch(home, out)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-4000:]
    report = json.loads((out / "done.json").read_text())["report"]
    assert report["resumed_from"] == 1 and report["steps"] == 6 and report["epochs"] == 2

    ref = train_lora(single, examples(), config(8), out_dir=tmp_path / "one", progress=False)
    assert ref.steps == 6
    assert report["losses"] == pytest.approx(ref.losses, rel=1e-4)
    two = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    one = load_file(str(ref.adapter_dir / "adapter_model.safetensors"))
    assert two.keys() == one.keys() and len(one) > 0
    moved = 0
    for key, w in one.items():
        torch.testing.assert_close(two[key], w, rtol=0, atol=1e-5 + 1e-4 * float(w.abs().max()))
        moved += int(float(w.abs().max()) > 0)
    assert moved == len(one)  # every tensor trained (lora_B starts at zero), so the match means something


def test_two_process_tolerance_would_catch_another_global_batch(tmp_path: Path) -> None:
    """The tolerance is far tighter than the gap to a run with another batch (the failure it guards)."""
    from bench.llm.lora import train_lora

    bb = tiny_backbone(tmp_path / "home", TITLES)
    a = train_lora(bb, examples(), config(8, epochs=1), out_dir=tmp_path / "a", progress=False)
    b = train_lora(bb, examples(), config(4, epochs=1, max_steps=3), out_dir=tmp_path / "b", progress=False)
    wa = load_file(str(a.adapter_dir / "adapter_model.safetensors"))
    wb = load_file(str(b.adapter_dir / "adapter_model.safetensors"))
    gap = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert gap > 100 * (1e-5 + 1e-4 * max(float(w.abs().max()) for w in wa.values()))
