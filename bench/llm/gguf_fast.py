"""A GGUF file read in one pass, for the fast conversion of Llama-family files (:mod:`bench.llm.convert`).

Why not ``gguf.GGUFReader``: it builds a numpy memmap view for every part of every metadata value
(≈ 100,000 for a 49k-token vocabulary and its merges) and transformers' GGUF loading runs it three
times (config, tokenizer, weights), plus a tensor-name map rebuilt per module: most of the minute a
conversion took. Here the metadata is parsed once from the file's bytes with ``struct`` (strings
and string arrays decoded directly, numeric arrays as numpy views), and tensors are memory-mapped
views located by the tensor table.

Format (GGUF v2/v3, little-endian): ``"GGUF"``, version u32, tensor count u64, metadata count u64;
each metadata entry is a string key, a u32 value type and the value (arrays: element type u32,
count u64, elements); each tensor entry is its name, ``n_dims`` u32, the dims u64 (innermost
first), the ggml type u32 and the offset u64 from the data start, which is the end of the table
rounded up to ``general.alignment`` (32 by default).

Dequantisation is ``gguf.quants.dequantize``, the function transformers' loader calls, so weights
come out bit-identical to it; :func:`dequantize` adds a vectorised in-place path for ``Q4_1`` (the
format of the shipped SmolLM2 file) that computes the same float32 operations (``d * q + m``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_MAGIC = b"GGUF"
#: metadata value types -> (struct format, size) for scalars
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
_NUMPY: dict[int, str] = {
    0: "<u1",
    1: "<i1",
    2: "<u2",
    3: "<i2",
    4: "<u4",
    5: "<i4",
    6: "<f4",
    7: "?",
    10: "<u8",
    11: "<i8",
    12: "<f8",
}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GgufTensor:
    """One tensor: its GGUF name, numpy shape (outermost first), ggml type and raw bytes (a view)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    raw: np.ndarray  # uint8, shaped as gguf.quants.dequantize expects: (*shape[:-1], bytes per row)


@dataclass(frozen=True)
class GgufFile:
    """A GGUF file's metadata (key -> python value; numeric arrays as numpy) and its tensors."""

    metadata: dict[str, Any]
    tensors: list[GgufTensor]


def _read_string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<Q", buf, pos)
    pos += 8
    return bytes(buf[pos : pos + n]).decode("utf-8", errors="replace"), pos + n


def _read_value(buf: memoryview, pos: int, vtype: int) -> tuple[Any, int]:
    if vtype == _STRING:
        return _read_string(buf, pos)
    if vtype == _ARRAY:
        etype, count = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if etype == _STRING:
            out = []
            for _ in range(count):
                s, pos = _read_string(buf, pos)
                out.append(s)
            return out, pos
        if etype in _NUMPY:
            dt = np.dtype(_NUMPY[etype])
            arr = np.frombuffer(buf, dtype=dt, count=count, offset=pos)
            return arr, pos + count * dt.itemsize
        items = []
        for _ in range(count):
            v, pos = _read_value(buf, pos, etype)
            items.append(v)
        return items, pos
    if vtype not in _SCALARS:
        raise ValueError(f"unknown GGUF metadata value type {vtype}")
    fmt, size = _SCALARS[vtype]
    return struct.unpack_from(fmt, buf, pos)[0], pos + size


def read_gguf(path: Path) -> GgufFile:
    """Parse ``path`` (metadata and tensor table; tensor bytes stay memory-mapped).

    Raises:
        ValueError: not a GGUF file, or a tensor type ``gguf`` does not know.
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    mm = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(mm)
    if bytes(buf[:4]) != _MAGIC:
        raise ValueError(f"{path} is not a GGUF file (no GGUF magic)")
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version < 2:
        raise ValueError(f"{path}: GGUF version {version} is not supported (2 or later)")
    pos = 24
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key, pos = _read_string(buf, pos)
        (vtype,) = struct.unpack_from("<I", buf, pos)
        metadata[key], pos = _read_value(buf, pos + 4, vtype)
    table = []
    for _ in range(n_tensors):
        name, pos = _read_string(buf, pos)
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
        ggml_type, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
        pos += 4 + 8 * n_dims + 12
        table.append((name, tuple(int(d) for d in reversed(dims)), int(ggml_type), int(offset)))
    align = int(metadata.get("general.alignment", 32))
    start = pos + (-pos) % align
    tensors = []
    for name, shape, ggml_type, offset in table:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
        row_bytes = shape[-1] // block * type_size
        rows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
        raw = mm[start + offset : start + offset + rows * row_bytes].reshape(*shape[:-1], row_bytes)
        tensors.append(GgufTensor(name, shape, ggml_type, raw))
    return GgufFile(metadata, tensors)


def _q4_1(raw: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``Q4_1`` blocks (f16 scale d, f16 minimum m, 16 bytes of 4-bit q: low nibbles are elements
    0-15, high nibbles 16-31) -> float32 ``d * q + m``: the operations of ``gguf.quants`` (a float32
    product, then a float32 sum), over the whole tensor at once and in place."""
    blocks = np.asarray(raw).reshape(-1, 20)
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
    m = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 4:]
    out = np.empty((blocks.shape[0], 32), dtype=np.float32)
    np.bitwise_and(qs, 0x0F, out=out[:, :16], casting="unsafe")
    np.right_shift(qs, 4, out=out[:, 16:], casting="unsafe")
    out *= d
    out += m
    return out.reshape(shape)


def dequantize(t: GgufTensor) -> np.ndarray:
    """The float32 values of ``t`` in its numpy shape (bit-identical to ``gguf.quants.dequantize``)."""
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import dequantize as reference

    if t.ggml_type == GGMLQuantizationType.Q4_1:
        return _q4_1(t.raw, t.shape)
    out = reference(t.raw, GGMLQuantizationType(t.ggml_type))
    return np.asarray(out, dtype=np.float32).reshape(t.shape)
