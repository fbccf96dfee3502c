"""Simulated users: intents, replies, horizon, forced asking, lockstep batching, logging, eval metrics.

A scripted fake engine stands in for the model here (logic only); the real
model runs in test_commands_real.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.engine import Generation, GenerationParams
from agent.evaluate import METRIC_KEYS, evaluate
from agent.items import load_items
from agent.policy import MUST_ANSWER_SUFFIX, build_prompt
from agent.simulator import (
    ASK_PREFIXES, ask_prefix, cut_after_first_question, draw_intent, log_conversations, run_conversations,
    summarize,
)

FIXTURE = Path(__file__).parent / "fixtures" / "items.jsonl"


class FakeEngine:
    """Replies from a script: script(prompt_messages, prefix) -> text (the prefix is prepended like the real engine)."""

    name = "fake"

    def __init__(self, script):
        self.script = script
        self.calls: list[dict] = []

    def generate_batch(self, prompts, params, adapter=None, prefixes=None):
        self.calls.append({"n": len(prompts), "params": params, "adapter": adapter, "prefixes": prefixes,
                           "prompts": prompts})
        out = []
        for i, prompt in enumerate(prompts):
            prefix = prefixes[i] if prefixes else ""
            out.append(Generation((prefix + self.script(prompt, prefix)).strip(), 10, 5))
        return out


def always(text):
    return lambda prompt, prefix: text


@pytest.fixture
def items():
    return load_items(FIXTURE)


def by_id(items, item_id):
    return next(i for i in items if i.id == item_id)


def test_intent_is_stable_and_spread(items):
    georgia = by_id(items, "georgia-capital")
    draws = [draw_intent(georgia, j, 0) for j in range(40)]
    assert draws == [draw_intent(georgia, j, 0) for j in range(40)]   # stable
    assert set(draws) == {0, 1}                                         # both readings drawn
    assert set(draws[:2]) == {0, 1}                                     # stratified: M = 2 covers both
    ambiguous = [i for i in items if len(i.interpretations) > 1]
    assert [draw_intent(i, 0, 0) for i in ambiguous] != [draw_intent(i, 0, 1) for i in ambiguous]  # seed matters
    assert draw_intent(by_id(items, "eiffel-height"), 3, 7) == 0        # one reading: always it


def test_guessing_agent_single_turn(items):
    georgia = by_id(items, "georgia-capital")
    eng = FakeEngine(always("The capital of Georgia is Tbilisi."))
    convs = run_conversations(eng, [georgia], per_item=6, params=GenerationParams(temperature=0.7), seed=0,
                              progress=False)
    for c in convs:
        assert [t.role for t in c.turns] == ["user", "assistant"] and c.turns[1].kind == "answer"
        assert c.correct == (c.intent == 0) and c.reward == (1.0 if c.intent == 0 else 0.0)
        assert c.questions == 0 and not c.asked and c.final_answer == "The capital of Georgia is Tbilisi."
    assert len(eng.calls) == 1 and eng.calls[0]["n"] == 6                # one batched round


def first_turn(prompt) -> bool:
    """Whether the policy may still ask (horizon 1: the turn after a question must answer)."""
    return not prompt[0]["content"].endswith(MUST_ANSWER_SUFFIX)


def smart_script(prompt, prefix):
    """Asks first (naming both options); answers from the user's reply."""
    last = prompt[-1]["content"]
    if first_turn(prompt):
        return "Do you mean the country or the US state?"
    return "It is Tbilisi." if "country" in last else "It is Atlanta." if "state" in last else "It is 1889."


def test_user_replies_with_clarification_then_reward_pays_question(items):
    georgia = by_id(items, "georgia-capital")
    eng = FakeEngine(smart_script)
    convs = run_conversations(eng, [georgia], per_item=4, seed=3, progress=False, question_cost=0.1)
    for c in convs:
        expected_reply = georgia.interpretations[c.intent].clarification
        assert [(t.role, t.kind) for t in c.turns] == [("user", "user"), ("assistant", "ask"),
                                                       ("user", "user"), ("assistant", "answer")]
        assert c.turns[2].text == expected_reply and c.turns[2].reply == "clarification"
        assert c.correct and c.reward == pytest.approx(0.9) and c.questions == 1 and c.asked
        assert c.meta()["named_options"] == [True] and c.meta()["user_replies"] == ["clarification"]
    assert [call["n"] for call in eng.calls] == [4, 4]                   # lockstep: two rounds
    # The second-round prompt is build_prompt's, with the "answer now" line (horizon 1 reached).
    second = eng.calls[1]["prompts"][0]
    assert second[0]["content"].endswith(MUST_ANSWER_SUFFIX) and second[-1]["role"] == "user"


