"""LLM explainers end to end on the tiny random Llama, through the CLI, plus their parsing rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.types import Instance

SUITE = """
suite: tiny-llm
backbone: tiny-random
dataset: {name: tiny, params: {n_users: 60, n_items: 40}}
target: {name: sasrec, params: {epochs: 3, patience: 2}}
tasks: [next_item_retrieval, item_ranking, interest_classification, history_reconstruction]
explainers:
  - random
  - name: zero-shot-llm
    params: {max_new_tokens: 24, retrieval_beams: 3}
  - name: few-shot-llm
    params: {max_new_tokens: 24, retrieval_beams: 3, constrained: false}
  - name: recexplainer-b
    params: &small {max_new_tokens: 24, retrieval_beams: 3, max_train_examples: 24, aux_item_examples: 4, lora: {batch_size: 8}}
  - name: recexplainer-i
    params: {<<: *small, item_title_examples: 4}
  - name: recexplainer-i
    label: recexplainer-i-zero-emb
    params: {<<: *small, item_title_examples: 4, ablation: zero}
stats: {resamples: 200}
"""


SNAPSHOTS = Path(__file__).parent / "snapshots"


#: backbone specs loaded from disk during the module's run (the run-scoped loader should load once)
BACKBONE_LOADS: list[str] = []


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import bench.llm.backbone as backbone_mod

    root = tmp_path_factory.mktemp("llm")
    suite = root / "tiny-llm.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    out = root / "run"
    real = backbone_mod.load_backbone

    def counted(spec, **kwargs):
        BACKBONE_LOADS.append(spec)
        return real(spec, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backbone_mod, "load_backbone", counted)
        assert main(["-q", "run", str(suite), "--out", str(out)]) == 0
    return out


def test_the_backbone_is_loaded_once_for_all_llm_explainers(llm_run: Path) -> None:
    """Five LLM rows (prompted, LoRA-trained, embedding-injected, an ablation) and one load: the
    trained ones work on private copies of it (tests/test_backbone_sharing.py)."""
    assert BACKBONE_LOADS == ["tiny-random"]


def test_llm_explainers_on_the_board(llm_run: Path) -> None:
    res = json.loads((llm_run / "results.json").read_text())
    rows = {(r["explainer"], r["task"], r["metric"]) for r in res["results"]}
    for expl in ("zero-shot-llm", "few-shot-llm", "recexplainer-b", "recexplainer-i"):
        for task, metric in [
            ("next_item_retrieval", "hr@5"),
            ("next_item_retrieval", "hallucination_rate"),
            ("item_ranking", "ndcg@5"),
            ("item_ranking", "parse_failure_rate"),
            ("interest_classification", "accuracy"),
            ("interest_classification", "auc"),
        ]:
            assert (expl, task, metric) in rows, (expl, task, metric)
    # history reconstruction: the embedding explainer answers it, text-only ones are n/a
    assert ("recexplainer-i", "history_reconstruction", "hcr") in rows
    assert ("recexplainer-b", "history_reconstruction", "hcr") not in rows
    info = res["explainers"]["recexplainer-b"]
    assert info["training"]["steps"] > 0 and info["backbone"]["spec"] == "tiny-random"
    assert "decoding" in res["protocol"]


def test_results_match_the_snapshot_of_the_code_before_the_refactor(llm_run: Path) -> None:
    """The typed explainer interface and the LLM-layer splits kept every prediction and figure."""
    from snapshot_compare import differences, samples_digest

    assert SUITE.strip() == (SNAPSHOTS / "tiny-llm.yaml").read_text(encoding="utf-8").strip()
    snapshot = json.loads((SNAPSHOTS / "tiny-llm.results.json").read_text(encoding="utf-8"))
    assert differences(snapshot, json.loads((llm_run / "results.json").read_text(encoding="utf-8"))) == []
    assert samples_digest(llm_run) == json.loads(
        (SNAPSHOTS / "tiny-llm.samples.json").read_text(encoding="utf-8")
    )


def test_constrained_retrieval_never_hallucinates(llm_run: Path) -> None:
    for expl in ("zero-shot-llm", "recexplainer-b"):
        for line in (llm_run / "samples" / expl / "next_item_retrieval.jsonl").read_text().splitlines():
            row = json.loads(line)
            assert -1 not in row["prediction"]
            assert row["scores"]["hallucination_rate"] == 0.0


def test_ablation_reuses_the_trained_adapter(llm_run: Path) -> None:
    adapters = sorted(p.name for p in (llm_run / "cache" / "adapters").iterdir())
    assert len([a for a in adapters if a.startswith("recexplainer-i-")]) == 1, adapters


def test_ranking_parse_repairs_are_counted() -> None:
    from bench.explainers.llm_prompted import ZeroShotLLM

    class Ctx:
        class dataset:  # noqa: N801 - a minimal stand-in
            titles = ("Alpha", "Beta", "Gamma", "Delta")
            item_ids = ("1", "2", "3", "4")

    expl = ZeroShotLLM()
    expl.ctx = Ctx()  # type: ignore[assignment]
    inst = Instance("r/1", "item_ranking", 0, (), None, candidates=(0, 1, 2, 3))
    clean = expl.parse_ranking(inst, "Gamma; Alpha; Delta; Beta")
    assert clean.items == (2, 0, 3, 1) and clean.parse_ok
    repaired = expl.parse_ranking(inst, "1. Gamma\n2. Gamma\n3. Omega")
    assert repaired.items == (2, 0, 1, 3) and not repaired.parse_ok
    empty = expl.parse_ranking(inst, "")
    assert empty.items == (0, 1, 2, 3) and not empty.parse_ok


def test_unknown_llm_parameter_is_a_user_error() -> None:
    from bench.errors import ConfigError
    from bench.explainers.recexplainer import RecExplainerB

    with pytest.raises(ConfigError, match="unknown parameter 'lora_rank'"):
        RecExplainerB(lora_rank=4)
    with pytest.raises(ConfigError, match="rnk"):
        RecExplainerB(lora={"rnk": 4})
