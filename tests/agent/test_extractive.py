"""The scripted behaviour policy: answers and questions taken from the notes."""

from __future__ import annotations

from agent.extractive import extractive_answer, extractive_question


def test_the_scripted_answer_is_the_note_sentence_closest_to_the_users_words():
    notes = "The Elm Park gym closes at 10:00 PM. The Station Road gym closes at midnight."
    assert extractive_answer(notes, "When does the gym close?", "The one in Elm Park.") == \
        "The Elm Park gym closes at 10:00 PM."


def test_the_scripted_question_names_the_facts_that_match_the_question():
    notes = ("Cafe notes: The Harbor branch sells an espresso for $3. The Station branch sells an espresso for $4. "
             "Both open at 7 am.")
    question = extractive_question(notes, "How much is an espresso?")
    assert question.startswith("Do you mean ") and question.endswith("?")
    assert "Harbor" in question and "Station" in question and "7 am" not in question
    three = "Room A seats 8; Room B seats 12; Room C seats 20. Parking is free."
    assert all(r in extractive_question(three, "How many people does the room seat?") for r in "ABC")
