"""agent.policy.classify_agent_turn: what counts as a clarifying question."""

from __future__ import annotations

import pytest

from agent.policy import classify_agent_turn, split_sentences

ASK = [
    "Do you mean the country or the US state?",
    "Do you mean the capital of Georgia?",
    "Are you asking about the planet Mercury?",
    "Just to check, are you asking about the price of an espresso?",
    "To clarify, do you mean the Harbor branch?",
    "Which one do you mean: Georgia the country, or Georgia the state?",
    "Which Georgia?",
    "Which branch are you asking about?",
    "The Harbor or the Station branch?",
    "Georgia could be a country or a state. Which one do you mean?",
    "There are two Georgias in my notes. Are you referring to the country?",
    "Could you clarify which order you mean?",
    "Do you mean St. Petersburg, Russia, or St. Petersburg, Florida?",   # abbreviations
    "Do you mean Michael B. Jordan?",                                   # initial
    "Is it the $3.50 espresso or the $4 one?",                          # decimal
    "What time period are you interested in?",                          # only questions
    "Do you mean \u201cthe cat\u201d?",                                  # closing quote after '?'
    "Would you like the price at the Harbor or the Station branch?",
    "Hey! When does your package arrive?",                               # greeting + question only
    "Sure! Is that the keyboard order?",
]
ANSWER = [
    "The capital of Georgia is Tbilisi.",
    "Tbilisi",
    "",
    "   ",
    "The Harbor branch sells an espresso for $3 and the Station branch sells an espresso for $4.",
    "The capital is Tbilisi. Anything else?",
    "The capital is Tbilisi. Is there anything else I can help you with?",
    "The capital is Tbilisi. Would you like to know more about Georgia?",   # closing offer
    "Michael Jordan was born in 1963. Do you have any other questions or concerns?",
    "Michael Jordan was born in 1963. Why do you ask?",                    # statement + non-clarifying question
    "What is the capital of Georgia? The capital of Georgia is Tbilisi.",  # echoed question, then answer
    "It opens at 7 a.m. and closes at 3 p.m.",
    "The Eiffel Tower was completed in 1889. I hope this helps!",
    "Which one do you mean: \n- The Harbor branch sells an espresso for $3.",  # no question asked
    "The U.S. capital is Washington, D.C. It was founded in 1790.",
    "Sure! It arrives on September 9.",
    "Hey! It arrives on September 9. Why do you ask?",
]


@pytest.mark.parametrize("text", ASK)
def test_asks(text):
    assert classify_agent_turn(text) == "ask"


@pytest.mark.parametrize("text", ANSWER)
def test_answers(text):
    assert classify_agent_turn(text) == "answer"


def test_split_sentences_keeps_abbreviations_and_numbers():
    assert split_sentences("Mr. B. Smith paid $3.50 at 7 a.m. today. Then he left! Why?") == [
        "Mr. B. Smith paid $3.50 at 7 a.m. today.", "Then he left!", "Why?"]
    assert split_sentences("Line one\nLine two?") == ["Line one", "Line two?"]
