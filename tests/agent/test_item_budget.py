"""agent/item_budget.py: a conversation cap keeps whole families (an ambiguous question with its clear
counterparts) before lone items, read from the item fields alone."""

from __future__ import annotations

import collections

from agent.item_budget import families, minimal_pairs_first
from agent.items import TRAIN_ITEMS, Interpretation, Item, load_items


def item(id_, context, answers):
    return Item(id_, context, f"question {id_}?", tuple(Interpretation(f"I mean {a}.", a) for a in answers))


BATTERY = "Battery life for the Zephyr Lite: 6 hours. Battery life for the Zephyr Max: 9 hours."
STORES = "The Elm Street store closes at 9 PM. The Cedar Hill store closes at 6 PM."
TICKETS = "Balcony seats cost $40. Floor seats cost $60."


def test_an_unambiguous_item_joins_the_ambiguous_item_with_its_answer():
    amb_battery = item("a1", BATTERY, ["6 hours", "9 hours"])
    amb_stores = item("a2", STORES, ["9 PM", "6 PM"])
    clear_max = item("c1", "Battery life for the Zephyr Max: 9 hours.", ["9 hours"])
    lone = item("x", "The museum opens at 10 AM.", ["10 AM"])
    groups = families([lone, amb_battery, clear_max, amb_stores])
    assert [[it.id for it in g] for g in groups] == [["a1", "c1"], ["a2"], ["x"]]


def test_a_shared_answer_goes_to_the_family_whose_notes_share_more_words():
    # "$60" is an answer of both price lists; the floor-seat notes share their words with the tickets.
    amb_tickets = item("t", TICKETS, ["$40", "$60"])
    amb_other = item("o", "A day pass costs $60. A week pass costs $90.", ["$60", "$90"])
    clear_floor = item("f", "Floor seats cost $60.", ["$60"])
    groups = families([amb_other, amb_tickets, clear_floor])
    assert [[it.id for it in g] for g in groups] == [["o"], ["t", "f"]]


def test_the_cap_keeps_whole_families_first_then_fills_in_file_order():
    lone_amb = item("lone", "Tea: $3 small, $4 large.", ["$3", "$4"])
    amb = item("amb", BATTERY, ["6 hours", "9 hours"])
    clear = item("clear", "Zephyr Max battery: 9 hours.", ["9 hours"])
    solo = item("solo", "Zephyr Lite battery: 6 hours.", ["6 hours"])
    amb2 = item("amb2", STORES, ["9 PM", "6 PM"])
    clear2 = item("clear2", "Elm Street store: closes 9 PM.", ["9 PM"])
    items = [lone_amb, amb, amb2, clear, solo, clear2]
    assert [it.id for it in minimal_pairs_first(items, 3)] == ["amb", "clear", "solo"]
    assert [it.id for it in minimal_pairs_first(items, 5)] == ["amb", "amb2", "clear", "solo", "clear2"]
    assert [it.id for it in minimal_pairs_first(items, 6)] == [it.id for it in items]
    # a family that no longer fits whole gives way to filling in file order
    assert [it.id for it in minimal_pairs_first(items, 4)] == ["lone", "amb", "clear", "solo"]


def test_on_the_bundled_train_split_the_families_match_how_the_items_were_written():
    """The ids of the bundled items name their family (the selection never reads them): check against them."""
    items = load_items(TRAIN_ITEMS)

    def family_in_id(it):
        for mark in ("-amb", "-clear-", "-solo-"):
            if mark in it.id:
                return it.id.split(mark)[0]
        raise AssertionError(it.id)

    groups = families(items)
    assert all(len({family_in_id(it) for it in g}) == 1 for g in groups)
    assert len(groups) == len({family_in_id(it) for it in items})
    chosen = minimal_pairs_first(items, 500 // 3)
    assert len(chosen) == 166
    sizes = collections.Counter(family_in_id(it) for it in chosen)
    # every family with a clear counterpart is kept whole; the cap leaves out lone ambiguous items only
    by_family = collections.Counter(family_in_id(it) for it in items)
    assert all(sizes[f] == n for f, n in by_family.items() if n > 1)
    assert all(it.ambiguous for it in items if it not in chosen)
