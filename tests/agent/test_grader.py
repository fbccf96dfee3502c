"""The grader: whole-word/number matching, aliases, hedging, punctuation, case, reward."""

from __future__ import annotations

import pytest

from agent.grader import conversation_reward, grade_answer, mentions, normalize
from agent.items import Interpretation, Item


def item(*answers, aliases=None) -> Item:
    aliases = aliases or {}
    return Item("t", "notes", "q?", tuple(
        Interpretation(f"clar {i}", a, tuple(aliases.get(i, ()))) for i, a in enumerate(answers)
    ))


@pytest.mark.parametrize("text,answer,expected", [
    ("The capital is Tbilisi.", "Tbilisi", True),
    ("the capital is TBILISI", "Tbilisi", True),                 # case
    ("It's Tbilisi's capital status", "Tbilisi", True),          # possessive
    ("Tbilisia is not a city", "Tbilisi", False),                # not a whole word
    ("There are 5 rooms.", "5", True),
    ("There are 15 rooms.", "5", False),                         # number inside a number
    ("It costs 5.5 dollars.", "5", False),                       # integer part of a decimal
    ("It costs 2.5 dollars.", "5", False),                       # fractional part of a decimal
    ("It has 5, 6 or 7 rooms.", "5", True),                      # list comma is not a decimal
    ("It ends in 5.", "5", True),                                # sentence full stop
    ("It starts at 5:30 PM.", "5", False),                       # hour of a time
    ("It starts at 10:05.", "5", False),
    ("Answer: 5", "5", True),
    ("It starts at 4:00 PM.", "4:00 pm", True),
    ("It starts at 14:00.", "4:00", False),
    ("Shipping is $1.299 or $24.99.", "$12.99", False),
    ("Shipping is $25.", "$5", False),
    ("About 1,500 people.", "1500", True),                       # thousands separator
    ("About 1500 people.", "1,500", True),
    ("About 1,500 people.", "500", False),
    ("An espresso is $12.", "$12", True),                        # currency symbol
    ("An espresso is $12.50.", "$12", False),
    ("An espresso is 12 dollars.", "$12", False),
    ("Espresso: $12!", "$12", True),
    ("It is 40km away.", "40 km", True),                         # unit glued to the number
    ("It is 40 km away.", "40km", True),
    ("It is 140 km away.", "40 km", False),
    ("She lives in New-York.", "New York", True),                # hyphen vs space
    ("It is in Zürich.", "Zurich", True),                        # accents
    ("It is in Zurich.", "Zürich", True),
    ("The shop is called \u201cCaf\u00e9 Noir\u201d.", '"Cafe Noir"', True),  # curly quotes, answer quoted
    ("It's the O\u2019Hara building", "O'Hara", True),           # curly apostrophe
    ("Arrives September 9, 2024.", "September 9", True),
    ("Arrives September 19.", "September 1", False),
    ("It is １２ metres.", "12", True),                            # full-width digits (NFKC)
    ("The capital is Washington, D.C", "Washington, D.C.", True),  # trailing punctuation of the answer
])
def test_mentions(text, answer, expected):
    assert mentions(text, answer) is expected


def test_normalize():
    assert normalize("  Caf\u00e9\u2019s  \u2014 1,234,567 ") == "cafe's - 1234567"


def test_correct_answer_and_alias():
    it = item("Tbilisi", "Atlanta", aliases={0: ["Tiflis"]})
    assert grade_answer(it, 0, "The capital is Tbilisi.").correct
    assert grade_answer(it, 0, "It is Tiflis.").correct          # alias
    assert not grade_answer(it, 1, "The capital is Tbilisi.").correct
    assert not grade_answer(it, 0, "I don't know.").correct


def test_hedging_is_wrong():
    it = item("Tbilisi", "Atlanta")
    g = grade_answer(it, 0, "The country's capital is Tbilisi and the state's capital is Atlanta.")
    assert g.found_intent and g.others == (1,) and not g.correct
    # A clarifying question that lists both options is not a right final answer either.
    assert not grade_answer(it, 1, "Do you mean Tbilisi or Atlanta?").correct


def test_hedging_with_alias_of_other_interpretation():
    it = item("$3", "$4", aliases={1: ["4 dollars"]})
    assert not grade_answer(it, 0, "It is $3 at Harbor, 4 dollars at Station.").correct
    assert grade_answer(it, 0, "It is $3 at the Harbor branch.").correct


def test_other_answer_inside_intent_answer_does_not_count():
    it = item("Paris, Texas", "Paris")
    assert grade_answer(it, 0, "You mean Paris, Texas.").correct
    assert not grade_answer(it, 1, "You mean Paris, Texas.").correct   # names the other city
    assert grade_answer(it, 1, "The city is Paris, in France.").correct


def test_numbers_inside_numbers_between_interpretations():
    it = item("5", "15")
    assert grade_answer(it, 0, "There are 5 rooms.").correct
    assert grade_answer(it, 1, "There are 15 rooms.").correct
    assert not grade_answer(it, 0, "There are 15 rooms.").correct
    assert not grade_answer(it, 0, "Either 5 or 15 rooms.").correct


@pytest.mark.parametrize("correct,questions,expected", [
    (True, 0, 1.0), (True, 1, 0.9), (True, 2, 0.8), (False, 0, 0.0), (False, 1, 0.0), (True, 20, 0.0),
])
def test_reward(correct, questions, expected):
    assert conversation_reward(correct, questions, 0.1) == pytest.approx(expected)
