"""The bad-input cases of the reliability campaign (issue 17): each builds one mistake in a tmp dir.

Every case returns the ``recxbench`` argv that meets the mistake; the test runs it and requires
exit 2, one ``recxbench: error:`` line holding ``needle``, no traceback and no ``results.json``.
``tests/test_reliability_inputs.py`` runs them and writes the table of ``docs/RELIABILITY.md``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: a run that would stay cheap if a case unexpectedly got through its checks
CHEAP = [
    "--set", "target.params.epochs=1",
    "--set", "explainers=[random]",
    "--set", "tasks=[item_ranking]",
    "--set", "stats.resamples=100",
]  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One bad input: its id, its group, what it is, how to build it and what the message must say."""

    kind: str
    group: str
    what: str
    build: Callable[[Path], list[str]]
    needle: str


def atomic_dir(tmp: Path, *, inter: str | bytes | None = None, item: str | bytes | None = None) -> Path:
    """A valid 40-user, 30-item RecBole atomic dataset, with ``inter``/``item`` text replacing a file."""
    d = tmp / "data"
    d.mkdir(exist_ok=True)
    if inter is None:
        rows = ["user_id:token\titem_id:token\ttimestamp:float"]
        for u in range(40):
            for k in range(8):
                rows.append(f"u{u}\ti{(u * 7 + k * 3) % 30}\t{1000 + 10 * k}")
        inter = "\n".join(rows) + "\n"
    if item is None:
        item = "item_id:token\ttitle:token_seq\n" + "".join(f"i{i}\tMovie number {i}\n" for i in range(30))
    for name, body in (("data.inter", inter), ("data.item", item)):
        path = d / name
        path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    return d


def _data_run(tmp: Path, d: Path, *extra: str) -> list[str]:
    return ["run", "tiny", "--out", str(tmp / "run"), "--set", f"dataset.path={d}", *CHEAP, *extra]


def _inter(text: str) -> Callable[[Path], list[str]]:
    return lambda tmp: _data_run(tmp, atomic_dir(tmp, inter=text))


def _item(text: str | bytes) -> Callable[[Path], list[str]]:
    return lambda tmp: _data_run(tmp, atomic_dir(tmp, item=text))


