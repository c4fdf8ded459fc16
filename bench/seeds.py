"""One seed derivation: every random stream of a run is ``rng(seed, *purpose)``.

A stream is named by the suite seed and a *purpose path* (strings are mapped to 32-bit words by
CRC-32, integers are used as given), fed to :class:`numpy.random.SeedSequence`. Distinct purposes
give independent streams, and a stream never depends on how many draws another stream made.

The named integer purposes below are fixed forever: the committed boards were drawn with them, and
changing one would change every published figure that depends on it. For the same reason two
legacy pairs of consumers share a stream, and must keep sharing it: the target's training and the
surrogate tree both draw from ``rng(seed)`` (they never run in one process state that could couple
them: each fits from a fresh generator), and the random explainer and the explanation task's
counterfactual baseline both draw from ``rng(seed, instance_id)`` (one per instance, read by
different stages).
"""

from __future__ import annotations

import zlib

import numpy as np

#: the user split into align-train / align-valid / align-test
USER_SPLIT = 7_000_001
#: the order and aliases in which instances are handed to explainers (seeded by f's checkpoint hash)
PRESENTATION = 8_000_003
#: the permutation of users behind the ``user_shuffle`` ablation
USER_SHUFFLE = 9_000_011
#: the few-shot examples of prompted LLM explainers
FEW_SHOT = 424_242
#: the sampling of RecExplainer training examples
TRAIN_EXAMPLES = 2024


def _word(part: int | str) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode("utf-8"))
    if isinstance(part, (int, np.integer)) and not isinstance(part, bool):
        return int(part)
    raise TypeError(f"a seed purpose is an int or a str, not {type(part).__name__}")


def seed_sequence(seed: int | str, *purpose: int | str) -> np.random.SeedSequence:
    """``SeedSequence([seed, *purpose])`` with strings as CRC-32 words."""
    return np.random.SeedSequence([_word(seed), *(_word(p) for p in purpose)])


def rng(seed: int | str, *purpose: int | str) -> np.random.Generator:
    """The generator of the stream ``(seed, *purpose)``."""
    return np.random.default_rng(seed_sequence(seed, *purpose))


def derive_seed(seed: int | str, *purpose: int | str) -> int:
    """A 32-bit integer seed for libraries that take one (torch, scikit-learn, bootstrap draws)."""
    return int(seed_sequence(seed, *purpose).generate_state(1)[0])
