"""The streaming loaders: Amazon 2014 / 2018 and Steam, gzipped or not, on files in their exact formats."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import amazon2018, py_literal, review, write_lines

from bench.data.loaders import detect_format, load_dataset
from bench.errors import DataError


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("gz", [True, False])
def test_amazon_2018_reads_reviews_and_meta(tmp_path: Path, gz: bool) -> None:
    reviews = [review("U1", "I1", 30), review("U2", "I2", 10), review("U1", "I2", 20), review("U2", "I3", 10)]
    meta = [
        {"asin": "I2", "title": "  Zelda:\tBreath ", "category": ["Video Games", "Nintendo", "Video Games"]},
        {"asin": "I2", "title": "second line for I2 is ignored"},
        {"asin": "I9", "title": "not reviewed, not kept"},
        {"asin": "I1", "title": "Doom", "main_cat": "Video Games"},
    ]
    d = amazon2018(tmp_path / "vg", reviews, meta, gz=gz)
    assert detect_format(d) == "amazon-2018"
    ds = load_dataset(d)
    assert ds.extra["format"] == "amazon-2018" and ds.name == "Video_Games"
    assert ds.user_ids == ("U1", "U2") and ds.item_ids == ("I1", "I2", "I3")  # first appearance
    assert ds.titles == ("Doom", "Zelda: Breath", "")  # first meta line wins; no meta -> ""
    assert ds.genres[1] == ("Video Games", "Nintendo")
    assert ds.users.tolist() == [0, 1, 0, 1] and ds.items.tolist() == [0, 1, 1, 2]
    assert ds.timestamps.tolist() == [30, 10, 20, 10] and ds.ratings.tolist() == [5.0] * 4
    files = [
        d / f"Video_Games_5.json{'.gz' if gz else ''}",
        d / f"meta_Video_Games.json{'.gz' if gz else ''}",
    ]
    assert ds.sha256 == hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def test_gzipped_and_plain_give_the_same_dataset(tmp_path: Path) -> None:
    reviews = [review(f"U{u}", f"I{(u * 3 + k) % 7}", u * 10 + k) for u in range(5) for k in range(4)]
    meta = [{"asin": f"I{i}", "title": f"T{i}"} for i in range(7)]
    a = load_dataset(amazon2018(tmp_path / "a", reviews, meta, gz=True))
    b = load_dataset(amazon2018(tmp_path / "b", reviews, meta, gz=False))
    assert (a.user_ids, a.item_ids, a.titles) == (b.user_ids, b.item_ids, b.titles)
    assert np.array_equal(a.users, b.users) and np.array_equal(a.timestamps, b.timestamps)
    assert a.sha256 != b.sha256  # the bytes as stored are hashed


def test_loaders_stream_and_never_read_a_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = amazon2018(tmp_path / "vg", [review("U1", "I1", 1)], [{"asin": "I1", "title": "x"}])

    def refuse(*_a: object, **_k: object) -> bytes:
        raise AssertionError("read the whole file")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr(Path, "read_text", refuse)
    assert load_dataset(d, format="amazon-2018").n_interactions == 1


def test_amazon_2018_malformed_lines_are_one_line_errors(tmp_path: Path) -> None:
    d = tmp_path / "vg"
    good = json.dumps(review("U1", "I1", 1))
    d.mkdir()
    write_lines(d / "Video_Games_5.json", [good, "", good[:-5]], gz=False)
    with pytest.raises(DataError) as err:
        load_dataset(d, format="amazon-2018")
    assert f"{d / 'Video_Games_5.json'}:3" in _one_line(err) and "not valid JSON" in str(err.value)
    # a Python-literal line is the 2014 release: the fix says so
    write_lines(d / "Video_Games_5.json", [py_literal(review("U1", "I1", 1))], gz=False)
    with pytest.raises(DataError, match="amazon-2014") as err:
        load_dataset(d, format="amazon-2018")
    assert ":1" in _one_line(err)
    # a missing field and a non-numeric time name the line and the field
    bad = review("U1", "I1", 1)
    del bad["reviewerID"]
    write_lines(d / "Video_Games_5.json", [good, json.dumps(bad)], gz=False)
    with pytest.raises(DataError, match=r"Video_Games_5.json:2: 'reviewerID' missing") as err:
        load_dataset(d, format="amazon-2018")
    write_lines(
        d / "Video_Games_5.json", [json.dumps({**review("U1", "I1", 1), "unixReviewTime": "soon"})], gz=False
    )
    with pytest.raises(DataError, match=r":1: 'unixReviewTime' 'soon' is not a number"):
        load_dataset(d, format="amazon-2018")


def test_gzip_that_is_not_gzip_and_truncated_gzip(tmp_path: Path) -> None:
    d = tmp_path / "vg"
    d.mkdir()
    (d / "Video_Games_5.json.gz").write_bytes(b"<html>404 Not Found</html>\n")
    with pytest.raises(DataError, match="named .gz but is not gzip") as err:
        load_dataset(d, format="amazon-2018")
    _one_line(err)
    lines = "".join(json.dumps(review(f"U{k}", "I1", k)) + "\n" for k in range(2000)).encode()
    (d / "Video_Games_5.json.gz").write_bytes(gzip.compress(lines)[:-200])
    with pytest.raises(DataError, match="not a valid gzip file") as err:
        load_dataset(d, format="amazon-2018")
    assert "fetch it again" in _one_line(err)
    # gzip content under a plain name is read as gzip: magic bytes decide
    (d / "Video_Games_5.json.gz").unlink()
    (d / "Video_Games_5.json").write_bytes(gzip.compress(json.dumps(review("U1", "I1", 1)).encode()))
    assert load_dataset(d, format="amazon-2018").n_interactions == 1


def test_non_utf8_line_names_its_line(tmp_path: Path) -> None:
    d = tmp_path / "vg"
    d.mkdir()
    good = json.dumps(review("U1", "I1", 1)).encode()
    (d / "Video_Games_5.json").write_bytes(good + b"\n" + good.replace(b"U1", b"U\xff") + b"\n")
    with pytest.raises(DataError, match=r"Video_Games_5.json:2: .*not UTF-8"):
        load_dataset(d, format="amazon-2018")


@pytest.mark.parametrize("gz", [True, False])
def test_amazon_2014_python_literal_meta(tmp_path: Path, gz: bool) -> None:
    d = tmp_path / "beauty"
    d.mkdir()
    reviews = [
        {"reviewerID": "R1", "asin": "B1", "overall": 4.0, "unixReviewTime": 100, "helpful": [0, 0]},
        {"reviewerID": "R2", "asin": "B2", "overall": 1.0, "unixReviewTime": 50},
    ]
    write_lines(d / "reviews_Beauty_5.json", [json.dumps(r) for r in reviews], gz=gz)
    meta = [
        py_literal(
            {
                "asin": "B2",
                "categories": [["Beauty", "Skin Care"], ["Beauty", "Lips"]],
                "salesRank": {"Beauty": 3},
            }
        ),
        "{'asin': 'B1', 'title': u\"Rosy Lip Balm 'Classic'\", 'related': {'also_bought': [u'B2']}, 'price': 4.5, 'imUrl': None, 'x': True}",
    ]
    write_lines(d / "meta_Beauty.json", meta, gz=gz)
    assert detect_format(d) == "amazon-2014"
    ds = load_dataset(d)
    assert ds.extra["format"] == "amazon-2014" and ds.name == "Beauty"
    assert ds.titles == ("Rosy Lip Balm 'Classic'", "")  # B2 has no title
    assert ds.genres[1] == ("Beauty", "Skin Care", "Lips")


def test_literal_eval_never_runs_code(tmp_path: Path) -> None:
    d = tmp_path / "beauty"
    d.mkdir()
    marker = tmp_path / "pwned"
    write_lines(
        d / "reviews_Beauty_5.json",
        [json.dumps({"reviewerID": "R", "asin": "B", "unixReviewTime": 1})],
        gz=False,
    )
    write_lines(d / "meta_Beauty.json", [f"__import__('pathlib').Path({str(marker)!r}).touch()"], gz=True)
    with pytest.raises(DataError, match=r"meta_Beauty.json.gz:1: line is not a Python dict literal") as err:
        load_dataset(d, format="amazon-2014")
    _one_line(err)
    assert not marker.exists()


def _steam(d: Path, reviews: list[dict], games: list[dict], *, gz: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    write_lines(d / "steam_reviews.json", [py_literal(r) for r in reviews], gz=gz)
    write_lines(d / "steam_games.json", [py_literal(g) for g in games], gz=gz)
    return d


@pytest.mark.parametrize("gz", [True, False])
def test_steam_literals_and_same_day_ties_keep_file_order(tmp_path: Path, gz: bool) -> None:
    def r(user: str, pid: str, date: str) -> dict:
        return {"username": user, "hours": 0.5, "products": 3, "product_id": pid, "page_order": 0,
                "date": date, "text": "fun", "early_access": False, "page": 1}  # fmt: skip

    reviews = [
        r("ann", "20", "2017-12-17"),
        r("bob", "10", "2017-12-17"),
        r("ann", "10", "2017-12-17"),  # same day as ann's first review: file order decides
        r("ann", "30", "2017-12-01"),
        {**r("cid", "20", "2018-01-02"), "user_id": "765611"},  # username wins over user_id
    ]
    games = [
        {
            "id": "10",
            "app_name": "Portal",
            "title": "Portal",
            "genres": ["Puzzle"],
            "release_date": "2007-10-10",
        },
        {"app_name": "no id: skipped", "genres": ["Action"]},
        {"id": "20", "title": "Only a title", "release_date": "soon"},
    ]
    d = _steam(tmp_path / "steam", reviews, games, gz=gz)
    assert detect_format(d) == "steam"
    ds = load_dataset(d)
    assert ds.user_ids == ("ann", "bob", "cid") and ds.item_ids == ("20", "10", "30")
    assert ds.titles == ("Only a title", "Portal", "") and ds.years == (None, 2007, None)
    assert ds.timestamps[0] == ds.timestamps[2] == 1513468800.0  # 2017-12-17 00:00 UTC
    ann = ds.sequences()[0]
    assert [ds.item_ids[i] for i in ann] == ["30", "20", "10"]  # earlier day first; same day: file order


def test_steam_bad_date_and_bad_literal(tmp_path: Path) -> None:
    d = _steam(tmp_path / "s", [{"username": "a", "product_id": "1", "date": "17 Dec 2017"}], [])
    with pytest.raises(
        DataError, match=r"steam_reviews.json.gz:1: 'date' '17 Dec 2017' is not a YYYY-MM-DD date"
    ):
        load_dataset(d)
    write_lines(d / "steam_reviews.json", ["{u'username': u'a', u'product_id': "], gz=True)
    with pytest.raises(DataError, match=r":1: line is not a Python dict literal") as err:
        load_dataset(d)
    assert "fix:" in _one_line(err)


def test_missing_files_and_ambiguous_directories(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no steam_reviews"):
        load_dataset(tmp_path, format="steam")
    with pytest.raises(DataError, match="no amazon-2018 reviews file"):
        load_dataset(tmp_path, format="amazon-2018")
    amazon2018(tmp_path / "two", [review("U", "I", 1)], [], category="A")
    amazon2018(tmp_path / "two", [review("U", "I", 1)], [], category="B")
    with pytest.raises(DataError, match="several reviews files"):
        load_dataset(tmp_path / "two", format="amazon-2018")
    # a file inside the directory stands for the directory
    d = amazon2018(tmp_path / "one", [review("U", "I", 1)], [{"asin": "I", "title": "t"}])
    assert load_dataset(d / "Video_Games_5.json.gz").titles == ("t",)