def test_horizon_makes_next_turn_final_even_if_a_question(items):
    georgia = by_id(items, "georgia-capital")
    eng = FakeEngine(always("Do you mean the country or the state?"))
    (c,) = run_conversations(eng, [georgia], per_item=1, horizon=1, progress=False)
    assert [t.kind for t in c.agent_turns] == ["ask", "ask"] and c.done and not c.correct and c.reward == 0
    assert c.questions == 1
    (c2,) = run_conversations(FakeEngine(always("Which one?")), [georgia], horizon=2, progress=False)
    assert len(c2.agent_turns) == 3 and c2.questions == 2
    (c0,) = run_conversations(FakeEngine(always("Which one?")), [georgia], horizon=0, progress=False)
    assert len(c0.agent_turns) == 1 and c0.questions == 0


def test_mixed_batch_only_askers_continue(items):
    def script(prompt, prefix):
        if "Georgia" in prompt[0]["content"] and first_turn(prompt):
            return "Which one do you mean, the country or the state?"
        if "Georgia" in prompt[0]["content"]:
            return "Tbilisi." if "country" in prompt[-1]["content"] else "Atlanta."
        return "The answer is 1889."

    eng = FakeEngine(script)
    convs = run_conversations(eng, [by_id(items, "georgia-capital"), by_id(items, "eiffel-height")], per_item=2,
                              progress=False)
    assert [call["n"] for call in eng.calls] == [4, 2]
    eiffel = [c for c in convs if c.item.id == "eiffel-height"]
    assert all(c.correct and c.reward == 1.0 and len(c.turns) == 2 for c in eiffel)
    assert all(c.correct and c.reward == pytest.approx(0.9) for c in convs if c.item.id == "georgia-capital")


def test_forced_prefix_exploration(items):
    georgia = by_id(items, "georgia-capital")
    eng = FakeEngine(lambda prompt, prefix: " the country? It is Tbilisi." if prefix else "Tbilisi.")
    convs = run_conversations(eng, [georgia], per_item=3, ask_first=2, seed=0, progress=False)
    forced = [c for c in convs if c.forced_prefix]
    assert [c.index for c in forced] == [0, 1]
    assert all(c.forced_prefix in ASK_PREFIXES for c in forced)
    assert forced[0].forced_prefix == ask_prefix(georgia, 0, 0)
    first_call = eng.calls[0]["prefixes"]
    assert sorted(first_call) == sorted([c.forced_prefix for c in forced] + [""])
    for c in forced:
        first = c.agent_turns[0]
        # Cut after the first question mark; the logged text includes the prefix.
        assert first.text == c.forced_prefix + " the country?" and first.kind == "ask"
        assert c.turns[2].role == "user" and c.meta()["forced_prefix"] == c.forced_prefix
        # The forced question names one option: the same user as any other question says yes or no.
        expected = "Yes, I mean the country." if c.intent == 0 else "No, the US state."
        assert c.turns[2].text == expected and c.turns[2].reply == ("yes" if c.intent == 0 else "no")
    # Later rounds never force.
    assert eng.calls[1]["prefixes"] is None
    free = next(c for c in convs if not c.forced_prefix)
    assert len(free.turns) == 2 and free.meta()["forced_prefix"] is None
    with pytest.raises(ValueError):
        run_conversations(eng, [georgia], per_item=1, ask_first=2, progress=False)


def test_cut_after_first_question():
    assert cut_after_first_question("Do you mean X? Then Y. Or Z?") == "Do you mean X?"
    assert cut_after_first_question('Do you mean "X?" yes') == 'Do you mean "X?"'
    assert cut_after_first_question("Do you mean X") == "Do you mean X"


def test_temperatures_cycle_one_call_per_temperature(items):
    eng = FakeEngine(always("Tbilisi."))
    convs = run_conversations(eng, items[:2], per_item=3, temperatures=[0.7, 0.3, 1.0], progress=False)
    assert [c.temperature for c in convs] == [0.7, 0.3, 1.0] * 2
    assert sorted(call["params"].temperature for call in eng.calls) == [0.3, 0.7, 1.0]
    assert all(call["n"] == 2 for call in eng.calls)


