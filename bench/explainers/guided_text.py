"""guided-embedding's explanations in words: the scorer's decision and its attribute contributions.

For user ``u`` (the shown history) and item ``i`` the score splits exactly into
``Σ_k contribution_k + base + β`` (:mod:`bench.explainers.guided_model`). The text states the
decision first ("Recommended" / "Not recommended", which :func:`bench.tasks.grounding.parse_decision`
reads), then the ``explain_attributes`` largest positive and negative contributions; each attribute
that pushes the item *the stated way* cites up to ``explain_citations`` history items sharing it
(z-score above ``share_threshold``, highest first) by their exact titles in quotes — so deleting
them is the counterfactual the grounding metrics test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def contributions(expl: Any, history: Sequence[int], item: int) -> tuple[np.ndarray, float, float]:
    """``(per-attribute contributions [m], base term, total score)`` of ``item`` for ``history``."""
    model = expl.model
    expl._ensure([*history, item])
    hist, users = expl._users_from(history)
    with torch.no_grad():
        aff = model.affinity(hist)[0]
        contrib = (aff * model.A[item]).numpy()
        base = float(model.base(users, torch.tensor([[item]]))[0, 0] + model.bias)
    return contrib.astype(np.float64), base, float(contrib.sum() + base)


def _title(expl: Any, item: int) -> str:
    return expl.ctx.catalog.title(int(item)) or f"item {int(item)}"


def explanation(expl: Any, history: Sequence[int], item: int) -> str:
    """One explanation (see the module docstring)."""
    p = expl.params
    names = expl.attribute_list.names
    contrib, base, total = contributions(expl, history, item)
    prob = 1.0 / (1.0 + np.exp(-total))
    like = prob >= 0.5
    n_side = int(p["explain_attributes"])
    up = [int(k) for k in np.argsort(-contrib, kind="stable") if contrib[k] > 0][:n_side]
    down = [int(k) for k in np.argsort(contrib, kind="stable") if contrib[k] < 0][:n_side]
    z = expl.model.A.numpy()
    hist = list(dict.fromkeys(int(h) for h in history))
    cited: set[int] = set()

    def phrase(k: int, cite: bool) -> str:
        text = f"{names[k]} ({contrib[k]:+.2f})"
        if not cite:
            return text
        sharing = [
            h
            for h in sorted(hist, key=lambda h: -z[h, k])
            if z[h, k] > float(p["share_threshold"]) and h not in cited
        ]
        sharing = sharing[: int(p["explain_citations"])]
        cited.update(sharing)
        if sharing:
            text += ", shared with " + " and ".join(f"'{_title(expl, h)}'" for h in sharing)
        return text

    verdict = "Recommended" if like else "Not recommended"
    # titles are quoted with ' in the text, so the wording itself avoids apostrophes
    out = f"{verdict}: the attribute model gives '{_title(expl, item)}' p={prob:.2f} for this user."
    if up:
        out += " Pushing it up: " + "; ".join(phrase(k, like) for k in up) + "."
    if down:
        out += " Pushing it down: " + "; ".join(phrase(k, not like) for k in down) + "."
    if not up and not down:
        out += " No attribute moves it (its attribute scores are average for this catalog)."
    out += f" The reduced embedding of the target adds {base:+.2f}."
    return out
