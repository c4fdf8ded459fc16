"""Benchmark: a suite's first run on a fresh machine, from an EMPTY cache (a script, not a test).

    python tests/benchmarks/bench_quick.py [--suite quick] [--out bench_quick.md]
        [--fetch data:ml-100k,model:smollm2-135m,model:all-minilm-l6-v2] [--keep DIR]

What a new user pays: a temporary, empty ``RECXBENCH_HOME`` (nothing cached: no dataset, no model,
no converted checkpoint), then, each as its own ``recxbench`` process and timed by wall clock:

1. the downloads, one ``recxbench data fetch`` / ``recxbench models fetch`` per ``--fetch`` entry
   (``data:NAME`` or ``model:NAME``; ``--fetch ""`` for none, e.g. for the synthetic ``tiny`` suites);
2. ``recxbench run SUITE`` into a fresh run directory. Inside it, the GGUF -> checkpoint conversion
   happens in the first stage that loads the backbone; its own time is read from the converted
   checkpoint's ``CONVERTED.json`` and shown apart from that stage. Every other stage's time comes
   from the run's ``manifest.json`` (``stages``); "imports, start-up, writing" is the run's wall
   time minus the stages it records.

The total is the sum of all the steps' wall times: what one ``recxbench run SUITE`` from an empty
cache costs, plus a second or two of start-up per separate fetch process. Prints a Markdown table
(also written to ``--out``) with the machine's load average before and after: on a shared machine
the figures are only comparable when that is near zero. The run's board is left in ``--keep`` when
given (else deleted with the temporary home).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FETCH = "data:ml-100k,model:smollm2-135m,model:all-minilm-l6-v2"


@dataclass
class Timings:
    """Wall seconds per step, in order: ``(what, seconds)``; ``notes`` go under the table."""

    rows: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, what: str, seconds: float) -> None:
        self.rows.append((what, seconds))


def _recxbench(args: list[str], env: dict[str, str], log: Path) -> float:
    """Run ``recxbench ARGS`` (this checkout's code) and return its wall time; a failure stops the benchmark."""
    cmd = [sys.executable, "-m", "bench.cli", *args]
    t0 = time.perf_counter()
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ recxbench {' '.join(args)}\n")
        fh.flush()
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"recxbench {' '.join(args)} failed (exit {proc.returncode}); see {log}")
    return seconds


def _conversions(home: Path) -> list[dict]:
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((home / "models" / "converted").glob("*/CONVERTED.json"))
    ]


def _first_llm_stage(stages: dict[str, float], manifest: dict) -> str | None:
    """The first explainer stage whose explainer runs a backbone (where a conversion happens)."""
    for name in stages:
        label = name.removeprefix("explainer:")
        if name.startswith("explainer:") and (manifest.get("explainers", {}).get(label) or {}).get(
            "backbone"
        ):
            return name
    return None


def measure(suite: str, fetch: list[str], work: Path, threads: int | None) -> Timings:
    """Every step's wall time from an empty home under ``work`` (see the module docstring)."""
    home, out, log = work / "home", work / "run", work / "bench.log"
    home.mkdir(parents=True)
    env = {**os.environ, "RECXBENCH_HOME": str(home), "PYTHONPATH": str(ROOT)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    t = Timings()
    for entry in fetch:
        kind, _, name = entry.partition(":")
        if kind not in ("data", "model") or not name:
            raise SystemExit(f"--fetch entry {entry!r}: write data:NAME or model:NAME")
        t.add(
            f"download: {name}",
            _recxbench(["-q", kind if kind == "data" else "models", "fetch", name], env, log),
        )
    run_s = _recxbench(["-q", "run", suite, "--out", str(out)], env, log)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    stages = {k: float(v) for k, v in manifest.get("stages", {}).items() if k != "total"}
    conv = _conversions(home)
    conv_s = sum(float(c.get("conversion_s", 0.0)) for c in conv)
    host = _first_llm_stage(stages, manifest) if conv else None
    if host is not None:
        t.add("GGUF -> checkpoint conversion", conv_s)
        t.notes.append(f"the conversion ran inside `{host}`; that stage is shown without it")
    for name, seconds in stages.items():
        t.add(f"stage {name}", seconds - (conv_s if name == host else 0.0))
    t.add("imports, start-up, writing (run wall − stages)", run_s - sum(stages.values()))
    t.notes.append(f"`recxbench run` wall time {run_s:.1f} s")
    return t


def table(t: Timings, *, suite: str, load_before: str, load_after: str, threads: int | None) -> str:
    total = sum(s for _, s in t.rows)
    lines = [
        f"`{suite}` from an empty RECXBENCH_HOME: **{total:.1f} s** "
        f"({total / 60:.1f} min; load average before: {load_before}, after: {load_after}; "
        f"OMP_NUM_THREADS={threads if threads is not None else 'unset'}, {os.cpu_count()} CPUs)",
        "",
        "| step | wall s |",
        "|---|---:|",
        *[f"| {what} | {s:.1f} |" for what, s in t.rows],
        f"| **total** | **{total:.1f}** |",
    ]
    if t.notes:
        lines += ["", *[f"- {n}" for n in t.notes]]
    return "\n".join(lines) + "\n"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="quick", help="a suite name or YAML file (default quick)")
    ap.add_argument(
        "--fetch", default=DEFAULT_FETCH, help=f"comma-separated downloads (default {DEFAULT_FETCH})"
    )
    ap.add_argument("--out", default=None, help="also write the Markdown table here")
    ap.add_argument("--keep", default=None, help="copy the run directory here afterwards")
    ap.add_argument("--threads", type=int, default=None, help="set OMP_NUM_THREADS for every step")
    args = ap.parse_args(argv)
    fetch = [f.strip() for f in args.fetch.split(",") if f.strip()]
    suite = str(Path(args.suite).resolve()) if Path(args.suite).is_file() else args.suite
    load_before = _loadavg()
    with tempfile.TemporaryDirectory(prefix="recxbench-bench-quick-") as tmp:
        work = Path(tmp)
        timings = measure(suite, fetch, work, args.threads)
        if args.keep:
            shutil.copytree(work / "run", args.keep, dirs_exist_ok=True)
    text = table(
        timings, suite=args.suite, load_before=load_before, load_after=_loadavg(), threads=args.threads
    )
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
