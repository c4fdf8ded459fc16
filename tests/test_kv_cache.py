"""The KV cache's argument and output names follow the installed transformers (``past_key_values``
up to 5.2x, ``cache`` after), so hand-driven forward calls work on both sides of the rename."""

from __future__ import annotations

import inspect
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm_fixtures import tiny_backbone  # noqa: E402

from bench.llm.kv_cache import cache_argument, cache_field, output_cache, with_cache  # noqa: E402
from bench.llm.scoring import _new_cache  # noqa: E402


def test_the_names_are_the_installed_versions():
    from transformers import LlamaForCausalLM
    from transformers.modeling_outputs import CausalLMOutputWithPast

    assert cache_argument() in inspect.signature(LlamaForCausalLM.forward).parameters
    assert cache_field() in CausalLMOutputWithPast.__dataclass_fields__


def test_a_cached_continuation_equals_one_forward_without_deprecation_warnings(tmp_path):
    model = tiny_backbone(tmp_path).model
    ids = torch.tensor([[5, 9, 13, 2, 7, 11]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the old name warns after the rename
        full = model(input_ids=ids).logits
        head = model(input_ids=ids[:, :4], use_cache=True, **with_cache(_new_cache(model)))
        cache = output_cache(head)
        assert cache.get_seq_length() == 4
        tail = model(
            input_ids=ids[:, 4:],
            position_ids=torch.arange(4, 6)[None],
            use_cache=True,
            **with_cache(cache),
        ).logits
    assert torch.allclose(tail, full[:, 4:], atol=1e-5)
