"""The GPU script (tests/benchmarks/gpu_paper.sh + gpu_paper.py), exercised on the CPU at tiny sizes.

Packing splits the GGUF into parts and lists every file's sha256; the run side finds parts spread
over several directories, refuses a corrupt one, reassembles the GGUF bit for bit, installs wheels
from local files only, and (slow test) runs a suite end to end through the shell script: the tiny
data set and the tiny-random backbone with one LoRA-trained explainer, on the CPU, recording wall
time, training tokens/s and the board in ``$OUT``. The ``paper`` overrides are checked to load.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

BENCH = Path(__file__).parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import gpu_paper  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel (``recx_probe`` 0.1) for the local-install path."""
    path = directory / "recx_probe-0.1-py3-none-any.whl"
    meta = "recx_probe-0.1.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("recx_probe/__init__.py", "VALUE = 42\n")
        z.writestr(f"{meta}/METADATA", "Metadata-Version: 2.1\nName: recx_probe\nVersion: 0.1\n")
        z.writestr(
            f"{meta}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        z.writestr(f"{meta}/RECORD", "")
    return path


@pytest.fixture
def fake_home(tmp_path: Path) -> Path:
    """A recxbench cache with a made-up 5,000-byte 'GGUF' and ML-100k files."""
    home = tmp_path / "cache"
    model = home / "models" / "smollm2-135m"
    model.mkdir(parents=True)
    (model / gpu_paper.GGUF_NAME).write_bytes(bytes(range(256)) * 19 + b"tail" * 34)
    (model / "SOURCE.json").write_text('{"model": "smollm2-135m"}')
    data = home / "datasets" / "ml-100k"
    data.mkdir(parents=True)
    for name in gpu_paper.ML100K:
        (data / name).write_text(f"{name}\n1\t2\n")
    return home


def _pack(fake_home: Path, dest: Path) -> dict:
    return gpu_paper.pack(dest, home=fake_home, wheels=[_wheel(fake_home)], part_mb=1500 / (1 << 20))


def test_pack_splits_and_run_side_reassembles_from_several_dirs(fake_home: Path, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    manifest = _pack(fake_home, assets)
    parts = manifest["gguf"]["parts"]
    assert len(parts) == 4 and all((assets / p).stat().st_size <= 1500 for p in parts)
    second = tmp_path / "second-transfer"  # the last two parts came in another transfer
    second.mkdir()
    for p in parts[2:]:
        shutil.move(assets / p, second / p)
    home = tmp_path / "home"
    gpu_paper.unpack([assets, second], home)
    gguf = fake_home / "models" / "smollm2-135m" / gpu_paper.GGUF_NAME
    got = home / "models" / "smollm2-135m" / gpu_paper.GGUF_NAME
    assert hashlib.sha256(got.read_bytes()).hexdigest() == hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert (home / "models" / "smollm2-135m" / "SOURCE.json").read_text() == '{"model": "smollm2-135m"}'
    assert all((home / "datasets" / "ml-100k" / n).is_file() for n in gpu_paper.ML100K)
    site = tmp_path / "site"
    gpu_paper.install_wheels([assets / w for w in manifest["wheels"]], site)
    assert (site / "recx_probe" / "__init__.py").read_text() == "VALUE = 42\n"


def test_a_corrupt_or_missing_part_is_refused(fake_home: Path, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    parts = _pack(fake_home, assets)["gguf"]["parts"]
    blob = bytearray((assets / parts[1]).read_bytes())
    blob[7] ^= 1
    (assets / parts[1]).write_bytes(bytes(blob))
    with pytest.raises(gpu_paper.AssetError, match="sha256"):
        gpu_paper.unpack([assets], tmp_path / "home")
    (assets / parts[1]).unlink()
    with pytest.raises(gpu_paper.AssetError, match="not in"):
        gpu_paper.unpack([assets], tmp_path / "home")
    assert not (tmp_path / "home" / "models" / "smollm2-135m" / gpu_paper.GGUF_NAME).exists()


def test_the_gpu_overrides_load_as_a_paper_suite() -> None:
    from bench.config import load_suite

    suite = load_suite("paper", overrides=list(gpu_paper.GPU_SETS))
    assert suite.users.train_contexts_per_user == 3 and suite.users.max_test == 150
    trained = [e for e in suite.explainers if e.name.startswith("recexplainer")]
    assert trained and all(e.params["lora"]["epochs"] == 1 for e in trained)


@pytest.mark.slow
def test_the_script_runs_a_tiny_suite_on_cpu_and_records_the_figures(fake_home: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    assets = tmp_path / "assets"
    _pack(fake_home, assets)
    out = tmp_path / "out"
    sets = "\n".join(
        [
            "backbone=tiny-random",
            "tasks=[interest_classification]",
            "task_params={}",
            "claims=[]",
            "stats.resamples=200",
            "target.params.epochs=2",
            "explainers=[random, {name: recexplainer-b, params: {max_train_examples: 8, aux_item_examples: 2,"
            " max_new_tokens: 8, retrieval_beams: 1, lora: {batch_size: 4, max_length: 96}}}]",
        ]
    )
    env = {
        **os.environ,
        "OUT": str(out),
        "PYTHON": sys.executable,
        "GPU_PAPER_WORK": str(tmp_path / "work"),
        "GPU_PAPER_ARGS": "--no-gpu-sets --suite tiny --device cpu",
        "GPU_PAPER_SETS": sets,
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        ["bash", str(BENCH / "gpu_paper.sh"), str(assets)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = (out / "run.log").read_text() if (out / "run.log").exists() else ""
    assert proc.returncode == 0, proc.stderr[-3000:] + log[-3000:]
    record = json.loads((out / "gpu_paper.json").read_text())
    assert record["returncode"] == 0 and record["device"] == "cpu" and record["wall_seconds"] > 0
    assert record["versions"]["recx-probe"] == "0.1"  # installed from the carried wheel
    training = record["training"]["recexplainer-b"]
    assert training["steps"] >= 1 and training["tokens_per_second"] > 0
    board = (out / "board.md").read_text()
    assert "recexplainer-b" in board and "interest" in board
    assert json.loads((out / "results.json").read_text())["suite"] == "tiny"


_FAKE_RUN = r"""
import json, sys, time
sets = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--set"]
labels = [e if isinstance(e, str) else e.get("label") or e["name"]
          for e in json.loads([s for s in sets if s.startswith("explainers=")][-1].partition("=")[2])]
for lab in labels:
    print(f"stage explainer:{lab} ...", flush=True)
    if lab == "boom":
        sys.exit("RuntimeError: boom")
    if lab == "slow":
        time.sleep(120)
    print(f"stage explainer:{lab} done in 0.1 s", flush=True)
"""


def test_supervise_drops_a_failing_explainer_and_stops_at_the_deadline(tmp_path: Path) -> None:
    fake = tmp_path / "fake_run.py"
    fake.write_text(_FAKE_RUN)
    explainers = ["a", {"name": "x", "label": "boom"}, "b", "slow", "c"]
    sets = ["users.max_test=3", "explainers=" + json.dumps(explainers)]
    log = tmp_path / "run.log"
    now = gpu_paper.time.monotonic()
    got = gpu_paper.supervise(
        [sys.executable, str(fake)], sets, dict(os.environ), log, deadline=now + 8.0, reserve=4.0
    )
    assert got["left_out"]["boom"].startswith("failed: RuntimeError: boom")
    assert got["left_out"]["slow"] == "stopped at the deadline"
    assert got["left_out"]["c"] == "not reached before the deadline"
    assert [a["timed_out"] for a in got["attempts"]] == [False, True, False]
    assert got["attempts"][-1]["returncode"] == 0
    assert got["sets"][-1] == "explainers=" + json.dumps(["a", "b"])  # the board: finished ones only


def test_stage_seconds_keep_the_building_attempt() -> None:
    text = "stage target done in 30.5 s\nstage explainer:a done in 12.0 s\nstage target done in 0.2 s\n"
    assert gpu_paper.stage_seconds(text) == {"target": 30.5, "explainer:a": 12.0}


@pytest.mark.slow
def test_a_real_run_survives_an_explainer_that_crashes(fake_home: Path, tmp_path: Path) -> None:
    """The tiny suite with the second explainer's fit killed: the board comes back without it."""
    assets = tmp_path / "assets"
    _pack(fake_home, assets)
    out = tmp_path / "out"
    env = {**os.environ, "RECXBENCH_FAULT": "explain:fit#2", "OMP_NUM_THREADS": "1"}
    sets = [
        "claims=[]",
        "stats.resamples=200",
        "target.params.epochs=2",
        "tasks=[interest_classification]",
        "task_params={}",
        "explainers=[random, surrogate-tree, popularity]",
    ]
    argv = ["run", "--assets", str(assets), "--out", str(out), "--work", str(tmp_path / "work")]
    argv += ["--no-gpu-sets", "--suite", "tiny", "--device", "cpu"]
    for s in sets:
        argv += ["--set", s]
    old = dict(os.environ)
    os.environ.update(env)
    try:
        rc = gpu_paper.main(argv)
    finally:
        os.environ.clear()
        os.environ.update(old)
    record = json.loads((out / "gpu_paper.json").read_text())
    assert rc == 0, record["attempts"][-1]["tail"]
    assert list(record["left_out"]) == ["surrogate-tree"]
    assert len(record["attempts"]) == 2
    results = json.loads((out / "results.json").read_text())
    assert set(results["explainers"]) == {"random", "popularity"}
    assert (out / "report.tar.gz").is_file()
