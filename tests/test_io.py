"""The one atomic write: files and directories appear whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.io import atomic_dir, atomic_write, atomic_write_text, read_json, write_json


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert read_json(path) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]
    assert (path.stat().st_mode & 0o777) == 0o644


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "a.txt", "old")

    def boom(tmp: Path) -> None:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_dir_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(target) as staging:
        (staging / "half").write_text("x", encoding="utf-8")
        raise RuntimeError("crash")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(target) as staging:
        (staging / "whole").write_text("x", encoding="utf-8")
    assert [p.name for p in target.iterdir()] == ["whole"]


def test_atomic_dir_replace_never_loses_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "baseline"
    with atomic_dir(target) as staging:
        (staging / "v1").write_text("1", encoding="utf-8")
    with atomic_dir(target, replace=True) as staging:
        (staging / "v2").write_text("2", encoding="utf-8")
    assert [p.name for p in target.iterdir()] == ["v2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline"]  # no .old, no staging

    real_rename = Path.rename

    def failing_rename(self: Path, dest: os.PathLike) -> Path:
        if self.name.endswith(".tmp"):  # moving the new copy in fails
            raise OSError("disk gone")
        return real_rename(self, dest)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError), atomic_dir(target, replace=True) as staging:
        (staging / "v3").write_text("3", encoding="utf-8")
    assert [p.name for p in target.iterdir()] == ["v2"]  # the previous copy is back
