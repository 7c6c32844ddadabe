"""Prompt rewriter: post-processing on hand-made strings, tiny GPT-2 (Promptist template) and tiny chat model."""

from __future__ import annotations


import pytest
import torch

from t2i_prompt.rewrite import (
    ClipWindow,
    PromptRewriter,
    RewriteCandidate,
    extract_rewrite,
    normalize_whitespace,
    template_marker,
)

PROMPTS = ["a red circle to the left of a blue square", "a cat"]
FAST = dict(max_new_tokens=8)


# ---- post-processing, hand-made strings ---------------------------------------------------------------------
def test_normalize_whitespace():
    assert normalize_whitespace("  a\n\tred   circle \r\n") == "a red circle"
    assert normalize_whitespace(" \n ") == ""


def test_template_marker():
    assert template_marker("{prompt} Rephrase:") == "Rephrase:"
    assert template_marker("{prompt}") == ""
    with pytest.raises(ValueError, match="must contain '\\{prompt\\}'"):
        template_marker("Rephrase:")


@pytest.mark.parametrize(
    "generated, model_input, expected",
    [
        # Promptist-style full decode: the echoed input and marker go
        ("a cat Rephrase: a cat, digital art, 8k", "a cat Rephrase:", "a cat, digital art, 8k"),
        # echo with different whitespace
        ("a  cat\nRephrase:  a cat,\n oil painting", "a cat Rephrase:", "a cat, oil painting"),
        # continuation only, leading space and trailing newline
        ("  a cat, trending on artstation \n", "a cat Rephrase:", "a cat, trending on artstation"),
        # the model runs on into another pair: cut at the repeated marker
        (" a cat, sharp focus Rephrase: a dog, 8k", "a cat Rephrase:", "a cat, sharp focus"),
        # a leading marker without the echo
        ("Rephrase: a cat, concept art", "", "a cat, concept art"),
        # chat models wrap answers in quotes
        ('"a cat, cinematic lighting"', "", "a cat, cinematic lighting"),
        ("\u201ca cat, 8k\u201d", "", "a cat, 8k"),
        # nothing left
        ("a cat Rephrase:", "a cat Rephrase:", ""),
    ],
)
def test_extract_rewrite(generated, model_input, expected):
    assert extract_rewrite(generated, model_input=model_input, marker="Rephrase:") == expected


def test_clip_window_counts_and_truncates():
    window = ClipWindow()
    assert window.count("a cat") == 4  # <|startoftext|> a cat <|endoftext|>
    long = " ".join(f"red circle{i}" for i in range(60))
    assert window.count(long) > 77
    with pytest.warns(UserWarning, match=r"over the text encoder's 77-token window"):
        kept, n, exceeded = window.check(long)
    assert exceeded and n == window.count(long)
    assert window.count(kept) <= 77 and long.startswith(kept)
    # the longest word prefix: one more word would not fit
    n_words = len(kept.split())
    assert window.count(" ".join(long.split()[: n_words + 1])) > 77
    assert window.check("a cat") == ("a cat", 4, False)


# ---- tiny GPT-2 with the Promptist template -----------------------------------------------------------------
@pytest.fixture(scope="module")
def gpt2():
    return PromptRewriter.from_pretrained("tiny:gpt2")


def test_gpt2_uses_promptist_template_and_left_padding(gpt2):
    assert not gpt2.chat
    assert gpt2.format_input("a cat") == "a cat Rephrase:"
    # left padding is asked for per call (the caller's tokenizer is not mutated); batched == alone
    side = gpt2.tokenizer.padding_side
    prompts = ["a cat", "a very much longer prompt about a red dog"]
    batched = gpt2.rewrite(prompts, k=1, **FAST)
    assert [b[0].text for b in batched] == [gpt2.rewrite([p], k=1, **FAST)[0][0].text for p in prompts]
    assert gpt2.tokenizer.padding_side == side


