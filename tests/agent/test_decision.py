"""The calibrated ask decision: read from the adapter's metadata, applied at the first token of turns that may
ask, in batches and in streamed replies, on the real bundled model."""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from agent.decision import (
    QUESTION_REGEX, AskDecision, QuestionForm, ask_odds, ask_probability, ask_start_words, ask_token_ids, decide,
    first_token_processor, log_odds, may_ask, question_form, read_ask_decision,
)
from agent.engine import AdapterLoadError, GenerationParams
from agent.policy import ASK_PREFIXES, Message, build_prompt, classify_agent_turn

GREEDY = GenerationParams(max_new_tokens=12, temperature=0.0)
NOTES = "Springfield, Illinois is the state capital. Springfield, Missouri is the third largest city in Missouri."
FIRST_TURN = build_prompt(NOTES, [Message("user", "How big is Springfield?", "user")], horizon=1)
MUST_ANSWER = build_prompt(NOTES, [Message("user", "How big is Springfield?", "user"),
                                   Message("assistant", "Do you mean the one in Illinois or Missouri?", "ask"),
                                   Message("user", "Missouri.", "user")], horizon=1)


THREE_NOTES = ("Order #8801 (laptop stand) arrives on September 6. Order #8843 (keyboard) arrives on September 9. "
               "All orders ship from the Denver warehouse.")
THREE_TURN = build_prompt(THREE_NOTES, [Message("user", "Hey! When does my package arrive?", "user")], horizon=1)


def _with_threshold(template: Path, dest: Path, threshold, **more) -> Path:
    shutil.copytree(template, dest)
    (dest / "clarify_adapter.json").write_text(json.dumps({"method": "swift", "ask_threshold": threshold, **more}))
    return dest


def test_only_turns_that_may_ask_are_decided():
    assert may_ask(FIRST_TURN)
    assert not may_ask(MUST_ANSWER)


def test_greedy_asks_above_the_threshold_and_sampling_flips_a_fair_coin_at_it():
    assert decide(0.31, 0.3) and not decide(0.29, 0.3)
    assert ask_odds(0.3, 0.3) == pytest.approx(0.5)
    assert ask_odds(0.6, 0.3) > 0.5 > ask_odds(0.1, 0.3)
    assert decide(0.3, 0.3, draw=0.49) and not decide(0.3, 0.3, draw=0.51)


@pytest.mark.parametrize("content, message", [
    ('{"ask_threshold": 1.5}', "between 0 and 1"), ('{"ask_threshold": "high"}', "between 0 and 1"),
    ('{"ask_threshold": true}', "between 0 and 1"), ("{not json", "not valid JSON"),
])
def test_a_broken_threshold_is_a_clear_adapter_error(tmp_path, content, message):
    (tmp_path / "clarify_adapter.json").write_text(content)
    with pytest.raises(AdapterLoadError, match=message):
        read_ask_decision(tmp_path)


def test_metadata_of_options_since_removed_is_ignored(tmp_path):
    """An adapter calibrated before renamed copies left the decision (and before held-out questions went, and
    before P(ask) stopped being pooled over orders of the notes) still loads, with the threshold it has; the
    number of orders is ignored, whatever it holds."""
    for views in (3, 9, "3"):
        (tmp_path / "clarify_adapter.json").write_text(json.dumps(
            {"ask_threshold": 0.2, "ask_views": views, "ask_renamed_views": 4, "ask_vocabulary": ["violet", "lantern"],
             "calibration_share": 0.15, "n_held_out": 30,
             "config": {"distractors": 1, "fold_clarifications": True, "narrow_notes": True, "calibration_share": 0.15,
                        "ask_views": 3}}))
        assert read_ask_decision(tmp_path) == AskDecision(0.2)


def test_no_metadata_or_no_threshold_means_the_plain_decision(tmp_path):
    assert read_ask_decision(tmp_path) is None
    (tmp_path / "clarify_adapter.json").write_text('{"ask_threshold": null}')
    assert read_ask_decision(tmp_path) is None
    (tmp_path / "clarify_adapter.json").write_text('{"ask_threshold": 0.25}')
    assert read_ask_decision(tmp_path) == AskDecision(0.25)


