"""The ``paper`` suite on one GPU with no network: pack the assets here, run them there.

Two steps (``tests/benchmarks/gpu_paper.sh`` wraps the second)::

    # on a machine with the recxbench cache (SmolLM2 GGUF, ML-100k) and the two wheels:
    python tests/benchmarks/gpu_paper.py pack --dest gpu_assets \\
        --wheel gguf-0.19.0-py3-none-any.whl --wheel rapidfuzz-3.14.6-cp312-...whl
    # on the GPU machine (torch, transformers, peft, accelerate; no network, no pip index):
    python tests/benchmarks/gpu_paper.py run --assets gpu_assets --out "$OUT"

``pack`` writes the SmolLM2 GGUF in parts under ``--part-mb`` MiB (default 60: each under the
64 MiB a transfer carries), the ML-100k files, the wheels and ``MANIFEST.json`` (sha256 of every
file and of the whole GGUF). ``run`` checks every file against the manifest, reassembles and
verifies the GGUF, installs the wheels from the local files only (``pip install --no-index
--no-deps --target``), builds a private ``RECXBENCH_HOME`` from the assets, runs
``recxbench run SUITE`` with the overrides of :data:`GPU_SETS` (the ``paper`` sizes cut so that the
run fits well inside 10 minutes on one H100/H200; see docs/TRAINING.md) and writes to ``--out``:

* ``gpu_paper.json`` - wall time (total and the run's), device, library versions, the overrides,
  training steps / tokens / tokens-per-second of every trained explainer;
* ``board.md`` - the run's markdown board; ``results.json`` - the run's results; ``run.log``.

``--assets`` may name several directories (the parts of the GGUF can come in separate transfers);
``--set`` adds overrides after :data:`GPU_SETS`, ``--no-gpu-sets`` leaves them out (the tests run
the tiny suite on the CPU that way).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "MANIFEST.json"
ML100K = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")

#: ``paper`` cut to fit one GPU in well under 10 minutes: 3 training contexts per align-train user
#: (the paper: every position; the suite: 10), 150 test users, and for each aligned explainer one
#: epoch over at most 4,000 examples (the suite: 3 epochs over all), batch 16 x 4, max_length 256.
#: Estimated from the CPU rates (docs/TRAINING.md), not yet measured on a GPU.
_LLM = "max_train_examples: 4000, aux_item_examples: 400, batch_size: 64"
_LORA = "lora: {epochs: 1, lr: 0.0005, batch_size: 16, grad_accum: 4, max_length: 256}"
GPU_SETS = (
    "users.train_contexts_per_user=3",
    "users.max_test=150",
    "explainers=[random, popularity, item-prior, target-oracle, surrogate-tree,"
    " {name: zero-shot-llm, params: {batch_size: 64}}, {name: few-shot-llm, params: {batch_size: 64}},"
    f" {{name: recexplainer-b, params: {{{_LLM}, {_LORA}}}}},"
    f" {{name: recexplainer-i, params: {{{_LLM}, item_title_examples: 400, {_LORA}}}}},"
    f" {{name: recexplainer-h, params: {{{_LLM}, item_title_examples: 400, {_LORA}}}}},"
    f" {{name: recexplainer-i, label: recexplainer-i-user-shuffle,"
    f" params: {{{_LLM}, item_title_examples: 400, ablation: user_shuffle, {_LORA}}}}}]",
)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# pack
# --------------------------------------------------------------------------------------------------


def pack(dest: Path, *, home: Path, wheels: list[Path], part_mb: float, gguf: Path | None = None) -> dict:
    """Write the assets and their manifest to ``dest``; returns the manifest."""
    gguf = gguf or home / "models" / "smollm2-135m" / GGUF_NAME
    dest.mkdir(parents=True, exist_ok=True)
    part_bytes = max(1, int(part_mb * (1 << 20)))
    parts = []
    with gguf.open("rb") as f:
        for k, block in enumerate(iter(lambda: f.read(part_bytes), b"")):
            name = f"{GGUF_NAME}.part-{k:02d}"
            (dest / name).write_bytes(block)
            parts.append(name)
    files = {name: sha256(dest / name) for name in parts}
    for name in ML100K:
        shutil.copyfile(home / "datasets" / "ml-100k" / name, dest / name)
        files[name] = sha256(dest / name)
    markers = {}  # provenance of the cached copies, carried so that the run's manifest keeps it
    for kind, src in (
        ("model", gguf.parent / "SOURCE.json"),
        ("dataset", home / "datasets" / "ml-100k" / "SOURCE.json"),
    ):
        if src.is_file():
            markers[kind] = f"{kind}.SOURCE.json"
            shutil.copyfile(src, dest / markers[kind])
            files[markers[kind]] = sha256(dest / markers[kind])
    for wheel in wheels:
        shutil.copyfile(wheel, dest / wheel.name)
        files[wheel.name] = sha256(dest / wheel.name)
    manifest = {
        "gguf": {"name": GGUF_NAME, "sha256": sha256(gguf), "parts": parts},
        "wheels": [w.name for w in wheels],
        "markers": markers,
        "files": files,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# --------------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------------


class AssetError(RuntimeError):
    """A missing or corrupt asset: what, and how to fix it."""


def _find(dirs: list[Path], name: str) -> Path:
    for d in dirs:
        if (d / name).is_file():
            return d / name
    raise AssetError(f"{name}: not in {', '.join(map(str, dirs))}; copy it from the packed assets")


def unpack(dirs: list[Path], home: Path) -> dict:
    """Verify every asset, then lay out ``home`` as recxbench's cache (GGUF, ML-100k); returns the manifest."""
    manifest = json.loads(_find(dirs, MANIFEST).read_text())
    for name, digest in manifest["files"].items():
        if sha256(_find(dirs, name)) != digest:
            raise AssetError(f"{name}: sha256 differs from {MANIFEST} (a broken copy); copy it again")
    gguf = manifest["gguf"]
    model_dir = home / "models" / "smollm2-135m"
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / (gguf["name"] + ".tmp")
    with tmp.open("wb") as out:
        for part in gguf["parts"]:
            with _find(dirs, part).open("rb") as f:
                shutil.copyfileobj(f, out)
    if sha256(tmp) != gguf["sha256"]:
        tmp.unlink()
        raise AssetError(f"{gguf['name']}: the reassembled parts do not match {MANIFEST}")
    tmp.replace(model_dir / gguf["name"])
    data_dir = home / "datasets" / "ml-100k"
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in ML100K:
        shutil.copyfile(_find(dirs, name), data_dir / name)
    for kind, where in (("model", model_dir), ("dataset", data_dir)):
        if kind in manifest.get("markers", {}):  # else recxbench logs the files as placed by hand
            shutil.copyfile(_find(dirs, manifest["markers"][kind]), where / "SOURCE.json")
    return manifest


