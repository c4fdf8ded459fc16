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
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "MANIFEST.json"
ML100K = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")

#: ``paper`` cut for one GPU: 3 training contexts per align-train user (the paper: every position;
#: the suite: 10), 150 test users, and for each aligned explainer one epoch over at most 4,000
#: examples (the suite: 3 epochs over all), batch 64, max_length 256. Measured on an H200 with
#: micro-batches of 16 x 4 and checkpointing on (the CUDA default): LoRA at 2.5-4.3k tokens/s, the
#: cut ~590 s (docs/PERFORMANCE.md); micro-batches of 64 without checkpointing are not measured yet.
_LLM = {"max_train_examples": 4000, "aux_item_examples": 400, "batch_size": 64}
_LORA = {
    "lora": {
        "epochs": 1,
        "lr": 0.0005,
        "batch_size": 64,
        "grad_accum": 1,
        "max_length": 256,
        "gradient_checkpointing": "off",  # 135M parameters: no memory to save, only recomputation
    }
}
GPU_BASE_SETS = ("users.train_contexts_per_user=3", "users.max_test=150")
#: in order of importance: when the deadline comes, the explainers not yet finished are left out.
#: No LANE rows: its sentence encoder (all-MiniLM-L6-v2, 87 MiB) does not fit the transfers to a GPU
#: machine without network (64 MiB each; the SmolLM2 GGUF alone needs two).
GPU_EXPLAINERS: tuple[Any, ...] = (
    "random",
    "popularity",
    "item-prior",
    "target-oracle",
    "surrogate-tree",
    {"name": "zero-shot-llm", "params": {"batch_size": 64}},
    {"name": "recexplainer-i", "params": {**_LLM, "item_title_examples": 400, **_LORA}},
    {"name": "recexplainer-b", "params": {**_LLM, **_LORA}},
    {"name": "recexplainer-h", "params": {**_LLM, "item_title_examples": 400, **_LORA}},
    {
        "name": "recexplainer-i",
        "label": "recexplainer-i-user-shuffle",
        "params": {**_LLM, "item_title_examples": 400, "ablation": "user_shuffle", **_LORA},
    },
    {"name": "guided-embedding", "params": {"score_batch_size": 64}},  # the whole catalog (items: all)
    {"name": "guided-embedding-no-attributes", "params": {"score_batch_size": 64}},
    {"name": "few-shot-llm", "params": {"batch_size": 64}},
    {
        "name": "recexplainer-i",
        "label": "recexplainer-i-zero-emb",
        "params": {**_LLM, "item_title_examples": 400, "ablation": "zero", **_LORA},
    },
)
GPU_SETS = (*GPU_BASE_SETS, "explainers=" + json.dumps(list(GPU_EXPLAINERS)))


def label_of(spec: Any) -> str:
    """An explainer entry's board label (its ``label``, else its name)."""
    return spec if isinstance(spec, str) else str(spec.get("label") or spec["name"])


def claim_labels(claim: str) -> set[str]:
    """The two explainer labels of ``"A > B on task/metric"``."""
    left, _, rest = claim.partition(">")
    return {left.strip(), rest.split(" on ")[0].strip()}


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


_STARTED = re.compile(r"stage explainer:(\S+) \.\.\.")
_DONE = re.compile(r"stage explainer:(\S+) done in")


def explainer_stages(log_text: str) -> tuple[list[str], str | None]:
    """``(finished labels, the label started but not finished)`` from a run's ``-v`` log."""
    done = _DONE.findall(log_text)
    started = _STARTED.findall(log_text)
    open_ = [lab for lab in started if lab not in done]
    return done, (open_[-1] if open_ else None)


def _explainers_of(sets: list[str]) -> list[Any] | None:
    """The explainer list of the last ``explainers=`` override (``None`` without one)."""
    import yaml

    found = [s.partition("=")[2] for s in sets if s.startswith("explainers=")]
    return list(yaml.safe_load(found[-1])) if found else None


def _with_explainers(sets: list[str], explainers: list[Any]) -> list[str]:
    return [s for s in sets if not s.startswith("explainers=")] + ["explainers=" + json.dumps(explainers)]


def run_until(cmd: list[str], env: dict[str, str], log: Path, deadline: float) -> tuple[int, bool]:
    """Run ``cmd`` (its output appended to ``log``) until it exits or ``time.monotonic()`` passes
    ``deadline``; then its whole process group is stopped. Returns ``(returncode, timed_out)``."""
    with log.open("a") as fh:
        proc = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        while proc.poll() is None:
            if time.monotonic() > deadline:
                for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 30)):
                    try:
                        os.killpg(proc.pid, sig)
                        proc.wait(timeout=wait)
                        break
                    except subprocess.TimeoutExpired:
                        continue
                    except ProcessLookupError:
                        break
                return proc.wait(), True
            time.sleep(1.0)
    return proc.returncode, False


