"""``manifest.json``: what produced a run, built from the run state."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import bench
from bench import manifest as man
from bench.config import load_suite
from bench.data.synthetic import make_tiny
from bench.state import RunState


@pytest.fixture
def state(tmp_path: Path) -> RunState:
    suite = load_suite("tiny", overrides=["seed=7", "stats.resamples=300"])
    st = RunState(suite=suite, out=tmp_path, device="cpu")
    st.dataset = make_tiny(n_users=30, n_items=20)
    st.target_card = {"checkpoint_sha256": "ab" * 32}
    st.stage_seconds = {"data": 0.5, "target": 1.25}
    st.cache_events = {"target": "reused", "explainer:random": "built"}
    st.explainer_info = {"random": {"name": "random", "access": "behavior", "fit_seconds": 0.1}}
    return st


def test_manifest_records_what_produced_the_run(state: RunState) -> None:
    m = man.build_manifest(state)
    assert m["harness_version"] == bench.__version__
    assert m["suite"] == "tiny" and m["seed"] == 7
    assert m["suite_sha256"] == state.suite.sha256
    assert m["suite_config"] == state.suite.as_dict()
    assert m["suite_config"]["stats"]["resamples"] == 300  # overrides are recorded, not the file
    assert m["dataset_sha256"] == state.dataset.sha256
    assert m["target_checkpoint_sha256"] == "ab" * 32
    assert m["task_config_sha256"] == {}  # no task objects in this state
    assert m["cache"] == {"target": "reused", "explainer:random": "built"}
    assert m["stages"] == {"data": 0.5, "target": 1.25}
    assert m["explainers"]["random"]["fit_seconds"] == 0.1  # wall times live here, not in results.json
    json.dumps(m)  # serialisable as is


def test_package_versions_lists_installed_packages_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(man, "PACKAGES", ("numpy", "surely-not-installed-recx"))
    versions = man.package_versions()
    assert set(versions) == {"numpy"}
    import numpy

    assert versions["numpy"] == numpy.__version__


def test_git_sha_is_the_checkout_commit_or_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = Path(bench.__file__).resolve().parent.parent
    sha = man.git_sha()
    if (root / ".git").exists():
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert sha is not None and sha.removesuffix("-dirty") == head
    fake = tmp_path / "pkg" / "bench"
    fake.mkdir(parents=True)
    monkeypatch.setattr(bench, "__file__", str(fake / "__init__.py"))
    assert man.git_sha() is None  # not a checkout: no commit to name