def install_wheels(wheels: list[Path], target: Path) -> None:
    """pip from the local files only: no index, no dependencies resolved over a network."""
    if not wheels:
        return
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    cmd += ["--disable-pip-version-check", "--target", str(target), *map(str, wheels)]
    subprocess.run(cmd, check=True)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "accelerate", "gguf", "rapidfuzz"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "missing"
    return out


def _device() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception as exc:  # noqa: BLE001 - the record says why, the run goes on
        return f"unknown ({type(exc).__name__})"


def training_figures(results: dict[str, Any]) -> dict[str, Any]:
    """``{label: training block}`` of every explainer that trained (steps, tokens, seconds, tokens/s)."""
    return {label: e["training"] for label, e in results["explainers"].items() if e.get("training")}


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = args.work.resolve()
    home, site = work / "home", work / "site"
    dirs = [Path(d) for d in args.assets]
    manifest = unpack(dirs, home)
    install_wheels([_find(dirs, w) for w in manifest["wheels"]], site)
    env = {
        **os.environ,
        "RECXBENCH_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(site), str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    sets = [*(() if args.no_gpu_sets else GPU_SETS), *(args.set or [])]
    run_dir = work / "run"
    cmd = [
        sys.executable,
        "-m",
        "bench.cli",
        "run",
        args.suite,
        "--out",
        str(run_dir),
        "--device",
        args.device,
    ]
    for s in sets:
        cmd += ["--set", s]
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    with (out / "run.log").open("w") as log:
        proc = subprocess.run(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    run_s = time.perf_counter() - t1
    record: dict[str, Any] = {
        "suite": args.suite,
        "returncode": proc.returncode,
        "device": _device(),
        "versions": _versions() | _site_versions(site),
        "sets": sets,
        "setup_seconds": round(setup_s, 1),
        "run_seconds": round(run_s, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    results_file = run_dir / "results.json"
    if proc.returncode == 0 and results_file.exists():
        results = json.loads(results_file.read_text())
        record["training"] = training_figures(results)
        shutil.copyfile(results_file, out / "results.json")
        from bench.report.writers import markdown

        (out / "board.md").write_text(markdown(results) + "\n")
    (out / "gpu_paper.json").write_text(json.dumps(record, indent=2) + "\n")
    sys.stdout.write(json.dumps({k: v for k, v in record.items() if k != "sets"}, indent=2) + "\n")
    return proc.returncode


def _site_versions(site: Path) -> dict[str, str]:
    """Versions of the packages installed from the carried wheels (``site`` is not on this sys.path)."""
    found = {}
    for dist in site.glob("*.dist-info"):
        name, _, version = dist.name[: -len(".dist-info")].partition("-")
        found[name.lower().replace("_", "-")] = version
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="write the assets a GPU machine without network needs")
    p.add_argument("--dest", type=Path, required=True)
    p.add_argument("--home", type=Path, default=None, help="recxbench cache (default $RECXBENCH_HOME)")
    p.add_argument("--wheel", type=Path, action="append", default=[], help="a wheel to carry (repeat)")
    p.add_argument("--part-mb", type=float, default=60.0, help="MiB per GGUF part")
    p.add_argument("--gguf", type=Path, default=None, help="the GGUF (default: the cache's SmolLM2)")
    r = sub.add_parser("run", help="verify, install, run the suite, record")
    r.add_argument("--assets", nargs="+", required=True, help="directories holding the packed assets")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--work", type=Path, default=Path("/tmp/recx-gpu"), help="home, site and run directory")
    r.add_argument("--suite", default="paper")
    r.add_argument("--device", default="auto")
    r.add_argument("--set", action="append", metavar="KEY=VALUE")
    r.add_argument("--no-gpu-sets", action="store_true", help="leave out GPU_SETS")
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        from bench.wheels import cache_root

        sys.path.insert(0, str(REPO))
        pack(
            args.dest, home=args.home or cache_root(), wheels=args.wheel, part_mb=args.part_mb, gguf=args.gguf
        )
        return 0
    try:
        return run(args)
    except AssetError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
