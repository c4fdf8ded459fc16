"""The lm-eval model ``recxbench``: recxbench backbones (and trained adapters) served to lm-eval.

Importing this module registers the model with lm-eval (``@register_model("recxbench")``); lm-eval
has no plugin discovery, so ``recxbench lm-eval ...`` imports it and hands over to lm-eval's CLI, and
Python users import it before ``lm_eval.simple_evaluate(model="recxbench", ...)``.

Model arguments (``--model_args key=value,...``):

* ``backbone`` — any recxbench backbone spec: an alias (``smollm2-135m``, ``tiny-random``), a local
  Hugging Face model directory, a ``.gguf`` file or ``DIR::FILE.gguf``;
* ``export`` — a folder written by ``recxbench export-lmeval``: ``tiny-random`` is then built on that
  run's titles and seed (as the run's explainers saw it);
* ``adapter`` — a trained LoRA adapter directory (e.g. ``RUN_DIR/cache/adapters/recexplainer-b-…/adapter``)
  loaded on top of the backbone;
* ``device`` (``cpu``/``cuda``/``auto``), ``dtype``, ``batch_size``, ``seed``.

Requests follow recxbench's conventions (:mod:`bench.llm.chat`): a continuation is scored on its own
tokens after the whole context, so log-likelihoods equal the native explainers' to float precision.
``is_greedy`` is not computed (always ``False``); ``loglikelihood_rolling`` scores the text after a
lone BOS, without windowing (texts must fit the model's context).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import lm_eval.models  # noqa: F401  (lm-eval's own models first: it loads them only into an empty registry)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from bench.io import read_json

log = logging.getLogger(__name__)


@register_model("recxbench")
class RecxbenchLM(LM):
    """lm-eval's ``LM`` interface over :func:`bench.llm.backbone.load_backbone`."""

    def __init__(
        self,
        backbone: str = "tiny-random",
        export: str | None = None,
        adapter: str | None = None,
        device: str = "cpu",
        dtype: str | None = None,
        batch_size: int | str = 16,
        seed: int | str = 0,
        **unused: Any,
    ) -> None:
        super().__init__()
        from bench.llm.backbone import load_backbone

        if unused:
            log.info("recxbench model: ignoring lm-eval options %s", ", ".join(sorted(unused)))
        titles = None
        seed_ = int(seed)
        if export:
            bundle = read_json(Path(export) / "recxbench.json")
            titles = bundle["catalog"]["titles"]
            seed_ = int(bundle.get("seed", seed_))
        device = str(device or "cpu")
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():  # lm-eval's default device is cuda:0
                log.warning("recxbench model: no CUDA GPU visible, running on the CPU")
                device = "cpu"
        self.backbone = load_backbone(str(backbone), device=device, dtype=dtype, titles=titles, seed=seed_)
        if adapter:
            from bench.llm.adapter import load_adapter

            path = Path(adapter)
            if not (path / "adapter_config.json").is_file() and (path / "adapter").is_dir():
                path = path / "adapter"  # a run's cache/adapters/<explainer>-<key>/ directory
            self.backbone = load_adapter(self.backbone, path)
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 16

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        from bench.llm.scoring import score_continuations

        # one entry per distinct context: its continuations share the context's forward pass
        by_ctx: dict[str, list[int]] = defaultdict(list)
        for k, req in enumerate(requests):
            by_ctx[req.args[0]].append(k)
        contexts = list(by_ctx)
        conts = [[requests[k].args[1] for k in by_ctx[c]] for c in contexts]
        lls = score_continuations(self.backbone, contexts, conts, batch_size=self.batch_size)
        out: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
        for c, row in zip(contexts, lls):
            for k, ll in zip(by_ctx[c], row):
                out[k] = (float(ll), False)
        return out

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        from bench.llm.scoring import score_continuations

        texts = [req.args[0] for req in requests]
        lls = score_continuations(
            self.backbone, [""] * len(texts), [[t] for t in texts], batch_size=self.batch_size
        )
        return [float(row[0]) for row in lls]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        from bench.llm.generation import cut_at_stop, generate

        groups: dict[tuple, list[int]] = defaultdict(list)
        for k, req in enumerate(requests):
            kw = dict(req.args[1] or {})
            until = kw.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            groups[(tuple(until), int(kw.get("max_gen_toks", 256)))].append(k)
        out = [""] * len(requests)
        for (until, max_toks), ks in groups.items():
            texts = generate(
                self.backbone,
                [requests[k].args[0] for k in ks],
                max_new_tokens=max_toks,
                stop=until,
                batch_size=self.batch_size,
            )
            for k, t in zip(ks, texts):
                out[k] = cut_at_stop(t[0] if t else "", until) if until else (t[0] if t else "")
        return out