def test_the_processor_forces_or_forbids_the_ask_token_at_the_first_step_only():
    ask = [3]
    scores = torch.log(torch.tensor([[0.4, 0.3, 0.1, 0.2],     # P(ask) 0.2 > 0.1: ask
                                     [0.1, 0.1, 0.1, 0.7],     # P(ask) 0.7 < 0.9: do not ask
                                     [0.1, 0.1, 0.1, 0.7]]))   # None: untouched
    processor = first_token_processor(ask, [0.1, 0.9, None], prompt_width=5, sampling=False)
    out = processor(torch.zeros(3, 5, dtype=torch.long), scores.clone())
    assert out[0].argmax() == 3 and torch.isinf(out[0, :3]).all()
    assert out[1, 3] == -math.inf and out[1].argmax() == 0
    assert torch.equal(out[2], scores[2])
    assert processor.decisions[0][1] and not processor.decisions[1][1] and 2 not in processor.decisions
    later = scores.clone()
    assert torch.equal(processor(torch.zeros(3, 6, dtype=torch.long), later), scores)  # second token: untouched


def test_a_decided_ask_writes_the_whole_prefix_then_one_question():
    """Tokens 0-7: 3 starts the ask prefix and 4, 5 finish it; 6 would end the sentence, 7 holds the "?", 0 ends
    the turn. The row that asks gets the prefix, then no sentence end and no end of turn until a "?", then the
    end of the turn; the row that answers is left alone after its first token."""
    form = QuestionForm({3: (4, 5)}, sentence_ends=(6,), question_marks=frozenset({7}), end_of_turn=(0,))
    scores = torch.log(torch.tensor([[0.3, 0.2, 0.1, 0.2, 0.05, 0.05, 0.05, 0.05],     # P(ask) 0.2 > 0.1: ask
                                     [0.3, 0.2, 0.3, 0.05, 0.05, 0.05, 0.025, 0.025]]))  # 0.05 < 0.1: answer
    processor = first_token_processor([3], [0.1, 0.1], prompt_width=5, sampling=False, form=form)
    prompt = torch.zeros(2, 5, dtype=torch.long)
    assert processor(prompt, scores.clone())[0].argmax() == 3

    def step(*generated):
        ids = torch.cat([prompt, torch.tensor([list(g) for g in zip(*generated)])], 1) if generated else prompt
        return processor(ids, scores.clone())

    assert step((3, 0))[0].argmax() == 4 and torch.isinf(step((3, 0))[0, [0, 1, 2, 3, 5, 6, 7]]).all()
    assert step((3, 0), (4, 1))[0].argmax() == 5
    free = step((3, 0), (4, 1), (5, 1), (1, 1))
    assert torch.isinf(free[0, [0, 6]]).all() and torch.equal(free[0, [1, 2, 3, 4, 5, 7]], scores[0, [1, 2, 3, 4, 5, 7]])
    assert torch.equal(free[1], scores[1])   # the answering row writes what it likes
    done = step((3, 0), (4, 1), (5, 1), (1, 1), (7, 1))
    assert done[0].argmax() == 0 and torch.isinf(done[0, 1:]).all()


def test_the_question_form_of_the_real_tokenizer_follows_the_question_regex(engine):
    """The transformers engine bans per token what vLLM's structured output bans per character (QUESTION_REGEX):
    both engines must write the same decided asks."""
    tok = engine.tokenizer
    form = question_form(tok)
    prefix = tok(ASK_PREFIXES[0], add_special_tokens=False)["input_ids"]
    assert form.prefix_rest == {prefix[0]: tuple(prefix[1:])}
    assert tok.eos_token_id in form.end_of_turn
    sample = [i for i in range(0, len(tok), 97)] + list(form.question_marks) + list(form.sentence_ends)
    for i in sample:
        text = tok.decode([i])
        if i in form.question_marks:
            assert re.fullmatch(QUESTION_REGEX, text), text        # may end the question
        elif i in form.sentence_ends:
            assert not re.fullmatch(r"[^.!?\n]*", text), text   # may not stand in it
        else:
            assert re.fullmatch(r"[^.!?\n]*", text), text       # may stand in it


def test_the_ask_token_is_the_first_word_of_the_ask_prefix(engine):
    """vLLM's decision reads token text, the transformers engine token ids: both must mean the same token."""
    ids = ask_token_ids(engine.tokenizer)
    assert {engine.tokenizer.decode([i]).strip() for i in ids} == ask_start_words()


