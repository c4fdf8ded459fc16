"""Unit tests of ``recxbench compare`` (bench.compare) on small hand-made run directories."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.compare import compare_runs
from bench.errors import UserError

N = 40
R = 500  # resamples: p >= 1/501, plenty below alpha for a real drop


def _specs() -> dict[str, Any]:
    return {
        "rank": {
            "config_sha256": "a" * 64,
            "metrics": [
                {"name": "ndcg", "higher_is_better": True, "binary": False},
                {"name": "halluc", "higher_is_better": False, "binary": False},
            ],
        },
        "classify": {"config_sha256": "b" * 64, "metrics": [{"name": "acc", "higher_is_better": True, "binary": True}]},
    }  # fmt: skip


def _base_scores() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return {
        "rank": {"ndcg": rng.uniform(0.3, 0.9, N), "halluc": rng.uniform(0.0, 0.4, N)},
        "classify": {"acc": (rng.uniform(size=N) < 0.7).astype(float)},
    }


def make_run(
    root: Path,
    scores: dict[str, dict[str, np.ndarray]] | None = None,
    *,
    explainers: tuple[str, ...] = ("ex",),
    ids: list[str] | None = None,
    **top: Any,
) -> Path:
    """A run directory: results.json plus samples/<explainer>/<task>.jsonl for every task of ``scores``."""
    scores = _base_scores() if scores is None else scores
    ids = ids or [f"i{k:03d}" for k in range(N)]
    specs = {t: s for t, s in _specs().items() if t in scores}
    rows = []
    for e in explainers:
        for task, metrics in scores.items():
            samples = root / "samples" / e / f"{task}.jsonl"
            samples.parent.mkdir(parents=True, exist_ok=True)
            lines = [
                {"instance_id": i, "user_id": k, "scores": {m: float(v[k]) for m, v in metrics.items()}}
                for k, i in enumerate(ids)
            ]
            samples.write_text("".join(json.dumps(x) + "\n" for x in lines))
            rows += [
                {"explainer": e, "task": task, "metric": m, "value": float(np.mean(v)), "n": len(v)}
                for m, v in metrics.items()
            ]
    data = {
        "schema_version": 1,
        "suite": "mini",
        "seed": 0,
        "alpha": 0.05,
        "dataset": {"name": "toy", "sha256": "d" * 64},
        "tasks": specs,
        "results": rows,
        "tolerances": {},
        "protocol": {"resampling_unit": {t: "instance" for t in specs}},
    }
    data.update(top)
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(json.dumps(data))
    return root


def _scores(**changes: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """The baseline scores with some ``task__metric`` vectors replaced."""
    s = _base_scores()
    for key, v in changes.items():
        task, metric = key.split("__")
        s[task][metric] = v
    return s


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return make_run(tmp_path / "base")


def _compare(run: Path, baseline: Path, **kw: Any):
    return compare_runs(run, baseline, resamples=R, **kw)


# ----------------------------------------------------------------------------------- no change


def test_a_run_against_itself_has_no_change(base: Path) -> None:
    rep = _compare(base, base)
    assert rep.regressions == [] and rep.improvements == []
    assert rep.unchanged == 3  # ndcg, halluc, acc of the one explainer
    assert "**No regressions.**" in rep.markdown and "3 metric(s) unchanged" in rep.markdown


# ----------------------------------------------------------------------------------- regressions


def test_a_significant_drop_is_a_regression(base: Path, tmp_path: Path) -> None:
    ndcg = _base_scores()["rank"]["ndcg"] - 0.2
    rep = _compare(make_run(tmp_path / "cur", _scores(rank__ndcg=ndcg)), base)
    (change,) = rep.regressions
    assert (change.explainer, change.task, change.metric) == ("ex", "rank", "ndcg")
    assert change.delta == pytest.approx(-0.2) and change.worse_by == pytest.approx(0.2)
    assert change.current == pytest.approx(float(np.mean(ndcg)))
    assert change.baseline == pytest.approx(float(np.mean(_base_scores()["rank"]["ndcg"])))
    assert change.test == "paired_randomization" and change.n == N
    assert change.p_adjusted < 0.05 and change.p_adjusted >= change.p_value
    assert change.reason.startswith("significant drop (p_adj=")
    assert "**1 regression(s)**" in rep.markdown and "| ex " in rep.markdown
    assert rep.unchanged == 2


def test_binary_metric_uses_mcnemar(base: Path, tmp_path: Path) -> None:
    rep = _compare(make_run(tmp_path / "cur", _scores(classify__acc=np.zeros(N))), base)
    (change,) = rep.regressions
    assert change.metric == "acc" and change.test == "mcnemar_exact"
    assert change.current == 0.0


def test_lower_is_better_direction(base: Path, tmp_path: Path) -> None:
    halluc = _base_scores()["rank"]["halluc"]
    worse = _compare(make_run(tmp_path / "worse", _scores(rank__halluc=halluc + 0.3)), base)
    assert [c.metric for c in worse.regressions] == ["halluc"] and worse.improvements == []
    (drop,) = worse.regressions
    assert drop.delta == pytest.approx(0.3) and drop.worse_by == pytest.approx(0.3)
    better = _compare(make_run(tmp_path / "better", _scores(rank__halluc=np.zeros(N))), base)
    assert better.regressions == []
    (imp,) = better.improvements
    assert imp.metric == "halluc" and imp.worse_by < 0 and imp.reason == "significant improvement"
    assert "1 improvement(s):" in better.markdown


def test_a_significant_gain_is_an_improvement(base: Path, tmp_path: Path) -> None:
    ndcg = _base_scores()["rank"]["ndcg"] + 0.1
    rep = _compare(make_run(tmp_path / "cur", _scores(rank__ndcg=ndcg)), base)
    assert rep.regressions == [] and [c.metric for c in rep.improvements] == ["ndcg"]


def test_alpha_decides_significance(base: Path, tmp_path: Path) -> None:
    ndcg = _base_scores()["rank"]["ndcg"].copy()
    ndcg[:6] -= 0.25  # a small drop on a few instances: p between 0.001 and 0.5
    cur = make_run(tmp_path / "cur", _scores(rank__ndcg=ndcg))
    loose = _compare(cur, base, alpha=0.5)
    assert [c.metric for c in loose.regressions] == ["ndcg"]
    p = loose.regressions[0].p_adjusted
    assert 0.002 < p < 0.5
    strict = _compare(cur, base, alpha=p / 2)
    assert strict.regressions == [] and strict.unchanged == 3


# ----------------------------------------------------------------------------------- tolerance


def _small_drop(tmp_path: Path, **top: Any) -> Path:
    """ndcg lower by 0.01 on one instance of 40 (mean drop 0.00025): never significant."""
    ndcg = _base_scores()["rank"]["ndcg"].copy()
    ndcg[0] -= 0.01
    return make_run(tmp_path / "cur", _scores(rank__ndcg=ndcg), **top)


def test_tolerance_flags_a_drop_that_is_not_significant(base: Path, tmp_path: Path) -> None:
    cur = _small_drop(tmp_path)
    assert _compare(cur, base).regressions == []
    (change,) = _compare(cur, base, tolerance=0.0001).regressions
    assert change.metric == "ndcg" and change.p_adjusted >= 0.05
    assert change.worse_by == pytest.approx(0.01 / N)
    assert change.reason == f"drop {change.worse_by:.4f} > tolerance 0.0001"


def test_tolerance_is_not_exceeded_by_an_equal_drop(base: Path, tmp_path: Path) -> None:
    cur = _small_drop(tmp_path)
    drop = 0.01 / N
    assert _compare(cur, base, tolerance=drop).regressions == []
    assert _compare(cur, base, tolerance=drop * 2).regressions == []


def test_suite_tolerances_per_metric_and_the_flag_overrides(base: Path, tmp_path: Path) -> None:
    cur = _small_drop(tmp_path, tolerances={"rank/ndcg": 0.0001, "rank/halluc": 0.5})
    assert [c.metric for c in _compare(cur, base).regressions] == ["ndcg"]
    assert _compare(cur, base, tolerance=0.01).regressions == []


def test_tolerance_ignores_improvements(base: Path, tmp_path: Path) -> None:
    ndcg = _base_scores()["rank"]["ndcg"].copy()
    ndcg[0] += 0.01
    cur = make_run(tmp_path / "cur", _scores(rank__ndcg=ndcg))
    rep = _compare(cur, base, tolerance=0.0)
    assert rep.regressions == [] and rep.improvements == [] and rep.unchanged == 3


# ----------------------------------------------------------------------------------- what is compared


def test_only_shared_explainers_and_tasks_are_compared(base: Path, tmp_path: Path) -> None:
    only_rank = {"rank": _base_scores()["rank"]}
    cur = make_run(tmp_path / "cur", only_rank, explainers=("ex", "new"))
    rep = _compare(cur, base)
    assert rep.unchanged == 2 and rep.regressions == []  # ex/rank/{ndcg, halluc}; "new" and classify skipped


def test_holm_runs_over_every_comparison_of_the_gate(base: Path, tmp_path: Path) -> None:
    s = _base_scores()
    cur = make_run(tmp_path / "cur", _scores(rank__ndcg=s["rank"]["ndcg"] - 0.2, classify__acc=np.zeros(N)))
    rep = _compare(cur, base)
    assert sorted(c.metric for c in rep.regressions) == ["acc", "ndcg"]
    for c in rep.regressions:
        assert c.p_adjusted >= c.p_value and c.p_adjusted <= min(1.0, 3 * c.p_value) + 1e-12


# ----------------------------------------------------------------------------------- incomparable runs


def test_different_task_config_is_incomparable(base: Path, tmp_path: Path) -> None:
    specs = _specs()
    specs["rank"]["config_sha256"] = "0" * 64
    cur = make_run(tmp_path / "cur", tasks=specs)
    with pytest.raises(UserError) as err:
        _compare(cur, base)
    text = str(err.value)
    assert "task 'rank' is configured differently in the run and the baseline" in text
    assert "refresh the baseline" in text and "\n" not in text


def test_different_dataset_is_incomparable(base: Path, tmp_path: Path) -> None:
    cur = make_run(tmp_path / "cur", dataset={"name": "toy", "sha256": "e" * 64})
    with pytest.raises(UserError, match="use different datasets"):
        _compare(cur, base)


def test_no_task_in_common_is_incomparable(base: Path, tmp_path: Path) -> None:
    cur = make_run(tmp_path / "cur", tasks={"other": {"config_sha256": "c" * 64}})
    with pytest.raises(UserError, match="no task in common"):
        _compare(cur, base)


def test_different_instances_are_incomparable(base: Path, tmp_path: Path) -> None:
    ids = [f"i{k:03d}" for k in range(N)]
    ids[:3] = ["x1", "x2", "x3"]
    cur = make_run(tmp_path / "cur", ids=ids)
    with pytest.raises(UserError) as err:
        _compare(cur, base)
    assert "scored on different instances (3 baseline ids missing, 3 new)" in str(err.value)
    assert str(err.value).startswith(str(cur / "samples" / "ex"))


def test_other_suite_name_warns_and_compares(
    base: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cur = make_run(tmp_path / "cur", suite="mini-renamed")
    with caplog.at_level(logging.WARNING, logger="bench.results"):
        rep = _compare(cur, base)
    assert rep.unchanged == 3 and "differently named suites" in caplog.text


def test_not_a_run_directory_and_bad_files(base: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no results.json"):
        _compare(tmp_path / "nowhere", base)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        _compare(broken, base)
    newer = make_run(tmp_path / "newer", schema_version=2)
    with pytest.raises(UserError, match="unsupported schema_version 2"):
        _compare(newer, base)
    missing = make_run(tmp_path / "missing")
    (missing / "samples" / "ex" / "rank.jsonl").unlink()
    with pytest.raises(UserError, match="samples file missing"):
        _compare(missing, base)
