"""Preferences chosen from a lexicon of phrases, scored by the LLM (``preference_mode: lexicon``).

Why: greedy SmolLM2-135M, asked for free-text preferences of five titles, mostly writes titles,
fragments of them or lone articles (21 % of ML-100k windows had five usable values, see
docs/LANE.md). Here the LLM still reads LANE's extraction prompt, but each value is one phrase of a
fixed list (``tasks/prompts/lane_lexicon_<name>.txt``: genres, themes, moods, eras, styles), the
phrases the LLM prefers for this history:

* ``cond[p] = log P(phrase p | prompt with the titles + '{"Preference1": "')`` — summed over the
  phrase's tokens (no closing quote: the value *starts* with the phrase);
* ``null[p]`` — the same with a history-free prompt (the template rendered with no titles), so
  that phrases the model likes whatever the titles (its prior) do not win for everyone
  (calibration by pointwise mutual information, as in domain-conditional PMI scoring);
* ``score[p] = cond[p] - calibration * null[p]``; the ``n`` best-scoring phrases that are usable for
  this history (:func:`bench.llm.preferences.usable_flags`: not a fragment of a shown title, no
  duplicate) become its preferences, best first (ties: lexicon order).

Cost: each prompt runs once (a start every prompt of a batch shares — chat header, instructions —
once per batch); a phrase's first token is read from the prompt's last logits, and only phrases
of two or more tokens run their remaining tokens, as short rows after a copy of the prompt's KV
cache, ``row_batch`` rows per forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bench.errors import UserError
from bench.resources import tasks_dir


def lexicon_path(name: str) -> Any:
    return tasks_dir() / "prompts" / f"lane_lexicon_{name}.txt"


def load_lexicon(name: str) -> tuple[str, ...]:
    """The phrases of ``tasks/prompts/lane_lexicon_<name>.txt`` (comments and blanks skipped)."""
    path = lexicon_path(name)
    if not path.is_file():
        have = sorted(p.stem.removeprefix("lane_lexicon_") for p in path.parent.glob("lane_lexicon_*.txt"))
        raise UserError(
            f"no LANE lexicon {name!r} ({path})", fix=f"set lexicon to one of: {', '.join(have)}"
        )
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    phrases = tuple(dict.fromkeys(ln for ln in lines if ln and not ln.startswith("#")))
    if not phrases:
        raise UserError(f"LANE lexicon {name!r} has no phrases ({path})", fix="add one phrase per line")
    return phrases


@torch.inference_mode()
def phrase_logprobs(
    backbone: Any,
    prompts: Sequence[str],
    phrases: Sequence[str],
    *,
    batch_size: int = 32,
    row_batch: int = 64,
    min_shared: int = 16,
) -> np.ndarray:
    """``out[i, p] = log P(phrases[p] | prompts[i])`` (float64 array; prompts already formatted)."""
    from bench.llm.chat import encode_continuation, encode_prompt, left_pad
    from bench.llm.decode import _prefill
    from bench.llm.scoring import _fed_logprobs, _Prefix

    tok, model = backbone.tokenizer, backbone.model
    device = next(model.parameters()).device
    answers = [encode_continuation(tok, p) for p in phrases]
    if any(not a for a in answers):
        raise ValueError("empty phrase")
    encoded = [encode_prompt(tok, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    out = np.zeros((len(prompts), len(phrases)), dtype=np.float64)
    first = torch.tensor([a[0] for a in answers], device=device)
    # phrases with the same tokens before their last one share a row
    fed: dict[tuple[int, ...], list[int]] = {}
    for p, a in enumerate(answers):
        if len(a) > 1:
            fed.setdefault(tuple(a[:-1]), []).append(p)
    feds = sorted(fed, key=len)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        ids, mask = left_pad([encoded[i] for i in batch], tok.pad_token_id, device)
        cache, logp, mask = _prefill(model, mask, ids, None, min_shared)
        out[batch] = logp[:, first].double().cpu().numpy()
        if not feds:
            continue
        prefix = _Prefix(cache=cache, last_logprobs=logp, mask=mask, lengths=mask.sum(-1))
        rows = [(b, f) for b in range(len(batch)) for f in feds]
        for r0 in range(0, len(rows), row_batch):
            chunk = rows[r0 : r0 + row_batch]
            width = max(len(f) for _, f in chunk)
            lp = _fed_logprobs(model, prefix, chunk, tok.pad_token_id, list(range(width)))
            for r, (b, f) in enumerate(chunk):
                for p in fed[f]:
                    tgt = torch.tensor(answers[p][1:], device=device)
                    pos = torch.arange(len(tgt), device=device)
                    out[batch[b], p] += float(lp[r, pos, tgt].double().sum().item())
    return out


def choose(
    scores: np.ndarray, phrases: Sequence[str], n: int, usable: Any
) -> list[tuple[str, ...]]:
    """Per row of ``scores``, the ``n`` best phrases that ``usable(row, chosen + [phrase])`` accepts
    (the last flag), best first, ties in lexicon order; ``""`` fills a row that runs out."""
    out = []
    for i, row in enumerate(scores):
        picked: list[str] = []
        for p in np.argsort(-row, kind="stable"):
            if len(picked) == n:
                break
            if usable(i, [*picked, phrases[int(p)]])[-1]:
                picked.append(phrases[int(p)])
        out.append(tuple(picked + [""] * (n - len(picked))))
    return out