def test_the_engine_applies_the_adapters_threshold_to_turns_that_may_ask(engine, lora_template, tmp_path):
    always = _with_threshold(lora_template, tmp_path / "always", 1e-9)
    never = _with_threshold(lora_template, tmp_path / "never", 1 - 1e-9)
    plain = _with_threshold(lora_template, tmp_path / "plain", None)
    for name, folder in (("dec-always", always), ("dec-never", never), ("dec-plain", plain)):
        engine.load_adapter(name, folder)
    try:
        assert engine.ask_decisions["dec-always"].threshold == 1e-9 and engine.ask_decisions["dec-plain"] is None
        reference = [g.text for g in engine.generate_batch([FIRST_TURN, MUST_ANSWER], GREEDY, adapter="dec-plain")]
        assert not reference[0].startswith("Do")  # the untrained LoRA answers: the threshold must change that

        forced = [g.text for g in engine.generate_batch([FIRST_TURN, MUST_ANSWER], GREEDY, adapter="dec-always")]
        assert forced[0].startswith(ASK_PREFIXES[0]) and forced[0] != reference[0]
        assert not re.search(r"[.!\n]", forced[0]) and "?" not in forced[0][:-1]   # one question, so far
        whole = engine.generate_batch([FIRST_TURN], replace(GREEDY, max_new_tokens=48), adapter="dec-always")[0].text
        assert re.fullmatch(re.escape(ASK_PREFIXES[0]) + QUESTION_REGEX, whole), whole
        assert classify_agent_turn(whole) == "ask"
        assert forced[1] == reference[1]  # a turn that must answer is never pushed to ask
        streamed = "".join(engine.stream(FIRST_TURN, GREEDY, adapter="dec-always")).strip()
        assert streamed == forced[0]
        # Turned off by the caller (`clarify eval --plain-decision`), and an adapter whose threshold never asks.
        off = replace(GREEDY, calibrated_ask=False)
        assert engine.generate_batch([FIRST_TURN], off, adapter="dec-always")[0].text == reference[0]
        assert engine.generate_batch([FIRST_TURN], GREEDY, adapter="dec-never")[0].text == reference[0]
        # A forced prefix (the simulator's exploration) is left as it is.
        prefixed = engine.generate_batch([FIRST_TURN], GREEDY, adapter="dec-never", prefixes=["Do you mean"])[0].text
        assert prefixed.startswith("Do you mean")

        # Recalibrated on disk: the next reply uses the new threshold, without unloading the adapter.
        (always / "clarify_adapter.json").write_text(json.dumps({"ask_threshold": 1 - 1e-9}))
        engine.load_adapter("dec-always", always)
        assert engine.generate_batch([FIRST_TURN], GREEDY, adapter="dec-always")[0].text == reference[0]
    finally:
        for name in ("dec-always", "dec-never", "dec-plain"):
            engine.unload_adapter(name)


def test_a_broken_threshold_refuses_the_adapter_and_serving_goes_on(engine, lora_template, tmp_path):
    broken = _with_threshold(lora_template, tmp_path / "broken", 7)
    with pytest.raises(AdapterLoadError, match="between 0 and 1"):
        engine.load_adapter("dec-broken", broken)
    assert "dec-broken" not in engine.adapters
    assert engine.generate_batch([FIRST_TURN], GREEDY)[0].text


def test_the_engine_decides_on_the_learners_reading_of_p_ask(engine, lora_template, tmp_path):
    """Thresholds just below and just above P(ask) as the learner reads it (ask_probability, one forward pass of
    the prompt as given): the engine asks under the first and answers under the second, in batches and streams
    alike. The adapters' metadata still names the orders of the notes P(ask) was once pooled over (ask_views):
    they load, and the key changes nothing."""
    engine.load_adapter("dec-probe", lora_template)
    try:
        with engine._lock, torch.inference_mode(), engine._select("dec-probe"):
            p_ask = ask_probability(engine.model, engine.tokenizer, THREE_NOTES, THREE_TURN[1]["content"],
                                    ask_token_ids(engine.tokenizer), 1)
    finally:
        engine.unload_adapter("dec-probe")
    shifted = lambda delta: 1 / (1 + math.exp(-(log_odds(p_ask) + delta)))  # noqa: E731
    engine.load_adapter("dec-below", _with_threshold(lora_template, tmp_path / "below", shifted(-0.05), ask_views=3))
    engine.load_adapter("dec-above", _with_threshold(lora_template, tmp_path / "above", shifted(0.05), ask_views=3))
    try:
        replies = {name: engine.generate_batch([THREE_TURN, FIRST_TURN], GREEDY, adapter=name)[0].text
                   for name in ("dec-below", "dec-above")}
        assert replies["dec-below"].startswith(ASK_PREFIXES[0]) and not replies["dec-above"].startswith("Do")
        for name, text in replies.items():
            assert "".join(engine.stream(THREE_TURN, GREEDY, adapter=name)).strip() == text
    finally:
        engine.unload_adapter("dec-below")
        engine.unload_adapter("dec-above")
