"""agent/renaming.py: the same facts in other words, in the notes and every turn alike."""

from __future__ import annotations

from agent.renaming import content_words, rename_texts, surface

NOTES = "The Volt S5 goes 70 km on a charge. The Volt S3 goes 40 km on a charge."
WORDS = ["lantern", "walrus", "meadow", "tulip", "glacier", "harbor"]


def test_a_rename_keeps_the_structure_and_renames_the_turns_as_the_notes():
    notes, turns = rename_texts(NOTES, ["Range of my Volt scooter?", "Do you mean the S5 or the S3?", "The S5."],
                                1.0, WORDS, seed=3)
    assert notes != NOTES and notes.count(".") == NOTES.count(".")
    assert not ({"volt", "charge"} & set(content_words([notes])))       # every family renamed at share 1
    assert "70" not in notes and "40" not in notes                       # numbers too, as many digits
    assert "Volt" not in turns[0] and turns[0].endswith("scooter?")      # a word only the turn has stays
    assert turns[0].startswith("Range of my ")                           # function words are never renamed
    renamed_volt = turns[0].split()[3]
    assert renamed_volt in notes and renamed_volt[0].isupper()           # the same new word, case kept


def test_a_rename_is_seeded_and_never_reuses_a_word_the_texts_hold():
    first = rename_texts(NOTES, ["Range of my Volt?"], 0.5, WORDS, seed=7)
    assert rename_texts(NOTES, ["Range of my Volt?"], 0.5, WORDS, seed=7) == first
    held = surface([NOTES, "Range of my Volt?"])
    new = surface([first[0]]) - held
    assert new and new <= {w.rstrip("e") for w in WORDS} | {w for w in new if w.isdigit()}


def test_nothing_to_rename_leaves_the_texts_as_they_are():
    assert rename_texts(NOTES, ["Hi"], 0.0, WORDS, seed=1) == (NOTES, ["Hi"])
    assert rename_texts("", ["Hi"], 1.0, WORDS, seed=1) == ("", ["Hi"])
