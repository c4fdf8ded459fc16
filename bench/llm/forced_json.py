"""Forced-format decoding: the decoder writes the fixed text, the model writes only the values.

A 135M model rarely produces a valid JSON object (or a four-step template) unaided, and retrying
blindly (LANE's code retries up to five times, then drops the user) costs calls and biases who is
kept. Here the output is *built*, never parsed: a template is a list of segments,

* :class:`Literal` — text the decoder forces (braces, keys, quotes, ``Step3:`` headers);
* :class:`Field` — text the model writes (greedy) until a stop character, EOS or ``max_tokens``;
* :class:`Choice` — one of a few options (``Low``/``Medium``/``High``), the model's greedy pick
  among the options' tokens only.

Decoding (:func:`fill_templates`) runs each prompt **once** (a left-padded prefill whose KV cache is
kept) and then advances every row of the batch by exactly one token per forward pass: the next
forced token of its queue, or a generated one. Forced text never re-runs the prompt (the previous
implementation re-ran the whole prompt for every key). Rows that finish leave the batch (their
cache rows are dropped).

Rules of a field, each visible in the result:

* its first token may not end it (no stop character, no EOS, not blank): a value is never empty
  because the model stopped at once;
* with ``distinct=True`` its first token may not be the first token of an earlier distinct field
  of the same row (LANE asks for preferences "without duplicates"; greedy decoding otherwise
  repeats the first value);
* the value is cut at the first stop character; text cut at ``max_tokens`` counts as *repaired*
  (the string did not close), and so does cleaning (backslashes, control characters, whitespace).

:func:`fill_json` builds ``{"k1": "…", …}`` with this decoder; the result always parses, with
exactly the keys asked for. An empty value after cleaning is *dropped* (the key gets ``""``).
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.llm.chat import encode_continuation, encode_prompt, left_pad
from bench.llm.decode import _prefill
from bench.llm.kv_cache import output_cache, with_cache

_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_NEG_INF = float("-inf")


@dataclass(frozen=True)
class Literal:
    """Text forced into the output."""

    text: str


@dataclass(frozen=True)
class Field:
    """A value the model writes: up to ``max_tokens`` tokens, ended by any character of ``stops``."""

    name: str
    max_tokens: int = 24
    stops: str = '"\n'
    distinct: bool = False
    #: token ids the value may not start with (e.g. the first tokens of the shown titles)
    banned_starts: tuple[int, ...] = ()


@dataclass(frozen=True)
class Choice:
    """One of ``options``, picked greedily among the options' tokens."""

    name: str
    options: tuple[str, ...]


Segment = Literal | Field | Choice


@dataclass(frozen=True)
class Filled:
    """One decoded template: the values by name, the full text, and what had to be repaired."""

    values: dict[str, str]
    text: str
    repaired: tuple[str, ...] = ()
    raw: dict[str, str] = field(default_factory=dict)


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


class _Vocab:
    """Per tokenizer: each token's text, and per stop set which tokens hold a stop character or
    cannot start a value (blank, special, a partial UTF-8 byte)."""

    def __init__(self, tokenizer: Any) -> None:
        n = max(len(tokenizer), max(tokenizer.get_vocab().values(), default=0) + 1)
        self.texts = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=False)
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self.blank = torch.tensor(
            [(not t.strip()) or "\ufffd" in t or i in special for i, t in enumerate(self.texts)]
        )
        self._stops: dict[str, torch.Tensor] = {}
        self._starts: dict[tuple[str, int, str], torch.Tensor] = {}

    def stop_mask(self, stops: str) -> torch.Tensor:
        if stops not in self._stops:
            self._stops[stops] = torch.tensor([any(c in t for c in stops) for t in self.texts])
        return self._stops[stops]

    def bad_start(self, stops: str, size: int, device: torch.device) -> torch.Tensor:
        """Tokens that cannot start a value (blank or holding a stop character), as a mask of the
        model's vocabulary ``size`` on ``device`` (ids past the tokenizer's, the model's padding
        rows, count as bad)."""
        key = (stops, size, str(device))
        if key not in self._starts:
            bad = torch.ones(size, dtype=torch.bool)
            n = min(size, len(self.texts))
            bad[:n] = self.blank[:n] | self.stop_mask(stops)[:n]
            self._starts[key] = bad.to(device)
        return self._starts[key]


_VOCABS: weakref.WeakKeyDictionary[Any, _Vocab] = weakref.WeakKeyDictionary()


