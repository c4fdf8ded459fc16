"""Saving and loading target checkpoints.

A checkpoint is a directory with two files:

* ``model.safetensors`` — the weights (``model.state_tensors()``);
* ``config.json`` — ``{"format_version": 1, "name": "sasrec", "config": {"n_items": ..., ...}}``.

Loading is strict: the class named in ``config.json`` is rebuilt from its config and every tensor
must be present with the right shape, with no extra ones. A mismatch is a :class:`UserError`
naming the file and the keys — never a target that silently scores with random weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bench.errors import UserError
from bench.io import atomic_write, atomic_write_text
from bench.recommenders.base import TargetRecommender

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_target(model: Any, directory: Path | str) -> None:
    """Write ``model``'s weights and config into ``directory`` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # safetensors wants contiguous CPU tensors that do not share memory.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_tensors().items()}
    meta = {"format_version": FORMAT_VERSION, "name": model.name, "config": model.config()}
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(tensors, str(p)))

    atomic_write_text(directory / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_config(directory: Path | str) -> dict[str, Any]:
    """Parse and validate ``config.json`` of a checkpoint directory."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise UserError(
            "target checkpoint has no config.json",
            where=str(path),
            fix="point to a directory written by a target's save()",
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read target config ({err})", where=str(path)) from None
    if (
        not isinstance(meta, dict)
        or not isinstance(meta.get("name"), str)
        or not isinstance(meta.get("config"), dict)
    ):
        raise UserError('expected an object with "name" and "config"', where=str(path))
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(
            f"unsupported checkpoint format_version {version!r} (this version reads {FORMAT_VERSION})",
            where=str(path),
            fix="retrain the target or use the recxbench version that wrote it",
        )
    if "n_items" not in meta["config"]:
        raise UserError('"config" lacks "n_items"', where=str(path))
    return meta


def _build(name: str, config: dict[str, Any], where: str) -> Any:
    from bench.registry import recommenders

    cls = recommenders.get(name)
    cfg = dict(config)
    n_items = cfg.pop("n_items")
    try:
        return cls(int(n_items), **cfg)
    except TypeError as err:
        raise UserError(f"config does not fit recommender {name!r} ({err})", where=where) from None


def _describe(keys: list[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_target(directory: Path | str) -> TargetRecommender:
    """Rebuild a target from ``directory`` (see the module docstring); strict about keys and shapes.

    Raises:
        UserError: missing/corrupt files, unknown recommender, or weights that do not match the
            model's parameters (missing keys, unexpected keys, shape mismatches).
    """
    directory = Path(directory)
    meta = read_config(directory)
    model = _build(meta["name"], meta["config"], str(directory / CONFIG_FILE))
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise UserError("target checkpoint has no weights file", where=str(path))
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"cannot read target weights ({err})", where=str(path)) from None

    expected = {k: tuple(v.shape) for k, v in model.state_tensors().items()}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        f"{k} {tuple(tensors[k].shape)} != {expected[k]}"
        for k in set(expected) & set(tensors)
        if tuple(tensors[k].shape) != expected[k]
    )
    problems = []
    if missing:
        problems.append(f"missing keys: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_describe(unexpected)}")
    if wrong:
        problems.append(f"shape mismatches: {_describe(wrong)}")
    if problems:
        raise UserError(
            f"weights do not match {meta['name']} config ({'; '.join(problems)})",
            where=str(path),
            fix="the checkpoint is corrupt or was written by a different model/config; retrain the target",
        )
    dtypes = {k: v.dtype for k, v in model.state_tensors().items()}
    model.load_state_tensors({k: tensors[k].to(dtypes[k]) for k in expected})
    log.debug("loaded %s target from %s", meta["name"], directory)
    return model


def checkpoint_hash(directory: Path | str) -> str:
    """sha256 of the ``model.safetensors`` bytes (identifies the trained weights in manifests)."""
    path = Path(directory) / WEIGHTS_FILE
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as err:
        raise UserError(f"cannot read target weights ({err})", where=str(path)) from None
    return h.hexdigest()


__all__ = ["FORMAT_VERSION", "checkpoint_hash", "load_target", "read_config", "save_target"]
