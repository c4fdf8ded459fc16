"""all-MiniLM-L6-v2: recxbench's loader (transformers + mean pooling + L2) against sentence-transformers.

Run on demand (not a test): ``python tests/benchmarks/bench_encoder.py [N]``. Needs the MiniLM files
(``bench.llm.encoder.ensure_minilm``) and ``pip install sentence-transformers``. Prints the largest
absolute difference between the two encodings of N made-up texts and both wall times; the figures
go to ``docs/PERFORMANCE.md``.
"""

from __future__ import annotations

import random
import sys
import time

import numpy as np


def main(n: int = 512) -> None:
    from sentence_transformers import SentenceTransformer

    from bench.llm.encoder import MiniLM, ensure_minilm

    rng = random.Random(0)
    words = [
        "star",
        "night",
        "lost",
        "city",
        "love",
        "story",
        "war",
        "day",
        "dark",
        "river",
        "blue",
        "house",
        "king",
        "queen",
        "dream",
        "road",
    ]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(n)]
    ours = MiniLM(ensure_minilm())
    # sentence-transformers needs the model's modules.json and pooling config, which recxbench does
    # not copy; point it at a full copy of the wheel's model directory (argv[2]) when given
    theirs = SentenceTransformer(sys.argv[2] if len(sys.argv) > 2 else str(ours.directory), device="cpu")
    ours.encode(texts[:8]), theirs.encode(texts[:8])  # warm-up
    t0 = time.perf_counter()
    a = ours.encode(texts)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = theirs.encode(texts, batch_size=64)
    t_theirs = time.perf_counter() - t0
    print(
        f"texts {n}: max |diff| {np.abs(a - b).max():.2e}; recxbench {t_ours:.2f} s, sentence-transformers {t_theirs:.2f} s"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 512)
