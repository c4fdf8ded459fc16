"""The ``games`` and ``steam`` suites: keys, the recipe in the config, and an end-to-end run on a fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import games_like

from bench.cli import main
from bench.config import load_suite

FAST = [
    "--set", "target.name=popularity",
    "--set", "target.params={}",
    "--set", "explainers=[random,popularity]",
    "--set", "stats.resamples=200",
]  # fmt: skip


@pytest.mark.parametrize(("suite", "history", "fmt"), [("games", 9, "amazon-2018"), ("steam", 16, "steam")])
def test_suites_mirror_the_paper_settings(suite: str, history: int, fmt: str) -> None:
    s = load_suite(suite)
    assert s.dataset.format == fmt
    assert s.dataset.recipe.name == "recexplainer"
    assert dict(s.dataset.recipe.params) == {"core": 5, "max_items": 2000, "max_users": 4000}
    assert s.target.params["max_len"] == history
    assert {t.params["history_len"] for t in s.tasks} == {history}


def test_recipe_defaults_to_none_and_bad_names_are_one_line(capsys: pytest.CaptureFixture) -> None:
    assert load_suite("tiny").dataset.recipe.name == "none"
    assert main(["validate", "games", "--set", "dataset.recipe.name=recexplaner"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recxbench: error: games.yaml:dataset.recipe.name: unknown dataset recipe")
    assert "did you mean 'recexplainer'" in err and "\n" not in err
    assert main(["validate", "games", "--set", "dataset.recipe.params.kk=3"]) == 2
    assert "games.yaml:dataset.recipe.params" in capsys.readouterr().err


def test_games_runs_end_to_end_on_a_fixture(tmp_path: Path) -> None:
    data = games_like(tmp_path / "vg")
    out = tmp_path / "run"
    assert main(["-q", "run", "games", "--out", str(out), "--set", f"dataset.path={data}", *FAST]) == 0
    results = json.loads((out / "results.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    recipe = results["protocol"]["dataset_recipe"]
    assert recipe["name"] == "recexplainer" and recipe["params"]["max_items"] == 2000
    assert manifest["dataset_recipe"] == recipe
    assert results["protocol"]["history_len"]["item_ranking"] == 9
    assert 0 < results["dataset"]["items"] < 40  # untitled items and thin ones are gone
    assert {r["explainer"] for r in results["results"]} == {"random", "popularity"}
