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
once per batch), then one pass over the lexicon's token tree (:func:`phrase_logprobs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bench.errors import UserError
from bench.llm.kv_cache import with_cache
from bench.resources import tasks_dir


def lexicon_path(name: str) -> Any:
    return tasks_dir() / "prompts" / f"lane_lexicon_{name}.txt"


def load_lexicon(name: str) -> tuple[str, ...]:
    """The phrases of ``tasks/prompts/lane_lexicon_<name>.txt`` (comments and blanks skipped)."""
    path = lexicon_path(name)
    if not path.is_file():
        have = sorted(p.stem.removeprefix("lane_lexicon_") for p in path.parent.glob("lane_lexicon_*.txt"))
        raise UserError(f"no LANE lexicon {name!r} ({path})", fix=f"set lexicon to one of: {', '.join(have)}")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    phrases = tuple(dict.fromkeys(ln for ln in lines if ln and not ln.startswith("#")))
    if not phrases:
        raise UserError(f"LANE lexicon {name!r} has no phrases ({path})", fix="add one phrase per line")
    return phrases


class _Trie:
    """The phrases' tokens before their last one, as a token tree: ``tokens[k]`` is node ``k``,
    ``depth[k]`` its distance from the root (0 for a first token), ``ancestors[k, j]`` whether
    node ``j`` is node ``k`` or above it; ``node[(p, t)]`` the node whose output predicts token
    ``t ≥ 1`` of phrase ``p``."""

    def __init__(self, answers: Sequence[Sequence[int]]) -> None:
        index: dict[tuple[int, ...], int] = {}
        parents: list[int] = []
        self.tokens: list[int] = []
        self.node: dict[tuple[int, int], int] = {}
        for p, ans in enumerate(answers):
            for t in range(1, len(ans)):
                key = tuple(ans[:t])
                if key not in index:
                    index[key] = len(self.tokens)
                    self.tokens.append(ans[t - 1])
                    parents.append(index[key[:-1]] if t > 1 else -1)
                self.node[(p, t)] = index[key]
        n = len(self.tokens)
        self.depth = [0] * n
        self.ancestors = torch.zeros((n, n), dtype=torch.bool)
        for k, parent in enumerate(parents):  # parents come before their children
            self.ancestors[k, k] = True
            if parent >= 0:
                self.depth[k] = self.depth[parent] + 1
                self.ancestors[k] |= self.ancestors[parent]


@torch.inference_mode()
def phrase_logprobs(
    backbone: Any,
    prompts: Sequence[str],
    phrases: Sequence[str],
    *,
    batch_size: int = 16,
    min_shared: int = 16,
) -> np.ndarray:
    """``out[i, p] = log P(phrases[p] | prompts[i])`` (float64 array; prompts already formatted).

    Each batch of prompts runs once (:func:`bench.llm.decode._prefill`); a phrase's first token is
    read from the last logits; the tokens after it run in **one** extra pass per batch, every
    phrase of the lexicon packed into one row per prompt as a token tree (:class:`_Trie`) whose
    nodes see the prompt and their own ancestors only (a 4-D attention mask; positions continue
    the prompt by depth), so a shared start such as " com" of "comedies" / "romantic comedies"
    runs once and no KV cache is copied.
    """
    from bench.llm.chat import encode_continuation, encode_prompt, left_pad
    from bench.llm.decode import _prefill
    from bench.llm.scoring import additive_mask

    tok, model = backbone.tokenizer, backbone.model
    device = next(model.parameters()).device
    answers = [encode_continuation(tok, p) for p in phrases]
    if any(not a for a in answers):
        raise ValueError("empty phrase")
    trie = _Trie(answers)
    encoded = [encode_prompt(tok, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    out = np.zeros((len(prompts), len(phrases)), dtype=np.float64)
    first = torch.tensor([a[0] for a in answers], device=device)
    later = [(p, t, trie.node[(p, t)], a[t]) for p, a in enumerate(answers) for t in range(1, len(a))]
    q = len(trie.tokens)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        ids, mask = left_pad([encoded[i] for i in batch], tok.pad_token_id, device)
        cache, logp, mask = _prefill(model, mask, ids, None, min_shared)
        scores = logp[:, first].double()
        if q:
            n = len(batch)
            seen = torch.cat(
                [mask.bool()[:, None, :].expand(n, q, -1), trie.ancestors.to(device)[None].expand(n, -1, -1)],
                dim=2,
            )
            depth = torch.tensor(trie.depth, device=device)
            res = model(
                input_ids=torch.tensor(trie.tokens, device=device)[None].expand(n, -1),
                attention_mask=additive_mask(seen, model),
                position_ids=mask.sum(-1)[:, None] + depth[None],
                **with_cache(cache),
                use_cache=True,
            )
            lp = res.logits.float().log_softmax(-1)
            nodes = torch.tensor([k for _, _, k, _ in later], device=device)
            tgts = torch.tensor([tg for _, _, _, tg in later], device=device)
            picked = lp[:, nodes, tgts].double()  # (n, len(later))
            cols = torch.tensor([p for p, _, _, _ in later], device=device)
            scores = scores.index_add(1, cols, picked)
        out[batch] = scores.cpu().numpy()
    return out


def choose(scores: np.ndarray, phrases: Sequence[str], n: int, usable: Any) -> list[tuple[str, ...]]:
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
