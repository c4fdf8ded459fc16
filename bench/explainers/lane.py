"""LANE (Zhao et al., arXiv 2407.02833): preferences from an LLM, aligned to the target by attention.

Pipeline (``tasks/explainers/lane.yaml`` holds every parameter):

1. **Preferences.** For every distinct history the explainer meets (align-train histories capped at
   ``max_train_histories``, all align-valid and align-test ones), the suite's LLM writes five
   preferences from the history's titles (:mod:`bench.llm.preferences`: by default chosen from a
   lexicon of genre/theme phrases by the LLM's calibrated scores, or LANE's free text in forced
   JSON with ``preference_mode: free``; cached under ``$RECXBENCH_HOME``). The explainer sees
   only an instance's shown history (its user is hidden), so the preferences are those of the
   shown window — the same input ``f`` scored; a task that hides the history (history
   reconstruction) is not answered.
2. **Alignment head** (:class:`bench.recommenders.lane_sasrec.PreferenceAttention`): query =
   ``f``'s user vector of the history projected to the encoder's width (``Linear``); keys = values =
   the MiniLM embeddings of the usable preferences; 4 heads, LayerNorm + point-wise feed-forward.
   An item's score is ``<head output, W_i · title embedding>``; a like/dislike probability is
   ``sigmoid(a · score + b)``. Trained with Adam on align-train to reproduce ``f``: cross-entropy of
   ``f``'s top-1 over the catalog (retrieval), ListMLE of ``f``'s order (ranking) and BCE of ``f``'s
   like/dislike (classification); early stopping on the same loss on align-valid. The head is
   saved under the run's shared adapters directory keyed by what training depends on, so
   inference-only variants reuse it.
3. **Explanations**: LANE's four-step chain of thought (``tasks/prompts/lane_explanation.j2``) with
   the preferences and their single-head ``get_weight`` weights, written with the forced-format
   decoder (layout in :mod:`bench.explainers.lane_explain`).

``lane-shuffled-preferences`` (:class:`LaneShuffled`): the same trained head, each history fed
the preferences of another history (a seeded derangement, :data:`bench.seeds.USER_SHUFFLE`) at
inference. If the preferences carry information, its scores drop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from bench import seeds
from bench.answers import Permutation, RankedItems, Text, YesNo
from bench.explainers.base import Explainer, ExplainerContext
from bench.explainers.lane_head import HeadData, LaneHead, train_head
from bench.tasks.base import Task
from bench.types import Instance

log = logging.getLogger(__name__)

#: task answer types the head answers, and the training kinds it learns from
_METHODS = ("retrieve", "rank", "classify", "explain")


def load_lane_defaults() -> dict[str, Any]:
    """The ``lane:`` block of ``tasks/explainers/lane.yaml``."""
    import yaml

    from bench.resources import tasks_dir

    data = yaml.safe_load((tasks_dir() / "explainers" / "lane.yaml").read_text(encoding="utf-8"))
    return dict(data["lane"])


def extractor_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`bench.llm.preferences.PreferenceExtractor` keywords of lane parameters."""
    return {
        "n": int(params["n_preferences"]),
        "max_titles": int(params["max_titles"]),
        "max_value_tokens": int(params["max_value_tokens"]),
        "batch_size": int(params["extract_batch_size"]),
        "mode": str(params["preference_mode"]),
        "lexicon": str(params["lexicon"]),
        "calibration": float(params["calibration"]),
    }


