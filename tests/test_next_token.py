"""next_token_logits with a shared prefix against one plain forward pass over the whole prompt."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from bench.llm.next_token import next_token_logits  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")

TARGETS = [5, 17, 23, 40, 41]


def _full(model, ids: list[int]) -> np.ndarray:
    """log-softmax over the whole vocabulary at the last position, restricted to TARGETS."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1].double()
    return logits.log_softmax(-1)[TARGETS].numpy()


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _rows(rng: np.random.Generator, vocab: int, n: int, lo: int, hi: int) -> list[list[int]]:
    return [rng.integers(3, vocab, size=int(rng.integers(lo, hi + 1))).tolist() for _ in range(n)]


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("shared_len", [0, 1, 23])
@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_shared_prefix_rows_equal_a_full_forward(
    tiny, shared_len: int, batch_size: int, packed: bool
) -> None:
    model = tiny.model
    vocab = model.config.vocab_size
    rng = np.random.default_rng(shared_len * 10 + batch_size)
    shared = rng.integers(3, vocab, size=shared_len).tolist()
    prefixes = _rows(rng, vocab, 7, 1, 9)  # unequal lengths: holes between prefix and suffix
    suffixes = [_rows(rng, vocab, 4, 1, 5) + [[]] for _ in prefixes]  # + an empty suffix
    suffixes[2][1] = suffixes[2][0]  # a repeated row runs once and answers both
    got = next_token_logits(
        model,
        prefixes,
        suffixes,
        TARGETS,
        pad_id=tiny.tokenizer.pad_token_id,
        shared_ids=shared,
        batch_size=batch_size,
        rows_per_pass=5,
        packed=packed,
    )
    for i, prefix in enumerate(prefixes):
        assert got[i].shape == (len(suffixes[i]), len(TARGETS))
        for j, suffix in enumerate(suffixes[i]):
            want = _full(model, shared + prefix + suffix)
            # exact up to one constant per row: equal softmax over the targets, equal differences
            np.testing.assert_allclose(_softmax(got[i][j]), _softmax(want), atol=1e-5)
            np.testing.assert_allclose(got[i][j] - got[i][j][0], want - want[0], atol=1e-4)


@pytest.mark.parametrize("packed", [True, False])
def test_the_batching_does_not_change_the_logits(tiny, packed: bool) -> None:
    rng = np.random.default_rng(7)
    vocab = tiny.model.config.vocab_size
    shared = rng.integers(3, vocab, size=11).tolist()
    prefixes = _rows(rng, vocab, 5, 2, 8)
    suffixes = [_rows(rng, vocab, 3, 1, 4) for _ in prefixes]
    kw = dict(pad_id=tiny.tokenizer.pad_token_id, shared_ids=shared, packed=packed)
    one = next_token_logits(tiny.model, prefixes, suffixes, TARGETS, batch_size=1, rows_per_pass=1, **kw)
    many = next_token_logits(tiny.model, prefixes, suffixes, TARGETS, batch_size=5, **kw)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_packed_and_row_by_row_agree_and_sdpa_packs_by_default(tiny) -> None:
    from bench.llm.next_token import _packs

    assert _packs(tiny.model)  # the backbone loads with SDPA: the packed path is the one used
    rng = np.random.default_rng(3)
    vocab = tiny.model.config.vocab_size
    shared = rng.integers(3, vocab, size=9).tolist()
    prefixes = _rows(rng, vocab, 4, 1, 6)
    suffixes = [_rows(rng, vocab, 5, 1, 4) for _ in prefixes]
    kw = dict(pad_id=tiny.tokenizer.pad_token_id, shared_ids=shared, batch_size=3)
    a = next_token_logits(tiny.model, prefixes, suffixes, TARGETS, packed=True, **kw)
    b = next_token_logits(tiny.model, prefixes, suffixes, TARGETS, packed=False, **kw)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(_softmax(x), _softmax(y), atol=1e-5)


def test_nothing_to_score_and_bad_input(tiny) -> None:
    pad = tiny.tokenizer.pad_token_id
    assert next_token_logits(tiny.model, [], [], TARGETS, pad_id=pad, shared_ids=[4, 5]) == []
    with pytest.raises(ValueError, match="no tokens"):
        next_token_logits(tiny.model, [[]], [[[4]]], TARGETS, pad_id=pad, shared_ids=[4, 5])
    with pytest.raises(ValueError, match="suffix lists"):
        next_token_logits(tiny.model, [[3]], [], TARGETS, pad_id=pad)


def test_bfloat16_reads_agree_with_float32(tiny) -> None:
    """The bf16 path (a GPU backbone's default) runs and gives finite float64 scores near float32's
    (exactness is tested in float32 above; bf16's 8-bit mantissa moves these probabilities by ~0.02)."""
    import copy

    half = copy.deepcopy(tiny.model).to(torch.bfloat16)
    rng = np.random.default_rng(11)
    vocab = tiny.model.config.vocab_size
    shared = rng.integers(3, vocab, size=13).tolist()
    prefixes = _rows(rng, vocab, 5, 1, 7)
    suffixes = [_rows(rng, vocab, 4, 1, 4) + [[]] for _ in prefixes]
    kw = dict(pad_id=tiny.tokenizer.pad_token_id, shared_ids=shared, batch_size=2)
    want = next_token_logits(tiny.model, prefixes, suffixes, TARGETS, **kw)
    for packed in (True, False):
        got = next_token_logits(half, prefixes, suffixes, TARGETS, packed=packed, **kw)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == np.float64 and np.isfinite(g).all()
            np.testing.assert_allclose(_softmax(g), _softmax(w), atol=0.05)
