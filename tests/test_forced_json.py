"""Forced-format JSON: whatever the model writes, the result parses, with exactly the keys asked for."""

from __future__ import annotations

import json

import pytest
from llm_fixtures import make_prompts

from bench.llm.chat import format_prompt
from bench.llm.forced_json import clean_value, fill_json

KEYS = [f"Preference{i}" for i in range(1, 6)]


def test_clean_value_cuts_at_the_quote_and_counts_repairs() -> None:
    assert clean_value("likes sci-fi", closed=True) == ("likes sci-fi", False)
    assert clean_value("likes sci-fi", closed=False) == ("likes sci-fi", True)  # cut at the limit
    assert clean_value('dramas" and more', closed=True) == ("dramas", False)
    assert clean_value("a\\b\tc  d", closed=True) == ("a b c d", True)
    assert clean_value("   ", closed=True) == ("", False)


def test_an_untrained_model_always_yields_parseable_json(tiny) -> None:
    prompts = [format_prompt(tiny, p) for p in make_prompts(12, seed=3, max_words=30)]
    filled = fill_json(tiny, prompts, KEYS, max_value_tokens=6, batch_size=4)
    assert len(filled) == len(prompts)
    for f in filled:
        parsed = json.loads(f.text)
        assert list(parsed) == KEYS and parsed == f.values
        assert all(isinstance(v, str) and '"' not in v and "\n" not in v for v in parsed.values())
        assert set(f.dropped) == {k for k in KEYS if not f.values[k]} and f.complete == (not f.dropped)
        assert set(f.repaired) <= set(KEYS) and set(f.raw) == set(KEYS)
    assert fill_json(tiny, [], KEYS) == []
    with pytest.raises(ValueError):
        fill_json(tiny, prompts[:1], ["a", "a"])
