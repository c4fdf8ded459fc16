"""The one device resolver: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> a device torch accepts."""

from __future__ import annotations

from bench.errors import UserError

#: what a suite's ``device`` key and ``--device`` accept (a backbone's own ``device`` may also be ``cuda:N``)
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def check_device(device: str) -> str:
    """Validate the spelling only (no torch import): ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    base, _, index = str(device).partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise UserError(f"unknown device {device!r}", fix="use auto, cpu, cuda or cuda:N")
    return str(device)


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a CUDA GPU is visible, else ``cpu``; ``cuda`` without a GPU is a
    user error (one line, exit 2), never a silent fall-back to the CPU."""
    check_device(device)
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise UserError(
            f"device {device!r} was asked for but no CUDA GPU is visible", fix="use --device auto or cpu"
        )
    return device
