"""Datasets resolve through ``registry.datasets``: built-in formats, named datasets and plugins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import registry
from bench.data import sources
from bench.data.dataset import Dataset
from bench.data.loaders import detect_format, load_dataset
from bench.data.resolve import resolve_dataset
from bench.data.synthetic import make_tiny
from bench.errors import ConfigError, DataError

TSV = "1\t10\t100\tThe Silent Harbor\n1\t11\t101\tCrimson Orbit\n2\t10\t102\tThe Silent Harbor\n\n2\t12\t103\tIron Waltz\n"


@pytest.fixture(scope="module")
def tsv_plugin():
    from plugins import tsv_format  # registers "tsv" (as --plugin plugins.tsv_format would)

    return tsv_format


def write_tsv(tmp_path: Path, text: str = TSV) -> Path:
    d = tmp_path / "events"
    d.mkdir()
    (d / "interactions.tsv").write_text(text, encoding="utf-8")
    return d


def test_builtin_entries_are_registered() -> None:
    assert {"atomic", "ml-100k", "ml-1m"} <= set(sources.format_names())
    named = sources.named_datasets()
    assert {"ml-100k", "tiny", "opaque", "opaque-balanced"} <= set(named)
    assert all(named[n] for n in ("ml-100k", "tiny", "opaque", "opaque-balanced"))  # described
    assert "atomic" not in named and "tiny" not in sources.format_names()
    from bench.data.resolve import BUILTIN

    assert set(BUILTIN) == set(named)


def test_a_plugin_format_is_one_module(tsv_plugin, tmp_path: Path) -> None:
    d = write_tsv(tmp_path)
    ds = resolve_dataset("my-events", path=str(d), format="tsv")
    assert ds.name == "my-events" and ds.extra == {"format": "tsv", "files": ["interactions.tsv"]}
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 3, 4)
    assert ds.user_ids == ("1", "2") and ds.item_ids == ("10", "11", "12")
    assert ds.titles == ("The Silent Harbor", "Crimson Orbit", "Iron Waltz")
    np.testing.assert_array_equal(ds.users, [0, 0, 1, 1])
    np.testing.assert_array_equal(ds.items, [0, 1, 0, 2])
    np.testing.assert_array_equal(ds.timestamps, [100.0, 101.0, 102.0, 103.0])
    assert ds.ratings is None
    # auto-detection finds it, and a registered dataset name is not used as the label
    assert detect_format(d) == "tsv"
    assert resolve_dataset("tiny", path=str(d)).name == "events"
    assert "tsv" in sources.format_names()


def test_a_plugin_format_reports_file_and_line(tsv_plugin, tmp_path: Path) -> None:
    d = write_tsv(tmp_path, TSV + "3\t13\tsoon\tA Title\n")
    with pytest.raises(DataError, match=r"interactions.tsv:6: time 'soon' is not a finite number"):
        load_dataset(d, format="tsv")


def test_unknown_format_lists_the_known_ones(tsv_plugin, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        resolve_dataset("x", path=str(tmp_path), format="atomc")
    msg = str(exc.value)
    assert "dataset.format: unknown dataset format 'atomc'" in msg and "did you mean 'atomic'" in msg
    assert (
        "auto, amazon-2014, amazon-2018, atomic, ml-100k, ml-1m, steam" in msg
        and "tsv" in msg
        and "\n" not in msg
    )
    with pytest.raises(DataError, match="is a dataset, not a file format"):
        load_dataset(tmp_path, format="tiny")


def test_named_datasets_resolve_through_the_registry() -> None:
    ds = resolve_dataset("tiny", params={"n_users": 20, "n_items": 24})
    ref = make_tiny(n_users=20, n_items=24)
    assert ds.sha256 == ref.sha256 and ds.titles == ref.titles
    assert resolve_dataset("opaque", params={"n_users": 20, "n_items": 24}).name == "opaque"
    with pytest.raises(
        ConfigError, match=r"dataset.params: bad generator parameter .*n_user.*bench.data.synthetic.make_tiny"
    ):
        resolve_dataset("tiny", params={"n_user": 3})
    with pytest.raises(ConfigError, match="unknown dataset 'tiny2'.*built-in datasets: .*tiny"):
        resolve_dataset("tiny2")


def test_a_plugin_named_dataset(restore_registries) -> None:
    def make(*, n_users: int = 20) -> Dataset:
        return make_tiny(n_users=n_users, n_items=24, seed=3)

    registry.datasets.register("tiny-seed3", sources.DatasetSource(make=make, description="seed 3"))
    assert resolve_dataset("tiny-seed3", params={"n_users": 15}).n_users == 15
    assert sources.named_datasets()["tiny-seed3"] == "seed 3"
    with pytest.raises(ConfigError, match="bad generator parameter"):
        resolve_dataset("tiny-seed3", params={"n_items": 5})


def test_a_bare_callable_is_a_format_loader(restore_registries, tmp_path: Path) -> None:
    from bench.data.formats import atomic

    registry.datasets.register("atomic-bare", atomic.load)
    ds = make_tiny(n_users=20, n_items=24)
    back = load_dataset(atomic.write_atomic(ds, tmp_path / "toy"), format="atomic-bare")
    assert back.titles == ds.titles and back.n_interactions == ds.n_interactions
    assert sources.lookup("atomic-bare") == sources.DatasetSource(load=atomic.load)
    assert sources.as_source("not callable") is None and sources.lookup("nope") is None
