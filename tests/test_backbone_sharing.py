"""One backbone per run: the loader loads each spec once, and a private copy's changes (LoRA, new
tokens) never reach the shared backbone the other explainers read."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from llm_fixtures import TITLES  # noqa: E402

from bench.llm.backbone import BackboneLoader, load_backbone  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_shared_backbone_is_loaded_once_per_loader(llm_home):
    loader = BackboneLoader()
    a = loader.shared("tiny-random", device="cpu", titles=TITLES)
    b = loader.shared("tiny-random", device="cpu", titles=TITLES)
    assert a is b and loader.loads == 1
    c = loader.private("tiny-random", device="cpu", titles=TITLES)
    assert loader.loads == 1 and loader.wrappers == 1
    assert c.model is not a.model and c.tokenizer is not a.tokenizer and c.sha256 == a.sha256
    # the big matrices are shared, the embeddings (which adding tokens writes into) are not
    q = "model.layers.0.self_attn.q_proj.weight"
    assert c.model.get_parameter(q) is a.model.get_parameter(q)
    assert c.model.get_input_embeddings().weight is not a.model.get_input_embeddings().weight
    assert c.model.get_output_embeddings().weight is c.model.get_input_embeddings().weight  # still tied
    # another seed of tiny-random is another model; a new loader (another run) loads again
    assert loader.shared("tiny-random", device="cpu", titles=TITLES, seed=1) is not a and loader.loads == 2
    assert BackboneLoader().shared("tiny-random", device="cpu", titles=TITLES) is not a


def test_a_trained_private_copy_leaves_the_shared_backbone_untouched(llm_home, tmp_path):
    from bench.llm.chat import format_prompt
    from bench.llm.inject import add_placeholder_tokens
    from bench.llm.lora import LoraTrainConfig, TrainExample, load_adapter, train_lora

    loader = BackboneLoader()
    shared = loader.shared("tiny-random", device="cpu", titles=TITLES)
    before, n_tokens = _snapshot(shared.model), len(shared.tokenizer)
    ids = torch.tensor([[5, 9, 3, 7, 11]])
    with torch.no_grad():
        logits = shared.model(ids).logits.clone()

    mine = loader.private("tiny-random", device="cpu", titles=TITLES)
    add_placeholder_tokens(mine)  # what RecExplainer-I/H do: new tokens, resized embeddings
    examples = [
        TrainExample(format_prompt(mine, f"Question {i}: {TITLES[i]}?"), TITLES[i + 1]) for i in range(6)
    ]
    cfg = LoraTrainConfig(lr=5e-2, batch_size=3, epochs=2, seed=0)
    report = train_lora(mine, examples, cfg, out_dir=tmp_path / "adapter", progress=False)
    assert report.steps > 0
    mine = load_adapter(mine, report.adapter_dir)
    with torch.no_grad():
        assert not torch.equal(mine.model(ids).logits[..., : logits.shape[-1]], logits)  # it did learn

    # the shared backbone: same weights bit for bit, same vocabulary, no LoRA layer, same outputs
    after = _snapshot(shared.model)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert len(shared.tokenizer) == n_tokens and "<user>" not in shared.tokenizer.get_vocab()
    assert not any("lora" in name.lower() for name, _ in shared.model.named_modules())
    with torch.no_grad():
        assert torch.equal(shared.model(ids).logits, logits)
    fresh = load_backbone("tiny-random", device="cpu", titles=TITLES)
    with torch.no_grad():
        assert torch.equal(fresh.model(ids).logits, logits)
    assert loader.loads == 1


def test_a_local_judge_takes_the_runs_shared_backbone(llm_home) -> None:
    from bench.judge import make_judge
    from bench.llm.backbone import BackboneLoader

    loader = BackboneLoader()
    run_copy = loader.shared("tiny-random", device="cpu", titles=TITLES)
    judge = make_judge("tiny-random", device="cpu", titles=TITLES, backbones=loader)
    assert judge.backbone is run_copy and loader.loads == 1  # no second load
    alone = make_judge("tiny-random", device="cpu", titles=TITLES)
    assert alone.backbone is not run_copy and loader.loads == 1
