"""Suite/task YAML validation: every mistake names file:key and how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import load_suite, parse_set
from bench.errors import ConfigError, UserError
from bench.runner import instantiate_explainers, instantiate_tasks


def _suite(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_builtin_suites_validate() -> None:
    for name in ("quick", "tiny"):
        suite = load_suite(name)
        tasks = instantiate_tasks(suite)
        assert set(tasks) >= {"next_item_retrieval", "item_ranking", "interest_classification"}
        assert instantiate_explainers(suite)


def test_defaults_filled(tmp_path: Path) -> None:
    s = load_suite(str(_suite(tmp_path, "tasks: [item_ranking]\n")))
    assert s.name == "s"
    assert s.stats.alpha == 0.05
    assert s.dataset.name == "ml-100k"
    assert [t.name for t in s.tasks] == ["item_ranking"]
    assert s.tasks[0].params["n_candidates"] == 5


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    p = _suite(tmp_path, "tasks: [item_ranking]\ndataset:\n  pth: /x\n")
    with pytest.raises(ConfigError, match=r"s.yaml:dataset.pth.*did you mean 'dataset.path'"):
        load_suite(str(p))


def test_bad_set_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'stats.alpah'.*did you mean 'stats.alpha'"):
        load_suite("tiny", overrides=["stats.alpah=0.1"])


def test_set_parses_yaml_values() -> None:
    s = load_suite(
        "tiny", overrides=["stats.resamples=500", "dataset.params.n_users=50", "explainers=[random]"]
    )
    assert s.stats.resamples == 500
    assert s.dataset.params["n_users"] == 50
    assert [e.name for e in s.explainers] == ["random"]
    assert parse_set(["a.b=[1, 2]"]) == [("a.b", [1, 2])]
    with pytest.raises(ConfigError):
        parse_set(["novalue"])


def test_unknown_suite_suggests() -> None:
    with pytest.raises(ConfigError, match="did you mean 'quick'"):
        load_suite("quik")


def test_unknown_task_and_param(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown task 'item_rankin'"):
        load_suite(str(_suite(tmp_path, "tasks: [item_rankin]\n")))
    s = load_suite(
        str(_suite(tmp_path, "tasks: [item_ranking]\ntask_params: {item_ranking: {n_cands: 3}}\n"))
    )
    with pytest.raises(ConfigError, match="unknown parameter"):
        instantiate_tasks(s)


def test_unknown_explainer_suggests(tmp_path: Path) -> None:
    s = load_suite(str(_suite(tmp_path, "tasks: [item_ranking]\nexplainers: [randon]\n")))
    with pytest.raises(UserError, match="did you mean 'random'"):
        instantiate_explainers(s)


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"s.yaml:\d+: invalid YAML"):
        load_suite(str(_suite(tmp_path, "tasks: [item_ranking]\nseed: [\n")))


def test_value_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stats.correction"):
        load_suite("tiny", overrides=["stats.correction=bonferroni"])
    with pytest.raises(ConfigError, match="users"):
        load_suite("tiny", overrides=["users.align_test=0.9"])


def test_external_task_dir(tmp_path: Path) -> None:
    d = tmp_path / "mytasks"
    d.mkdir()
    (d / "short_ranking.yaml").write_text(
        "task: short_ranking\nkind: item_ranking\nmain_metric: ndcg@3\nparams: {n_candidates: 3}\n",
        encoding="utf-8",
    )
    s = load_suite(str(_suite(tmp_path, "tasks: [short_ranking]\ntask_dirs: [mytasks]\n")))
    tasks = instantiate_tasks(s)
    assert tasks["short_ranking"].params["n_candidates"] == 3


def test_overrides_skip_dangling_claims_and_task_params(caplog: pytest.LogCaptureFixture) -> None:
    """The README's own `--set explainers=[...]` must just work: claims naming explainers the
    override removed are not evaluated (a warning each), task_params of removed tasks are ignored."""
    from bench.evidence import check_claims

    with caplog.at_level("WARNING"):
        s = load_suite(
            "quick", overrides=["explainers=[random,popularity]", "tasks=[interest_classification]"]
        )
    assert s.claims == ("popularity > random on interest_classification/accuracy",)
    n_other = sum(
        1 for c in load_suite("quick").claims if not c.startswith("popularity > random on interest")
    )
    assert len(s.skipped_claims) == n_other and all(
        "not evaluated" in r.message for r in caplog.records[:n_other]
    )
    assert set(s.as_dict()["task_params"]) == {"interest_classification"}
    check_claims(list(s.claims), [e.label for e in s.explainers], [t.name for t in s.tasks])
    # a name the suite file never declared is still a typo, and still an error
    t = load_suite("tiny", overrides=["claims=[randm > popularity on item_ranking/ndcg@5]"])
    assert t.skipped_claims == ()
    with pytest.raises(UserError, match="unknown explainer 'randm'"):
        check_claims(list(t.claims), [e.label for e in t.explainers], [x.name for x in t.tasks])


def test_a_directory_named_like_a_suite_does_not_shadow_it(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").mkdir()  # e.g. a run directory
    assert load_suite("quick").name == "quick"
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError, match="mine: is a directory, not a suite file"):
        load_suite("mine")


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ("dataset.min_interactions=abc", "dataset.min_interactions"),
        ("dataset.min_interactions=0", "dataset.min_interactions"),
        ("users.max_test=x", "users.max_test"),
        ("users.train_contexts_per_user=[1]", "users.train_contexts_per_user"),
        ("stats.confidence=high", "stats.confidence"),
        ("stats.confidence=1.5", "stats.confidence"),
        ("stats.alpha=true", "stats.alpha"),
        ("tolerances={a/b: x}", "tolerances.a/b"),
        ("tolerances={a/b: -0.1}", "tolerances.a/b"),
    ],
)
def test_bad_values_are_one_line_errors(override: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_suite("tiny", overrides=[override])
    assert f"tiny.yaml:{where}:" in str(err.value) and "fix:" in str(err.value)


def test_an_unknown_format_is_an_error_even_for_a_named_dataset() -> None:
    from bench.data.resolve import check_dataset

    with pytest.raises(ConfigError, match="unknown dataset format 'atomc'.*did you mean 'atomic'"):
        check_dataset("tiny", format="atomc")
    check_dataset("tiny", format="atomic")  # known, and unused without a path: fine


def test_an_explainer_without_a_constructor_takes_no_parameters() -> None:
    s = load_suite("tiny", overrides=["explainers=[{name: popularity, params: {k: 3}}]"])
    with pytest.raises(UserError, match="bad parameters for explainer 'popularity'.*takes no parameters"):
        instantiate_explainers(s)


def test_a_task_kind_without_an_answer_type_is_refused() -> None:
    from bench.config import TaskSpec
    from bench.tasks.base import Task

    class NoAnswer(Task):
        kind = "no_answer"

        def metrics(self):
            return []

        def build(self, inp):
            return []

        def score(self, instances, predictions):
            return {}

    spec = TaskSpec(
        name="t", kind="no_answer", version=1, description="", params={}, main_metric="m", path="t.yaml"
    )
    with pytest.raises(
        ConfigError, match="t.yaml:kind: task kind 'no_answer' declares no usable answer type"
    ):
        NoAnswer(spec)
