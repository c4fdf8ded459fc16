"""Full-ranking accuracy of a target (HR, NDCG, MRR at K) and the target card.

Protocol (RecBole's full ranking):

* every item of the catalogue is a candidate; the items of the user's history are masked (``-inf``);
* if the target item itself occurs in the history (repeat consumption), it is *unmasked* for that
  user, so it can still be ranked — otherwise the user would count as a guaranteed miss;
* rank (0-based) = number of items whose score is *strictly greater* than the target's. Ties are
  therefore resolved in the target's favour; for learned float32 scores they are negligible, and
  :class:`~bench.recommenders.popularity.Popularity` breaks its count ties itself;
* ``hr@K = [rank < K]``, ``ndcg@K = [rank < K] / log2(rank + 2)``, ``mrr@K = [rank < K] / (rank + 1)``,
  each averaged over users (one target per user).

A target score that is NaN counts as a miss (rank ``n_items``) and is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bench.data.dataset import Split
    from bench.recommenders.base import TargetRecommender

log = logging.getLogger(__name__)

#: histories scored per call of ``model.scores`` during evaluation (bounds memory, not results).
EVAL_BATCH_SIZE = 1024


def as_histories(histories: Iterable[Sequence[int]], n_items: int) -> list[np.ndarray]:
    """Histories as int64 arrays, checked to hold item indices in ``[0, n_items)``.

    Raises:
        ValueError: an index is out of range (it would otherwise wrap around or hit padding silently).
    """
    out: list[np.ndarray] = []
    for r, h in enumerate(histories):
        a = np.asarray(h, dtype=np.int64).reshape(-1)
        if a.size and (a.min() < 0 or a.max() >= n_items):
            bad = a[(a < 0) | (a >= n_items)]
            raise ValueError(f"history {r} holds item indices outside [0, {n_items}): {bad[:5].tolist()}")
        out.append(a)
    return out


def mask_items(
    scores: np.ndarray, histories: Sequence[np.ndarray], *, keep: np.ndarray | None = None
) -> np.ndarray:
    """Set ``scores[r, histories[r]]`` to ``-inf`` in place (except ``keep[r]`` when given); returns it."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    if rows.size == 0:
        return scores
    cols = np.concatenate(histories)
    if keep is not None:
        saved = scores[np.arange(len(histories)), keep].copy()
        scores[rows, cols] = -np.inf
        scores[np.arange(len(histories)), keep] = saved
    else:
        scores[rows, cols] = -np.inf
    return scores


