"""score_continuations against a plain full forward pass, on the tiny-random backbone."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from llm_fixtures import make_prompts  # noqa: E402

from bench.llm.chat import encode_continuation, encode_prompt, format_prompt  # noqa: E402
from bench.llm.scoring import score_continuations, score_token_ids  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")


ATOL = 1e-4


def reference(backbone, prompt: str, answer: str) -> float:
    """log P(answer | prompt) from one forward pass over prompt + answer ids, no cache, no padding."""
    p = encode_prompt(backbone.tokenizer, prompt)
    a = encode_continuation(backbone.tokenizer, answer)
    if not a:
        return 0.0
    with torch.no_grad():
        logits = backbone.model(torch.tensor([p + a])).logits[0].float()
    logprobs = logits.log_softmax(-1)
    return sum(logprobs[len(p) + t - 1, a[t]].item() for t in range(len(a)))


def _random_answers(rng: random.Random, words: list[str]) -> list[str]:
    answers = []
    for _ in range(rng.randint(1, 6)):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 10)))
        answers.append((" " if rng.random() < 0.5 else "") + text)
    return answers


def single_token_answer(backbone) -> str:
    for text in (" Yes", "Yes", " the", " a", "a"):
        if len(encode_continuation(backbone.tokenizer, text)) == 1:
            return text
    raise AssertionError("no single-token answer found")


def test_matches_full_forward_on_random_inputs(tiny):
    rng = random.Random(0)
    words = [
        "the",
        "user",
        "watched",
        "movie",
        "Yes",
        "No",
        "because",
        "drama",
        "Alien",
        "3",
        "(1992)",
        "é",
        "映画",
    ]
    prompts = make_prompts(40, seed=1)
    prompts = [format_prompt(tiny, p) if i % 3 == 0 else p for i, p in enumerate(prompts)]
    prompts += ["", prompts[1]]  # an empty prompt, and a duplicate of another
    one = single_token_answer(tiny)
    conts = [[*_random_answers(rng, words), one, ""] for _ in prompts]
    got = score_continuations(tiny, prompts, conts, batch_size=3)
    assert [len(g) for g in got] == [len(c) for c in conts]
    for prompt, answers, scores in zip(prompts, conts, got, strict=True):
        for answer, score in zip(answers, scores, strict=True):
            assert score == pytest.approx(reference(tiny, prompt, answer), abs=ATOL), (prompt, answer)
        assert scores[-1] == 0.0  # the empty answer


def test_single_token_and_mixed_lengths_in_one_batch(tiny):
    one = single_token_answer(tiny)
    prompt = format_prompt(tiny, "Would the recommender suggest Alien 3 (1992)? Answer yes or no.")
    answers = [one, "No", " Alien 3 (1992) is a film about a very long story of love and war", "Alien"]
    [got] = score_continuations(tiny, [prompt], [answers], batch_size=16)
    for answer, score in zip(answers, got, strict=True):
        assert score == pytest.approx(reference(tiny, prompt, answer), abs=ATOL)
    assert all(s < 0 for s in got)


def test_batch_size_does_not_change_scores(tiny):
    rng = random.Random(3)
    prompts = make_prompts(12, seed=4)
    conts = [_random_answers(rng, ["star", "war", " night", "é"]) for _ in prompts]
    a = score_continuations(tiny, prompts, conts, batch_size=1)
    b = score_continuations(tiny, prompts, conts, batch_size=64)
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, abs=ATOL)


def test_probabilities_of_all_single_tokens_sum_to_one(tiny):
    prompt_ids = [encode_prompt(tiny.tokenizer, "a short prompt")]
    vocab = list(range(len(tiny.tokenizer)))
    [scores] = score_token_ids(
        tiny.model, prompt_ids, [[[v] for v in vocab]], pad_id=tiny.tokenizer.pad_token_id
    )
    assert sum(torch.tensor(scores).exp().tolist()) == pytest.approx(1.0, abs=1e-4)


def test_answers_are_tokenised_apart_from_the_prompt(tiny):
    # "Answer:" + " Yes" is scored on ids(prompt) + ids(" Yes"), whatever merges the joined text allows.
    prompt, answer = "Answer:", " Yes"
    p, a = encode_prompt(tiny.tokenizer, prompt), encode_continuation(tiny.tokenizer, answer)
    with torch.no_grad():
        logprobs = tiny.model(torch.tensor([p + a])).logits[0].float().log_softmax(-1)
    expected = sum(logprobs[len(p) + t - 1, a[t]].item() for t in range(len(a)))
    assert score_continuations(tiny, [prompt], [[answer]])[0][0] == pytest.approx(expected, abs=ATOL)


def test_prompt_and_continuation_lists_must_match(tiny):
    with pytest.raises(ValueError, match="prompts but"):
        score_continuations(tiny, ["a", "b"], [["x"]])
    assert score_continuations(tiny, [], []) == []
    assert score_continuations(tiny, ["a"], [[]]) == [[]]


def test_reexported_from_package():
    import bench.llm

    assert bench.llm.score_continuations is score_continuations


def test_prompts_sharing_a_long_start_match_the_full_forward(tiny):
    # Classification-style prompts: several questions per history, so long common starts; the
    # shared pass must leave every score equal to a plain forward over prompt + answer.
    rng = random.Random(3)
    histories = make_prompts(5, seed=5, max_words=40)
    items = ["Alien 3 (1992)", "Heat", "Blue Moon (1990)", "a", "Toy Story (1995)"]
    prompts = [
        format_prompt(tiny, f"History: {h}. Would the recommender suggest {it}? Answer Yes or No.")
        for h in histories
        for it in rng.sample(items, 3)
    ]
    prompts.append(prompts[0][: len(prompts[0]) // 2])  # a prompt that is a prefix of others
    one = single_token_answer(tiny)
    conts = [[one, " No", " Not really, no"] for _ in prompts]
    shared = score_continuations(tiny, prompts, conts, batch_size=4)
    tok = tiny.tokenizer
    apart = score_token_ids(
        tiny.model,
        [encode_prompt(tok, p) for p in prompts],
        [[encode_continuation(tok, c) for c in cs] for cs in conts],
        pad_id=tok.pad_token_id,
        batch_size=4,
        min_shared=10**9,
    )
    for prompt, answers, got, ref_row in zip(prompts, conts, shared, apart, strict=True):
        for answer, score, other in zip(answers, got, ref_row, strict=True):
            assert score == pytest.approx(reference(tiny, prompt, answer), abs=ATOL)
            assert score == pytest.approx(other, abs=ATOL)


def test_prefix_plan_groups_questions_about_the_same_history():
    from bench.llm.scoring import _share_prefixes

    header = tuple(range(20))
    user_a = (*header, *range(100, 160))
    user_b = (*header, *range(200, 260))
    keys = [(*user_a, 1), (*user_a, 2, 3), (*user_b, 4), (*user_b, 5), (*user_b, 6, 7), (9, 9)]
    plan = {pre: sorted(members) for pre, members in _share_prefixes(keys, 16)}
    assert plan == {
        user_a: sorted(keys[:2]),
        user_b: sorted(keys[2:5]),
        (9, 9): [(9, 9)],
    }
    for pre, members in _share_prefixes(keys, 16):
        assert all(m[: len(pre)] == pre and (len(m) > len(pre) or members == [pre]) for m in members)


def _rank_rounds(score, prompts: list[str], names: list[list[str]], sep: str = "; ") -> list[list[int]]:
    """Constrained ranking as the LLM explainers build it: per position, the unused candidate whose
    title after the answer so far is most likely. ``score(active rows, conts)`` -> log-likelihoods."""
    import numpy as np

    orders: list[list[int]] = [[] for _ in prompts]
    while rows := [i for i, n in enumerate(names) if len(n) - len(orders[i]) > 1]:
        rests = {i: [j for j in range(len(names[i])) if j not in orders[i]] for i in rows}
        conts = {
            i: [" " + "".join(names[i][k] + sep for k in orders[i]) + names[i][j] for j in rests[i]]
            for i in rows
        }
        lls = score(rows, conts)
        for i in rows:
            orders[i].append(rests[i][int(np.argmax(lls[i]))])
    return orders


@pytest.mark.parametrize("shared_start", [False, True])
def test_prompt_scorer_reuses_prompt_passes_across_positions_with_identical_scores(tiny, shared_start):
    """Ranking position by position: one prompt pass per chunk for all positions, and the very
    scores (bit for bit) of scoring each position afresh, as the explainers did before."""
    from bench.llm.scoring import ContinuationScorer

    rng = random.Random(7)
    head = "Examples: " + " ".join(make_prompts(1, seed=9, max_words=60)) + "\n" if shared_start else ""
    prompts = [
        format_prompt(tiny, head + f"History: {h}. Rank the candidates.") for h in make_prompts(9, seed=4)
    ]
    titles = ["Alien 3 (1992)", "Heat", "Blue Moon (1990)", "Toy Story (1995)", "Fargo", "Star Night", "Lost"]
    names = [rng.sample(titles, 5 if i % 3 else 4) for i in range(len(prompts))]
    fresh_calls: list[dict[int, list[float]]] = []

    def fresh(rows, conts):
        lls = score_continuations(tiny, [prompts[i] for i in rows], [conts[i] for i in rows], batch_size=4)
        fresh_calls.append(dict(zip(rows, lls)))
        return fresh_calls[-1]

    scorer = ContinuationScorer(tiny, prompts, batch_size=4)
    kept_calls: list[dict[int, list[float]]] = []

    def kept(rows, conts):
        lls = scorer([conts.get(i, []) for i in range(len(prompts))])
        kept_calls.append({i: lls[i] for i in rows})
        return kept_calls[-1]

    assert _rank_rounds(kept, prompts, names) == _rank_rounds(fresh, prompts, names)
    assert len(kept_calls) == 4  # positions: n - 1 for the 5-candidate prompts
    for got, ref in zip(kept_calls, fresh_calls, strict=True):
        for i in ref:
            if len(ref) == len(prompts):  # the same batches as a fresh call: bit-identical
                assert got[i] == ref[i]
            else:
                assert got[i] == pytest.approx(ref[i], abs=ATOL)
    assert scorer.passes == len(scorer.scorer.chunks)  # every prompt chunk ran once, not once per position
    assert 1 <= scorer.passes <= 3


def test_prompt_scorer_skips_prompts_asked_nothing(tiny):
    from bench.llm.scoring import ContinuationScorer

    prompts = [format_prompt(tiny, p) for p in make_prompts(6, seed=2)]
    scorer = ContinuationScorer(tiny, prompts, batch_size=2)
    assert scorer([[] for _ in prompts]) == [[] for _ in prompts] and scorer.passes == 0
    out = scorer([[" a b"] if i == 0 else [] for i in range(len(prompts))])
    assert scorer.passes == 1 and out[0][0] == pytest.approx(reference(tiny, prompts[0], " a b"), abs=ATOL)
