"""No cache entry is trusted unless complete and intact (issue 17): damaged target weights under a
finished card are detected by the card's checksum and trained again; a leftover temporary file of
a killed atomic write is ignored; a stale lock file of a dead run does not block the next run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from snapshot_compare import differences

from bench.cli import main
from bench.io import LOCK_NAME

ARGS = [
    "--device", "cpu",
    "--set", "dataset.params.n_users=80",
    "--set", "target.params.epochs=2",
    "--set", "explainers=[random, popularity]",
    "--set", "tasks=[item_ranking]",
    "--set", "claims=[]",
    "--set", "stats.resamples=100",
]  # fmt: skip


def _run(out: Path) -> tuple[dict, dict]:
    assert main(["-q", "run", "tiny", "--out", str(out), *ARGS]) == 0
    read = lambda name: json.loads((out / name).read_text(encoding="utf-8"))  # noqa: E731
    return read("results.json"), read("manifest.json")


def test_damaged_weights_are_trained_again_and_leftovers_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    first, manifest = _run(out)
    assert manifest["cache"]["target"] == "built"
    (weights,) = (out / "cache" / "target").rglob("model.safetensors")
    raw = bytearray(weights.read_bytes())
    raw[-8:] = bytes(8)  # same size, different bytes: looks whole, is not
    weights.write_bytes(bytes(raw))
    (weights.parent / ".model.safetensors.x1y2.tmp").write_bytes(b"half a file")  # a killed write
    (out / LOCK_NAME).write_text("999999\n")  # the lock file of a dead run (no flock held)
    second, manifest = _run(out)
    assert manifest["cache"]["target"] == "built"
    assert "do not match their card" in capsys.readouterr().err
    assert differences(first, second) == []
    third, manifest = _run(out)
    assert manifest["cache"]["target"] == "reused" and differences(first, third) == []
