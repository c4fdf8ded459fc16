"""The KV cache's name in the installed transformers, for the forward calls that pass one.

transformers 5.2x renamed the forward argument and the output field ``past_key_values`` to ``cache``
(the old argument still works, with a FutureWarning on every call, until 5.40); 5.17, the version of
this project's GPU machine, knows only ``past_key_values``. The code that drives the model by hand
(prefix caches, packed continuations, constrained decoding) goes through :func:`with_cache` and
:func:`output_cache`, so it runs unchanged on either side of the rename, without the warnings.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.cache
def cache_argument() -> str:
    """``"cache"`` where the models' ``forward`` takes it, else ``"past_key_values"``."""
    from transformers import LlamaModel

    return "cache" if "cache" in inspect.signature(LlamaModel.forward).parameters else "past_key_values"


@functools.cache
def cache_field() -> str:
    """The output field holding the updated cache: ``"cache"`` or ``"past_key_values"``."""
    from transformers.modeling_outputs import BaseModelOutputWithPast

    return "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


def with_cache(cache: Any) -> dict[str, Any]:
    """The keyword argument passing ``cache`` to a model's ``forward``: ``model(..., **with_cache(c))``."""
    return {cache_argument(): cache}


def output_cache(out: Any) -> Any:
    """The cache a forward call returned."""
    return getattr(out, cache_field())
