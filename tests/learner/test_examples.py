"""Training-only views of a logged conversation: the notes in another order, their words renamed."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from agent.policy import Message, split_sentences
from learner.examples import Conversation, content_words, notes_views, rename_words, reorder_notes, view_keys, word_family

NOTES = ("Order #8801 (laptop stand) arrives on September 6. Order #8843 (keyboard) arrives on September 9. "
         "All orders ship from the Denver warehouse.")


def test_reordered_notes_keep_every_sentence_and_change_the_order():
    views = {reorder_notes(NOTES, seed) for seed in range(10)}
    assert len(views) > 1
    for view in views:
        assert Counter(split_sentences(view)) == Counter(split_sentences(NOTES))
        assert view != NOTES
    assert reorder_notes(NOTES, 3) == reorder_notes(NOTES, 3)  # seeded: a rerun trains on the same data


def test_one_sentence_notes_have_no_other_order():
    assert reorder_notes("The Cedar Hill store closes at 9:30 PM.", 1) == "The Cedar Hill store closes at 9:30 PM."
    assert reorder_notes("", 1) == ""


def test_views_change_only_the_notes():
    msgs = [Message("user", "When does my package arrive?", "user"), Message("assistant", "Do you mean the keyboard?", "ask")]
    conv = Conversation("c1", "orders-amb", NOTES, 0.9, msgs)
    views = notes_views(conv, 3, seed=0)
    assert views[0] is conv and len(views) == 3
    assert all(v.context != NOTES and Counter(split_sentences(v.context)) == Counter(split_sentences(NOTES))
               for v in views[1:])
    assert all((v.conversation_id, v.context_key, v.reward, v.messages) == ("c1", "orders-amb", 0.9, msgs)
               for v in views)
    assert notes_views(conv, 1, seed=0) == [conv]


def test_views_follow_what_was_logged_not_the_ids_the_log_gave_it():
    msgs = [Message("user", "When does my package arrive?", "user"), Message("assistant", "Do you mean the keyboard?", "ask")]
    logged = [Conversation("c1", "orders-amb", NOTES, 0.9, msgs), Conversation("c2", "orders-amb", NOTES, 0.9, msgs),
              Conversation("c3", "orders-amb", NOTES, 0.1, msgs)]
    relogged = [replace(c, conversation_id=f"new-{i}") for i, c in enumerate(logged)]  # a re-made simulation
    keys = view_keys(logged)
    assert keys == view_keys(relogged)
    assert len(set(keys)) == 3  # identical conversations still draw their own views; another reward is another key

    def contexts(convs):
        return [[v.context for v in notes_views(c, 4, seed=0, rename_fraction=0.5, vocabulary=["walrus", "tulip"], key=k)]
                for c, k in zip(convs, view_keys(convs))]

    assert contexts(logged) == contexts(relogged)
    assert contexts(logged)[0] != contexts(logged)[1]
    assert [v.context for v in notes_views(logged[0], 4, seed=0)] != [v.context for v in notes_views(logged[0], 4, seed=1)]


def _asked(answer: str = "It arrives on September 9.") -> list[Message]:
    return [Message("user", "When does my package arrive?", "user"), Message("assistant", "Do you mean the keyboard?", "ask"),
            Message("user", "Yes, the keyboard.", "user"), Message("assistant", answer, "answer")]


def _families(text: str) -> set[str]:
    return {word_family(w)[0] for w in content_words([text])}


def test_renamed_views_rename_a_word_everywhere_it_occurs_and_keep_the_rest():
    conv = Conversation("c1", "orders-amb", NOTES, 0.9, _asked())
    vocabulary = content_words(["Lantern, walrus, saxophone, meadow, tulip, glacier, harbor, violin."])
    renamed = rename_words(conv, 0.5, vocabulary, seed=1)
    gone = _families(NOTES) - _families(renamed.context)
    new = _families(renamed.context) - _families(NOTES)
    assert gone and len(new) == len(gone) and new <= {word_family(w)[0] for w in vocabulary}
    for old in gone:  # nowhere left: not in the question, the clarification or the agent's turns
        assert all(old not in _families(m.content) for m in renamed.messages)
    assert renamed.messages[1].content.startswith("Do you mean")  # the asking words are never renamed
    assert [m.kind for m in renamed.messages] == [m.kind for m in conv.messages]
    assert (renamed.conversation_id, renamed.context_key, renamed.reward) == ("c1", "orders-amb", 0.9)
    assert rename_words(conv, 0.5, vocabulary, seed=1) == renamed  # seeded: a rerun trains on the same data
    assert rename_words(conv, 0.0, vocabulary, seed=1) is conv


def test_a_word_family_is_renamed_as_one_word_with_its_inflections():
    conv = Conversation("c1", "k", "The order arrives Monday. It arrived late once. The team's orders are arriving.", 1.0,
                        [Message("user", "When does my order arrive?", "user"),
                         Message("assistant", "It arrives Monday.", "answer")])
    renamed = rename_words(conv, 1.0, ["land", "box", "city", "glide", "pebble"], seed=0)
    families = {word_family(w)[0]: w for w in ("order", "arrive", "team", "monday", "late")}
    assert not set(families) & _families(renamed.context)  # every family of the notes is gone
    # "arrive", "arrives", "arrived" and "arriving" all became the same new word, inflected the same way.
    question_verb = renamed.messages[0].content.split()[-1].rstrip("?")
    answer_verb = renamed.messages[1].content.split()[1]
    assert word_family(question_verb)[0] == word_family(answer_verb)[0]
    assert (word_family(question_verb)[1], word_family(answer_verb)[1]) == ("", "s")
    assert f" {answer_verb} " in renamed.context and renamed.context.count("'s ") == 1


def test_numbers_are_renamed_consistently_with_as_many_digits():
    conv = Conversation("c1", "orders-amb", NOTES, 0.9, _asked())
    renamed = rename_words(conv, 1.0, ["tulip", "meadow", "harbor", "violin", "glacier", "lantern",
                                                        "saxophone", "comet", "pebble", "willow"], seed=3)
    old_numbers, new_numbers = re.findall(r"\d+", NOTES), re.findall(r"\d+", renamed.context)
    assert [len(n) for n in new_numbers] == [len(n) for n in old_numbers]
    assert not set(new_numbers) & set(old_numbers)  # a share of 1 renames every number of the notes
    mapping = dict(zip(old_numbers, new_numbers))
    assert renamed.messages[3].content.endswith(f" {mapping['9']}.")  # the answer follows the notes
    assert len(set(new_numbers)) == len(set(old_numbers))  # two numbers never merge into one


def test_a_renamed_word_keeps_its_case_in_every_turn():
    conv = Conversation("c1", "k", "The keyboard. KEYBOARD ships.", 1.0,
                        [Message("user", "Keyboard?", "user"), Message("assistant", "The keyboard.", "answer")])
    renamed = rename_words(conv, 0.5, ["walrus"], seed=0)  # one of {keyboard, ships}: half of them, rounded up
    if "ships" in renamed.context:
        assert renamed.context == "The walrus. WALRUS ships."
        assert [m.content for m in renamed.messages] == ["Walrus?", "The walrus."]
    else:
        assert renamed.context == "The keyboard. KEYBOARD walruses."
        assert [m.content for m in renamed.messages] == ["Keyboard?", "The keyboard."]


def test_views_rename_only_when_asked():
    conv = Conversation("c1", "orders-amb", NOTES, 0.9, _asked())
    plain = notes_views(conv, 3, seed=0)
    renamed = notes_views(conv, 3, seed=0, rename_fraction=0.5, vocabulary=["walrus", "tulip", "meadow"])
    assert renamed[0] is conv  # the logged conversation itself is always one of the views
    assert all(v.messages == conv.messages for v in plain)
    assert all(set(content_words([v.context])) & {"walrus", "tulip", "meadow"} for v in renamed[1:])
