"""Notes views: the same facts in another order, for training only."""

from __future__ import annotations

from collections import Counter

from agent.policy import Message, split_sentences
from learner.examples import Conversation, notes_views, reorder_notes

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
    assert len({v.context for v in views}) == 3
    assert all((v.conversation_id, v.context_key, v.reward, v.messages) == ("c1", "orders-amb", 0.9, msgs)
               for v in views)
    assert notes_views(conv, 1, seed=0) == [conv]