def test_gpt2_returns_k_beam_candidates_deterministically(gpt2):
    out = gpt2.rewrite(PROMPTS, k=3, **FAST)
    assert [len(c) for c in out] == [3, 3]
    for source, cands in zip(PROMPTS, out):
        for c in cands:
            assert isinstance(c, RewriteCandidate) and c.source == source
            assert 0 < c.num_tokens <= 8 and c.mean_logprob < 0
            assert c.text == c.text.strip() and "  " not in c.text and "Rephrase:" not in c.text
            assert c.clip_tokens == ClipWindow().count(c.text)
    again = gpt2.rewrite(PROMPTS, k=3, **FAST)
    assert [[c.text for c in cs] for cs in again] == [[c.text for c in cs] for cs in out]
    # beam 0 has the best length-penalised beam score; k=1 returns that same beam
    assert gpt2.rewrite(PROMPTS, k=1, **FAST)[0][0].text == out[0][0].text


def test_gpt2_sampling_is_seeded(gpt2):
    state = torch.random.get_rng_state()
    a = gpt2.rewrite(PROMPTS, k=3, do_sample=True, seed=7, **FAST)
    b = gpt2.rewrite(PROMPTS, k=3, do_sample=True, seed=7, **FAST)
    c = gpt2.rewrite(PROMPTS, k=3, do_sample=True, seed=8, **FAST)
    texts = lambda out: [[x.text for x in cs] for cs in out]  # noqa: E731
    assert texts(a) == texts(b) and texts(a) != texts(c)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    for cands in a:  # sampled candidates come best-first by mean log-probability
        assert [x.mean_logprob for x in cands] == sorted((x.mean_logprob for x in cands), reverse=True)


def test_mean_logprob_matches_unbatched_forward(gpt2):
    """Left-padded batch scoring must equal scoring each sequence alone (checks padding and position ids)."""
    cands = gpt2.rewrite(PROMPTS, k=2, do_sample=True, seed=3, **FAST)
    tok, model = gpt2.tokenizer, gpt2.model
    for source, cs in zip(PROMPTS, cands):
        prompt_ids = tok(gpt2.format_input(source), return_tensors="pt")["input_ids"]
        for c in cs:
            gen_ids = torch.tensor([c.token_ids])
            assert c.num_tokens == len(c.token_ids) - (c.token_ids[-1] == tok.eos_token_id)
            assert tok.decode(c.token_ids, skip_special_tokens=True) == c.raw_text
            ids = torch.cat([prompt_ids, gen_ids], 1)
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0, prompt_ids.shape[1] - 1 : -1], -1)
            per_token = logp.gather(-1, gen_ids[0].unsqueeze(-1)).squeeze(-1)
            assert c.mean_logprob == pytest.approx(per_token.mean().item(), abs=1e-4)


def test_echo_is_stripped_from_candidates(gpt2):
    cand = gpt2._candidate("a cat Rephrase: a cat, 8k, highly detailed", "a cat Rephrase:", "a cat", False, -1.0, 5)
    assert cand.text == "a cat, 8k, highly detailed" and cand.raw_text.startswith("a cat Rephrase:")
    with pytest.warns(UserWarning, match="empty rewrite"):
        empty = gpt2._candidate("  a cat Rephrase:  ", "a cat Rephrase:", "a cat", False, -1.0, 2)
    assert empty.empty and empty.text == "a cat"


def test_long_rewrite_is_reported(gpt2):
    long = " ".join(["a red circle, highly detailed"] * 20)
    with pytest.warns(UserWarning, match="77-token window"):
        cand = gpt2._candidate(long, "x Rephrase:", "x", False, -1.0, 75)
    assert cand.exceeds_clip_window and cand.clip_tokens > 77
    assert ClipWindow().count(cand.clip_text) <= 77 and cand.text == long


def test_bad_prompts(gpt2):
    with pytest.raises(ValueError, match="prompt 1 is empty or whitespace"):
        gpt2.rewrite(["a cat", "  \n"], **FAST)
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        gpt2.rewrite([""], **FAST)
    with pytest.raises(ValueError, match="k \\(number of rewrite candidates\\) must be an integer >= 1"):
        gpt2.rewrite(["a cat"], k=0, **FAST)
    with pytest.raises(ValueError, match="num_beams \\(2\\) must be >= k \\(3\\)"):
        gpt2.rewrite(["a cat"], k=3, num_beams=2, **FAST)


def test_long_input_prompt_is_truncated_with_warning(gpt2):
    long = " ".join(["a red circle above a blue square,"] * 12)  # 98 CLIP tokens
    with pytest.warns(UserWarning, match="input prompt 0 has 98 CLIP tokens"):
        ((cand,),) = gpt2.rewrite([long], k=1, max_new_tokens=2)
    assert cand.source_truncated and long.startswith(cand.source) and ClipWindow().count(cand.source) <= 77