def _vocab(tokenizer: Any) -> _Vocab:
    if tokenizer not in _VOCABS:
        _VOCABS[tokenizer] = _Vocab(tokenizer)
    return _VOCABS[tokenizer]


class _Row:
    """The decoding state of one prompt."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = list(segments)
        self.pos = 0  # index of the current segment
        self.queue: list[int] = []  # forced token ids still to feed
        self.pending = ""  # forced text not yet tokenised
        self.gen: list[int] = []  # ids of the field / choice being written
        self.values: dict[str, str] = {}
        self.raw: dict[str, str] = {}
        self.repaired: list[str] = []
        self.starts: set[int] = set()  # first tokens of earlier distinct fields
        self.parts: list[str] = []  # the output text, piece by piece
        self.done = False


def _advance_literals(row: _Row, tok: Any) -> None:
    """Collect literal segments at the current position into the forced queue."""
    while row.pos < len(row.segments) and isinstance(row.segments[row.pos], Literal):
        text = row.segments[row.pos].text  # type: ignore[union-attr]
        row.pending += text
        row.parts.append(text)
        row.pos += 1
    if row.pos >= len(row.segments):  # nothing left to write: the closing text need not run
        row.queue, row.pending, row.done = [], "", True
        return
    if row.pending:
        row.queue.extend(encode_continuation(tok, row.pending))
        row.pending = ""


def _next_token(row: _Row, logp: torch.Tensor, tok: Any, vocab: _Vocab, eos: set[int]) -> int | None:
    """The token ``row`` feeds next (``None`` when it is finished), given its next-token scores."""
    while True:
        if row.queue:
            return row.queue.pop(0)
        if row.done or row.pos >= len(row.segments):
            row.done = True
            return None
        seg = row.segments[row.pos]
        if isinstance(seg, Field):
            scores = logp.clone()
            if not row.gen:
                scores[vocab.bad_start(seg.stops, len(scores), scores.device)] = _NEG_INF
                scores[list(eos)] = _NEG_INF
                if seg.distinct and row.starts:
                    scores[list(row.starts)] = _NEG_INF
                if seg.banned_starts:
                    scores[list(seg.banned_starts)] = _NEG_INF
            t = int(scores.argmax())
            text = vocab.texts[t] if t < len(vocab.texts) else ""
            stop_hit = t in eos or any(c in text for c in seg.stops)
            if not stop_hit and len(row.gen) < seg.max_tokens:
                if not row.gen and seg.distinct:
                    row.starts.add(t)
                row.gen.append(t)
                return t
            raw = tok.decode(row.gen, skip_special_tokens=True)
            pre = ""
            if stop_hit and t not in eos:
                cut = min((i for i in (text.find(c) for c in seg.stops) if i >= 0), default=len(text))
                pre = text[:cut]
            raw += pre
            value, fixed = clean_value(raw if '"' in seg.stops else raw.replace('"', "'"), closed=stop_hit)
            for c in seg.stops:
                value = value.split(c, 1)[0].strip()
            row.values[seg.name], row.raw[seg.name] = value, raw
            if fixed:
                row.repaired.append(seg.name)
            row.parts.append(value)
            row.gen = []
            row.pos += 1
            row.pending = pre  # the part of the stopping token before the stop, then the literal
            _advance_literals(row, tok)
            continue
        assert isinstance(seg, Choice)
        opts = [encode_continuation(tok, o) for o in seg.options]
        alive = [j for j, ids in enumerate(opts) if ids[: len(row.gen)] == row.gen]
        finished = [j for j in alive if len(opts[j]) == len(row.gen)]
        if finished:
            name = seg.options[finished[0]]
            row.values[seg.name] = row.raw[seg.name] = name
            row.parts.append(name)
            row.gen = []
            row.pos += 1
            _advance_literals(row, tok)
            continue
        allowed = sorted({opts[j][len(row.gen)] for j in alive})
        t = allowed[int(logp[allowed].argmax())]
        row.gen.append(t)
        return t


@torch.inference_mode()
def fill_templates(
    backbone: Any,
    prompts: Sequence[str],
    templates: Sequence[Sequence[Segment]],
    *,
    batch_size: int = 16,
    cpu_threads: int | None = 1,
    min_shared: int = 16,
) -> list[Filled]:
    """Continue each prompt (already formatted, e.g. with a chat template) with its template, the
    model writing only the fields and choices (see the module docstring)."""
    if len(prompts) != len(templates):
        raise ValueError("one template per prompt")
    tok, model = backbone.tokenizer, backbone.model
    device = next(model.parameters()).device
    vocab = _vocab(tok)
    raw_eos = tok.eos_token_id
    eos = set(raw_eos) if isinstance(raw_eos, list | tuple) else ({raw_eos} if raw_eos is not None else set())
    encoded = [encode_prompt(tok, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    results: list[Filled | None] = [None] * len(prompts)
    prev = torch.get_num_threads()
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        rows = [_Row(templates[i]) for i in batch]
        for row in rows:
            _advance_literals(row, tok)
        ids, mask = left_pad([encoded[i] for i in batch], tok.pad_token_id, device)
        # a start every prompt shares (chat header, instructions, a worked example) runs once
        cache, logp, mask = _prefill(model, mask, ids, None, min_shared)
        live = list(range(len(rows)))  # row of each cache line
        lengths = mask.sum(-1)
        if cpu_threads is not None and device.type == "cpu":
            torch.set_num_threads(cpu_threads)
        try:
            while live:
                feed = [_next_token(rows[r], logp[j], tok, vocab, eos) for j, r in enumerate(live)]
                keep = [j for j, t in enumerate(feed) if t is not None]
                if not keep:
                    break
                if len(keep) < len(live):  # finished rows leave the batch
                    idx = torch.tensor(keep, device=device)
                    cache.batch_select_indices(idx)
                    mask, lengths = mask[idx], lengths[idx]
                    live = [live[j] for j in keep]
                    feed = [feed[j] for j in keep]
                mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=1)
                out = model(
                    input_ids=torch.tensor(feed, dtype=torch.long, device=device)[:, None],
                    attention_mask=mask,
                    position_ids=lengths[:, None],
                    **with_cache(cache),
                    use_cache=True,
                )
                lengths = lengths + 1
                cache, logp = output_cache(out), out.logits[:, -1].float()
        finally:
            torch.set_num_threads(prev)
        for r, i in enumerate(batch):
            row = rows[r]
            results[i] = Filled(row.values, "".join(row.parts), tuple(row.repaired), row.raw)
    return [r for r in results if r is not None]


def json_template(
    keys: Sequence[str], *, max_value_tokens: int, distinct: bool = False, banned_starts: Sequence[int] = ()
) -> list[Segment]:
    """``{"k1": "<field>", "k2": "<field>", …}`` as segments."""
    segs: list[Segment] = []
    banned = tuple(sorted(set(banned_starts)))
    for j, key in enumerate(keys):
        segs.append(Literal(("{" if j == 0 else '", ') + json.dumps(key) + ': "'))
        segs.append(
            Field(key, max_tokens=max_value_tokens, stops='"\n', distinct=distinct, banned_starts=banned)
        )
    segs.append(Literal('"}'))
    return segs


def fill_json(
    backbone: Any,
    prompts: Sequence[str],
    keys: Sequence[str],
    *,
    max_value_tokens: int = 24,
    batch_size: int = 16,
    distinct: bool = False,
    avoid: Sequence[Sequence[str]] | None = None,
) -> list[FilledJSON]:
    """Continue each prompt with the object ``{"keys[0]": "…", …}``, the model writing only the
    values (greedy; ``distinct``: no two values start with the same token; ``avoid[i]``: texts
    whose first token, with or without a leading space, may not start a value of prompt ``i``)."""
    if not keys or len(set(keys)) != len(keys):
        raise ValueError("keys must be distinct and at least one")
    tok = backbone.tokenizer
    templates = []
    for i in range(len(prompts)):
        banned = [
            ids[0]
            for text in (avoid[i] if avoid is not None else ())
            for ids in (encode_continuation(tok, text.strip()), encode_continuation(tok, " " + text.strip()))
            if ids
        ]
        templates.append(
            json_template(keys, max_value_tokens=max_value_tokens, distinct=distinct, banned_starts=banned)
        )
    filled = fill_templates(backbone, prompts, templates, batch_size=batch_size)
    out = []
    for f in filled:
        values = {k: f.values.get(k, "") for k in keys}
        dropped = tuple(k for k in keys if not values[k])
        text = json.dumps(values, ensure_ascii=False)
        out.append(FilledJSON(values, text, f.repaired, dropped, {k: f.raw.get(k, "") for k in keys}))
    return out
