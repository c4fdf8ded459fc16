"""generate() and TitleTrie on the tiny-random backbone: constraint, determinism, padding, stops."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from llm_fixtures import TITLES, make_prompts  # noqa: E402

from bench.llm.chat import encode_continuation, encode_prompt, format_prompt  # noqa: E402
from bench.llm.generation import cut_at_stop, generate  # noqa: E402
from bench.llm.scoring import score_token_ids  # noqa: E402
from bench.llm.trie import TitleTrie  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")


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


# --- the decoding loop against transformers and brute force ------------------------------------------


def _left_padded(tok, prompts):
    encoded = [encode_prompt(tok, p) for p in prompts]
    width = max(map(len, encoded))
    ids = torch.full((len(encoded), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, e in enumerate(encoded):
        ids[r, width - len(e) :] = torch.tensor(e)
        mask[r, width - len(e) :] = 1
    return ids, mask


def test_greedy_matches_transformers_generate(tiny, prompts):
    # Reference: model.generate's greedy search, one prompt at a time (no padding involved).
    tok = tiny.tokenizer
    ours = generate(tiny, prompts[:10], max_new_tokens=10, stop=())
    for prompt, [text] in zip(prompts[:10], ours, strict=True):
        ids, mask = _left_padded(tok, [prompt])
        ref = tiny.model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            num_beams=1,
            max_new_tokens=10,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            temperature=None,
            top_p=None,
            top_k=None,
        )
        assert text == tok.decode(ref[0, ids.shape[1] :], skip_special_tokens=True).strip()


def test_constrained_beams_with_room_for_every_title_rank_them_exactly(tiny, prompts):
    # With more beams than titles, beam search cannot prune a title: it must return all of them,
    # ordered exactly as brute-force scoring of every title + EOS orders them.
    titles = ["Alien", "Alien 3", "Blue Moon (1990)", "Heat (1995)"]
    small = TitleTrie.build(tiny.tokenizer, titles, prefix_text=" ")
    eos = tiny.tokenizer.eos_token_id
    out = generate(tiny, prompts[:6], constraint=small, num_beams=6, num_return_sequences=6, batch_size=3)
    for prompt, got in zip(prompts[:6], out, strict=True):
        answers = [[*encode_continuation(tiny.tokenizer, " " + t), eos] for t in titles]
        [scores] = score_token_ids(
            tiny.model, [encode_prompt(tiny.tokenizer, prompt)], [answers], pad_id=tiny.tokenizer.pad_token_id
        )
        expected = [t for _, t in sorted(zip(scores, titles, strict=True), key=lambda x: -x[0])]
        assert got == expected


def test_beam_search_runs_each_prompt_once(tiny, trie, prompts):
    # The prompt pass must not be repeated per beam (transformers' generate does repeat it).
    seen: list[tuple[int, int]] = []
    hook = tiny.model.get_input_embeddings().register_forward_hook(
        lambda _m, args, _out: seen.append(tuple(args[0].shape))
    )
    try:
        generate(tiny, prompts[:4], constraint=trie, num_beams=3, num_return_sequences=3, batch_size=4)
    finally:
        hook.remove()
    prefill = [s for s in seen if s[1] > 1]
    assert len(prefill) == 1 and prefill[0][0] == 4
    assert all(s[1] == 1 and s[0] <= 4 * 3 for s in seen if s not in prefill)


def test_a_start_shared_by_the_whole_batch_runs_once_and_changes_nothing(tiny, trie, prompts):
    from dataclasses import replace

    from bench.llm.decode import decode
    from bench.llm.generation import decode_spec

    shots = "Example 1: the user liked Alien and Heat. Example 2: the user liked Blue Moon. " * 3
    batch = [format_prompt(tiny, shots + p) for p in prompts[:6]]
    ids, mask = _left_padded(tiny.tokenizer, batch)
    seen: list[tuple[int, int]] = []
    hook = tiny.model.get_input_embeddings().register_forward_hook(
        lambda _m, args, _out: seen.append(tuple(args[0].shape))
    )
    for beams, constraint in ((1, None), (3, trie)):
        spec = decode_spec(
            tiny.tokenizer,
            max_new_tokens=8,
            num_beams=beams,
            num_return_sequences=beams,
            constraint=constraint,
            stop=(),
        )
        seen.clear()
        shared = decode(tiny.model, tiny.tokenizer, spec, input_ids=ids, attention_mask=mask)
        assert seen[0][0] == 1 and seen[0][1] > 30  # the shared start, once
        apart = decode(
            tiny.model, tiny.tokenizer, replace(spec, min_shared=10**9), input_ids=ids, attention_mask=mask
        )
        assert [[t for _, t in h] for h in shared] == [[t for _, t in h] for h in apart]
        for hs, ha in zip(shared, apart, strict=True):
            assert [s for s, _ in hs] == pytest.approx([s for s, _ in ha], abs=1e-4)
    hook.remove()
