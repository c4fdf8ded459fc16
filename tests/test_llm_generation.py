"""generate() and TitleTrie on the tiny-random backbone: constraint, determinism, padding, stops."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from llm_fixtures import TITLES, make_prompts, one_thread, session_tiny  # noqa: E402

from bench.llm.chat import encode_continuation, encode_prompt, format_prompt  # noqa: E402
from bench.llm.generation import cut_at_stop, generate  # noqa: E402
from bench.llm.scoring import score_token_ids  # noqa: E402
from bench.llm.trie import TitleTrie  # noqa: E402


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return session_tiny(tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def prompts(tiny):
    raw = make_prompts(24, seed=7, max_words=30)
    return [format_prompt(tiny, p) if i % 2 else p for i, p in enumerate(raw)]


@pytest.fixture(scope="module")
def trie(tiny):
    return TitleTrie.build(tiny.tokenizer, TITLES, prefix_text=" ")


# --- the trie on its own ---------------------------------------------------------------------------


def test_trie_paths_end_with_eos_and_handle_prefix_titles(tiny):
    tok = tiny.tokenizer
    trie = TitleTrie.build(tok, ["Alien", "Alien 3", "Alien", "", "Blue Moon"])
    assert trie.titles == ["Alien", "Alien 3", "Blue Moon"] and len(trie) == 3
    alien = encode_continuation(tok, "Alien")
    alien3 = encode_continuation(tok, "Alien 3")
    assert alien3[: len(alien)] == alien  # the byte-level pre-tokenizer splits at the space
    after_alien = trie.allowed(alien)
    assert trie.eos_id in after_alien and alien3[len(alien)] in after_alien
    assert trie.allowed([]) == sorted({alien[0], encode_continuation(tok, "Blue Moon")[0]})
    assert trie.lookup([*alien, trie.eos_id, tok.pad_token_id]) == "Alien"
    assert trie.lookup([*alien3, trie.eos_id]) == "Alien 3"
    assert trie.lookup(alien) is None  # cut short: never reached EOS
    blue = encode_continuation(tok, "Blue Moon")
    assert len(blue) > 1 and trie.lookup([blue[0], trie.eos_id]) is None  # EOS mid-title
    assert trie.allowed([*alien, trie.eos_id]) == []  # nothing after EOS
    assert trie.allowed([10**6]) == []  # off the trie
    assert trie.max_len == max(len(alien3), len(blue)) + 1
    assert "Alien 3" in trie and "Alien 4" not in trie


def test_trie_tokenises_titles_like_scored_answers(tiny, trie):
    for title in TITLES:
        ids = encode_continuation(tiny.tokenizer, " " + title)
        assert trie.lookup([*ids, trie.eos_id]) == title


# --- constrained decoding --------------------------------------------------------------------------


def test_constrained_greedy_only_produces_catalog_titles(tiny, trie, prompts):
    many = prompts + make_prompts(40, seed=11)
    out = generate(tiny, many, constraint=trie, max_new_tokens=2, batch_size=7)
    assert len(out) == len(many)
    for titles in out:
        assert len(titles) == 1 and titles[0] in TITLES


def test_constrained_beams_are_distinct_titles_ranked_by_log_probability(tiny, trie, prompts):
    out = generate(tiny, prompts, constraint=trie, num_beams=5, num_return_sequences=5, batch_size=4)
    eos = tiny.tokenizer.eos_token_id
    for prompt, titles in zip(prompts, out, strict=True):
        assert len(titles) == 5 and len(set(titles)) == 5 and set(titles) <= set(TITLES)
        # Beams are ordered by total log P(" " + title + EOS | prompt), as scoring computes it.
        answers = [[*encode_continuation(tiny.tokenizer, " " + t), eos] for t in titles]
        [scores] = score_token_ids(
            tiny.model, [encode_prompt(tiny.tokenizer, prompt)], [answers], pad_id=tiny.tokenizer.pad_token_id
        )
        assert all(a >= b - 1e-4 for a, b in zip(scores, scores[1:], strict=False)), (titles, scores)


def test_constrained_beams_with_fewer_titles_than_beams(tiny, prompts):
    small = TitleTrie.build(tiny.tokenizer, ["Alien", "Alien 3", "Blue Moon (1990)"])
    out = generate(tiny, prompts[:6], constraint=small, num_beams=5, num_return_sequences=5)
    for titles in out:
        assert 1 <= len(titles) <= 3 and len(set(titles)) == len(titles)
        assert set(titles) <= {"Alien", "Alien 3", "Blue Moon (1990)"}


# --- unconstrained decoding ------------------------------------------------------------------------


def test_greedy_is_deterministic_and_batching_does_not_change_it(tiny, prompts):
    batched = generate(tiny, prompts, max_new_tokens=12, stop=(), batch_size=8)
    again = generate(tiny, prompts, max_new_tokens=12, stop=(), batch_size=5)
    single = [generate(tiny, [p], max_new_tokens=12, stop=())[0] for p in prompts]
    assert batched == again == single
    assert all(len(r) == 1 and isinstance(r[0], str) for r in batched)


def test_beam_search_returns_the_requested_number_of_sequences(tiny, prompts):
    out = generate(tiny, prompts[:4], max_new_tokens=6, num_beams=3, num_return_sequences=2, stop=())
    assert [len(r) for r in out] == [2, 2, 2, 2]
    assert out == generate(tiny, prompts[:4], max_new_tokens=6, num_beams=3, num_return_sequences=2, stop=())


def test_stop_strings_cut_the_output(tiny, prompts):
    full = generate(tiny, prompts, max_new_tokens=16, stop=())
    checked = 0
    for prompt, [text] in zip(prompts, full, strict=True):
        if len(text) < 6:
            continue
        stop = text[3:5]  # a string this greedy output is known to contain
        [[cut]] = generate(tiny, [prompt], max_new_tokens=16, stop=(stop,))
        assert cut == cut_at_stop(text, [stop]) and stop not in cut
        checked += 1
    assert checked >= 5


def test_cut_at_stop():
    assert cut_at_stop(" Alien 3\nmore", ["\n"]) == "Alien 3"
    assert cut_at_stop("a. b\n c", ["\n", ". "]) == "a"
    assert cut_at_stop("  no stop  ", ["\n"]) == "no stop"
    assert cut_at_stop("x", []) == "x"


def test_bad_arguments(tiny, trie):
    with pytest.raises(ValueError, match="num_return_sequences"):
        generate(tiny, ["x"], num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="num_return_sequences"):
        generate(tiny, ["x"], num_return_sequences=2)
    with pytest.raises(ValueError, match="empty"):
        generate(tiny, ["x"], constraint=TitleTrie(trie.eos_id))
    assert generate(tiny, []) == []


def test_cpu_threads_is_restored_and_does_not_change_results(tiny, trie, prompts):
    before = torch.get_num_threads()
    one = generate(tiny, prompts[:6], max_new_tokens=8, stop=(), cpu_threads=1)
    assert torch.get_num_threads() == before
    kept = generate(tiny, prompts[:6], max_new_tokens=8, stop=(), cpu_threads=None)
    assert one == kept
    beams = generate(tiny, prompts[:4], constraint=trie, num_beams=3, num_return_sequences=3, cpu_threads=2)
    assert torch.get_num_threads() == before
    assert beams == generate(tiny, prompts[:4], constraint=trie, num_beams=3, num_return_sequences=3)


def test_stop_on_a_multi_character_stop_string_spanning_tokens(tiny, prompts):
    # The stop check only decodes rows whose newest token holds a stop string's last character.
    full = generate(tiny, prompts, max_new_tokens=16, stop=())
    for prompt, [text] in zip(prompts, full, strict=True):
        if len(text) >= 8:
            stop = text[2:7]
            [[cut]] = generate(tiny, [prompt], max_new_tokens=16, stop=(stop, "never-there"))
            assert cut == cut_at_stop(text, [stop])
