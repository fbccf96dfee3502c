"""The prompt the policy is served, evaluated and trained with (agent/policy.py build_prompt)."""

from agent.policy import MUST_ANSWER_SUFFIX, Message, build_prompt, fold_clarifications

NOTES = "The Harbor branch sells an espresso for $3. The Station branch sells an espresso for $4."
Q = Message("user", "How much is an espresso?", "user")
ASK = Message("assistant", "Do you mean the Harbor or the Station branch?", "ask")
C = Message("user", "The Harbor branch.", "user")


def test_a_pending_clarification_is_asked_as_the_question_restated_with_the_reply():
    prompt = build_prompt(NOTES, [Q, ASK, C], horizon=1)
    assert [m["role"] for m in prompt] == ["system", "user"]
    assert prompt[1]["content"] == "How much is an espresso? (The Harbor branch.)"
    assert prompt[0]["content"].endswith(MUST_ANSWER_SUFFIX)      # the agent must answer now


def test_the_first_turn_and_a_finished_exchange_are_left_as_they_were():
    assert fold_clarifications([Q]) == [Q]
    answer = Message("assistant", "It is $3 at the Harbor branch.", "answer")
    follow_up = Message("user", "And at the Station?", "user")
    assert fold_clarifications([Q, ASK, C, answer, follow_up]) == [Q, ASK, C, answer, follow_up]
    prompt = build_prompt(NOTES, [Q, ASK, C, answer, follow_up], horizon=1)
    assert [m["content"] for m in prompt[1:]] == [Q.content, ASK.content, C.content, answer.content, follow_up.content]


def test_only_the_exchange_after_the_last_answer_is_folded_and_every_reply_is_kept():
    answer = Message("assistant", "It is $3.", "answer")
    second_ask = Message("assistant", "Which one, the Harbor or the Station?", "ask")
    second_reply = Message("user", "No, the Station.", "user")
    history = [Q, ASK, C, answer, Q, ASK, C, second_ask, second_reply]
    folded = fold_clarifications(history)
    assert folded[:4] == [Q, ASK, C, answer]
    assert folded[4:] == [Message("user", "How much is an espresso? (The Harbor branch.) (No, the Station.)", "user")]
    assert not build_prompt(NOTES, history, horizon=3)[0]["content"].endswith(MUST_ANSWER_SUFFIX)
