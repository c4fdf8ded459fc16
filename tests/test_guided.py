"""guided-embedding: the attribute reader, its cache, the scorer, the YAML, and a tiny run end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("single_thread")

torch = pytest.importorskip("torch")

from bench.explainers.guided_model import Examples, GuidedScorer, train_scorer  # noqa: E402
from bench.llm.attributes import DIGITS, AttributeScorer, ItemText, expected_scores, load_attributes  # noqa: E402


def _items(titles: list[str]) -> list[ItemText]:
    genres = [("Action",), ("Comedy", "Drama"), ()]
    return [ItemText(t, 1990 + i % 7 if i % 3 else None, genres[i % 3]) for i, t in enumerate(titles)]


@pytest.fixture
def scorer(tiny, tmp_path: Path) -> AttributeScorer:
    from llm_fixtures import TITLES

    return AttributeScorer(
        tiny, load_attributes("movies"), _items(TITLES), directory=tmp_path / "attr", batch_size=3
    )


def test_expected_score_equals_a_brute_force_softmax_over_the_five_digits(
    scorer: AttributeScorer, tiny
) -> None:
    items = [0, 5, 11, 47]
    got = expected_scores(scorer.digit_logprobs(items))
    digits = [tiny.tokenizer(d, add_special_tokens=False)["input_ids"][0] for d in DIGITS]
    for r, item in enumerate(items):
        part, suffixes = scorer.prompt_parts(item)
        assert len(suffixes) == len(scorer.attributes.attributes)
        for k, suffix in enumerate(suffixes):
            whole = scorer.shared_ids + part + suffix  # the instructions, the item, the attribute
            with torch.no_grad():  # one plain forward pass over the whole prompt, no cache, full vocabulary
                logits = tiny.model(torch.tensor([whole])).logits[0, -1].double()
            p = torch.softmax(logits[digits], dim=0).numpy()
            want = (float(np.dot(p, np.arange(1, 6))) - 1.0) / 4.0
            assert got[r, k] == pytest.approx(want, abs=1e-5)
    assert got.min() >= 0.0 and got.max() <= 1.0


def test_expected_scores_formula() -> None:
    assert expected_scores(np.array([[0.0, -1e9, -1e9, -1e9, -1e9]]))[0] == pytest.approx(0.0)
    assert expected_scores(np.zeros((1, 5)))[0] == pytest.approx(0.5)
    assert expected_scores(np.array([[-1e9, -1e9, -1e9, -1e9, 0.0]]))[0] == pytest.approx(1.0)


def test_the_cache_is_hit_by_signal_and_keyed_by_the_attribute_list(
    scorer: AttributeScorer, tiny, tmp_path: Path
) -> None:
    from llm_fixtures import TITLES

    first = scorer.score([0, 1, 2])
    assert (scorer.hits, scorer.misses) == (0, 3)
    again = AttributeScorer(tiny, load_attributes("movies"), _items(TITLES), directory=tmp_path / "attr")
    second = again.score([1, 2, 3])
    assert (again.hits, again.misses) == (2, 1)
    np.testing.assert_array_equal(first[1:], second[:2])
    other = AttributeScorer(tiny, load_attributes("generic"), _items(TITLES), directory=tmp_path / "attr")
    other.score([1])
    assert (other.hits, other.misses) == (0, 1) and other.path != again.path


def _synthetic(n_users: int, rng: np.random.Generator, A: np.ndarray, V: np.ndarray) -> dict[str, Examples]:
    """Like iff the item's attribute 0 has the sign of the history's mean attribute 0: an answer that
    lies only in the attributes (f's item and user vectors are noise)."""
    n = A.shape[0]
    hists = [rng.choice(n, size=5, replace=False) for _ in range(n_users)]
    items = rng.integers(0, n, size=n_users)
    hist_attr = torch.tensor(np.stack([A[h].mean(0) for h in hists]), dtype=torch.float32)
    users = torch.tensor(rng.normal(size=(n_users, V.shape[1])), dtype=torch.float32)
    label = torch.tensor((np.sign(hist_attr[:, 0].numpy()) == np.sign(A[items, 0])).astype(np.int64))
    return {"classification": Examples(hist_attr, users, torch.tensor(items[:, None]), label)}


@pytest.mark.parametrize("use_attributes", [True, False])
def test_the_scorer_learns_a_task_whose_answer_lies_only_in_the_attributes(use_attributes: bool) -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(80, 4)).astype(np.float32)
    V = rng.normal(size=(80, 8)).astype(np.float32)
    train, valid, test = (_synthetic(k, rng, A, V) for k in (800, 200, 400))
    torch.manual_seed(0)
    model = GuidedScorer(A, V, reduced_dim=4, use_attributes=use_attributes, seed=0)
    train_scorer(
        model,
        train,
        valid,
        weights={"classification": 1.0},
        epochs=80,
        patience=8,
        lr=0.05,
        weight_decay=0.0,
        batch_size=64,
        seed=0,
    )
    ex = test["classification"]
    with torch.no_grad():
        acc = float(((model(ex.hist_attr, ex.user, ex.items)[:, 0] > 0).long() == ex.target).float().mean())
    if use_attributes:
        assert acc > 0.8  # chance is 0.5
    else:
        assert acc < 0.65  # the same scorer without attributes cannot see the answer


def test_every_default_and_assumption_is_documented_in_the_yaml() -> None:
    from bench.explainers.guided import load_guided_defaults
    from bench.resources import tasks_dir

    text = (tasks_dir() / "explainers" / "guided.yaml").read_text(encoding="utf-8")
    keys = set(load_guided_defaults())
    commented = {m.group(1) for m in re.finditer(r"^([a-z_]+):[^\n#]*#\s*\S", text, re.MULTILINE)}
    assert keys and keys <= commented, sorted(keys - commented)
    for name in ("movies", "games", "generic"):
        attrs = load_attributes(name)
        assert len(attrs.attributes) >= 8 and all(a.description.strip() for a in attrs.attributes)
    assert load_attributes("movies").validity["ml-100k"]["humour"] == "Comedy"


