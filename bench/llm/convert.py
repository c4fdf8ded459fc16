"""GGUF → plain Hugging Face checkpoint, converted once into the cache.

``transformers`` can load a GGUF file directly (``from_pretrained(dir, gguf_file=name)``): it
dequantises every tensor to float32 and converts the embedded tokenizer. That takes tens of seconds
(the ``gguf`` reader parses the file twice, once for the config and once for the weights), so we
do it once and save an ordinary safetensors checkpoint under
``<cache>/models/converted/<sha256(gguf)[:16]>/`` that later loads in about a second.

Why not ``model.save_pretrained`` straight away: the dequantised model still carries the GGUF
quantizer (``model.hf_quantizer``) and ``config.quantization_config = {"quant_method": "gguf",
...}``, and ``save_pretrained`` refuses it ("The model is quantized with gguf and is not
serializable"); saving the config alone would also make a checkpoint that asks for the GGUF file on
every load. So we rebuild the config without the GGUF-specific attributes, instantiate a fresh
model of the same class from it, copy the state dict in (strictly: every key must match, and tied
embeddings stay tied because the fresh model ties them from ``tie_word_embeddings``), check that it
gives the same logits as the GGUF model, and save that. The tokenizer saves fine; we only drop the
load-time keys (``is_local``, ``local_files_only``) it leaks into ``tokenizer_config.json``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.io import atomic_dir
from bench.llm.digest import DIGEST_FILE, cached_digest, checkpoint_files, path_key
from bench.llm.smollm2 import models_dir

log = logging.getLogger(__name__)

#: Written last into a converted checkpoint: its presence means the conversion finished.
CONVERTED_MARKER = "CONVERTED.json"
#: Config attributes that describe the GGUF source rather than the model.
_GGUF_CONFIG_KEYS = ("quantization_config", "_name_or_path", "_model_name_or_path", "transformers_version")
#: Keys ``save_pretrained`` copies from the load kwargs into tokenizer_config.json.
_TOKENIZER_LOAD_KEYS = ("is_local", "local_files_only", "gguf_file")
#: The conversion self-check: max |Δlogit| allowed between the GGUF model and its plain copy.
_CHECK_ATOL = 1e-4


def gguf_digest(gguf: Path) -> str:
    """sha256 of a GGUF file, cached under ``<cache>/models/digests`` keyed by its location."""
    return cached_digest([gguf], models_dir() / "digests" / f"{path_key(gguf)}.json")


def converted_dir(gguf_sha256: str) -> Path:
    """Where the plain checkpoint converted from the GGUF with this sha256 lives."""
    return models_dir() / "converted" / gguf_sha256[:16]


def load_gguf(gguf: Path, *, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """Load a GGUF file directly through transformers (dequantised float32 model, tokenizer).

    Slow (tens of seconds); use :func:`convert_gguf` instead except to check a conversion.

    Raises:
        UserError: the file is not a GGUF model transformers can read, or ``gguf`` is missing.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {
        "gguf_file": gguf.name,
        "local_files_only": True,
        "trust_remote_code": trust_remote_code,
    }
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype=torch.float32, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **kwargs)
    except ImportError as exc:
        raise UserError(
            f"cannot read GGUF files: {exc}", where=str(gguf), fix="pip install 'recxbench[llm]' (needs gguf)"
        ) from None
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise UserError(
            f"cannot load GGUF model: {type(exc).__name__}: {exc}",
            where=str(gguf),
            fix="pass a GGUF file of a causal LM architecture that transformers supports (llama, qwen2, ...)",
        ) from None
    model.eval()
    return model, tokenizer


def plain_copy(model: Any) -> Any:
    """A fresh, non-quantized model of the same class and weights as a GGUF-loaded ``model``."""
    import torch
    from transformers import AutoConfig

    cfg = model.config.to_dict()
    for key in _GGUF_CONFIG_KEYS:
        cfg.pop(key, None)
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    config.architectures = [type(model).__name__]
    fresh = type(model)(config)
    fresh.load_state_dict(model.state_dict(), strict=True)
    fresh.tie_weights()
    fresh.generation_config = model.generation_config
    fresh.to(torch.float32).eval()
    # Same inputs, same logits: catches a dropped tie, a renamed key or a config field we lost.
    ids = torch.arange(1, 9).unsqueeze(0) % config.vocab_size
    with torch.no_grad():
        diff = (model(ids).logits - fresh(ids).logits).abs().max().item()
    if not diff <= _CHECK_ATOL:
        raise RuntimeError(f"GGUF conversion changed the logits (max |Δ| = {diff:.3g})")
    return fresh


def _clean_tokenizer_config(directory: Path) -> None:
    path = directory / "tokenizer_config.json"
    if not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in _TOKENIZER_LOAD_KEYS:
        data.pop(key, None)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def convert_gguf(gguf: Path, *, trust_remote_code: bool = False) -> tuple[Path, dict[str, Any]]:
    """The plain HF checkpoint converted from ``gguf`` (converting it now if not yet done).

    The checkpoint is written into a temporary directory next to its final place and renamed in
    one step, so an interrupted conversion leaves nothing that looks finished; concurrent
    conversions of the same file race harmlessly (the loser discards its copy).

    Returns:
        ``(directory, meta)`` where meta holds ``source``, ``gguf_sha256``, ``conversion_s``,
        ``n_params`` and ``sha256`` (the checkpoint's digest).
    """
    gguf = gguf.expanduser().resolve()
    sha = gguf_digest(gguf)
    out = converted_dir(sha)
    marker = out / CONVERTED_MARKER
    if marker.is_file():
        log.info("reusing the converted checkpoint %s", out)
        return out, json.loads(marker.read_text(encoding="utf-8"))

    log.info("converting %s into a plain checkpoint (once; takes about a minute) ...", gguf.name)
    t0 = time.perf_counter()
    model, tokenizer = load_gguf(gguf, trust_remote_code=trust_remote_code)
    fresh = plain_copy(model)
    del model
    with atomic_dir(out) as staging:  # another process may finish first: then its copy is kept
        fresh.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        _clean_tokenizer_config(staging)
        meta = {
            "source": str(gguf),
            "gguf_sha256": sha,
            "conversion_s": round(time.perf_counter() - t0, 2),
            "n_params": sum(p.numel() for p in fresh.parameters()),
            "sha256": cached_digest(checkpoint_files(staging), staging / DIGEST_FILE),
        }
        (staging / CONVERTED_MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    stored = json.loads(marker.read_text(encoding="utf-8"))
    if stored != meta:
        log.info("another process converted %s first; using its copy", gguf.name)
        return out, stored
    log.info("converted %s in %.1f s into %s", gguf.name, meta["conversion_s"], out)
    return out, meta