def _files(files: dict[str, bytes], *extra: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        d = tmp / "data"
        d.mkdir(exist_ok=True)
        for name, body in files.items():
            (d / name).write_bytes(body)
        return _data_run(tmp, d, *extra)

    return build


def _suite(text: str, *extra: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        path = tmp / "mysuite.yaml"
        path.write_text(text, encoding="utf-8")
        return ["run", str(path), "--out", str(tmp / "run"), *extra]

    return build


def _run(*args: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["run", "tiny", "--out", str(tmp / "run"), *CHEAP, *args]


HEAD = "user_id:token\titem_id:token\ttimestamp:float\n"
OK_SUITE = (
    "suite: mine\ndataset: {name: tiny, params: {n_users: 60}}\ntasks: [item_ranking]\nexplainers: [random]\n"
)


DATA_CASES = [
    Case(
        "data-missing-column",
        "data",
        "interactions header without item_id",
        _inter("user_id:token\ttimestamp:float\nu1\t1\n"),
        "missing required column 'item_id'",
    ),
    Case(
        "data-extra-field",
        "data",
        "a row with more fields than its header",
        _inter(HEAD + "u1\ti1\t1\textra\n"),
        "expected 3 tab-separated fields",
    ),
    Case(
        "data-short-row",
        "data",
        "a row with fewer fields than its header",
        _inter(HEAD + "u1\ti1\n"),
        "expected 3 tab-separated fields",
    ),
    Case(
        "data-timestamp-text",
        "data",
        "a non-numeric timestamp",
        _inter(HEAD + "u1\ti1\t1\nu1\ti2\tyesterday\n"),
        "data.inter:3",
    ),
    Case(
        "data-timestamp-inf",
        "data",
        "an infinite timestamp",
        _inter(HEAD + "u1\ti1\tinf\n"),
        "not a finite number",
    ),
    Case("data-empty-id", "data", "an empty user id", _inter(HEAD + "\ti1\t1\n"), "empty user_id"),
    Case("data-empty-file", "data", "an empty interactions file", _inter(""), "data.inter is empty"),
    Case("data-header-only", "data", "a header and no interactions", _inter(HEAD), "has no interactions"),
    Case(
        "data-latin1",
        "data",
        "a file that is not UTF-8 (Latin-1 bytes)",
        _item(b"item_id:token\ttitle:token_seq\ni1\tAm\xe9lie\n"),
        "is not UTF-8",
    ),
    Case(
        "data-unknown-item",
        "data",
        "an interaction naming an item missing from the .item file",
        _item("item_id:token\ttitle:token_seq\ni0\tOnly one\n"),
        "not in data.item",
    ),
    Case(
        "data-duplicate-item",
        "data",
        "the same item id twice in the .item file",
        _item("item_id:token\ttitle:token_seq\ni0\tA\ni0\tB\n"),
        "duplicate item id",
    ),
    Case(
        "data-too-few-users",
        "data",
        "every user has one interaction (none left after min_interactions)",
        _inter(HEAD + "".join(f"u{u}\ti{u}\t{u}\n" for u in range(30))),
        "min_interactions",
    ),
    Case(
        "data-no-path",
        "data",
        "dataset.path that does not exist",
        lambda tmp: _data_run(tmp, tmp / "nowhere"),
        "nowhere",
    ),
    Case(
        "data-no-inter",
        "data",
        "a dataset directory without an interactions file",
        _files({"readme.txt": b"hello\n"}),
        "cannot tell the dataset format",
    ),
    Case(
        "data-gzip-not-gzip",
        "data",
        "an Amazon .json.gz file that is not gzip",
        _files({"Video_Games_5.json.gz": b'{"reviewerID": "a"}\n'}),
        "not gzip",
    ),
    Case(
        "data-amazon-not-json",
        "data",
        "an Amazon review line that is not JSON",
        _files({"Video_Games_5.json.gz": gzip.compress(b"this is not json\n")}),
        "Video_Games_5.json.gz:1",
    ),
    Case(
        "data-steam-not-literal",
        "data",
        "a Steam review line that is neither JSON nor a Python literal",
        _files({"steam_reviews.json.gz": gzip.compress(b"{'username': \n")}),
        "steam_reviews.json.gz:1",
    ),
    Case(
        "data-unknown-format",
        "data",
        "dataset.format naming no registered format",
        _run("--set", "dataset.format=parquet", "--set", "dataset.path=."),
        "unknown dataset format",
    ),
]

SUITE_CASES = [
    Case(
        "yaml-syntax", "suite", "a suite file that is not YAML", _suite("suite: [unclosed\n"), "invalid YAML"
    ),
    Case(
        "yaml-python-tag",
        "suite",
        "a `!!python/object/apply` tag in a suite file",
        _suite("suite: !!python/object/apply:os.system ['echo hi']\n"),
        "tag is refused",
    ),
    Case(
        "yaml-not-mapping",
        "suite",
        "a suite file whose top level is a list",
        _suite("- a\n- b\n"),
        "must be a mapping",
    ),
    Case(
        "yaml-unknown-top-key",
        "suite",
        "an unknown top-level key",
        _suite(OK_SUITE + "explainer: [random]\n"),
        "unknown key 'explainer'",
    ),
    Case(
        "yaml-unknown-nested-key",
        "suite",
        "an unknown key two levels down",
        _suite(OK_SUITE + "users: {align_tset: 0.3}\n"),
        "unknown key 'users.align_tset'",
    ),
    Case(
        "yaml-unknown-stats-key",
        "suite",
        "an unknown stats key (--set)",
        _run("--set", "stats.alpah=0.1"),
        "unknown key 'stats.alpah'",
    ),
    Case(
        "yaml-wrong-type", "suite", "a seed that is not an integer", _suite(OK_SUITE + "seed: abc\n"), "seed"
    ),
    Case(
        "yaml-mapping-expected",
        "suite",
        "a scalar where a mapping belongs",
        _suite(OK_SUITE + "stats: 5\n"),
        "'stats' must be a mapping",
    ),
    Case(
        "yaml-negative-size",
        "suite",
        "a negative bootstrap resample count",
        _run("--set", "stats.resamples=-5"),
        "resamples",
    ),
    Case(
        "yaml-ratios",
        "suite",
        "user shares that sum to more than 1",
        _run("--set", "users.align_train=0.9"),
        "align",
    ),
    Case(
        "yaml-alpha-range",
        "suite",
        "a significance level outside (0, 1)",
        _run("--set", "stats.alpha=1.5"),
        "alpha",
    ),
    Case(
        "yaml-unknown-task",
        "suite",
        "a task no file or registry defines",
        _run("--set", "tasks=[item_rankin]"),
        "item_rankin",
    ),
    Case(
        "yaml-unknown-explainer",
        "suite",
        "an explainer name no registry knows",
        _run("--set", "explainers=[randon]"),
        "did you mean 'random'",
    ),
    Case(
        "yaml-duplicate-label",
        "suite",
        "two explainers with the same label",
        _run("--set", "explainers=[random, random]"),
        "random",
    ),
    Case(
        "yaml-claim-unknown-explainer",
        "suite",
        "a claim naming an explainer no registry knows",
        _run("--set", "claims=['oracle-x > random on item_ranking/ndcg@5']"),
        "oracle-x",
    ),
    Case(
        "yaml-claim-unknown-metric",
        "suite",
        "a claim naming a metric the task does not report",
        _run(
            "--set",
            "explainers=[random, popularity]",
            "--set",
            "claims=['random > popularity on item_ranking/ndcg@50']",
        ),
        "which task 'item_ranking' does not report",
    ),
    Case(
        "yaml-claim-syntax",
        "suite",
        "a claim that is not `A > B on task/metric`",
        _run("--set", "claims=['random beats popularity']"),
        "claim",
    ),
    Case(
        "yaml-task-param-unknown",
        "suite",
        "a task parameter the task does not take",
        _run("--set", "task_params={item_ranking: {n_candidate: 5}}"),
        "n_candidate",
    ),
    Case(
        "yaml-cap-zero",
        "suite",
        "a user cap of zero (max_test: 0)",
        _run("--set", "users.max_test=0"),
        "max_test",
    ),
    Case(
        "yaml-zero-instances",
        "suite",
        "a task left with zero align-test instances (align_test share too small)",
        _run("--set", "users.align_test=0.001"),
        "no align-test instances",
    ),
    Case(
        "yaml-unknown-target",
        "suite",
        "a target recommender no registry knows",
        _run("--set", "target.name=sasrek"),
        "sasrek",
    ),
    Case(
        "yaml-bad-target-param",
        "suite",
        "a target parameter the target does not take",
        _run("--set", "target.params={epoch: 3}"),
        "epoch",
    ),
    Case(
        "yaml-unknown-recipe",
        "suite",
        "a dataset recipe no registry knows",
        _run("--set", "dataset.recipe.name=kcore"),
        "kcore",
    ),
    Case(
        "yaml-explainer-param",
        "suite",
        "an explainer parameter it does not take",
        _run("--set", "explainers=[{name: surrogate-tree, params: {depht: 3}}]"),
        "depht",
    ),
]

CLI_CASES = [
    Case("cli-set-no-equals", "cli", "`--set` without `=`", _run("--set", "seed"), "bad --set 'seed'"),
    Case(
        "cli-set-bad-yaml",
        "cli",
        "`--set` with an unparsable list value",
        _run("--set", "explainers=[random"),
        "not valid YAML",
    ),
    Case(
        "cli-unknown-suite",
        "cli",
        "a suite name that is neither a built-in nor a file",
        lambda tmp: ["run", "no-such-suite", "--out", str(tmp / "run")],
        "unknown suite",
    ),
    Case("cli-unknown-device", "cli", "`--device tpu`", _run("--device", "tpu"), "--device"),
    Case("cli-bad-seed", "cli", "`--seed` that is not an integer", _run("--seed", "one"), "--seed"),
    Case("cli-unknown-command", "cli", "an unknown sub-command", lambda tmp: ["runn", "tiny"], "runn"),
    Case(
        "cli-out-is-file",
        "cli",
        "`--out` below a regular file (unwritable)",
        lambda tmp: ["run", "tiny", "--out", str(_touch(tmp / "afile") / "run"), *CHEAP],
        "--out",
    ),
    Case(
        "cli-out-other-suite",
        "cli",
        "`--out` holding a run of another suite",
        lambda tmp: ["run", "tiny", "--out", str(_other_run(tmp)), *CHEAP],
        "another suite",
    ),
    Case(
        "cli-report-not-run",
        "cli",
        "`report` on a directory with no results.json",
        lambda tmp: ["report", str(tmp), "--out", str(tmp / "board")],
        "results.json",
    ),
]


def _touch(path: Path) -> Path:
    path.write_text("not a directory\n")
    return path


def _other_run(tmp: Path) -> Path:
    run = tmp / "run"
    run.mkdir()
    (run / "manifest.json").write_text('{"suite": "quick"}\n')
    return run


def _judge(mode: str | None) -> Callable[[Path], list[str]]:
    """A run whose explanation task is graded by the test server in ``mode`` (None: a closed port)."""

    def build(tmp: Path) -> list[str]:
        if mode is None:
            import socket

            with socket.socket() as s:  # a port nobody listens on
                s.bind(("127.0.0.1", 0))
                url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        else:
            from flaky_judge import shared_server

            url = shared_server().url(mode)
        judge = f"{{url: '{url}', model: m, max_retries: 1, backoff: 0.01, timeout: 0.5}}"
        return [
            "run", "tiny", "--out", str(tmp / "run"), *CHEAP,
            "--set", "tasks=[explanation_rubric]",
            "--set", f"task_params={{explanation_rubric: {{judge: {judge}, max_users: 4}}}}",
        ]  # fmt: skip

    return build


def _backbone(make: Callable[[Path], str]) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        spec = make(tmp)
        return [
            "run",
            "tiny",
            "--out",
            str(tmp / "run"),
            *CHEAP,
            "--set",
            f"explainers=[{{name: zero-shot-llm, params: {{backbone: '{spec}'}}}}]",
        ]

    return build


def _not_a_model(tmp: Path) -> str:
    d = tmp / "model"
    d.mkdir()
    (d / "weights.bin").write_bytes(b"\0" * 64)
    return str(d)


def _bad_config(tmp: Path) -> str:
    d = tmp / "model"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama", "hidden_size": "big"')
    return str(d)


def _truncated_gguf(tmp: Path) -> str:
    path = tmp / "model.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x01" * 20)
    return str(path)


JUDGE_CASES = [
    Case(
        "judge-refused",
        "judge",
        "an HTTP judge whose port refuses connections",
        _judge(None),
        "failed 2 times",
    ),
    Case("judge-500", "judge", "an HTTP judge that always answers HTTP 500", _judge("500"), "HTTP 500"),
    Case("judge-timeout", "judge", "an HTTP judge that hangs past the time-out", _judge("hang"), "timed out"),
    Case(
        "judge-not-json", "judge", "an HTTP judge whose replies are not JSON", _judge("garbage"), "not JSON"
    ),
    Case(
        "judge-no-content",
        "judge",
        "an HTTP judge whose JSON has no choices[0].message.content",
        _judge("nocontent"),
        "choices[0].message.content",
    ),
    Case("judge-401", "judge", "an HTTP judge that refuses the key (HTTP 401)", _judge("401"), "HTTP 401"),
    Case(
        "judge-no-model",
        "judge",
        "an HTTP judge given without a model name",
        lambda tmp: _run(
            "--set",
            "tasks=[explanation_rubric]",
            "--set",
            "task_params={explanation_rubric: {judge: {url: 'http://127.0.0.1:9/v1'}}}",
        )(tmp),
        "no model given",
    ),
]

MODEL_CASES = [
    Case(
        "model-not-a-model",
        "model",
        "a backbone path that is a directory without config.json",
        _backbone(_not_a_model),
        "not a model",
    ),
    Case(
        "model-bad-config",
        "model",
        "a backbone directory whose config.json is truncated",
        _backbone(_bad_config),
        "cannot load",
    ),
    Case(
        "model-truncated-gguf",
        "model",
        "a truncated .gguf backbone",
        _backbone(_truncated_gguf),
        "model.gguf",
    ),
    Case(
        "model-no-such-alias",
        "model",
        "a backbone that is neither an alias nor a path",
        _backbone(lambda tmp: "smollm9-1b"),
        "not an alias",
    ),
]

CASES = DATA_CASES + SUITE_CASES + CLI_CASES + JUDGE_CASES + MODEL_CASES