def test_unknown_choices_are_errors_not_ignored() -> None:
    from bench.explainers.guided import GuidedEmbedding

    with pytest.raises(ValueError, match="fusion"):
        GuidedEmbedding(fusion="projection")
    from bench.errors import ConfigError

    with pytest.raises(ConfigError):
        GuidedEmbedding(no_such_key=1)


SUITE = """
suite: tiny-guided
backbone: tiny-random
dataset: {name: tiny, params: {n_users: 60, n_items: 40}}
target: {name: sasrec, params: {epochs: 3, patience: 2}}
tasks: [next_item_retrieval, item_ranking, interest_classification, explanation_rubric]
task_params:
  explanation_rubric: {judge: tiny-random, max_users: 6}
explainers:
  - random
  - name: guided-embedding
    params: {items: needed, epochs: 5}
  - name: guided-embedding-no-attributes
    params: {epochs: 5}
stats: {resamples: 200}
"""


@pytest.fixture(scope="module")
def guided_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bench.cli import main

    root = tmp_path_factory.mktemp("guided")
    suite = root / "tiny-guided.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    out = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECXBENCH_HOME", str(root / "home"))
        assert main(["-q", "run", str(suite), "--out", str(out)]) == 0
    return out


def test_both_rows_on_the_board_with_the_validity_card(guided_run: Path) -> None:
    res = json.loads((guided_run / "results.json").read_text())
    rows = {(r["explainer"], r["task"], r["metric"]): r["value"] for r in res["results"]}
    for expl in ("guided-embedding", "guided-embedding-no-attributes"):
        for task, metric in [
            ("next_item_retrieval", "hr@5"),
            ("item_ranking", "ndcg@5"),
            ("interest_classification", "accuracy"),
            ("interest_classification", "auc"),
        ]:
            assert (expl, task, metric) in rows, (expl, task, metric)
    # explanations: only the attribute row explains, and it is scored for grounding and fidelity
    assert ("guided-embedding", "explanation_rubric", "cf_fidelity") in rows
    assert ("guided-embedding-no-attributes", "explanation_rubric", "rubric") not in rows
    from bench.tasks.grounding import parse_decision

    lines = (
        (guided_run / "samples" / "guided-embedding" / "explanation_rubric.jsonl").read_text().splitlines()
    )
    texts = [json.loads(x)["prediction"] for x in lines]
    assert texts and all(parse_decision(t) in (0, 1) for t in texts)  # every explanation states a decision
    card = res["attribute_validity"]["guided-embedding"]
    assert card["dataset"] == "tiny" and {r["metadata"] for r in card["rows"]} >= {"Action", "Comedy"}
    assert all(r["auc"] is None or 0.0 <= r["auc"] <= 1.0 for r in card["rows"])
    info = res["explainers"]["guided-embedding"]["attribute_scoring"]
    assert info["misses"] + info["hits"] == info["items_scored"] <= 40
    assert info["catalog_items"] == 40 and info["items_unscored"] == 40 - info["items_scored"]
    n_retrieval = len(res_samples(guided_run, "next_item_retrieval"))
    assert info["retrieval_returned"] == 10 * n_retrieval  # k = 10 per instance, all counted
    assert 0 <= info["retrieval_returned_unscored"] <= info["retrieval_returned"]
    assert card["catalog_items"] == 40
    assert "Attribute validity" in (guided_run / "leaderboard.md").read_text()
    assert "attributes-section" in (guided_run / "leaderboard.html").read_text()


def res_samples(run: Path, task: str) -> list[str]:
    return (run / "samples" / "guided-embedding" / f"{task}.jsonl").read_text().splitlines()


def test_the_ablation_answers_differently(guided_run: Path) -> None:
    def preds(expl: str) -> list:
        lines = (guided_run / "samples" / expl / "interest_classification.jsonl").read_text().splitlines()
        return [json.loads(x)["confidence"] for x in lines]

    assert preds("guided-embedding") != preds("guided-embedding-no-attributes")


def test_the_guided_path_runs_with_a_bfloat16_backbone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole guided path (scoring, scorer, answers, explanations, card) with the backbone in
    bfloat16, as a GPU run loads it: on CPU here, so dtype mistakes (bf16 tensors to numpy, mixed
    dtypes in a product or a mask) fail without a GPU."""
    import bench.llm.backbone as bb
    from bench.cli import main

    load = bb.load_backbone
    dtypes: list[str] = []

    def bf16(spec: str, **kw: object) -> object:
        backbone = load(spec, **{**kw, "dtype": "bfloat16"})
        dtypes.append(backbone.dtype)
        return backbone

    monkeypatch.setattr(bb, "load_backbone", bf16)
    monkeypatch.setenv("RECXBENCH_HOME", str(tmp_path / "home"))
    suite = tmp_path / "tiny-guided.yaml"
    suite.write_text(SUITE.replace("  - random\n", ""), encoding="utf-8")
    assert main(["-q", "run", str(suite), "--out", str(tmp_path / "run")]) == 0
    assert dtypes and set(dtypes) == {"bfloat16"}
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    info = res["explainers"]["guided-embedding"]["attribute_scoring"]
    assert info["items_scored"] > 0
    values = [r["value"] for r in res["results"] if r["explainer"] == "guided-embedding"]
    assert values and all(v is None or np.isfinite(v) for v in values)
