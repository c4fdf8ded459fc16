"""Forced-format JSON: the decoder writes the braces, keys and quotes, the model writes only values.

A 135M model rarely produces a valid JSON object unaided, and retrying blindly (LANE's code retries
up to five times, then drops the user) costs calls and biases who is kept. Here the object is
*built*, never parsed: for keys ``k1..kn`` the prompt is continued with ``{"k1": "``, the model
generates until it closes the string (a ``"``), starts a new line or reaches ``max_value_tokens``;
the value is cleaned, and the next round continues with ``", "k2": "`` — all prompts of a round in
one batch. The result is always one JSON object with exactly the keys asked for.

Cleaning a value, each counted as a *repair* when it changed anything: backslashes and control
characters removed, whitespace collapsed, cut at the token limit (the string did not close). An
empty value after cleaning is *dropped* (the key gets ``""``, and the object counts as incomplete):
the caller decides what an incomplete object means (LANE needs five usable preferences).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.llm.generation import GenerationOptions, generate

_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True)
class FilledJSON:
    """One forced-format object: its values by key, the JSON text, and what had to be repaired."""

    values: dict[str, str]
    text: str
    #: keys whose value was cleaned or cut at the token limit
    repaired: tuple[str, ...] = ()
    #: keys whose value was empty after cleaning
    dropped: tuple[str, ...] = ()
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every key has a non-empty value."""
        return not self.dropped


def clean_value(raw: str, *, closed: bool) -> tuple[str, bool]:
    """``(value, repaired)``: ``raw`` up to its closing quote, without backslashes or control
    characters, whitespace collapsed; ``repaired`` when anything changed or the string never closed."""
    cut = raw.split('"', 1)[0]
    value = " ".join(_CONTROL.sub(" ", cut).split())
    return value, (value != cut.strip()) or not closed


def fill_json(
    backbone: Any,
    prompts: Sequence[str],
    keys: Sequence[str],
    *,
    max_value_tokens: int = 24,
    batch_size: int = 8,
) -> list[FilledJSON]:
    """Continue each prompt (already formatted for the backbone, e.g. with its chat template) with
    the object ``{"keys[0]": "…", …}``, the model writing only the values (greedy)."""
    if not keys or len(set(keys)) != len(keys):
        raise ValueError("keys must be distinct and at least one")
    opts = GenerationOptions(max_new_tokens=max_value_tokens, batch_size=batch_size, stop=('"', "\n"))
    heads = [f'{p}{{{json.dumps(keys[0])}: "' for p in prompts]
    values: list[dict[str, str]] = [{} for _ in prompts]
    raws: list[dict[str, str]] = [{} for _ in prompts]
    repaired: list[list[str]] = [[] for _ in prompts]
    for j, key in enumerate(keys):
        outs = generate(backbone, heads, opts) if heads else []
        for i, out in enumerate(outs):
            text = out[0] if out else ""
            # the stop strings end the string; without one the token limit cut the value short
            closed = len(backbone.tokenizer(text, add_special_tokens=False)["input_ids"]) < max_value_tokens
            value, fixed = clean_value(text, closed=closed)
            values[i][key], raws[i][key] = value, text
            if fixed:
                repaired[i].append(key)
            nxt = f'{value}", {json.dumps(keys[j + 1])}: "' if j + 1 < len(keys) else f'{value}"}}'
            heads[i] += nxt
    out = []
    for i in range(len(prompts)):
        text = json.dumps(values[i], ensure_ascii=False)
        dropped = tuple(k for k in keys if not values[i][k])
        out.append(FilledJSON(values[i], text, tuple(repaired[i]), dropped, raws[i]))
    return out
