"""The LLM layer: backbones (HF dirs, GGUF, aliases), batched scoring and generation, LoRA training.

The names below are re-exported lazily (PEP 562): ``import bench.llm`` stays cheap and does not
import torch or transformers until one of them is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Backbone": "bench.llm.backbone",
    "load_backbone": "bench.llm.backbone",
    "format_prompt": "bench.llm.chat",
    "fetch_model": "bench.llm.smollm2",
    "generate": "bench.llm.generation",
    "score_continuations": "bench.llm.scoring",
    "TitleTrie": "bench.llm.trie",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bench.llm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