def test_log_conversations(items, store):
    georgia = by_id(items, "georgia-capital")
    eng = FakeEngine(lambda prompt, prefix: smart_script(prompt, prefix) if not prefix else " the country?")
    convs = run_conversations(eng, [georgia, by_id(items, "eiffel-height")], per_item=2, ask_first=1,
                              params=GenerationParams(temperature=0.5), progress=False)
    ids = log_conversations(store, convs)
    assert len(ids) == 4 == len(set(ids))
    for cid, c in zip(ids, convs):
        conv = store.get_conversation(cid)
        assert conv.source == "simulated" and conv.context_key == c.item.id and conv.context == c.item.context
        assert conv.reward == pytest.approx(c.reward) and conv.engine == "fake" and conv.adapter_id is None
        assert conv.meta["temperature"] == 0.5 and conv.meta["intent"] == c.intent
        assert conv.meta["forced_prefix"] == c.forced_prefix
        assert conv.meta["named_options"] == c.named_options and len(c.named_options) == c.questions
        turns = store.list_turns(cid)
        assert [(t.role, t.kind, t.text) for t in turns] == [(t.role, t.kind, t.text) for t in c.turns]
        agent = [t for t in turns if t.role == "assistant"]
        assert all(t.engine == "fake" and t.completion_tokens == 5 and t.latency_ms is not None for t in agent)
        # The trainer can rebuild the served prompt from the log alone.
        from agent.policy import Message
        history = [Message(t.role, t.text, t.kind) for t in turns[:1]]
        assert build_prompt(conv.context, history, 1)[-1]["content"] == c.item.question
    s = summarize(convs)
    assert s["conversations"] == 4 and s["forced"] == 2 and 0 <= s["mean_reward"] <= 1
    # "Do you mean the country?" names an option of Georgia, and nothing in the Eiffel Tower's notes.
    assert s["asks_named_options"] == 0.5


def test_evaluate_metrics(items):
    def script(prompt, prefix):
        system = prompt[0]["content"]
        if "Georgia" in system:
            return "Do you mean the country or the state?" if first_turn(prompt) else (
                "Tbilisi." if "country" in prompt[-1]["content"] else "Atlanta.")
        if "Eiffel" in system:   # asks on a clear item, then answers
            return "Which tower do you mean?" if first_turn(prompt) else "It was 1889."
        return "I do not know."

    eng = FakeEngine(script)
    georgia, eiffel, alice = by_id(items, "georgia-capital"), by_id(items, "eiffel-height"), by_id(items, "alice-pet")
    result = evaluate(eng, [georgia, eiffel, alice], seed=0, progress=False)
    m = result.metrics
    assert tuple(m) == METRIC_KEYS
    assert m["n"] == 3
    assert m["ask_rate_ambiguous"] == 1.0 and m["ask_rate_unambiguous"] == 0.5
    assert m["mean_reward"] == pytest.approx((0.9 + 0.9 + 0.0) / 3)
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["mean_turns"] == pytest.approx(5 / 3)
    assert 0 < m["stderr"] < 1
    assert all(call["params"].temperature == 0.0 for call in eng.calls)
    assert result.details["mean_reward_ambiguous"] == pytest.approx(0.9)
    # Both askers answered right after the clarification; the one direct answer was wrong.
    assert result.details["accuracy_after_asking"] == 1.0 and result.details["accuracy_without_asking"] == 0.0
    # Georgia's question names the options; "Which tower do you mean?" names nothing the user did not say.
    assert result.details["asks_named_options"] == 0.5
    eiffel_conv = next(c for c in result.conversations if c.item.id == "eiffel-height")
    assert eiffel_conv.turns[2].reply == "unhelpful" and eiffel_conv.meta()["named_options"] == [False]
    only_clear = evaluate(eng, [alice], progress=False).metrics
    assert only_clear["ask_rate_ambiguous"] is None and only_clear["stderr"] == 0.0


def test_chunked_rounds_same_conversations(items):
    georgia = by_id(items, "georgia-capital")
    whole = run_conversations(FakeEngine(smart_script), [georgia], per_item=5, seed=2, progress=False,
                              chunk_size=None)
    eng = FakeEngine(smart_script)
    chunked = run_conversations(eng, [georgia], per_item=5, seed=2, progress=False, chunk_size=2)
    assert [call["n"] for call in eng.calls] == [2, 2, 1, 2, 2, 1]
    assert [[t.text for t in c.turns] for c in whole] == [[t.text for t in c.turns] for c in chunked]


