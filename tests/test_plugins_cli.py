"""The three extension points end to end through the CLI, each a plugin of one file + YAML.

* a dataset format (``tests/plugins/tsv_format.py``) read from ``dataset.path``;
* an explainer (``tests/plugins/always_first.py``) that answers ranking only: n/a elsewhere;
* a task kind with a new answer type (``tests/plugins/genre_count.py``) that no built-in explainer
  answers (n/a, with no edit to them) and a plugin explainer does.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.cli import main
from bench.data.synthetic import make_tiny

SMALL = [
    "--set", "target.name=popularity",
    "--set", "target.params={}",
    "--set", "stats.resamples=200",
    "--set", "users.max_test=15",
]  # fmt: skip


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def _answered(res: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in res["results"]:
        out.setdefault(r["explainer"], set()).add(r["task"])
    return out


def test_a_dataset_format_plugin_runs_a_suite(tmp_path: Path) -> None:
    ds = make_tiny(n_users=60, n_items=40)
    data = tmp_path / "events"
    data.mkdir()
    lines = [
        f"{ds.user_ids[u]}\t{ds.item_ids[i]}\t{int(t)}\t{ds.titles[i]}"
        for u, i, t in zip(ds.users.tolist(), ds.items.tolist(), ds.timestamps.tolist(), strict=True)
    ]
    (data / "interactions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    argv = ["-q", "run", "tiny", "--plugin", "plugins.tsv_format", "--out", str(out), *SMALL]
    argv += ["--set", f"dataset.path={data}", "--set", "dataset.format=tsv", "--set", "dataset.name=events"]
    argv += ["--set", "tasks=[item_ranking, interest_classification]"]
    argv += ["--set", "explainers=[random, popularity]"]
    assert main(argv) == 0
    res = _results(out)
    assert res["dataset"]["name"] == "events" and res["dataset"]["interactions"] == len(lines)
    assert _answered(res) == {
        e: {"item_ranking", "interest_classification"} for e in ("random", "popularity")
    }


def test_an_explainer_plugin_answers_what_it_implements(tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["-q", "run", "tiny", "--plugin", "plugins.always_first", "--out", str(out), *SMALL]
    argv += ["--set", "dataset.params={n_users: 80, n_items: 40}"]
    argv += ["--set", "tasks=[item_ranking, interest_classification, next_item_retrieval]"]
    argv += ["--set", "explainers=[random, always-first]"]
    assert main(argv) == 0
    res = _results(out)
    assert _answered(res)["always-first"] == {"item_ranking"}  # the rest: n/a, not 0
    assert res["explainers"]["always-first"]["summary"].startswith("ranks the candidates")
    board = (out / "leaderboard.md").read_text(encoding="utf-8")
    row = next(line for line in board.splitlines() if line.startswith("| always-first"))
    assert row.count("n/a") == 2


def test_a_task_kind_plugin_is_na_for_every_builtin_explainer(tmp_path: Path) -> None:
    tasks = tmp_path / "my_tasks"
    tasks.mkdir()
    (tasks / "genre_count.yaml").write_text(
        "task: genre_count\nkind: genre_count\nversion: 1\nmain_metric: exact\n"
        "description: count the history items of the shown genre\n",
        encoding="utf-8",
    )
    suite = tmp_path / "plugin-suite.yaml"
    suite.write_text(
        "suite: plugin-suite\n"
        "dataset: {name: tiny, params: {n_users: 80, n_items: 40}}\n"
        "target: {name: popularity}\n"
        "users: {max_test: 15}\n"
        "task_dirs: [my_tasks]\n"
        "tasks: [genre_count, item_ranking]\n"
        "explainers: [random, popularity, item-prior, target-oracle, genre-counter]\n"
        "stats: {resamples: 200}\n"
        "claims: ['genre-counter > random on item_ranking/ndcg@5']\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    assert main(["-q", "run", str(suite), "--plugin", "plugins.genre_count", "--out", str(out)]) == 0
    res = _results(out)
    answered = _answered(res)
    assert answered["genre-counter"] == {"genre_count"}
    for builtin in ("random", "popularity", "item-prior", "target-oracle"):
        assert answered[builtin] == {"item_ranking"}, builtin
    row = next(r for r in res["results"] if r["explainer"] == "genre-counter" and r["metric"] == "exact")
    assert row["value"] == 1.0  # it counts exactly what the task labels
    # a claim on a task the explainer does not answer is not silently "supported"
    assert res["claims"][0]["verdict"] != "supported"
