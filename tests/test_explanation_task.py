"""The explanation_rubric task: instances from a fake target, scores of hand-made explanations
graded by a stub judge (no LLM)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pytest

from bench.data.catalog import Catalog
from bench.data.dataset import Dataset, leave_one_out
from bench.errors import ConfigError
from bench.judge.prompt import JudgeItem, JudgeResult
from bench.tasks.base import BuildInput, TaskSpec
from bench.tasks.explanation import ExplanationRubric
from bench.tasks.grounding import counterfactual_fidelity
from bench.types import Instance, Prediction

N_USERS, N_ITEMS = 40, 30
_ADJ = ("Red", "Silent", "Golden", "Broken", "Hidden", "Last")
_NOUN = ("River", "Garden", "Empire", "Harbor", "Machine")
TITLES = tuple(f"{a} {n}" for a in _ADJ for n in _NOUN)  # 30 distinct two-word titles


def make_dataset() -> Dataset:
    rng = np.random.default_rng(3)
    users, items, stamps = [], [], []
    for u in range(N_USERS):
        seq = rng.choice(N_ITEMS, size=int(rng.integers(11, 15)), replace=False)
        users += [u] * len(seq)
        items += seq.tolist()
        stamps += list(range(len(seq)))
    return Dataset(
        name="tiny-explain",
        user_ids=tuple(f"u{u}" for u in range(N_USERS)),
        item_ids=tuple(f"i{i}" for i in range(N_ITEMS)),
        titles=TITLES,
        genres=tuple(("Drama",) for _ in range(N_ITEMS)),
        years=tuple(None for _ in range(N_ITEMS)),
        users=np.asarray(users, dtype=np.int64),
        items=np.asarray(items, dtype=np.int64),
        timestamps=np.asarray(stamps, dtype=np.float64),
    )


class LinearTarget:
    """score(j | H) = Σ_{h∈H} W[h, j] with random W: every history item nudges every item."""

    name = "linear"
    n_items = N_ITEMS

    def __init__(self) -> None:
        self.W = np.random.default_rng(0).normal(size=(N_ITEMS, N_ITEMS))

    def scores(self, histories: Sequence[Sequence[int]], *, mask_history: bool = True) -> np.ndarray:
        out = np.zeros((len(histories), N_ITEMS), dtype=np.float32)
        for r, h in enumerate(histories):
            out[r] = self.W[list(h)].sum(axis=0) if len(h) else 0.0
            if mask_history and len(h):
                out[r, list(h)] = -np.inf
        return out


class StubJudge:
    """Grades by a tag in the explanation: ``[g=2]`` -> 2, ``[g=?]`` or no tag -> unreadable."""

    id = "stub-judge"
    fingerprint = "1"

    def __init__(self) -> None:
        self.seen: list[JudgeItem] = []

    def grade(self, items: Sequence[JudgeItem]) -> list[JudgeResult]:
        self.seen += items
        out = []
        for it in items:
            m = re.search(r"\[g=(\d)\]", it.explanation)
            out.append(
                JudgeResult(int(m.group(1)) if m else None, f"PROMPT {it.item}\nREPLY {m and m.group(0)}")
            )
        return out


def make_task(**params) -> ExplanationRubric:
    spec = TaskSpec(
        name="explanation_rubric",
        kind="explanation_rubric",
        version=1,
        description="",
        params={"max_users": 10, **params},
        main_metric="rubric",
    )
    return ExplanationRubric(spec)


@pytest.fixture(scope="module")
def setup():
    ds = make_dataset()
    split = leave_one_out(ds)
    target = LinearTarget()
    task = make_task()
    inp = BuildInput(
        split=split, target=target, rows=np.arange(40), part="align_test", rng=np.random.default_rng(0)
    )
    insts = task.build(inp)
    return ds, split, target, task, insts


def test_build(setup):
    ds, split, target, task, insts = setup
    assert len(insts) == 20 and len({i.user for i in insts}) == 10  # max_users of 40
    assert [i.label for i in insts] == [1, 0] * 10
    for inst in insts:
        (item,) = inst.candidates
        assert item not in inst.history and len(inst.history) == 9
        assert set(inst.meta) == {"target_rank", "n_unseen", "target_score", "prefix_len"}
        m, r = inst.meta["n_unseen"], inst.meta["target_rank"]
        prior = split.train[int(np.searchsorted(split.users, inst.user))]
        assert inst.meta["prefix_len"] == len(prior) and item not in set(prior.tolist())
        assert m == N_ITEMS - len(set(prior.tolist()))  # the whole prior history is excluded
        assert (r < max(1, int(0.2 * m))) if inst.label == 1 else (r >= m - max(1, int(0.5 * m)))
        assert inst.meta["target_score"] == pytest.approx(float(target.scores([inst.history])[0, item]))
        assert "pos" not in inst.key and "neg" not in inst.key and inst.key.endswith(("/a", "/b"))
        assert inst.instance_id not in inst.key and len(inst.instance_id) == 16
    again = make_task().build(
        BuildInput(
            split=split, target=target, rows=np.arange(40), part="align_test", rng=np.random.default_rng(0)
        )
    )
    assert [i.to_json() for i in again] == [i.to_json() for i in insts]  # seeded subset and sampling


def _explanations(insts: list[Instance], catalog: Catalog) -> list[str]:
    texts = []
    for k, inst in enumerate(insts):
        h = [catalog.title(x) for x in inst.history]
        item = catalog.title(inst.candidates[0])
        decision = "Yes" if inst.label else "No"
        wrong = "No" if inst.label else "Yes"
        texts.append(
            [
                f"{decision}. The user watched {h[0]} and {h[1]}, so {item} fits. [g=3]",  # cites 2
                f"{wrong}, not for them. [g=2]",  # wrong decision, cites nothing
                f'{decision}: like "{h[2]}" and "Nonexistent Picture". [g=1]',  # 1 real + 1 invented
                "Maybe. [g=?]",  # unreadable grade, no decision
                "",  # empty explanation
            ][k % 5]
        )
    return texts


def test_score_every_metric(setup, tmp_path):
    ds, split, target, task, insts = setup
    catalog = Catalog.from_dataset(ds)
    judge = StubJudge()
    task.bind(
        target=target, dataset=ds, catalog=catalog, cache_dir=tmp_path, device="cpu", seed=0, judge=judge
    )
    texts = _explanations(insts, catalog)
    preds = [
        Prediction(instance_id=i.instance_id, output=t, raw=t) for i, t in zip(insts, texts, strict=True)
    ]
    res = task.score(insts, preds)
    assert set(res) == {m.name for m in task.metrics()}
    for name, vec in res.items():
        assert vec.shape == (len(insts),) and np.isfinite(vec).all(), name
    kind = np.arange(len(insts)) % 5
    np.testing.assert_array_equal(res["rubric"], np.array([3, 2, 1, 0, 0])[kind])
    np.testing.assert_array_equal(res["judge_parse_failure"], np.array([0, 0, 0, 1, 1])[kind])
    eq = np.stack([res[f"rubric_eq_{k}"] for k in range(4)], axis=1)
    np.testing.assert_array_equal(eq.sum(axis=1), np.ones(len(insts)))
    np.testing.assert_array_equal(eq.argmax(axis=1), res["rubric"])
    np.testing.assert_array_equal(res["cites_items"], np.array([1, 0, 1, 0, 0])[kind])
    np.testing.assert_array_equal(res["cited_hallucination"], np.array([0, 0, 0.5, 0, 0])[kind])
    np.testing.assert_array_equal(res["decision_correct"], np.array([1, 0, 1, 0, 0])[kind])
    assert res["length_words"][kind == 4].tolist() == [0.0] * 4 and (res["length_words"][kind == 0] > 5).all()
    assert (res["cf_fidelity"][res["cites_items"] == 0] == 0.0).all()
    for m in task.metrics():
        if m.binary:
            assert set(np.unique(res[m.name])) <= {0.0, 1.0}, m.name

    # cf_fidelity equals the pure function with the task's per-instance generator.
    j = 0
    inst = insts[j]
    direct = counterfactual_fidelity(
        target, inst.history, inst.candidates[0], inst.history[:2], rng=task._instance_rng(inst), like=True
    )
    assert res["cf_fidelity"][j] == pytest.approx(direct["fidelity"])

    # What the judge saw: titles, f's decision, the explanation.
    seen = judge.seen[1]
    assert seen.decision == "No" and seen.history == tuple(catalog.title(h) for h in insts[1].history)
    assert seen.item == catalog.title(insts[1].candidates[0]) and seen.explanation == texts[1]

    # Scoring again (and the details) reuses the judgements.
    n_seen = len(judge.seen)
    details = task.sample_details(insts, preds)
    assert len(judge.seen) == n_seen
    assert len(details) == len(insts)
    d0, d2, d3 = details[0], details[2], details[3]
    assert d0["judge"] == "stub-judge" and d0["judge_grade"] == 3 and d0["grade_used"] == 3
    assert d0["judge_transcript"].startswith("PROMPT ")
    assert d0["cited_items"] == list(insts[0].history[:2])
    assert d0["cited_titles"] == [catalog.title(h) for h in insts[0].history[:2]]
    assert d0["counterfactual"]["cites"] == 1 and len(d0["counterfactual"]["random_sets"]) == 5
    assert d2["hallucinated_citations"] == ["Nonexistent Picture"]
    assert d3["judge_grade"] is None and d3["grade_used"] == 0 and d3["stated_decision"] is None


def test_faithful_citations_beat_unfaithful_ones(setup):
    """Citing the history items that lift a liked item most gives positive fidelity; citing the
    ones that hold it down gives negative fidelity."""
    ds, split, target, task, insts = setup
    catalog = Catalog.from_dataset(ds)
    task.bind(target=target, catalog=catalog, seed=0, judge=StubJudge())
    likes = [i for i in insts if i.label == 1]
    texts_best, texts_worst = [], []
    for inst in likes:
        w = target.W[list(inst.history), inst.candidates[0]]
        best = [inst.history[k] for k in np.argsort(-w)[:2]]
        worst = [inst.history[k] for k in np.argsort(w)[:2]]
        texts_best.append("Yes: " + " and ".join(catalog.title(h) for h in best))
        texts_worst.append("Yes: " + " and ".join(catalog.title(h) for h in worst))
    best = task.score(
        likes, [Prediction(i.instance_id, t, t) for i, t in zip(likes, texts_best, strict=True)]
    )
    worst = task.score(
        likes, [Prediction(i.instance_id, t, t) for i, t in zip(likes, texts_worst, strict=True)]
    )
    assert (best["cites_items"] == 1).all()
    assert best["cf_fidelity"].mean() > 0.05 and worst["cf_fidelity"].mean() < 0


def test_binding_and_config_errors(setup):
    *_, insts = setup
    with pytest.raises(RuntimeError, match="bind"):
        make_task().score(insts[:1], [Prediction(insts[0].instance_id, "Yes", "Yes")])
    with pytest.raises(ConfigError, match="cf_measure"):
        make_task(cf_measure="bogus")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_task(judge_temperature=0.5)


def test_shipped_yaml_loads():
    from bench.config import load_task
    from bench.resources import tasks_dir

    spec = load_task("explanation_rubric", [tasks_dir()], {}, where="test")
    task = ExplanationRubric(spec)
    assert task.params == {**ExplanationRubric.defaults, **spec.params}
    assert set(spec.params) == set(ExplanationRubric.defaults)
    assert spec.main_metric == "rubric" and task.params["judge"] == "smollm2-135m"
    assert task.protocol()["judge_id"] == "smollm2-135m"
