"""Ranking answers of the LLM explainers are permutations of the shown candidates.

Why this file exists: on the opaque suite every LLM ranking answer needed repair (parse failure rate
1.0). The raw answers were the right *shape* but named no real item ("ItemNI-33; ItemNI-33; ..."):
after a short LoRA the tiny-random backbone writes the format tokens ("Item", "-", "; ") with
near-zero loss, but not the candidates' title tokens (each opaque code is one BPE token of its own,
which the model would have to copy from the prompt; its loss on them stays above log(#items)),
and the intention form (RecExplainer-I) never even sees the titles it is asked to write. Free
generation cannot give a permutation from such a model, so ranking is decoded the way retrieval is
when ``constrained``: one candidate at a time, by log-likelihood, among the unused candidates.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm_fixtures import one_thread, tiny_backbone  # noqa: E402

from bench.types import Instance  # noqa: E402

RANKING = "item_ranking"


def _ranking_task():
    from bench.tasks.base import TaskSpec
    from bench.tasks.ranking import ItemRanking

    return ItemRanking(TaskSpec(RANKING, RANKING, 1, "", {}, main_metric="ndcg@5"))


TASK = _ranking_task()


def _ctx(titles: list[str]) -> SimpleNamespace:
    from bench.data.catalog import Catalog

    dataset = SimpleNamespace(titles=tuple(titles), item_ids=tuple(str(i + 1) for i in range(len(titles))))
    return SimpleNamespace(
        dataset=dataset, catalog=Catalog(titles), tasks={RANKING: TASK}, seed=0, device="cpu"
    )


def _explainer(titles: list[str], **params):
    from bench.explainers.recexplainer import RecExplainerB

    expl = RecExplainerB(backbone="tiny-random", **params)
    expl.ctx = _ctx(titles)  # type: ignore[assignment]
    return expl


def _instances(n: int, n_items: int, *, seed: int, n_cands: int = 5) -> list[Instance]:
    """Ranking instances whose teacher order is a fixed item preference (higher index first)."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        items = rng.sample(range(n_items), 3 + n_cands)
        cands = tuple(items[3:])
        out.append(
            Instance(
                f"r/{seed}/{k}", RANKING, k, tuple(items[:3]), sorted(cands, reverse=True), candidates=cands
            )
        )
    return out


# ------------------------------------------------------------------------- the constrained decoder


class _Scored:
    """A stand-in scorer: log P(continuation) = the preference of the last title it names."""

    def __init__(self, pref: dict[str, float], sep: str) -> None:
        self.pref, self.sep, self.calls = pref, sep, []

    def __call__(self, prompts, extras, conts, *, batch_size):
        self.calls.append(conts)
        return [[self.pref[c.rsplit(self.sep, 1)[-1]] for c in row] for row in conts]


def test_constrained_ranking_appends_the_most_likely_unused_candidate() -> None:
    titles = ["Alpha", "Beta", "Gamma", "Delta", "Alpha"]  # a duplicate title, too
    expl = _explainer(titles)
    sep = expl.prompts.answers["separator"]
    scored = _Scored({"Alpha": 0.0, "Beta": -3.0, "Gamma": 2.0, "Delta": -1.0}, sep)
    # ranking scores every position against prompts run once (``_scorer``); a finished instance is
    # asked nothing (an empty list) in the later positions
    expl._scorer = lambda prompts, extras, *, batch_size: (  # type: ignore[method-assign]
        lambda conts: scored(prompts, extras, conts, batch_size=batch_size)
    )
    expl._score = scored  # type: ignore[method-assign]
    inst = Instance("r/1", RANKING, 0, (), None, candidates=(0, 1, 2, 3))
    short = Instance("r/2", RANKING, 0, (), None, candidates=(3, 1))
    dup = Instance("r/3", RANKING, 0, (), None, candidates=(4, 1, 0))
    preds = expl.rank_by_likelihood([inst, short, dup], ["Q1\n", "Q2\n", "Q3\n"], [None] * 3)
    assert preds[0].items == (2, 0, 3, 1) and preds[0].raw == "Gamma; Alpha; Delta; Beta"
    assert preds[1].items == (3, 1)
    assert sorted(preds[2].items) == [0, 1, 4] and preds[2].items[2] == 1  # equal titles: shown order
    assert all(p.parse_ok for p in preds)
    # n - 1 positions; each continuation is the answer so far written as training writes it
    first, second = scored.calls[0][0], scored.calls[1][0]
    assert first == ["Alpha", "Beta", "Gamma", "Delta"]
    assert second == ["Gamma; Alpha", "Gamma; Beta", "Gamma; Delta"]
    assert scored.calls[1][1] == [] and len(scored.calls) == 3  # r/2 (2 candidates) was done after one