def supervise(
    base_cmd: list[str], sets: list[str], env: dict[str, str], log: Path, *, deadline: float, reserve: float
) -> dict[str, Any]:
    """Run the suite; an explainer that fails is dropped and the run resumed (finished stages are
    reused from the run directory), and at ``deadline - reserve`` the run is stopped and redone with
    the finished explainers only, so that a board comes back whatever happens. Returns the record of
    attempts and of the explainers left out, and why."""
    explainers = _explainers_of(sets)
    attempts: list[dict[str, Any]] = []
    left_out: dict[str, str] = {}
    final = False
    while True:
        cmd = [*base_cmd]
        for s in sets:
            cmd += ["--set", s]
        start = log.stat().st_size if log.exists() else 0
        t = time.monotonic()
        rc, timed_out = run_until(cmd, env, log, deadline if final else deadline - reserve)
        text = log.read_text(errors="replace")[start:]
        done, open_ = explainer_stages(text)
        attempts.append(
            {
                "returncode": rc,
                "timed_out": timed_out,
                "seconds": round(time.monotonic() - t, 1),
                "tail": text[-1500:],
            }
        )
        if (rc == 0 and not timed_out) or final or explainers is None:
            break
        labels = [label_of(e) for e in explainers]
        if timed_out or time.monotonic() > deadline - reserve:
            all_done = set(_DONE.findall(log.read_text(errors="replace")))
            for lab in labels:
                if lab not in all_done:
                    left_out[lab] = (
                        "stopped at the deadline" if lab == open_ else "not reached before the deadline"
                    )
            explainers = [e for e in explainers if label_of(e) in all_done]
            final = True
        elif open_ is not None:
            left_out[open_] = "failed: " + (text.strip().splitlines() or [""])[-1][-300:]
            explainers = [e for e in explainers if label_of(e) != open_]
        else:
            break  # a failure outside the explainers: nothing to leave out
        sets = _with_explainers(sets, explainers)
    return {"attempts": attempts, "left_out": left_out, "sets": sets}


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    deadline = time.monotonic() + args.deadline
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = args.work.resolve()
    home, site = work / "home", work / "site"
    dirs = [Path(d) for d in args.assets]
    manifest = unpack(dirs, home)
    install_wheels([_find(dirs, w) for w in manifest["wheels"]], site)
    for extra in args.cache or []:  # caches carried from another machine (e.g. sentence encodings)
        shutil.copytree(extra, home / Path(extra).name, dirs_exist_ok=True)
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
    base_cmd = [sys.executable, "-m", "bench.cli", "-v", "run", args.suite, "--out", str(run_dir)]
    base_cmd += ["--device", args.device]
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    log = out / "run.log"
    log.unlink(missing_ok=True)
    sup = supervise(base_cmd, sets, env, log, deadline=deadline, reserve=args.reserve)
    run_s = time.perf_counter() - t1
    rc = sup["attempts"][-1]["returncode"] if not sup["attempts"][-1]["timed_out"] else 124
    record: dict[str, Any] = {
        "suite": args.suite,
        "returncode": rc,
        "device": _device(),
        "versions": _versions() | _site_versions(site),
        "sets": sup["sets"],
        "left_out": sup["left_out"],
        "attempts": sup["attempts"],
        "setup_seconds": round(setup_s, 1),
        "run_seconds": round(run_s, 1),
    }
    results_file = run_dir / "results.json"
    if rc == 0 and results_file.exists():
        results = json.loads(results_file.read_text())
        record["training"] = training_figures(results)
        record["stage_seconds"] = stage_seconds(log.read_text(errors="replace"))
        shutil.copyfile(results_file, out / "results.json")
        from bench.report.writers import markdown

        (out / "board.md").write_text(markdown(results) + "\n")
        report = work / "report"
        subprocess.run(
            [sys.executable, "-m", "bench.cli", "export", str(run_dir), "--out", str(report), "--no-samples"],
            env=env,
            cwd=REPO,
            check=False,
        )
        if report.is_dir():
            _tar(out / "report.tar.gz", report, name="report")
    kept = [home / name for name in args.bring_back or [] if (home / name).is_dir()]
    if kept:
        _tar(out / "caches.tar.gz", *kept)
    record["wall_seconds"] = round(time.perf_counter() - t0, 1)
    (out / "gpu_paper.json").write_text(json.dumps(record, indent=2) + "\n")
    brief = {k: v for k, v in record.items() if k not in ("sets", "attempts", "versions")}
    sys.stdout.write(json.dumps(brief, indent=2) + "\n")
    return rc


def stage_seconds(log_text: str) -> dict[str, float]:
    """Each stage's longest "done in" time over all attempts of a log (the one that built it; a
    resumed attempt only reuses it)."""
    out: dict[str, float] = {}
    for name, secs in re.findall(r"stage (\S+) done in ([0-9.]+) s", log_text):
        out[name] = max(out.get(name, 0.0), float(secs))
    return out


def _tar(dest: Path, *dirs: Path, name: str | None = None) -> None:
    import tarfile

    with tarfile.open(dest, "w:gz") as tar:
        for d in dirs:
            tar.add(d, arcname=name or d.name)


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
    r.add_argument("--deadline", type=float, default=480.0, help="seconds from the start to the board")
    r.add_argument("--reserve", type=float, default=90.0, help="seconds kept for the final board")
    r.add_argument("--cache", action="append", help="a cache folder to copy into the run's home")
    r.add_argument(
        "--bring-back", action="append", help="a folder of the run's home to return in caches.tar.gz"
    )
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