def scores_with_exclusions(
    model: TargetRecommender,
    inputs: Sequence[Sequence[int]],
    exclusions: Sequence[Sequence[int]],
    *,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """``f``'s scores for ``inputs`` with ``exclusions[r]`` set to ``-inf`` — the one masking rule.

    ``f`` reads ``inputs[r]`` (the window a task shows); every item of ``exclusions[r]`` (the user's
    whole known prefix, which contains the window) is excluded from the candidates. This is
    RecExplainer's rule (every history item before the context item -> -inf) and the target card's;
    teacher instances (:func:`bench.tasks.base.teacher_scores`) and the card both call it.
    ``keep[r]``, when given, stays rankable (the card's repeat-consumption rule). Returns a fresh
    float32 array ``[len(inputs), n_items]``.
    """
    if len(inputs) != len(exclusions):
        raise ValueError(f"{len(inputs)} inputs but {len(exclusions)} exclusion lists")
    ex = as_histories(exclusions, model.n_items)
    s = np.array(model.scores(as_histories(inputs, model.n_items), mask_history=False), dtype=np.float32)
    return mask_items(s, ex, keep=keep)


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of ``targets[r]`` in row ``r``: the number of items scored strictly higher."""
    targets = np.asarray(targets, dtype=np.int64)
    t = scores[np.arange(len(targets)), targets]
    ranks = (scores > t[:, None]).sum(axis=1)
    nan = np.isnan(t)
    if nan.any():
        log.warning("%d target scores are NaN; counted as misses", int(nan.sum()))
        ranks[nan] = scores.shape[1]
    return ranks.astype(np.int64)


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = (10,)) -> dict[str, float]:
    """``hr@K``, ``ndcg@K`` and ``mrr@K`` averaged over users, for each ``K`` in ``ks``."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    if ranks.size == 0:
        return {f"{m}@{k}": float("nan") for k in ks for m in ("hr", "ndcg", "mrr")}
    for k in ks:
        hit = ranks < k
        out[f"hr@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
        out[f"mrr@{k}"] = float(np.where(hit, 1.0 / (ranks + 1.0), 0.0).mean())
    return out


def evaluate_full_ranking(
    model: TargetRecommender,
    histories: Sequence[Sequence[int]],
    targets: Sequence[int] | np.ndarray,
    *,
    ks: Sequence[int] = (10,),
    mask_history: bool = True,
    window: int | None = None,
    keep_target: bool = True,
) -> dict[str, float]:
    """Rank each user's target among all items (history masked, see the module docstring).

    Args:
        model: the target; only ``scores`` and ``n_items`` are used.
        histories: one history per user (item indices): what is excluded.
        targets: one held-out item per user.
        ks: cut-offs.
        mask_history: mask the history items (the target stays rankable if it is in the history).
        window: when given, ``f`` reads only the last ``window`` items of each history (the teacher
            view: the window a task shows) while the whole history is still excluded.
        keep_target: keep the target rankable when it occurs in the history (repeat consumption);
            the teacher view does not, as teacher labels never name a prior item.

    Returns:
        ``{"hr@K": ..., "ndcg@K": ..., "mrr@K": ...}`` for each ``K``.
    """
    hs = as_histories(histories, model.n_items)
    tg = np.asarray(targets, dtype=np.int64).reshape(-1)
    if len(hs) != len(tg):
        raise ValueError(f"{len(hs)} histories but {len(tg)} targets")
    inputs = hs if window is None else [h[-window:] if window > 0 else h[:0] for h in hs]
    ranks = np.empty(len(hs), dtype=np.int64)
    for start in range(0, len(hs), EVAL_BATCH_SIZE):
        sl = slice(start, start + EVAL_BATCH_SIZE)
        excl = hs[sl] if mask_history else [h[:0] for h in hs[sl]]
        s = scores_with_exclusions(model, inputs[sl], excl, keep=tg[sl] if keep_target else None)
        ranks[sl] = target_ranks(s, tg[sl])
    return metrics_from_ranks(ranks, ks)


def target_card(model: TargetRecommender, split: Split, *, ks: Sequence[int] = (10,)) -> dict[str, Any]:
    """Validation and test accuracy of ``model`` on ``split``.

    * ``valid``: history = the train sequence ``s[:-2]``, target = ``s[-2]``;
    * ``test``: history = ``s[:-1]`` (train plus the valid item), target = ``s[-1]``.
    """
    train = split.train
    test_histories = [np.append(h, v) for h, v in zip(train, split.valid, strict=True)]
    return {
        "valid": evaluate_full_ranking(model, train, split.valid, ks=ks),
        "test": evaluate_full_ranking(model, test_histories, split.test, ks=ks),
    }


def teacher_view(
    model: TargetRecommender, split: Split, *, window: int, ks: Sequence[int] = (10,)
) -> dict[str, float]:
    """Test accuracy of ``f`` as the teacher instances see it: ``f`` reads the last ``window`` items
    of ``s[:-1]`` and the whole of ``s[:-1]`` is excluded (the rule of :func:`scores_with_exclusions`)."""
    test_histories = [np.append(h, v) for h, v in zip(split.train, split.valid, strict=True)]
    return evaluate_full_ranking(model, test_histories, split.test, ks=ks, window=window, keep_target=False)
