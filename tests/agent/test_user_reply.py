"""The simulated user's reply to a clarifying question (agent/user_reply.py): the clarification only when the
question names the options, "Yes"/"No" for one option, an unhelpful reply for a vague question. Fake and
copied items, no model."""

from __future__ import annotations

import pytest

from agent.items import parse_item
from agent.user_reply import distinguishing_words, named_options, user_reply, word_set


def item(context: str, question: str, *interps: tuple[str, str]):
    return parse_item({"id": question, "context": context, "question": question,
                       "interpretations": [{"clarification": c, "answer": a} for c, a in interps]})


CAFE = item("Clarify Cafe has two branches. The Harbor branch sells an espresso for $3. "
            "The Station branch sells an espresso for $4.", "How much is an espresso?",
            ("At the Harbor branch.", "$3"), ("At the Station branch.", "$4"))
VOLT = item("The Volt S5 goes 70 km on a charge. The Volt S3 goes 40 km on a charge. The Volt S1 goes 25 km on "
            "a charge. All models come in black or silver.", "Hi! Range of my Volt scooter?",
            ("Oh, the S3 version.", "40 km"), ("Oh, the S1 version.", "25 km"), ("I mean the Volt S5.", "70 km"))
EIFFEL = item("The Eiffel Tower is in Paris. It is 330 metres tall and was completed in 1889.",
              "When was the Eiffel Tower completed?", ("The Eiffel Tower in Paris.", "1889"))
UNHELPFUL = {"What I asked.", "The one in my question.", "Just what I said.", "Yes, that one."}


def replies(it, question):
    return [user_reply(it, intent, question) for intent in range(len(it.interpretations))]


def test_distinguishing_words_leave_out_what_every_option_shares_and_the_users_question():
    # "branch", "sells" and "espresso" are in every option's sentence; "espresso" and "much" in the question.
    assert distinguishing_words(CAFE) == (frozenset({"harbor", "3"}), frozenset({"station", "4"}))
    assert distinguishing_words(VOLT) == (frozenset({"3", "40"}), frozenset({"1", "25"}), frozenset({"5", "70"}))


@pytest.mark.parametrize("question", [
    "Do you mean the Harbor branch or the Station branch?",
    "Which branch: Harbor or Station?",
    "Is that the $3 espresso or the $4 one?",
])
def test_a_question_naming_the_options_gets_the_clarification(question):
    for intent, reply in enumerate(replies(CAFE, question)):
        assert reply.kind == "clarification" and reply.named and reply.options == (0, 1)
        assert reply.text == CAFE.interpretations[intent].clarification


def test_yes_no_question_about_one_option():
    harbor, station = replies(CAFE, "Do you mean the Harbor branch?")
    assert (harbor.kind, harbor.text) == ("yes", "Yes, at the Harbor branch.")      # the intended option
    assert (station.kind, station.text) == ("no", "No, at the Station branch.")     # another option
    assert harbor.named and station.named and harbor.options == station.options == (0,)


def test_three_way_item():
    everyone = replies(VOLT, "Which model do you have: the S1, S3 or S5?")
    assert [r.text for r in everyone] == [i.clarification for i in VOLT.interpretations]
    s3, s1, s5 = replies(VOLT, "Do you mean the Volt S5 or the S3?")
    assert (s3.kind, s3.text) == ("clarification", "Oh, the S3 version.")          # named among others
    assert (s1.kind, s1.text) == ("no", "No, the S1 version.")                     # not named: "No", no "Oh,"
    assert (s5.kind, s5.text) == ("clarification", "I mean the Volt S5.")
    assert replies(VOLT, "Do you mean the Volt S5?")[2].text == "Yes, I mean the Volt S5."


@pytest.mark.parametrize("question", [
    "Do you mean the espresso?", "Could you clarify?", "Which one?", "Which branch do you mean?",
    "Do you mean the espresso at Clarify Cafe?", "Hmm, which espresso do you mean?",
])
def test_a_vague_question_gets_an_unhelpful_reply(question):
    for intent in range(2):
        texts = set()
        for pick in range(8):
            reply = user_reply(CAFE, intent, question, pick)
            assert reply.kind == "unhelpful" and not reply.named and reply.options == ()
            assert reply == user_reply(CAFE, intent, question, pick)                    # deterministic
            texts.add(reply.text)
        assert not texts & {i.clarification for i in CAFE.interpretations}
        assert not any("Harbor" in t or "Station" in t for t in texts)
        assert texts <= UNHELPFUL | {"Yes, the espresso.", "Yes, the espresso at Clarify Cafe."}
        assert len(texts) >= 3                                                     # `pick` chooses among them


def test_an_unhelpful_reply_can_echo_the_agents_own_vague_words():
    echoes = {user_reply(CAFE, 0, "Do you mean the espresso?", pick).text for pick in range(5)}
    assert echoes == {"What I asked.", "The one in my question.", "Just what I said.", "Yes, that one.",
                      "Yes, the espresso."}
    # Only a short "Do you mean X?" is echoed; not a which-question.
    assert {user_reply(CAFE, 0, "Which one?", pick).text for pick in range(6)} <= UNHELPFUL - {"Yes, that one."}


