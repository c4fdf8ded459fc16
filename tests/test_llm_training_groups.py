"""Length-grouped micro-batches (bench.llm.train_step): the partition and the unchanged gradient."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from safetensors.torch import load_file  # noqa: E402

from bench.llm.lora import LoraTrainConfig, TrainExample, train_lora  # noqa: E402
from bench.llm.train_step import length_groups  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")


def _cost(groups: list[list[int]], lengths: list[int], overhead: int) -> int:
    return sum(len(g) * max(lengths[i] for i in g) + overhead for g in groups)


def _brute_force(lengths: list[int], overhead: int) -> int:
    """Cheapest cost over *every* set partition of the rows (not only contiguous runs of the sorted rows)."""
    n = len(lengths)
    best = None
    for labels in itertools.product(range(n), repeat=n):
        if any(labels[i] > max(labels[:i], default=-1) + 1 for i in range(n)):
            continue  # each partition once: labels in first-appearance order
        groups = [[i for i in range(n) if labels[i] == g] for g in range(max(labels) + 1)]
        cost = _cost(groups, lengths, overhead)
        best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_groups_are_a_partition_with_the_least_cost(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([5, 20, 40, 41, 90, 100]) for _ in range(rng.randint(1, 6))]
    overhead = rng.choice([0, 16, 200])
    groups = length_groups(lengths, overhead)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert _cost(groups, lengths, overhead) == _brute_force(lengths, overhead)


def test_a_batch_best_left_whole_keeps_its_order() -> None:
    assert length_groups([50, 48, 52, 49], 16) == [[0, 1, 2, 3]]
    assert length_groups([100, 10, 100, 10], 16) == [[1, 3], [0, 2]]


def test_grouped_training_gives_the_same_adapter_without_dropout(tiny, tmp_path: Path) -> None:
    """Grouping changes only the summation order of the gradient: same losses and weights to float rounding."""
    examples = [
        TrainExample("word " * (1 + 9 * (i % 3)) + f"item {i} is", f" answer {i % 4}") for i in range(12)
    ]
    reports = {}
    for grouped in (False, True):
        cfg = LoraTrainConfig(
            dropout=0.0, lr=5e-3, batch_size=6, max_length=64, epochs=2, group_by_length=grouped
        )
        reports[grouped] = train_lora(tiny, examples, cfg, out_dir=tmp_path / str(grouped), progress=False)
    plain, grouped = reports[False], reports[True]
    assert grouped.tokens == plain.tokens and grouped.steps == plain.steps == 4
    assert grouped.losses == pytest.approx(plain.losses, rel=1e-5)
    a = load_file(str(plain.adapter_dir / "adapter_model.safetensors"))
    b = load_file(str(grouped.adapter_dir / "adapter_model.safetensors"))
    for key, w in a.items():
        torch.testing.assert_close(b[key], w, rtol=0, atol=1e-5 + 1e-4 * float(w.abs().max()))
