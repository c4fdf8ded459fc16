"""``manifest.json``: everything needed to say what produced a run."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bench

if TYPE_CHECKING:
    from bench.state import RunState

PACKAGES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "torch",
    "safetensors",
    "jinja2",
    "transformers",
    "peft",
    "tokenizers",
)


def git_sha() -> str | None:
    """The harness checkout's commit, when it runs from a git checkout (else ``None``)."""
    root = Path(bench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip() if out.returncode == 0 else None
    return f"{sha}-dirty" if sha and dirty.stdout.strip() else sha


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def recipe_entry(state: RunState) -> dict[str, Any]:
    """The recipe as run: ``{name, params, ...counts}`` (``none`` records the suite's name and params)."""
    from bench.data.recipes import recipe_card

    assert state.dataset is not None
    cfg = state.suite.dataset.recipe
    return recipe_card(state.dataset) or {"name": cfg.name, "params": dict(cfg.params)}


def build_manifest(state: RunState) -> dict[str, Any]:
    assert state.dataset is not None
    return {
        "harness_version": bench.__version__,
        "git_sha": git_sha(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "suite": state.suite.name,
        "suite_path": state.suite.path,
        "suite_sha256": state.suite.sha256,
        "suite_config": state.suite.as_dict(),
        "task_config_sha256": {t: task.spec.sha256 for t, task in state.tasks.items()},
        "task_versions": {t: task.spec.version for t, task in state.tasks.items()},
        "dataset_sha256": state.dataset.sha256,
        "dataset_source": state.dataset.source,
        # the preprocessing recipe, its parameters (defaults filled in) and its counts
        "dataset_recipe": recipe_entry(state),
        "target_checkpoint_sha256": state.target_card.get("checkpoint_sha256"),
        "seed": state.suite.seed,
        "device": state.device,
        "explainers": state.explainer_info,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "stages": dict(state.stage_seconds),
        # which cached stages this invocation built and which it reused from the run directory
        "cache": dict(state.cache_events),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
    }