def test_inflections_match():
    cafe = item("Clarify Cafe's branches open at 7 AM. Its kiosk at the station opens at 9 AM.",
                "When does Clarify Cafe open?", ("The branches.", "7 AM"), ("The kiosk.", "9 AM"))
    assert named_options(cafe, "Do you mean a branch or the kiosk?") == (0, 1)
    assert user_reply(cafe, 0, "Do you mean one of the branch's counters?").text == "Yes, the branches."
    assert user_reply(cafe, 1, "Do you mean the kiosks?").text == "Yes, the kiosk."
    owl = item("Heading north, the Night Owl leaves from Platform 2. Heading south, the Night Owl leaves from "
               "Platform 9.", "What platform is the Night Owl on?",
               ("Heading north.", "Platform 2"), ("Oh, the southbound train.", "Platform 9"))
    assert named_options(owl, "Are you going southbound?") == (1,)
    assert named_options(owl, "Northbound or southbound?") == (0, 1)
    assert named_options(owl, "Do you mean the Night Owl platforms?") == ()


def test_a_clear_item_has_the_words_of_its_answer_sentence_not_in_the_question():
    assert distinguishing_words(EIFFEL) == (frozenset({"paris", "330", "1889"}),)
    assert user_reply(EIFFEL, 0, "Do you mean the Eiffel Tower in Paris?").text == "Yes, the Eiffel Tower in Paris."
    vague = user_reply(EIFFEL, 0, "Do you mean the Eiffel Tower?")
    assert vague.kind == "unhelpful" and vague.text in UNHELPFUL | {"Yes, the Eiffel Tower."}


def test_header_of_the_notes_names_no_option():
    shipping = item("Policy notes for Lumen Electronics: We charge $4.99 for shipping for standard delivery. "
                    "We charge $24.99 for shipping for overnight delivery.", "How much will delivery cost me?",
                    ("Just the regular shipping.", "$4.99"), ("For overnight delivery, please.", "$24.99"))
    assert named_options(shipping, "Do you mean Lumen Electronics shipping?") == ()
    assert named_options(shipping, "Standard or overnight?") == (0, 1)
    flights = item("Flight to Madrid: departs 4:40 PM. Flight to Rome: departs 7:15 AM.", "What time is the flight?",
                   ("The one to Madrid.", "4:40 PM"), ("The one to Rome.", "7:15 AM"))
    assert named_options(flights, "Do you mean the 7:15 flight?") == (1,)    # a label that names an option
    assert user_reply(flights, 0, "Is it the Rome flight?").text == "No, the one to Madrid."


# Items copied from agent/data/dev.jsonl, with a question a good clarifier would ask and a vague one.
DEV_CASES = [
    (item("Order #8801 (laptop stand) arrives on September 6. Order #8843 (keyboard) arrives on September 9. "
          "All orders ship from the Denver warehouse.", "Hey! When does my package arrive?",
          ("The keyboard order.", "September 9"), ("The laptop stand order.", "September 6")),
     "Is it order #8801?", (1,), "Which order do you mean?"),
    (item("Roughly 68,000 residents call Portland, Maine home. Roughly 650,000 residents call Portland, Oregon "
          "home. Notes compiled for a trivia night.", "How many people live in Portland?",
          ("The West Coast one.", "650,000"), ("I mean the one in Maine.", "68,000")),
     "Do you mean Portland, Oregon or Portland, Maine?", (0, 1), "Do you mean Portland?"),
    (item("The pool in Fairview Park opens at 10:00 AM. The pool at the rec center opens at 6:00 AM.",
          "What time does the pool open?", ("The indoor location.", "6:00 AM"),
          ("Oh, the pool in Fairview Park.", "10:00 AM")),
     "Do you mean the pool in Fairview Park or the one at the rec center?", (0, 1), "Do you mean the pool?"),
    (item("Staff directory: Taylor Brooks works in Legal; extension 5021. Taylor Kim works in Product; extension "
          "5188. Taylor Moreno works in Facilities; extension 5263.", "I need to call Taylor. What's the extension?",
          ("Sorry, Taylor Kim.", "5188"), ("Oh, Taylor Brooks in Legal.", "5021"), ("Taylor Moreno.", "5263")),
     "Do you mean Taylor in Legal?", (1,), "Which Taylor do you mean?"),
    (item("There is a Cordoba in Andalusia, home of the Mezquita; it is in Spain. There is a Cordoba in South "
          "America; it is in Argentina.", "Country of Cordoba?",
          ("Sorry, I meant the one with the Mezquita.", "Spain"), ("I mean the South American one.", "Argentina")),
     "Do you mean the Argentinian Cordoba?", (1,), "Which Cordoba?"),
    (item("Recipe notes (curry): Chicken curry: 35 minutes of cooking time. Chickpea curry: 25 minutes of "
          "cooking time.", "What's the cooking time for the curry?",
          ("The chicken version.", "35 minutes"), ("Chickpea, please.", "25 minutes")),
     "Chicken curry or chickpea curry?", (0, 1), "Do you mean the curry recipe?"),
    (item("Staff directory: Robin Hayes works in Sales; manager Greta Lund. Robin Fry works in IT; manager Ines "
          "Araujo.", "Tell me who manages Robin.", ("Oh, Robin Hayes in Sales.", "Greta Lund"),
          ("The one in IT.", "Ines Araujo")),
     "Do you mean Robin in IT?", (1,), "Do you mean Robin?"),
]


@pytest.mark.parametrize("it, good, named, vague", DEV_CASES, ids=[c[0].question for c in DEV_CASES])
def test_real_items_good_questions_named_vague_ones_not(it, good, named, vague):
    assert named_options(it, good) == named
    assert named_options(it, vague) == ()
    for intent, interp in enumerate(it.interpretations):
        reply = user_reply(it, intent, good)
        # The clarification's words reach the agent (as it is, or after "Yes, " / "No, ").
        assert reply.named and word_set(interp.clarification) <= word_set(reply.text)
        assert user_reply(it, intent, vague).kind == "unhelpful"