# ---- tiny chat model -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chat():
    return PromptRewriter.from_pretrained("tiny:chat", system_prompt="Rewrite the prompt.")


def test_chat_template_and_candidates(chat):
    assert chat.chat
    text = chat.format_input("a cat")
    assert text == (
        "<|im_start|>system\nRewrite the prompt.<|im_end|>\n<|im_start|>user\na cat<|im_end|>\n<|im_start|>assistant\n"
    )
    out = chat.rewrite(PROMPTS, k=2, do_sample=True, seed=0, **FAST)
    assert [len(c) for c in out] == [2, 2]
    assert all("<|im_start|>" not in c.text and "assistant" not in c.raw_text[:9] for cs in out for c in cs)
    again = chat.rewrite(PROMPTS, k=2, do_sample=True, seed=0, **FAST)
    assert [[c.text for c in cs] for cs in again] == [[c.text for c in cs] for cs in out]
    beams = chat.rewrite(PROMPTS[:1], k=2, **FAST)
    assert len(beams[0]) == 2 and all(c.num_tokens <= 8 for c in beams[0])


def test_input_over_lm_context_is_a_clear_error(chat):
    # an input that cannot fit the tiny LM's 256 positions is a ValueError, not an IndexError inside the model
    wordy = PromptRewriter(chat.model, chat.tokenizer, system_prompt="be nice " * 200, name="tiny:chat")
    with pytest.raises(ValueError, match="256-token context of|at or over 'tiny:chat''s 256-token context"):
        wordy.rewrite(["a cat"], k=1, **FAST)


# ---- copy bias -----------------------------------------------------------------------------------------------
def test_copy_bias_processor_boosts_each_rows_own_prompt_tokens():
    from t2i_prompt.rewrite.copy_bias import CopyBiasLogitsProcessor

    proc = CopyBiasLogitsProcessor([[1, 3], [2, 4]], vocab_size=6, bias=2.5, excluded_ids=[4])
    scores = torch.arange(24, dtype=torch.float32).view(4, 6)  # 2 prompts x 2 beams, rows repeat consecutively
    out = proc(torch.zeros(4, 3, dtype=torch.long), scores.clone())
    expected = scores.clone()
    expected[0:2, [1, 3]] += 2.5  # prompt 0's beams
    expected[2:4, 2] += 2.5  # prompt 1's beams; id 4 is excluded (e.g. EOS)
    assert torch.equal(out, expected)
    assert torch.equal(CopyBiasLogitsProcessor([[1]], 6, 0.0)(None, scores[:1]), scores[:1])
    with pytest.raises(ValueError, match="cannot be split evenly"):
        proc(None, scores[:3])


def test_copy_bias_steers_decoding_to_the_prompts_tokens(gpt2):
    from t2i_prompt.rewrite.copy_bias import prompt_token_ids

    plain = gpt2.rewrite(PROMPTS, k=2, **FAST)
    assert [[c.text for c in cs] for cs in gpt2.rewrite(PROMPTS, k=2, copy_bias=0.0, **FAST)] == \
        [[c.text for c in cs] for cs in plain]
    eos = gpt2._eos_ids()
    for do_sample in (False, True):
        forced = gpt2.rewrite(PROMPTS, k=2, copy_bias=1e4, do_sample=do_sample, seed=1, **FAST)
        for prompt, cands in zip(PROMPTS, forced):
            allowed = set(prompt_token_ids(gpt2.tokenizer, prompt))
            for c in cands:  # with a huge bonus every generated token is one of the prompt's own
                assert c.token_ids and set(c.token_ids) - eos <= allowed
                assert c.mean_logprob < 0  # scored under the unbiased model
    assert gpt2.decoding_settings(1, copy_bias=1.5)["copy_bias"] == 1.5
    assert "copy_bias" not in gpt2.decoding_settings(1)  # off: settings (and cache keys) unchanged
    for bad in (-1.0, float("nan"), float("inf"), True, "2"):
        with pytest.raises(ValueError, match="copy_bias must be a finite number >= 0"):
            gpt2.rewrite(["a cat"], copy_bias=bad, **FAST)