def test_hint_answers_changes_only_the_behaviour_prompt_not_the_log(items):
    """With hint_answers the answer after a clarification is generated from the restated question,
    but the logged conversation (what the trainer rebuilds prompts from) is the plain multi-turn one."""
    georgia = by_id(items, "georgia-capital")
    seen = []

    def script(prompt, prefix):
        seen.append(prompt)
        return " the country or the state?" if prefix else "Tbilisi or Atlanta, depending."

    convs = run_conversations(FakeEngine(script), [georgia], per_item=1, ask_first=1, hint_answers=True,
                              progress=False)
    conv = convs[0]
    clarification = georgia.interpretations[conv.intent].clarification
    answer_prompt = seen[-1]
    assert [m["role"] for m in answer_prompt] == ["system", "user"]
    assert answer_prompt[1]["content"] == f"{georgia.question} ({clarification})"
    assert [t.text for t in conv.turns][2] == clarification          # logged as the user's own turn
    assert [t.role for t in conv.turns] == ["user", "assistant", "user", "assistant"]
    assert conv.meta()["hint_answers"] is True

    plain = run_conversations(FakeEngine(script), [georgia], per_item=1, ask_first=1, progress=False)
    assert plain[0].turns[-1].text == conv.turns[-1].text
    assert plain[0].meta()["hint_answers"] is False


def test_answer_tries_resamples_only_wrong_final_answers(items):
    georgia = by_id(items, "georgia-capital")
    intent = draw_intent(georgia, 0, 0)
    right = georgia.interpretations[intent].answer
    wrong = georgia.interpretations[1 - intent].answer
    replies = iter([f"{wrong}.", f"{wrong}.", f"{right}."])
    conv = run_conversations(FakeEngine(lambda prompt, prefix: next(replies)), [georgia], per_item=1,
                             answer_tries=3, progress=False)[0]
    assert conv.correct and conv.final_answer == f"{right}."          # found on the third try
    assert [t.role for t in conv.turns] == ["user", "assistant"]      # wrong tries are not logged
    assert conv.meta()["answer_tries"] == 3
    never = run_conversations(FakeEngine(lambda prompt, prefix: f"{wrong}."), [georgia], per_item=1,
                              answer_tries=2, progress=False)[0]
    assert not never.correct and never.meta()["answer_tries"] == 2     # gives up after 2
    once = run_conversations(FakeEngine(lambda prompt, prefix: f"{wrong}."), [georgia], per_item=1, progress=False)
    assert once[0].meta()["answer_tries"] == 1


def test_extractive_behaviour_answers_come_from_the_notes_not_the_answers(items):
    georgia = by_id(items, "georgia-capital")
    engine = FakeEngine(lambda prompt, prefix: " the espresso?")
    convs = run_conversations(engine, [georgia], per_item=2, ask_first=1, extractive_answers=True, progress=False)
    asked, direct = convs
    assert engine.calls == []                                   # the scripted behaviour never calls the model
    assert [t.kind for t in asked.turns] == ["user", "ask", "user", "answer"]
    assert asked.turns[1].text.startswith("Do you mean") and asked.meta()["named_options"] == [True]
    assert asked.turns[-1].text in georgia.context and asked.correct
    assert [t.kind for t in direct.turns] == ["user", "answer"] and direct.turns[-1].text in georgia.context


def test_a_vague_question_gets_an_unhelpful_reply_and_the_answer_is_graded_against_the_hidden_intent(items):
    """"Do you mean the espresso?" names neither branch: the user's reply does not say which, the agent must
    answer without the clarification, and the grader still grades against the hidden intent."""
    cafe = by_id(items, "cafe-espresso")

    def script(prompt, prefix):
        if prefix:
            return " the espresso?"
        last = prompt[-1]["content"]
        return "It is $3." if "Harbor" in last else "It is $4." if "Station" in last else "It is $3."

    convs = run_conversations(FakeEngine(script), [cafe], per_item=4, ask_first=4, seed=5, progress=False)
    unhelpful = {"What I asked.", "The one in my question.", "Just what I said.", "Yes, that one.",
                 "Yes, the espresso."}
    for c in convs:
        assert [t.kind for t in c.turns] == ["user", "ask", "user", "answer"]
        assert c.turns[2].text in unhelpful and c.turns[2].reply == "unhelpful"
        assert c.meta()["named_options"] == [False] and c.meta()["user_replies"] == ["unhelpful"]
        assert c.correct == (c.intent == 0)          # the guess "$3" is right only for the Harbor intent
    again = run_conversations(FakeEngine(script), [cafe], per_item=4, ask_first=4, seed=5, progress=False)
    assert [c.turns[2].text for c in again] == [c.turns[2].text for c in convs]      # seeded like the intents
    assert summarize(convs)["asks_named_options"] == 0.0
    assert summarize(run_conversations(FakeEngine(always("$3.")), [cafe], progress=False))["asks_named_options"] is None

    named = run_conversations(FakeEngine(lambda p, prefix: " the Harbor or the Station branch?" if prefix
                                         else script(p, prefix)), [cafe], per_item=2, ask_first=2, progress=False)
    assert all(c.correct and c.turns[2].reply == "clarification" for c in named)
    assert summarize(named + convs)["asks_named_options"] == pytest.approx(2 / 6)
