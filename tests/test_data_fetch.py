"""``recxbench data fetch`` (file:// URLs stand in for the public hosts) and ``recxbench data info``."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from data_fixtures import amazon2018, games_like, review

from bench.cli import main
from bench.data import downloads
from bench.data.downloads import Download, Remote, fetch_dataset, load_cached
from bench.errors import DataError, UserError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECXBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, pin: bool | str) -> Path:
    """Point ``amazon-video-games`` at file:// copies of a fixture (pinned to their real digest when ``pin``)."""
    src = amazon2018(
        tmp_path / "upstream", [review("U1", "I1", 1), review("U2", "I1", 2)], [{"asin": "I1", "title": "t"}]
    )
    remotes = []
    for name in ("Video_Games_5.json.gz", "meta_Video_Games.json.gz"):
        digest = hashlib.sha256((src / name).read_bytes()).hexdigest()
        sha = digest if pin is True else (pin or None)
        remotes.append(Remote(name, ("http://127.0.0.1:9/unreachable", (src / name).as_uri()), sha))
    monkeypatch.setitem(
        downloads.DOWNLOADS, "amazon-video-games", Download("amazon-2018", "test", tuple(remotes))
    )
    return src


def test_fetch_streams_checks_the_pin_and_records_the_source(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve(tmp_path, monkeypatch, pin=True)
    path = fetch_dataset("amazon-video-games")
    assert path == home / "datasets" / "amazon-video-games"
    marker = json.loads((path / "SOURCE.json").read_text())
    assert all(f["verified"] for f in marker["files"].values())
    ds = load_cached("amazon-video-games")  # dataset.name=amazon-video-games reads the cache
    assert ds.name == "amazon-video-games" and ds.n_interactions == 2
    assert fetch_dataset("amazon-video-games") == path  # complete: nothing downloaded again


def test_fetch_without_a_pin_records_the_digest_as_unverified(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve(tmp_path, monkeypatch, pin=False)
    marker = json.loads((fetch_dataset("amazon-video-games") / "SOURCE.json").read_text())
    assert {f["verified"] for f in marker["files"].values()} == {False}


def test_a_wrong_pin_leaves_no_file(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(tmp_path, monkeypatch, pin="0" * 64)
    with pytest.raises(DataError, match="expected 0000"):
        fetch_dataset("amazon-video-games")
    assert not list((home / "datasets" / "amazon-video-games").glob("*.gz"))


def test_offline_fetch_is_one_line_saying_where_to_put_the_files(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    spec = downloads.DOWNLOADS["steam"]
    offline = tuple(Remote(r.file, ("http://127.0.0.1:9/" + r.file,)) for r in spec.files)
    monkeypatch.setitem(downloads.DOWNLOADS, "steam", Download("steam", "test", offline))
    assert main(["-q", "data", "fetch", "steam"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "may be offline" in err
    assert f"put steam_reviews.json.gz, steam_games.json.gz in {home / 'datasets' / 'steam'}" in err
    with pytest.raises(DataError, match=r"not in the local cache.*recxbench data fetch steam"):
        load_cached("steam")
    with pytest.raises(UserError, match="unknown downloadable dataset"):
        fetch_dataset("amazon-books")


def test_fetch_ml1m_extracts_the_zip(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(
            "ml-1m/ratings.dat", "".join(f"{u}::{m}::5::{u * 10 + m}\n" for u in (1, 2) for m in (1, 2, 3))
        )
        zf.writestr("ml-1m/movies.dat", "1::A (1990)::Drama\n2::B (1991)::Drama\n3::C (1992)::Comedy\n")
        zf.writestr("ml-1m/users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    (tmp_path / "ml-1m.zip").write_bytes(buf.getvalue())
    spec = downloads.DOWNLOADS["ml-1m"]
    monkeypatch.setitem(
        downloads.DOWNLOADS,
        "ml-1m",
        Download("ml-1m", "test", (Remote("ml-1m.zip", ((tmp_path / "ml-1m.zip").as_uri(),)),), spec.members),
    )
    path = fetch_dataset("ml-1m")
    assert sorted(p.name for p in path.iterdir()) == ["SOURCE.json", "movies.dat", "ratings.dat", "users.dat"]
    assert load_cached("ml-1m").titles == ("A", "B", "C")


def test_every_download_names_public_urls_and_no_invented_pins() -> None:
    for name, spec in downloads.DOWNLOADS.items():
        for remote in spec.files:
            assert remote.urls and all(u.startswith(("https://", "http://")) for u in remote.urls), name
            assert remote.sha256 is None  # nothing could be measured where this was written (see the report)


def test_data_info_prints_the_papers_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = games_like(tmp_path / "vg")
    assert (
        main(
            [
                "-q",
                "data",
                "info",
                str(d),
                "--recipe",
                "recexplainer",
                "--set",
                "core=5",
                "--set",
                "max_items=30",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    header, _, row = out.splitlines()[:3]
    assert header.split()[:4] == ["dataset", "#users", "#items", "#interactions"] and "sparsity" in header
    assert "Video_Games" in row and row.rstrip().endswith("%")
    assert "'max_items': 30" in out and "kcore_rounds" in out
    assert main(["-q", "data", "info", str(d), "--recipe", "lan"]) == 2
    assert "did you mean 'lane'" in capsys.readouterr().err