class LaneExplainer(Explainer):
    name: ClassVar[str] = "lane"
    access = "embedding"
    uses_backbone = True
    summary: ClassVar[str] = (
        "LLM preferences + attention head aligned to f's embeddings; 4-step CoT explanations"
    )
    version: ClassVar[int] = 1
    #: inference only: feed each history another history's preferences
    shuffled: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        from bench.explainers.llm_params import merge_params

        self.params = merge_params(self.name, load_lane_defaults(), params)
        self.prefs: dict[tuple[int, ...], Any] = {}
        self.extraction: dict[str, Any] = {}
        self.report: dict[str, Any] = {}

    def supports(self, task: Task) -> bool:
        return super().supports(task) and not task.hides_history and task.answer.method in _METHODS

    # -- set-up -----------------------------------------------------------------------------------

    def _titles(self, items: Sequence[int]) -> list[str]:
        return [self.ctx.catalog.title(int(i)) for i in items]

    def _extract(self, histories: Sequence[tuple[int, ...]]) -> None:
        from bench.llm.preferences import summary

        new = [h for h in dict.fromkeys(histories) if h not in self.prefs]
        if new:
            got = self.extractor.extract([self._titles(h) for h in new])
            self.prefs.update(zip(new, got, strict=True))
        self.extraction = {**summary(list(self.prefs.values())), **self.extractor.info()}

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        return self.enc_cache.encode(self.encoder, list(texts))

    def records(self, histories: Sequence[tuple[int, ...]]) -> list[Any]:
        """The preferences fed for each history (another history's under the shuffled ablation)."""
        self._extract(histories)
        recs = [self.prefs[h] for h in histories]
        if self.shuffled and getattr(self, "_trained", False):
            recs = self._shuffle(histories, recs)
        return recs

    def _pref_arrays(self, histories: Sequence[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """Preference embeddings ``[n, P, d]`` and usable masks ``[n, P]`` of ``histories``."""
        p = int(self.params["n_preferences"])
        recs = self.records(histories)
        flat = [v or "-" for r in recs for v in r.values]
        vecs = self._vectors(flat).reshape(len(recs), p, -1) if recs else np.zeros((0, p, self.encoder.dim))
        mask = np.array([r.usable for r in recs], dtype=bool).reshape(len(recs), p)
        return vecs.astype(np.float32), mask

    def _shuffle(self, histories: Sequence[tuple[int, ...]], recs: list[Any]) -> list[Any]:
        """Each distinct history takes the preferences of the next one along a seeded cycle."""
        keys = sorted(set(histories))
        if len(keys) < 2:
            return recs
        perm = seeds.rng(self.ctx.seed, seeds.USER_SHUFFLE, "lane").permutation(len(keys))
        remap = {
            keys[int(perm[j])]: self.prefs[keys[int(perm[(j + 1) % len(keys)])]] for j in range(len(keys))
        }
        return [remap[h] for h in histories]

    def _data(self, insts: Sequence[Instance]) -> HeadData:
        hist = [tuple(int(x) for x in i.history) for i in insts]
        prefs, mask = self._pref_arrays(hist)
        users = np.stack([self.ctx.embeddings.user_vector(h) for h in hist]) if hist else np.zeros((0, 1))
        return HeadData(users.astype(np.float32), prefs, mask)

    def fit(self, train: Mapping[str, list[Instance]], ctx: ExplainerContext) -> None:
        from bench.explainers.llm_base import run_backbone
        from bench.llm.encoder import EncodingCache, load_encoder
        from bench.llm.preferences import PreferenceExtractor
        from bench.wheels import cache_root

        self.ctx = ctx
        # the run's backbone (one load per run): extraction and explanations only read it
        self.backbone = run_backbone(ctx, str(self.params["backbone"]))
        self.extractor = PreferenceExtractor(self.backbone, **extractor_params(self.params))
        self.encoder = load_encoder(str(self.params["encoder"]), device=ctx.device)
        self.enc_cache = EncodingCache(cache_root() / "encodings")
        self.items = self._vectors(self._titles(range(len(ctx.catalog))))
        valid = {t: v for t, v in (ctx.extra.get("valid") or {}).items() if t in train}
        train = self._cap(train, self.params["max_train_histories"], "train-histories")
        valid = self._cap(valid, self.params["max_valid_histories"], "valid-histories")
        kinds = {t: ctx.tasks[t].answer.method for t in train}
        parts = {
            "train": {t: (insts, self._data(insts)) for t, insts in train.items() if kinds[t] != "explain"},
            "valid": {t: (insts, self._data(insts)) for t, insts in valid.items() if kinds[t] != "explain"},
        }
        self.head, self.report = self._load_or_train(parts, kinds, train)
        self._trained = True

    def _cap(self, train: Mapping[str, list[Instance]], cap: Any, purpose: str) -> dict[str, list[Instance]]:
        """The instances of at most ``cap`` distinct histories (a seeded pick; None = all)."""
        hist = sorted({tuple(int(x) for x in i.history) for insts in train.values() for i in insts})
        if cap is None or len(hist) <= int(cap):
            return dict(train)
        pick = self.ctx.rng("lane", purpose).choice(len(hist), size=int(cap), replace=False)
        keep = {hist[int(j)] for j in pick}
        return {
            t: [i for i in insts if tuple(int(x) for x in i.history) in keep] for t, insts in train.items()
        }

    def _load_or_train(
        self, parts: dict[str, Any], kinds: dict[str, str], train: Mapping[str, list[Instance]]
    ) -> tuple[LaneHead, dict[str, Any]]:
        import torch

        from bench.hashing import stable_hash
        from bench.io import atomic_write

        training = {
            k: v for k, v in self.params.items() if k not in ("explain_max_tokens", "explain_batch_size")
        }
        key = stable_hash(
            {
                "name": "lane",
                "version": self.version,
                "params": training,
                "train": {t: [(i.instance_id, i.label) for i in insts] for t, insts in sorted(train.items())},
                "seed": self.ctx.seed,
            }
        )[:16]
        root = self.ctx.extra.get("adapters_dir") or (self.ctx.cache_dir / "adapters")
        path = root / f"lane-{key}.pt"
        head = LaneHead(
            user_dim=self.ctx.embeddings.dim,
            dim=self.encoder.dim,
            n_heads=int(self.params["n_heads"]),
            dropout=float(self.params["dropout"]),
        )
        if path.is_file():
            saved = torch.load(path, map_location="cpu", weights_only=True)  # tensors and a JSON string
            head.load_state_dict(saved["state"], strict=True)
            head.eval()
            return head, {**json.loads(saved["report_json"]), "reused": True}
        head, report = train_head(
            self.items, parts, kinds, self.params, user_dim=self.ctx.embeddings.dim, seed=self.ctx.seed
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(
            path,
            lambda tmp: torch.save(
                {"state": head.state_dict(), "report_json": json.dumps(report, default=float)}, tmp
            ),
        )
        return head, {**report, "reused": False}

    # -- answers ----------------------------------------------------------------------------------

    def _scores(self, instances: list[Instance]) -> np.ndarray:
        return self.head.score_items(self._data(instances), self.items)

    def retrieve(self, task: Task, instances: list[Instance]) -> list[RankedItems]:
        k = max(int(x) for x in task.params.get("k", [10]))
        scores = self._scores(instances)
        out = []
        for inst, row in zip(instances, scores, strict=True):
            row = row.copy()
            row[list(inst.history)] = -np.inf  # f never recommends a known item
            out.append(RankedItems([int(i) for i in np.argsort(-row, kind="stable")[:k]]))
        return out

    def rank(self, task: Task, instances: list[Instance]) -> list[Permutation]:
        scores = self._scores(instances)
        out = []
        for inst, row in zip(instances, scores, strict=True):
            c = [int(x) for x in inst.candidates]
            out.append(Permutation(sorted(c, key=lambda i: (-float(row[i]), c.index(i)))))
        return out

    def classify(self, task: Task, instances: list[Instance]) -> list[YesNo]:
        probs = self.head.like_probability(
            self._data(instances), self.items, [int(i.candidates[0]) for i in instances]
        )
        return [YesNo(bool(p > 0.5), score=float(p)) for p in probs]

    def explain(self, task: Task, instances: list[Instance]) -> list[Text]:
        from bench.explainers.lane_explain import explain_with_cot

        return explain_with_cot(self, instances)

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "backbone": {"spec": self.backbone.spec, "sha256": self.backbone.sha256}
            if hasattr(self, "backbone")
            else None,
            "encoder": getattr(getattr(self, "encoder", None), "id", None),
            "preferences": self.extraction,
            "head": self.report,
            "shuffled_preferences": self.shuffled,
        }


class LaneShuffled(LaneExplainer):
    """``lane-shuffled-preferences``: LANE's trained head fed other histories' preferences."""

    name: ClassVar[str] = "lane-shuffled-preferences"
    summary: ClassVar[str] = "ablation: the trained LANE head fed another history's preferences (seeded)"
    shuffled = True
