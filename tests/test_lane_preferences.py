"""LANE preference extraction in lexicon mode (bench/llm/preference_lexicon.py) on tiny-random:
the packed token-tree scorer against plain scoring, the choice rule, usability by construction,
cache reuse by signal, and the bfloat16 path (what CUDA runs) on CPU."""

from __future__ import annotations

import numpy as np
import pytest
from llm_fixtures import TITLES

from bench.errors import UserError
from bench.llm.chat import format_prompt
from bench.llm.forced_json import fill_json
from bench.llm.preference_lexicon import choose, load_lexicon, phrase_logprobs
from bench.llm.preferences import PreferenceExtractor, usable_flags
from bench.llm.scoring import score_continuations

# shared starts ("rom…", "science …"), one-token and longer phrases, a phrase that is a prefix of another
PHRASES = [
    "romance",
    "romantic comedies",
    "science fiction",
    "science",
    "war",
    "a",
    "heist films",
    "westerns",
]
HISTORIES = [["Alpha Beta", "Gamma"], ["Delta"], ["Alpha Beta", "Gamma", "Epsilon Zeta Eta"]]


@pytest.fixture(scope="module")
def tiny_bf16(tmp_path_factory: pytest.TempPathFactory):
    from bench.llm.backbone import load_backbone

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECXBENCH_HOME", str(tmp_path_factory.mktemp("bf16-home")))
        return load_backbone("tiny-random", titles=TITLES, seed=0, device="cpu", dtype="bfloat16")


def _prompts(backbone) -> list[str]:
    return [format_prompt(backbone, f"Titles: {'; '.join(h)}") + '{"Preference1": "' for h in HISTORIES]


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_packed_tree_scores_equal_plain_scoring(tiny, single_thread, batch_size) -> None:
    prompts = _prompts(tiny)
    got = phrase_logprobs(tiny, prompts, PHRASES, batch_size=batch_size)
    # the reference runs every prompt + phrase through the model without the tree or the 4-D mask
    want = np.array(score_continuations(tiny, prompts, [PHRASES] * len(prompts), batch_size=1))
    assert got.shape == (len(prompts), len(PHRASES))
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_packed_tree_scores_in_bfloat16(tiny_bf16, single_thread) -> None:
    prompts = _prompts(tiny_bf16)
    got = phrase_logprobs(tiny_bf16, prompts, PHRASES, batch_size=2)
    want = np.array(score_continuations(tiny_bf16, prompts, [PHRASES] * len(prompts), batch_size=1))
    assert got.dtype == np.float64 and np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=0.1 * len(PHRASES[1].split()) + 0.2)  # bf16 rounding


def test_choose_takes_the_best_usable_phrases_in_score_order() -> None:
    scores = np.array([[0.0, 3.0, 2.0, 1.0, 5.0], [9.0, 8.0, 7.0, 6.0, 5.0]])
    phrases = ["heat", "war films", "romance", "dramas", "star wars"]
    titles = [["Star Wars"], ["Heat", "True Romance"]]
    got = choose(scores, phrases, 3, lambda r, values: usable_flags(values, titles[r]))
    # row 0: "star wars" (best) copies a shown title; row 1: "heat" and "romance" are title fragments
    assert got == [("war films", "romance", "dramas"), ("war films", "dramas", "star wars")]
    # a lexicon that runs out leaves the rest empty (counted as dropped)
    assert choose(np.zeros((1, 2)), ["heat", "war"], 3, lambda r, v: usable_flags(v, ["Heat"]))[0] == (
        "war",
        "",
        "",
    )


def test_lexicon_mode_five_usable_and_cache_reuse_by_signal(tiny, single_thread, llm_home) -> None:
    histories = [*HISTORIES, HISTORIES[0]]
    first = PreferenceExtractor(tiny, mode="lexicon", batch_size=2)
    got = first.extract(histories)
    assert (first.hits, first.misses) == (0, 3)  # the repeated history is scored once
    assert got[0] == got[3]
    lexicon = set(load_lexicon("movies"))
    for p in got:  # usable by construction: five distinct lexicon phrases, none a title fragment
        assert p.complete and len(set(p.values)) == 5 and set(p.values) <= lexicon
        assert (p.repaired, p.dropped) == (0, 0)
    again = PreferenceExtractor(tiny, mode="lexicon", batch_size=3)  # batch size is not in the key
    assert again.extract(histories) == got and (again.hits, again.misses) == (4, 0)
    for other in (
        PreferenceExtractor(tiny, mode="lexicon", calibration=0.0),
        PreferenceExtractor(tiny, mode="free"),
    ):
        assert other.directory != first.directory
        other.extract(histories[:1])
        assert other.misses == 1
    info = first.info()
    assert info["mode"] == "lexicon" and info["cache"] == {
        "directory": first.directory.name,
        "hits": 0,
        "misses": 3,
    }


def test_calibration_changes_what_is_chosen(tiny, single_thread, llm_home) -> None:
    """With calibration the history-free prompt's scores are subtracted: the choice is the PMI
    ranking, recomputed here by hand."""
    ex = PreferenceExtractor(tiny, mode="lexicon", calibration=1.0, batch_size=4)
    got = ex.extract(HISTORIES)
    cond = phrase_logprobs(tiny, [ex.prompt(h) + ex.answer_start() for h in HISTORIES], ex.lexicon)
    null = phrase_logprobs(tiny, [ex.prompt([]) + ex.answer_start()], ex.lexicon)[0]
    for h, p, row in zip(HISTORIES, got, cond - null, strict=True):
        order = [ex.lexicon[int(j)] for j in np.argsort(-row, kind="stable")]
        assert list(p.values) == [v for v in order if usable_flags([v], h)[0]][:5]


def test_unknown_lexicon_and_mode_are_user_errors(tiny) -> None:
    with pytest.raises(UserError, match="movies"):
        PreferenceExtractor(tiny, mode="lexicon", lexicon="no-such")
    with pytest.raises(UserError, match="lexicon"):
        PreferenceExtractor(tiny, mode="menu")


def test_free_mode_forced_json_in_bfloat16(tiny_bf16, single_thread, llm_home) -> None:
    """LANE's free-text path in bfloat16 (CUDA's default dtype): parseable, every key filled."""
    import json

    prompts = [format_prompt(tiny_bf16, f"Titles: {'; '.join(h)}") for h in HISTORIES]
    keys = [f"Preference{i}" for i in range(1, 6)]
    for f in fill_json(tiny_bf16, prompts, keys, max_value_tokens=4, batch_size=2, distinct=True):
        assert list(json.loads(f.text)) == keys and f.complete
