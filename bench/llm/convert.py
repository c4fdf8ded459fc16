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

Special tokens come from the file, not from the loader: transformers 5.17's GGUF tokenizer reader
gives SmolLM2 ``eos_token = <|im_start|>`` (id 1) where the file says ``tokenizer.ggml.eos_token_id
= 2`` (``<|im_end|>``), which 5.24 reads correctly — with the wrong one, training appends the wrong
end token to every answer and generation stops on it. :func:`file_special_tokens` reads BOS, EOS,
UNK and PAD from the metadata and the conversion sets them on the tokenizer before saving, so a
checkpoint has the file's special tokens whatever transformers converted it. ``CONVERSION_VERSION``
is part of the checkpoint's directory name: a conversion made before this rule is not reused.
"""

from __future__ import annotations

import json
import logging
import struct
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
#: Bumped when a conversion of the same file would now give different files; part of the directory
#: name, so older conversions are redone instead of reused (2: special tokens taken from the file).
CONVERSION_VERSION = 2
#: tokenizer attribute -> the GGUF metadata key holding its token id
_SPECIAL_TOKEN_KEYS = {
    "bos_token": "tokenizer.ggml.bos_token_id",
    "eos_token": "tokenizer.ggml.eos_token_id",
    "unk_token": "tokenizer.ggml.unknown_token_id",
    "pad_token": "tokenizer.ggml.padding_token_id",
}


def gguf_digest(gguf: Path) -> str:
    """sha256 of a GGUF file, cached under ``<cache>/models/digests`` keyed by its location."""
    return cached_digest([gguf], models_dir() / "digests" / f"{path_key(gguf)}.json")


def converted_dir(gguf_sha256: str) -> Path:
    """Where the plain checkpoint converted from the GGUF with this sha256 lives."""
    return models_dir() / "converted" / f"{gguf_sha256[:16]}-c{CONVERSION_VERSION}"


def file_special_tokens(metadata: dict[str, Any]) -> dict[str, str]:
    """The special tokens a GGUF file names (``bos_token``, ``eos_token``, ``unk_token``,
    ``pad_token`` -> token text), read from the ``tokenizer.ggml.*_token_id`` keys it has."""
    tokens = metadata.get("tokenizer.ggml.tokens")
    out: dict[str, str] = {}
    if tokens is None:
        return out
    for attr, key in _SPECIAL_TOKEN_KEYS.items():
        idx = metadata.get(key)
        if idx is not None and 0 <= int(idx) < len(tokens):
            out[attr] = str(tokens[int(idx)])
    return out


def apply_special_tokens(tokenizer: Any, special: dict[str, str], *, source: str) -> list[str]:
    """Set each of ``special`` on ``tokenizer`` where it differs; returns what was changed
    (``"eos_token: '<|im_start|>' -> '<|im_end|>'"``), each also logged as a warning."""
    changed = []
    for attr, token in special.items():
        current = getattr(tokenizer, attr, None)
        if current != token:
            setattr(tokenizer, attr, token)
            changed.append(f"{attr}: {current!r} -> {token!r}")
    if changed:
        log.warning(
            "the tokenizer transformers read from %s disagrees with the file's special tokens; "
            "using the file's (%s)",
            source,
            "; ".join(changed),
        )
    return changed


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


#: GGUF tensor names of a Llama block -> the HF module under ``model.layers.N``
_LLAMA_BLOCK = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_LLAMA_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
#: tensors transformers recomputes and never loads
_LLAMA_SKIP = ("rope_freqs.weight",)


def _hf_name(gguf_name: str) -> str | None:
    """The HF parameter name of a Llama GGUF tensor, or None for a name this map does not know."""
    stem, _, kind = gguf_name.rpartition(".")
    parts = stem.split(".")
    if len(parts) == 1 and parts[0] in _LLAMA_TOP:
        return f"{_LLAMA_TOP[parts[0]]}.{kind}"
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in _LLAMA_BLOCK:
        return f"model.layers.{parts[1]}.{_LLAMA_BLOCK[parts[2]]}.{kind}"
    return None


def _unpermute(w: Any, n_head: int) -> Any:
    """Undo llama.cpp's rotary permutation of q/k rows (as transformers' GGUF loader does)."""
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def _gguf_config(metadata: dict[str, Any], *, tied: bool) -> dict[str, Any]:
    """The HF config attributes transformers' GGUF loader derives from ``metadata`` (same mapping)."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_TO_TRANSFORMERS_MAPPING

    renames = GGUF_TO_TRANSFORMERS_MAPPING["config"]
    cfg: dict[str, Any] = {"tie_word_embeddings": tied}
    for key, value in metadata.items():
        prefix, _, rest = key.partition(".")
        target = renames.get(prefix, {}).get(rest)
        if target is None or target == -1:
            continue
        if hasattr(value, "tolist"):
            value = value.tolist()
        cfg[target] = value
    if "vocab_size" not in cfg and "tokenizer.ggml.tokens" in metadata:
        cfg["vocab_size"] = len(metadata["tokenizer.ggml.tokens"])
    return cfg