def test_free_generation_is_still_parsed_and_garbage_counted() -> None:
    titles = ["Item QGXG-58", "Item XQMI-69", "Item FQYO-77"]
    expl = _explainer(titles, constrained=False)
    inst = Instance("r/1", RANKING, 0, (), [1, 2, 0], candidates=(0, 1, 2))
    expl._generate = lambda prompts, extras, **kw: [["ItemNI-33; ItemNI-33; ItemNI-26"]]  # type: ignore[method-assign]
    (garbage,) = expl.rank_prompted([inst], ["Q\n"], [None])
    assert garbage.items == (0, 1, 2) and not garbage.parse_ok
    # the training target and the parser agree: what the model is taught to write parses back
    (clean,) = [expl.parse_ranking(inst, expl.target_answer(TASK, inst))]
    assert clean.items == (1, 2, 0) and clean.parse_ok


# ---------------------------------------------------------------- a briefly trained tiny-random model


def test_briefly_trained_tiny_random_answers_with_permutations(tmp_path: Path) -> None:
    from bench.data.synthetic import make_tiny
    from bench.llm.chat import format_prompt
    from bench.llm.lora import LoraTrainConfig, TrainExample, load_adapter, train_lora

    ds = make_tiny(n_users=10, n_items=40, opaque=True)
    titles = list(ds.titles)
    expl = _explainer(titles, batch_size=16)
    expl.backbone = tiny_backbone(tmp_path / "home", titles)
    train, test = _instances(64, len(titles), seed=1), _instances(20, len(titles), seed=2)
    examples = [
        TrainExample(
            format_prompt(expl.backbone, expl.question(expl.shape(TASK), i)), expl.target_answer(TASK, i)
        )
        for i in train
    ]
    cfg = LoraTrainConfig(lr=5e-3, batch_size=16, epochs=2, max_length=192, seed=0)
    with one_thread():
        report = train_lora(expl.backbone, examples, cfg, out_dir=tmp_path / "adapter", progress=False)
        expl.backbone = load_adapter(expl.backbone, report.adapter_dir)
        preds = expl.answer(TASK, test)
    assert report.steps == 8
    assert np.mean([p.parse_ok for p in preds]) >= 0.8
    for inst, pred in zip(test, preds):
        assert sorted(pred.output) == sorted(inst.candidates)
        assert list(expl.parse_ranking(inst, pred.raw).items) == pred.output  # the raw answer parses to it


@pytest.mark.parametrize("titles", [["Alpha", "Beta"], ["Item QGXG-58", "Item XQMI-69", "Item FQYO-77"]])
def test_answer_and_parser_round_trip(titles: list[str]) -> None:
    expl = _explainer(titles)
    n = len(titles)
    for order in ([*range(n)], [*range(n)][::-1]):
        inst = Instance("r", RANKING, 0, (), order, candidates=tuple(range(n)))
        pred = expl.parse_ranking(inst, expl.target_answer(TASK, inst))
        assert list(pred.items) == order and pred.parse_ok