def fast_convert(gguf: Path, staging: Path) -> int | None:
    """Convert a Llama-architecture GGUF with a BPE (``gpt2``) tokenizer into ``staging``; the number
    of parameters, or None (nothing written) when the file needs transformers' own GGUF loader.

    The same checkpoint as :func:`load_gguf` + :func:`plain_copy` + ``save_pretrained`` (tests
    check the files are byte-identical), in seconds rather than a minute: the file is parsed once
    (:mod:`bench.llm.gguf_fast`), each tensor is dequantised once and written once, and no model is
    instantiated except to check that the checkpoint loads with every key matched.
    """
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    from bench.llm.gguf_fast import dequantize, read_gguf

    f = read_gguf(gguf)
    md = f.metadata
    names = {t.name: _hf_name(t.name) for t in f.tensors}
    if (
        md.get("general.architecture") != "llama"
        or "mistral" in str(md.get("general.name", "")).lower()  # transformers reads those as mistral
        or md.get("tokenizer.ggml.model") != "gpt2"
        or any(hf is None and name not in _LLAMA_SKIP for name, hf in names.items())
    ):
        return None
    cfg = _gguf_config(md, tied="output.weight" not in names)
    for key in _GGUF_CONFIG_KEYS:
        cfg.pop(key, None)
    model_type = cfg.pop("model_type", "llama")
    config = AutoConfig.for_model(model_type, **cfg)
    config.architectures = ["LlamaForCausalLM"]
    config.dtype = torch.float32
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    tensors: dict[str, torch.Tensor] = {}
    for t in f.tensors:
        hf = names[t.name]
        if hf is None:
            continue
        w = dequantize(t)
        if ".attn_q." in t.name:
            w = _unpermute(w, heads)
        elif ".attn_k." in t.name:
            w = _unpermute(w, kv_heads)
        # plain float32 tensors are read-only views of the mapped file: copy those (once)
        tensors[hf] = torch.from_numpy(w if w.flags.writeable and w.flags.c_contiguous else np.array(w))
    if config.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
    save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
    n_params = sum(int(v.numel()) for v in tensors.values())
    del tensors
    config.save_pretrained(staging)
    GenerationConfig.from_model_config(config).save_pretrained(staging)
    tokenizer = TokenizersBackend.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, local_files_only=True
    )
    apply_special_tokens(tokenizer, file_special_tokens(md), source=gguf.name)
    tokenizer.save_pretrained(staging)
    # The check plain_copy makes by comparing logits: here every parameter must come from the file.
    model, loading = AutoModelForCausalLM.from_pretrained(
        str(staging), dtype=torch.float32, local_files_only=True, output_loading_info=True
    )
    if loading["missing_keys"] or loading["unexpected_keys"] or loading["mismatched_keys"]:
        raise RuntimeError(f"GGUF conversion left keys unmatched: {loading}")
    return n_params


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

    log.info("converting %s into a plain checkpoint (once) ...", gguf.name)
    t0 = time.perf_counter()
    with atomic_dir(out) as staging:  # another process may finish first: then its copy is kept
        try:
            n_params = fast_convert(gguf, staging)
        except (struct.error, ValueError, EOFError, IndexError) as exc:  # a cut or foreign file
            raise UserError(
                f"cannot read the GGUF file ({exc})",
                where=str(gguf),
                fix="download the file again (it looks truncated or is not a GGUF model)",
            ) from None
        if n_params is None:  # not a Llama/BPE file: transformers' loader, a minute or more
            model, tokenizer = load_gguf(gguf, trust_remote_code=trust_remote_code)
            from bench.llm.gguf_fast import read_gguf

            apply_special_tokens(tokenizer, file_special_tokens(read_gguf(gguf).metadata), source=gguf.name)
            fresh = plain_copy(model)
            del model
            fresh.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            n_params = sum(p.numel() for p in fresh.parameters())
            del fresh
        _clean_tokenizer_config(staging)
        meta = {
            "source": str(gguf),
            "gguf_sha256": sha,
            "conversion_s": round(time.perf_counter() - t0, 2),
            "n_params": n_params,
            "sha256": cached_digest(checkpoint_files(staging), staging / DIGEST_FILE),
        }
        (staging / CONVERTED_MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    stored = json.loads(marker.read_text(encoding="utf-8"))
    if stored != meta:
        log.info("another process converted %s first; using its copy", gguf.name)
        return out, stored
    log.info("converted %s in %.1f s into %s", gguf.name, meta["conversion_s"], out)
    return out, meta
