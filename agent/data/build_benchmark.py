#!/usr/bin/env python3
"""Build the clarify benchmark: ``agent/data/train.jsonl`` and ``agent/data/dev.jsonl``.

Pure standard library, deterministic (fixed seed).  Run::

    python agent/data/build_benchmark.py            # (re)write train.jsonl and dev.jsonl
    python agent/data/build_benchmark.py --check    # validate the written files, print statistics

Item format (one JSON object per line, a fixed contract)::

    {"id": "world-georgia-capital-amb",
     "context": "<reference notes, the agent's system prompt>",
     "question": "<the user's first message>",
     "interpretations": [{"clarification": "<what the user replies when asked>",
                          "answer": "<accepted final answer>", "aliases": ["<alternate forms>"]}, ...]}

An item is ambiguous when it has 2+ interpretations.  Grading: a final answer is
correct when it contains the intended interpretation's answer or one of its
aliases (case-insensitive, whole word) and no answer/alias of any other
interpretation.

How items are made.  Every *group* is one hand-written fact table: two or three
entities that share a name (two "Georgia"s, two "Beginner Yoga" classes, two
orders of one customer, ...) and one attribute (capital, start time, price...).
Each group yields
  * ``-amb``        notes about all entities + a generic question  -> ambiguous;
and, following a balanced rotation, zero, one or two unambiguous variants:
  * ``-clear-<e>``  the same notes + a question that names entity e  -> 1 interpretation;
  * ``-solo-<e>``   notes about entity e only + the generic question -> 1 interpretation.
All items of a group land in the same split, so dev never shares notes with train.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
from collections import Counter, defaultdict

SEED = 20241123
HERE = os.path.dirname(os.path.abspath(__file__))
SPLITS = ("train", "dev")
MAX_CONTEXT = 400


# --------------------------------------------------------------------------- helpers

def cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def article(phrase: str) -> str:
    w = phrase.split()[0].lower()
    if w.startswith(("one", "uni", "eu", "use")):
        return "a " + phrase
    if w[0] in "aeiou" or w.startswith(("8", "11", "18")) or w in ("hour", "honest"):
        return "an " + phrase
    return "a " + phrase


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}


def num_word(n: int) -> str | None:
    if n < 20:
        return _ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return _TENS[t] + ("" if o == 0 else "-" + _ONES[o])
    return None


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


def ordinal(d: int) -> str:
    if 10 <= d % 100 <= 20:
        return f"{d}th"
    return f"{d}" + {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")


def auto_aliases(v: str) -> list[str]:
    """Common alternate spellings of a short answer (times, prices, dates, quantities)."""
    out: list[str] = []
    m = re.fullmatch(r"(\d{1,2}):(\d{2}) (AM|PM)", v)
    if m:
        h, mm, ap = int(m[1]), m[2], m[3].lower()
        out += [f"{h}:{mm}{ap}", f"{h}:{mm}"]
        if mm == "00":
            out += [f"{h} {ap}", f"{h}{ap}"]
        if ap == "pm" and h != 12:
            out.append(f"{h + 12}:{mm}")
        return out
    if v == "midnight":
        return ["12:00 AM", "12 am"]
    m = re.fullmatch(r"\$(\d+)(?:\.(\d\d))?", v)
    if m:
        n, c = m[1], m[2]
        if c is None:
            out += [f"{n} dollars", f"${n}.00"]
        elif c == "00":
            out += [f"${n}", f"{n} dollars"]
        elif n == "0":
            out += [f"0.{c}", f"{int(c)} cents"]
        else:
            out += [f"{n}.{c}"]
        return out
    m = re.fullmatch(r"([A-Z][a-z]+) (\d{1,2})", v)
    if m and m[1] in MONTHS:
        d = int(m[2])
        return [f"{m[1][:3]} {d}", f"{d} {m[1]}", f"{m[1]} {ordinal(d)}"]
    m = re.fullmatch(r"(\d+) (hours?|minutes?|days?|years?|business days?)", v)
    if m:
        n, unit = int(m[1]), m[2]
        w = num_word(n)
        if w:
            out.append(f"{w} {unit}")
        if unit.startswith("hour"):
            out.append(f"{n} hrs" if n != 1 else "1 hr")
        elif unit.startswith("minute"):
            out += [f"{n} min", f"{n} mins"]
        elif unit.startswith("business"):
            out.append(f"{n} days" if n != 1 else "1 day")
        elif unit.startswith("year"):
            out.append(f"{12 * n} months")
        return out
    m = re.fullmatch(r"([\d.,]+) (kg|g|GB|meters|km|inches)", v)
    if m:
        n, u = m[1], m[2]
        plain = n.replace(",", "")
        if u == "kg":
            out += [f"{n} kilograms", f"{plain}kg"] + ([f"{plain} kg"] if plain != n else [])
        elif u == "g":
            out += [f"{n} grams", f"{plain}g"]
        elif u == "GB":
            out += [f"{n}GB", f"{n} gigabytes"]
        elif u == "meters":
            out += [f"{plain} meters", f"{n} m"]
        elif u == "km":
            out += [f"{n} kilometers", f"{n}km"]
        elif u == "inches":
            out += [f"{n}-inch"]
        return out
    m = re.fullmatch(r"(\d+)°F", v)
    if m:
        return [f"{m[1]} degrees", f"{m[1]} F", f"{m[1]}F"]
    if re.fullmatch(r"\d{1,3}(,\d{3})+", v):
        return [v.replace(",", "")]
    m = re.fullmatch(r"(Room|Gate) (\w+)", v)
    if m:
        return [m[2]]
    m = re.fullmatch(r"\d{3}-\d{4}", v)
    if m:
        return [v.replace("-", ""), v.replace("-", " ")]
    m = re.fullmatch(r"\d{1,2}", v)
    if m and num_word(int(v)):
        return [num_word(int(v))]
    return out


def has_term(text: str, term: str) -> bool:
    """Whole-word, case-insensitive occurrence (works for terms that start/end with $ or °)."""
    t = re.escape(term)
    return (re.search(r"(?<!\w)" + t + r"(?!\w)", text, re.I) is not None
            or re.search(r"\b" + t + r"\b", text, re.I) is not None)


class F(dict):
    """Format map that also answers Capitalised keys ({Full} -> cap(full))."""

    def __missing__(self, key):
        low = key[:1].lower() + key[1:]
        if low != key and low in self:
            return cap(self[low])
        raise KeyError(key)


# --------------------------------------------------------------------------- domains

class Domain:
    """A domain: question/context/clarification templates + its hand-written fact groups.

    ``groups`` is a list of dicts {slug, attr, g: group fields, ents: [entity dicts]}; every
    entity has at least ``key`` (for ids), ``value`` (the answer) and ``aliases``.
    """

    def __init__(self, name, q, ctx, clar, fillers, groups, fields, gen_x, qual_x, prefix=None):
        self.name, self.q, self.ctx, self.clar, self.fillers = name, q, ctx, clar, fillers
        self.groups, self.fields, self.gen_x, self.qual_x, self.prefix = groups, fields, gen_x, qual_x, prefix


def G(slug_, attr, ents, **g):
    return {"slug": slug_, "attr": attr, "g": g, "ents": ents}


# ---- 1. world: places and things that share a name (real and made up) ----------------

WORLD_Q = {
    "capital": ["What is the capital of {x}?", "Which city is the capital of {x}?", "Capital of {x}?",
                "Can you tell me the capital city of {x}?", "Do you know what the capital of {x} is?",
                "I need the capital of {x} for a quiz.", "What city serves as the capital of {x}?"],
    "population": ["What is the population of {x}?", "How many people live in {x}?", "How populous is {x}?",
                   "Population of {x}?", "Roughly how many residents does {x} have?",
                   "Tell me how many people live in {x}.", "What's the population figure for {x}?"],
    "river": ["What river runs through {x}?", "Which river flows through {x}?",
              "What's the name of the river in {x}?", "River in {x}?",
              "Name the river that passes through {x}.", "Which river is {x} on?"],
    "country": ["What country is {x} in?", "Which country is {x} located in?", "{x} is in which country?",
                "Country of {x}?", "Tell me which country {x} belongs to.", "In what country would I find {x}?"],
    "founded": ["When was {x} founded?", "What year did {x} start?", "Founding year of {x}?",
                "In what year did {x} begin?", "How far back does {x} go? What year?",
                "Tell me when {x} was founded.", "What year was {x} established?"],
    "debut": ["When did {x} first come out?", "What year did {x} debut?", "When was {x} first released?",
              "Debut year of {x}?", "In which year did {x} first appear?", "What year did {x} come out?"],
    "height": ["How tall is {x}?", "What is the height of {x}?", "How high is {x}?", "Elevation of {x}?",
               "How many meters high is {x}?", "Tell me the height of {x}."],
    "weight": ["How much does {x} weigh?", "How heavy is {x}?", "What's the weight of {x}?",
               "Roughly what does {x} weigh?", "Tell me how much {x} weighs.", "What does {x} typically weigh?"],
}
WORLD_CTX = {
    "capital": ["The capital of {full} is {value}.", "{value} is the capital of {full}.",
                "{name} ({paren}): capital {value}.", "{Full} has {value} as its capital."],
    "population": ["{Full} has a population of about {value}.", "About {value} people live in {full}.",
                   "{name} ({paren}): population {value}.", "Roughly {value} residents call {full} home."],
    "river": ["{Full} sits on the {value}.", "The {value} runs through {full}.",
              "{name} ({paren}): river {value}.", "{Full} is built along the {value}."],
    "country": ["{Full} is in {value}.", "{name} ({paren}) is located in {value}.",
                "There is a {name} in {value}; it is a {paren}.", "{value} is home to {full}."],
    "founded": ["{Full} began in {value}.", "{name} ({paren}) dates back to {value}.",
                "{Full} got its start in {value}.", "{value} saw the founding of {full}."],
    "debut": ["{Full} first appeared in {value}.", "{name} ({paren}) debuted in {value}.",
              "{Full} came out in {value}.", "{value} marked the debut of {full}."],
    "height": ["{Full} rises to {value}.", "{Full} is {value} tall.", "{name} ({paren}): elevation {value}.",
               "The summit of {full} stands at {value}."],
    "weight": ["{Full} weighs about {value}.", "{name} ({paren}): about {value}.",
               "On average, {full} weighs {value}."],
}
WORLD_CLAR = ["I mean {c}.", "{C}.", "Oh, {c}.", "{C}, please.", "I'm asking about {c}.", "Sorry, I meant {c}."]
WORLD_FILLERS = ["Figures in these notes are approximate.", "Notes compiled for a trivia night.",
                 "Source: the team's geography and culture cheat sheet."]


def W(key, paren, full, clars, value, aliases=()):
    return {"key": key, "paren": paren, "full": full, "clars": clars, "value": value, "aliases": list(aliases)}


WORLD_GROUPS = [
    G("georgia", "capital", [
        W("country", "country in the Caucasus", "the country of Georgia", ["the country", "the one in the Caucasus"], "Tbilisi"),
        W("us-state", "US state", "the US state of Georgia", ["the US state", "the American state"], "Atlanta"),
    ], name="Georgia"),
    G("punjab", "capital", [
        W("pakistan", "province of Pakistan", "the Pakistani province of Punjab", ["the one in Pakistan", "the Pakistani province"], "Lahore"),
        W("india", "state of India", "the Indian state of Punjab", ["the Indian state", "the one in India"], "Chandigarh"),
    ], name="Punjab"),
    G("macedonia", "capital", [
        W("country", "country, officially North Macedonia", "the country North Macedonia", ["the country", "North Macedonia"], "Skopje"),
        W("greece", "region of northern Greece", "the Greek region of Macedonia", ["the Greek region", "the region in Greece"], "Thessaloniki", ["Salonica"]),
    ], name="Macedonia"),
    G("luxembourg", "capital", [
        W("country", "country", "the country of Luxembourg", ["the country", "the independent country"], "Luxembourg City"),
        W("belgium", "province of Belgium", "the Belgian province of Luxembourg", ["the Belgian province", "the province in Belgium"], "Arlon"),
    ], name="Luxembourg"),
    G("corva", "capital", [
        W("mediterranean", "island in the Mediterranean", "the Mediterranean island of Corva", ["the Mediterranean island", "the one in the Mediterranean"], "Porto Lumi"),
        W("pacific", "island nation in the Pacific", "the Pacific island nation of Corva", ["the Pacific one", "the island nation in the Pacific"], "Tavaru"),
    ], name="Corva"),
    G("paris", "population", [
        W("france", "France", "Paris, France", ["the one in France", "the French capital"], "2.1 million", ["2,100,000", "2100000"]),
        W("texas", "Texas", "Paris, Texas", ["the one in Texas", "the Texas town"], "25,000", ["25 thousand"]),
    ], name="Paris"),
    G("birmingham", "population", [
        W("england", "England", "Birmingham, England", ["the English city", "the one in England"], "1.1 million", ["1,100,000", "1100000"]),
        W("alabama", "Alabama", "Birmingham, Alabama", ["the one in Alabama", "the Alabama city"], "200,000", ["200 thousand"]),
    ], name="Birmingham"),
    G("london", "population", [
        W("england", "England", "London, England", ["the UK capital", "the one in England"], "8.9 million", ["8,900,000", "8900000"]),
        W("ontario", "Ontario, Canada", "London, Ontario", ["the Canadian one", "the one in Ontario"], "420,000", ["420 thousand"]),
    ], name="London"),
    G("springfield", "population", [
        W("illinois", "Illinois", "Springfield, Illinois", ["the Illinois one", "the state capital of Illinois"], "114,000"),
        W("massachusetts", "Massachusetts", "Springfield, Massachusetts", ["the one in Massachusetts", "the New England one"], "155,000"),
        W("missouri", "Missouri", "Springfield, Missouri", ["the Missouri one", "the one in the Ozarks"], "169,000"),
    ], name="Springfield"),
    G("portland", "population", [
        W("oregon", "Oregon", "Portland, Oregon", ["the Oregon one", "the West Coast one"], "650,000"),
        W("maine", "Maine", "Portland, Maine", ["the one in Maine", "the East Coast one"], "68,000"),
    ], name="Portland"),
    G("millbrook", "population", [
        W("oregon", "town in Oregon", "Millbrook, Oregon", ["the Oregon town", "the one in Oregon"], "4,300"),
        W("ontario", "village in Ontario", "Millbrook, Ontario", ["the Ontario village", "the Canadian one"], "1,250"),
        W("vermont", "hamlet in Vermont", "Millbrook, Vermont", ["the Vermont hamlet", "the one in Vermont"], "820"),
    ], name="Millbrook"),
    G("cambridge", "river", [
        W("england", "England", "Cambridge, England", ["the English one", "the university city in England"], "River Cam", ["the Cam"]),
        W("massachusetts", "Massachusetts", "Cambridge, Massachusetts", ["the one near Boston", "the Massachusetts one"], "Charles River", ["the Charles"]),
    ], name="Cambridge"),
    G("perth", "river", [
        W("australia", "Western Australia", "Perth, Australia", ["the Australian city", "the one in Australia"], "Swan River", ["the Swan"]),
        W("scotland", "Scotland", "Perth, Scotland", ["the Scottish town", "the one in Scotland"], "River Tay", ["the Tay"]),
    ], name="Perth"),
    G("kingston", "country", [
        W("caribbean", "Caribbean capital", "the Kingston that is a Caribbean capital", ["the Caribbean one", "the capital city"], "Jamaica"),
        W("lake-ontario", "city on Lake Ontario", "the Kingston on Lake Ontario", ["the one on Lake Ontario", "the lakeside one"], "Canada"),
    ], name="Kingston"),
    G("santiago", "country", [
        W("capital", "capital city in South America", "the Santiago that is a South American capital", ["the South American capital", "the capital city"], "Chile"),
        W("compostela", "pilgrimage city at the end of the Camino", "Santiago de Compostela", ["the pilgrimage city", "Santiago de Compostela"], "Spain"),
        W("caballeros", "big city in the Caribbean", "Santiago de los Caballeros", ["the Caribbean one", "Santiago de los Caballeros"], "Dominican Republic"),
    ], name="Santiago"),
    G("cordoba", "country", [
        W("andalusia", "historic city in Andalusia", "the Cordoba in Andalusia", ["the Andalusian one", "the one with the Mezquita"], "Spain"),
        W("south-america", "university city in South America", "the Cordoba in South America", ["the South American one", "the university city"], "Argentina"),
    ], name="Cordoba"),
    G("alexandria", "country", [
        W("mediterranean", "ancient port on the Mediterranean", "the ancient Mediterranean port of Alexandria", ["the ancient port", "the Mediterranean one"], "Egypt"),
        W("virginia", "city near Washington, D.C.", "the Alexandria near Washington, D.C.", ["the one near Washington", "the one by D.C."], "United States", ["USA"]),
    ], name="Alexandria"),
    G("mercury", "founded", [
        W("cars", "car brand", "the Mercury car brand", ["the car brand", "the cars"], "1938"),
        W("records", "record label", "Mercury Records", ["the record label", "the music label"], "1945"),
        W("nasa", "NASA spaceflight program", "NASA's Project Mercury", ["the space program", "the NASA program"], "1958"),
    ], name="Mercury"),
    G("fort-delane", "founded", [
        W("texas", "town in Texas", "Fort Delane, Texas", ["the Texas town", "the one in Texas"], "1851"),
        W("manitoba", "town in Manitoba", "Fort Delane, Manitoba", ["the Canadian one", "the one in Manitoba"], "1879"),
    ], name="Fort Delane"),
    G("python", "debut", [
        W("language", "programming language", "the Python programming language", ["the programming language", "the coding language"], "1991"),
        W("monty", "Monty Python comedy show", "Monty Python's Flying Circus", ["the comedy show", "Monty Python"], "1969"),
    ], name="Python"),
    G("halcyon", "debut", [
        W("game", "video game", "the Halcyon video game", ["the video game", "the game"], "2004"),
        W("novel", "science fiction novel", "the novel Halcyon", ["the novel", "the book"], "1987"),
    ], name="Halcyon"),
    G("mount-hallow", "height", [
        W("norway", "peak in Norway", "Mount Hallow in Norway", ["the Norwegian one", "the one in Norway"], "2,310 meters"),
        W("new-zealand", "peak in New Zealand", "Mount Hallow in New Zealand", ["the New Zealand one", "the one in New Zealand"], "1,845 meters"),
    ], name="Mount Hallow"),
    G("jaguar", "weight", [
        W("animal", "big cat", "a jaguar (the big cat)", ["the animal", "the big cat"], "95 kg"),
        W("car", "sports car", "a Jaguar F-Type sports car", ["the car", "the Jaguar car"], "1,700 kg"),
    ], name="Jaguar", qname="a jaguar"),
]


def world_fields(g, e, rng):
    return F(name=g["name"], paren=e["paren"], full=e["full"], value=e["value"], c=rng.choice(e["clars"]))


WORLD = Domain("world", WORLD_Q, WORLD_CTX, WORLD_CLAR, WORLD_FILLERS, WORLD_GROUPS, world_fields,
               gen_x=lambda g, attr, rng: g.get("qname", g["name"]),
               qual_x=lambda g, e, attr, rng, t: e["full"])


# ---- 2. schedules: sessions / classes / trains with the same name at different times --

SCHED_Q = {
    "time": ["What time does {x} start?", "When is {x}?", "What time is {x}?", "When does {x} begin?",
             "Remind me when {x} starts.", "Can you check the start time for {x}?",
             "When should I show up for {x}?", "What's the start time of {x}?"],
    "departs": ["What time does {x} leave?", "When does {x} depart?", "What's the departure time for {x}?",
                "When is {x}?", "Departure time of {x}?", "What time should I be there to catch {x}?",
                "When does {x} go?"],
    "room": ["Which room is {x} in?", "Where is {x} held?", "What room do I go to for {x}?",
             "Where does {x} meet?", "Room for {x}?", "Where should I go for {x}?"],
    "platform": ["Which platform does {x} leave from?", "What platform is {x} on?", "Where do I catch {x}?",
                 "Platform for {x}?", "Which platform should I go to for {x}?", "Tell me the platform for {x}."],
    "instructor": ["Who teaches {x}?", "Who is the instructor for {x}?", "Who leads {x}?", "Instructor for {x}?",
                   "Who's running {x}?", "Which teacher has {x}?"],
}
SCHED_CTX = {
    "time": ["{X} {ww} starts at {value}.", "{Ww}, {x} is scheduled for {value}.",
             "The {tag} {name} {noun} begins at {value}.", "{Name} ({ww}): {value}."],
    "departs": ["{X} {ww} departs at {value}.", "{Ww}, {x} leaves at {value}.",
                "The {tag} {name} {noun} goes at {value}.", "{Name} {noun} ({ww}): {value}."],
    "room": ["{X} {ww} meets in {value}.", "{Ww}, {x} is held in {value}.",
             "The {tag} {name} {noun} uses {value}.", "{Name} ({ww}): {value}."],
    "platform": ["{X} {ww} departs from {value}.", "{Ww}, {x} leaves from {value}.",
                 "The {tag} {name} {noun} uses {value}.", "{Name} {noun} ({ww}): {value}."],
    "instructor": ["{X} {ww} is taught by {value}.", "{Ww}, {x} is led by {value}.",
                   "The {tag} {name} {noun} is run by {value}.", "{Name} ({ww}) instructor: {value}."],
}
SCHED_CLAR = ["I mean the {tag} {noun}.", "The {tag} one.", "Oh, the {tag} {noun}.", "{Ww}.",
              "The one {ww}.", "Sorry, the {tag} {noun}, please."]
SCHED_FILLERS = ["Please arrive ten minutes early.", "The schedule was updated this week.",
                 "Sign-up is at the front desk.", "Bring a water bottle."]


def S(tag, ww, value, aliases=()):
    return {"key": tag, "tag": tag, "ww": ww, "value": value, "aliases": list(aliases)}


SCHED_GROUPS = [
    G("beginner-yoga", "time", [S("Tuesday", "on Tuesdays", "6:30 PM"), S("Saturday", "on Saturdays", "9:00 AM")],
      name="Beginner Yoga", x="Beginner Yoga", noun="class"),
    G("spin", "time", [S("Monday", "on Mondays", "7:00 AM"), S("Wednesday", "on Wednesdays", "12:15 PM"),
                       S("Friday", "on Fridays", "5:45 PM")], name="spin", x="spin class", noun="class"),
    G("pottery-basics", "room", [S("Thursday", "on Thursdays", "Studio B"), S("Sunday", "on Sundays", "Room 112")],
      name="Pottery Basics", x="Pottery Basics", noun="workshop"),
    G("coastal-express", "platform", [S("weekday", "on weekdays", "Platform 4"), S("weekend", "on weekends", "Platform 7")],
      name="Coastal Express", x="the Coastal Express", noun="train"),
    G("mystery-book-club", "time", [S("Monday", "on Mondays", "7:30 PM"), S("Thursday", "on Thursdays", "2:00 PM")],
      name="Mystery Book Club", x="the Mystery Book Club", noun="meeting"),
    G("intro-to-python", "instructor", [S("morning", "in the morning section", "Dana Whitfield", ["Whitfield"]),
                                        S("evening", "in the evening section", "Raj Malhotra", ["Malhotra"])],
      name="Intro to Python", x="Intro to Python", noun="course"),
    G("kids-swim", "time", [S("Monday", "on Mondays", "4:15 PM"), S("Wednesday", "on Wednesdays", "5:00 PM"),
                            S("Saturday", "on Saturdays", "10:30 AM")], name="Kids Swim", x="Kids Swim", noun="lesson"),
    G("night-owl", "platform", [S("northbound", "heading north", "Platform 2"), S("southbound", "heading south", "Platform 9")],
      name="Night Owl", x="the Night Owl", noun="train"),
    G("salsa-social", "room", [S("Friday", "on Fridays", "Hall A"), S("Saturday", "on Saturdays", "Rooftop Lounge")],
      name="Salsa Social", x="the Salsa Social", noun="night"),
    G("chess-for-kids", "instructor", [S("Saturday", "on Saturdays", "Tom Becker", ["Becker"]),
                                       S("Sunday", "on Sundays", "Elena Park", ["Elena"])],
      name="Chess for Kids", x="Chess for Kids", noun="class"),
    G("standup", "time", [S("web", "for the web team", "9:15 AM"), S("mobile", "for the mobile team", "9:45 AM")],
      name="standup", x="the standup", noun="meeting"),
    G("harbor-ferry", "departs", [S("weekday", "on weekdays", "6:50 AM"), S("Sunday", "on Sundays", "8:20 AM")],
      name="Harbor", x="the Harbor ferry", noun="ferry"),
    G("piano-recital", "room", [S("Friday", "on Friday", "Main Auditorium"), S("Saturday", "on Saturday", "Room 310")],
      name="Piano Recital", x="the Piano Recital", noun="evening"),
    G("bootcamp", "instructor", [S("Monday", "on Mondays", "Jess Carter", ["Carter"]),
                                 S("Wednesday", "on Wednesdays", "Omar Haddad", ["Haddad"]),
                                 S("Friday", "on Fridays", "Lena Fischer", ["Fischer"])],
      name="Bootcamp", x="Bootcamp", noun="class"),
    G("biology-101", "time", [S("Tuesday", "on Tuesdays", "10:00 AM"), S("Thursday", "on Thursdays", "1:30 PM")],
      name="Biology 101", x="Biology 101", noun="lecture"),
    G("museum-highlights", "time", [S("English", "in English", "11:00 AM"), S("Spanish", "in Spanish", "2:00 PM")],
      name="Museum Highlights", x="the Museum Highlights tour", noun="tour"),
    G("valley-line", "departs", [S("weekday", "on weekdays", "7:40 AM"), S("Saturday", "on Saturdays", "9:05 AM"),
                                 S("Sunday", "on Sundays", "10:20 AM")],
      name="Valley Line", x="the Valley Line", noun="train"),
]


def sched_fields(g, e, rng):
    return F(name=g["name"], x=g["x"], noun=g["noun"], tag=e["tag"], ww=e["ww"], value=e["value"])


def sched_qual(g, e, attr, rng, t):
    return rng.choice([f"{g['x']} {e['ww']}", f"the {e['tag']} {g['name']} {g['noun']}"])


SCHEDULE = Domain("schedule", SCHED_Q, SCHED_CTX, SCHED_CLAR, SCHED_FILLERS, SCHED_GROUPS, sched_fields,
                  gen_x=lambda g, attr, rng: g["x"], qual_x=sched_qual)


# ---- 3. prices: sizes / plans / variants of one product -------------------------------

PRICE_Q = {"price": ["How much is {x}?", "What does {x} cost?", "What's the price of {x}?", "Price of {x}?",
                     "How much would {x} set me back?", "Can you tell me what {x} costs?",
                     "How much do you charge for {x}?", "What do I pay for {x}?"]}
PRICE_CTX = {"price": ["{A_tn} costs {value}.", "The {tag} {noun} is {value}.", "{Noun} ({tag}): {value}.",
                       "We sell {a_tn} for {value}.", "It's {value} for {a_tn}."]}
PRICE_CLAR = ["I mean the {tag} one.", "The {tag} {noun}.", "{Tag}, please.", "Oh, {a_tn}.", "Just the {tag} one.",
              "Sorry, {a_tn}."]
PRICE_FILLERS = ["Prices include tax.", "All prices are in US dollars.", "Cash and card are both accepted.",
                 "Prices were last updated in March."]


def P(tag, value, aliases=()):
    return {"key": tag, "tag": tag, "value": value, "aliases": list(aliases)}


PRICE_GROUPS = [
    G("latte", "price", [P("small", "$3.50"), P("large", "$4.75")], noun="latte", shop="Bean There Cafe"),
    G("pizza", "price", [P("small", "$9.99"), P("medium", "$13.49"), P("large", "$16.99")], noun="pizza", shop="Tony's Pizzeria"),
    G("monthly-pass", "price", [P("adult", "$95"), P("student", "$45")], noun="monthly pass", shop="Metro Transit"),
    G("gym-membership", "price", [P("basic", "$25"), P("premium", "$49")], noun="gym membership", shop="FitLife Gym"),
    G("streaming", "price", [P("individual", "$10.99"), P("family", "$16.99")], noun="streaming subscription", shop="StreamBox"),
    G("haircut", "price", [P("children's", "$18"), P("adult", "$32")], noun="haircut", shop="Sharp Cuts"),
    G("museum-ticket", "price", [P("adult", "$22"), P("senior", "$15"), P("child", "$8")], noun="museum ticket", shop="City Art Museum"),
    G("car-wash", "price", [P("basic", "$12"), P("deluxe", "$20")], noun="car wash", shop="Sparkle Auto Spa"),
    G("phone-case", "price", [P("slim", "$19"), P("rugged", "$34")], noun="Shieldy phone case", shop="Shieldy"),
    G("concert-ticket", "price", [P("general admission", "$45"), P("VIP", "$150")], noun="concert ticket", shop="Riverside Arena"),
    G("apartment-cleaning", "price", [P("one-bedroom", "$80"), P("three-bedroom", "$140")], noun="apartment cleaning", shop="BrightHome Cleaners"),
    G("rental-bike", "price", [P("standard", "$15"), P("electric", "$28")], noun="rental bike", shop="Pedal Point"),
    G("sandwich", "price", [P("6-inch", "$6.50"), P("12-inch", "$10.25")], noun="sandwich", shop="Deli Deluxe"),
    G("ice-cream-cone", "price", [P("single-scoop", "$4"), P("double-scoop", "$6")], noun="ice cream cone", shop="Scoops"),
    G("yoga-mat", "price", [P("standard", "$30"), P("extra-thick", "$45")], noun="yoga mat", shop="Zen Supply"),
    G("software-license", "price", [P("personal", "$49"), P("team", "$199"), P("enterprise", "$499")], noun="software license", shop="CodeCraft"),
    G("smoothie", "price", [P("regular", "$5.25"), P("large", "$7.40")], noun="smoothie", shop="Juice Junction"),
]


def price_fields(g, e, rng):
    tn = f"{e['tag']} {g['noun']}"
    return F(noun=g["noun"], tag=e["tag"], value=e["value"], a_tn=article(tn), tn=tn)


PRICES = Domain("prices", PRICE_Q, PRICE_CTX, PRICE_CLAR, PRICE_FILLERS, PRICE_GROUPS, price_fields,
                gen_x=lambda g, attr, rng: rng.choice([article(g["noun"]), f"the {g['noun']}"]),
                qual_x=lambda g, e, attr, rng, t: rng.choice([article(f"{e['tag']} {g['noun']}"),
                                                             f"the {e['tag']} {g['noun']}"]),
                prefix=lambda g, rng: rng.choice([f"{g['shop']} price list:", f"Prices at {g['shop']}:"]))


# ---- 4. orders: one customer, several orders ------------------------------------------

ORDER_Q = {
    "arrival": ["When does {x} arrive?", "When will {x} get here?", "What's the delivery date for {x}?",
                "When is {x} coming?", "Any idea when {x} will show up?", "Can you tell me when {x} arrives?",
                "When should I expect {x}?"],
    "total": ["How much was {x}?", "What did {x} cost?", "What's the total for {x}?", "How much did I pay for {x}?",
              "Total for {x}?", "What was I charged for {x}?"],
    "carrier": ["Who is delivering {x}?", "Which carrier has {x}?", "Who's shipping {x}?", "Carrier for {x}?",
                "Which company is bringing {x}?", "What delivery service is handling {x}?"],
}
ORDER_CTX = {
    "arrival": ["Order #{num} ({item}) arrives on {value}.", "Your {item} (order #{num}) will be delivered on {value}.",
                "The {item} order, #{num}, is scheduled for delivery on {value}.", "#{num}: {item}, arriving {value}."],
    "total": ["Order #{num} ({item}) came to {value}.", "You paid {value} for the {item} (order #{num}).",
              "The {item} order, #{num}, totals {value}.", "#{num}: {item}, total {value}."],
    "carrier": ["Order #{num} ({item}) ships with {value}.", "Your {item} (order #{num}) is being delivered by {value}.",
                "The {item} order, #{num}, is handled by {value}.", "#{num}: {item}, carrier {value}."],
}
ORDER_CLAR = ["The {item}.", "I mean the {item}.", "Order {num}.", "The one with the {item}.", "Oh, order #{num}.",
              "The {item} order."]
ORDER_FILLERS = ["All orders ship from the Denver warehouse.", "Delivery dates are estimates.",
                 "Signature may be required on delivery."]


def O(item, num, value, aliases=()):
    return {"key": item, "item": item, "num": num, "value": value, "aliases": list(aliases)}


ORDER_GROUPS = [
    G("priya-shah", "arrival", [O("running shoes", "4411", "March 14"), O("desk lamp", "5820", "March 19")], customer="Priya Shah"),
    G("marcus-bell", "arrival", [O("coffee grinder", "7310", "June 3"), O("yoga mat", "7342", "June 5"),
                                 O("bookshelf", "7399", "June 11")], customer="Marcus Bell"),
    G("elena-ortiz", "total", [O("winter jacket", "2208", "$129"), O("phone charger", "2291", "$24")], customer="Elena Ortiz"),
    G("tom-nguyen", "arrival", [O("headphones", "9034", "April 2"), O("printer ink", "9102", "April 8")], customer="Tom Nguyen"),
    G("aisha-karim", "arrival", [O("blender", "6617", "October 21"), O("throw pillows", "6650", "October 24")], customer="Aisha Karim"),
    G("ken-watanabe", "total", [O("board game", "3301", "$39.99"), O("tent", "3345", "$189"),
                                O("hiking boots", "3390", "$149")], customer="Ken Watanabe"),
    G("sofia-russo", "arrival", [O("camera tripod", "1187", "May 9"), O("memory cards", "1203", "May 12")], customer="Sofia Russo"),
    G("liam-walsh", "arrival", [O("garden hose", "4820", "July 17"), O("patio chairs", "4877", "July 23")], customer="Liam Walsh"),
    G("grace-lee", "total", [O("sweater", "5521", "$58"), O("scarf", "5530", "$22")], customer="Grace Lee"),
    G("diego-alvarez", "arrival", [O("laptop stand", "8801", "September 6"), O("keyboard", "8843", "September 9")], customer="Diego Alvarez"),
    G("hana-sato", "arrival", [O("rain boots", "2650", "November 2"), O("umbrella", "2671", "November 4"),
                               O("raincoat", "2699", "November 10")], customer="Hana Sato"),
    G("owen-price", "total", [O("dog bed", "7702", "$64"), O("cat tree", "7715", "$89")], customer="Owen Price"),
    G("nadia-haddad", "arrival", [O("wall clock", "3908", "January 15"), O("picture frames", "3911", "January 20")], customer="Nadia Haddad"),
    G("ben-foster", "arrival", [O("bike helmet", "6120", "August 28"), O("water bottle", "6144", "August 30")], customer="Ben Foster"),
    G("chloe-martin", "carrier", [O("standing desk", "9450", "FedEx"), O("monitor", "9471", "UPS")], customer="Chloe Martin"),
    G("raj-mehta", "carrier", [O("mattress", "1320", "DHL"), O("bed frame", "1356", "USPS")], customer="Raj Mehta"),
    G("zoe-clark", "total", [O("espresso machine", "4470", "$249"), O("coffee beans", "4492", "$18.50")], customer="Zoe Clark"),
]


def order_fields(g, e, rng):
    return F(item=e["item"], num=e["num"], value=e["value"], customer=g["customer"])


def order_gen(g, attr, rng):
    return rng.choice({"arrival": ["my order", "my package", "my delivery"],
                       "total": ["my order", "my purchase"],
                       "carrier": ["my order", "my package"]}[attr])


def order_qual(g, e, attr, rng, t):
    return rng.choice([f"my order #{e['num']}", f"my order of {e['item']}", f"order {e['num']}",
                       f"the {e['item']} order"])


ORDERS = Domain("orders", ORDER_Q, ORDER_CTX, ORDER_CLAR, ORDER_FILLERS, ORDER_GROUPS, order_fields,
                gen_x=order_gen, qual_x=order_qual,
                prefix=lambda g, rng: rng.choice([f"Customer: {g['customer']}.", f"Account notes for {g['customer']}:",
                                                  f"Open orders for {g['customer']}:"]))


# ---- 5. places: branches / locations of one business ----------------------------------

PLACE_Q = {
    "opens": ["What time does {x} open?", "When does {x} open?", "When do the doors open at {x}?",
              "Opening time for {x}?", "How early does {x} open?", "Remind me when {x} opens.",
              "What are the opening hours at {x}? When does it open?"],
    "closes": ["What time does {x} close?", "When does {x} close?", "How late is {x} open?", "Closing time for {x}?",
               "Until what time is {x} open?", "When do they lock up at {x}?"],
    "address": ["What's the address of {x}?", "Where is {x}?", "Where is {x} located?", "Address for {x}?",
                "How do I find {x}? What's the address?", "Can you give me the address of {x}?"],
    "phone": ["What's the phone number for {x}?", "How do I call {x}?", "Phone number of {x}?",
              "What number do I dial for {x}?", "Give me the phone number for {x}.", "Can I get the number for {x}?"],
}
PLACE_CTX = {
    "opens": ["The {tag} {unit} opens at {value}.", "The {noun} {where} opens at {value}.",
              "{Tag} {noun}: opens {value}.", "Doors open at {value} at the {tag} {noun}."],
    "closes": ["The {tag} {unit} closes at {value}.", "The {noun} {where} stays open until {value}.",
               "{Tag} {noun}: closes {value}.", "At the {tag} {noun}, closing time is {value}."],
    "address": ["The {tag} {unit} is at {value}.", "The {noun} {where} is located at {value}.",
                "{Tag} {noun}: {value}.", "You can find the {tag} {noun} at {value}."],
    "phone": ["The {tag} {unit} can be reached at {value}.", "Call the {noun} {where} at {value}.",
              "{Tag} {noun}: tel. {value}.", "The phone number for the {tag} {noun} is {value}."],
}
PLACE_CLAR = ["The {tag} one.", "I mean the {tag} {unit}.", "The one {where}.", "Oh, the {noun} {where}.",
              "{Tag}, please.", "The {tag} location."]
PLACE_FILLERS = ["Closed on public holidays.", "Free parking is available.", "Hours may change in summer.",
                 "Wheelchair access at every location."]


def L(tag, where, value, aliases=()):
    return {"key": tag, "tag": tag, "where": where, "value": value, "aliases": list(aliases)}


PLACE_GROUPS = [
    G("library", "opens", [L("Riverside", "by the river", "9:00 AM"), L("Oak Street", "on Oak Street", "10:00 AM")],
      noun="library", unit="branch", biz="Oak County Library"),
    G("pharmacy", "closes", [L("Downtown", "downtown", "9:00 PM"), L("Mall", "in the mall", "8:00 PM"),
                             L("Airport", "at the airport", "11:00 PM")], noun="pharmacy", unit="branch", biz="HealthPlus Pharmacy"),
    G("clinic", "opens", [L("Westside", "on the west side", "7:30 AM"), L("Maple Avenue", "on Maple Avenue", "8:00 AM")],
      noun="clinic", unit="clinic", biz="CarePoint Clinics"),
    G("bakery", "address", [L("north", "in the north end", "14 Baker Lane"), L("harbor", "by the harbor", "203 Wharf Street")],
      noun="bakery", unit="shop", biz="Golden Crust Bakery"),
    G("post-office", "phone", [L("Central", "in the town center", "555-0142"), L("Hillcrest", "in Hillcrest", "555-0178")],
      noun="post office", unit="office", biz="Town Post"),
    G("gym", "closes", [L("Elm Park", "in Elm Park", "10:00 PM"), L("Station Road", "on Station Road", "midnight")],
      noun="gym", unit="location", biz="IronWorks Gym"),
    G("bank", "opens", [L("Main Street", "on Main Street", "8:30 AM"), L("Lakeview", "near the lake", "9:30 AM")],
      noun="bank", unit="branch", biz="First Harbor Bank"),
    G("hardware-store", "address", [L("east", "on the east side", "77 Foundry Road"), L("west", "on the west side", "310 Prairie Avenue")],
      noun="hardware store", unit="store", biz="Hammer & Nail"),
    G("vet-clinic", "phone", [L("Greenfield", "in Greenfield", "555-0193"), L("Brookside", "in Brookside", "555-0121"),
                              L("Old Town", "in Old Town", "555-0166")], noun="vet clinic", unit="clinic", biz="Happy Paws Vets"),
    G("grocery", "closes", [L("Market Square", "on Market Square", "11:00 PM"), L("Cedar Hill", "on Cedar Hill", "9:30 PM")],
      noun="grocery store", unit="store", biz="FreshMart"),
    G("pool", "opens", [L("indoor", "at the rec center", "6:00 AM"), L("outdoor", "in Fairview Park", "10:00 AM")],
      noun="pool", unit="pool", biz="City Aquatics"),
    G("dental-office", "address", [L("Uptown", "uptown", "5 Crescent Drive"), L("Southgate", "in Southgate", "912 Orchard Road")],
      noun="dental office", unit="office", biz="Bright Smile Dental"),
    G("bookstore", "closes", [L("University", "near the university", "7:00 PM"), L("Harborfront", "on the waterfront", "10:30 PM")],
      noun="bookstore", unit="branch", biz="Page Turner Books"),
    G("passport-office", "opens", [L("city", "in the city center", "8:00 AM"), L("county", "at the county building", "9:00 AM")],
      noun="passport office", unit="office", biz="Passport Services"),
    G("community-center", "phone", [L("Eastview", "in Eastview", "555-0134"), L("Pine Ridge", "in Pine Ridge", "555-0187")],
      noun="community center", unit="center", biz="Parks & Rec"),
    G("car-rental", "opens", [L("Terminal 1", "in Terminal 1", "5:00 AM"), L("Terminal 2", "in Terminal 2", "6:00 AM"),
                              L("downtown", "downtown", "8:00 AM")], noun="car rental desk", unit="desk", biz="ZipCar Rentals"),
    G("laundromat", "address", [L("campus", "near campus", "41 College Street"), L("riverside", "on the riverside", "8 Quay Road")],
      noun="laundromat", unit="location", biz="SpinCycle Laundry"),
]


def place_fields(g, e, rng):
    return F(noun=g["noun"], unit=g["unit"], tag=e["tag"], where=e["where"], value=e["value"])


PLACES = Domain("places", PLACE_Q, PLACE_CTX, PLACE_CLAR, PLACE_FILLERS, PLACE_GROUPS, place_fields,
                gen_x=lambda g, attr, rng: f"the {g['noun']}",
                qual_x=lambda g, e, attr, rng, t: rng.choice([f"the {e['tag']} {g['noun']}", f"the {g['noun']} {e['where']}",
                                                             f"the {e['tag']} {g['unit']}"]),
                prefix=lambda g, rng: rng.choice([f"{g['biz']} locations:", f"About {g['biz']}:"]))


# ---- 6. products: models of one device ------------------------------------------------

PROD_Q = {
    "battery": ["How long does the battery in {x} last?", "What's the battery life of {x}?",
                "How long will {x} run on one charge?", "Battery life on {x}?",
                "How long can I use {x} before recharging?", "Tell me the battery life of {x}.",
                "What kind of battery life does {x} have?"],
    "weight": ["How much does {x} weigh?", "What's the weight of {x}?", "How heavy is {x}?", "Weight of {x}?",
               "Is {x} light? How much does it weigh?", "Tell me how heavy {x} is."],
    "storage": ["How much storage does {x} have?", "What's the storage on {x}?", "How much space is on {x}?",
                "Storage capacity of {x}?", "How many gigabytes does {x} come with?", "What size drive is in {x}?"],
    "screen": ["How big is the screen on {x}?", "What's the screen size of {x}?", "Screen size of {x}?",
               "How large is the display on {x}?", "What size display does {x} have?", "Tell me the screen size for {x}."],
    "warranty": ["How long is the warranty on {x}?", "What warranty comes with {x}?", "Warranty for {x}?",
                 "How many years of warranty does {x} have?", "Is {x} under warranty, and for how long?",
                 "What's the warranty period for {x}?"],
    "range": ["How far can {x} go on a charge?", "What's the range of {x}?", "Range of {x}?",
              "How many kilometers does {x} get per charge?", "How far will {x} take me?", "Tell me the range on {x}."],
}
PROD_CTX = {
    "battery": ["The {brand} {tag} lasts {value} on a charge.", "Battery life for the {brand} {tag}: {value}.",
                "On a full charge, the {brand} {tag} runs for {value}.",
                "The {tag} model of the {brand} {kind} gets {value} of battery life."],
    "weight": ["The {brand} {tag} weighs {value}.", "Weight of the {brand} {tag}: {value}.",
               "The {tag} model of the {brand} {kind} comes in at {value}.", "The {brand} {tag} has a weight of {value}."],
    "storage": ["The {brand} {tag} comes with {value} of storage.", "Storage on the {brand} {tag}: {value}.",
                "The {tag} model of the {brand} {kind} has {value}.", "You get {value} of space on the {brand} {tag}."],
    "screen": ["The {brand} {tag} screen measures {value}.", "Screen size of the {brand} {tag}: {value}.",
               "The {tag} model of the {brand} {kind} has a display of {value}.",
               "The display on the {brand} {tag} is {value} across."],
    "warranty": ["The {brand} {tag} comes with a warranty of {value}.", "Warranty for the {brand} {tag}: {value}.",
                 "The {tag} model of the {brand} {kind} is covered for {value}.",
                 "You get {value} of warranty coverage on the {brand} {tag}."],
    "range": ["The {brand} {tag} goes {value} on a charge.", "Range of the {brand} {tag}: {value}.",
              "The {tag} model of the {brand} {kind} can travel {value} per charge.",
              "Expect about {value} of range from the {brand} {tag}."],
}
PROD_CLAR = ["The {tag}.", "I mean the {brand} {tag}.", "The {tag} model.", "Oh, the {tag} version.",
             "The {brand} {tag}, please.", "I have the {tag}."]
PROD_FILLERS = ["All models come in black or silver.", "Specs are from the manufacturer.",
                "Both models ship with a USB-C cable."]


def M(tag, value, aliases=()):
    return {"key": tag, "tag": tag, "value": value, "aliases": list(aliases)}


PROD_GROUPS = [
    G("zephyr-earbuds", "battery", [M("Lite", "6 hours"), M("Max", "9 hours")], brand="Zephyr", kind="earbuds"),
    G("nimbus-laptop", "weight", [M("Air", "1.1 kg"), M("Pro", "1.6 kg")], brand="Nimbus", kind="laptop"),
    G("orbit-phone", "storage", [M("Mini", "64 GB"), M("Standard", "128 GB"), M("Ultra", "512 GB")], brand="Orbit", kind="phone"),
    G("lumen-tablet", "screen", [M("Mini", "8.3 inches"), M("Pro", "12.9 inches")], brand="Lumen", kind="tablet"),
    G("pulse-watch", "battery", [M("Sport", "2 days"), M("Classic", "5 days")], brand="Pulse", kind="smartwatch"),
    G("vantage-vacuum", "warranty", [M("V5", "1 year"), M("V9", "2 years")], brand="Vantage", kind="vacuum"),
    G("aria-speaker", "battery", [M("Go", "12 hours"), M("Boom", "20 hours")], brand="Aria", kind="speaker"),
    G("summit-backpack", "weight", [M("Day", "850 g"), M("Expedition", "2.1 kg")], brand="Summit", kind="backpack"),
    G("halo-ereader", "storage", [M("Basic", "8 GB"), M("Plus", "32 GB")], brand="Halo", kind="e-reader"),
    G("stride-ebike", "range", [M("City", "60 km"), M("Trail", "95 km")], brand="Stride", kind="e-bike"),
    G("glide-drone", "battery", [M("Nano", "18 minutes"), M("Air", "27 minutes"), M("Pro", "34 minutes")], brand="Glide", kind="drone"),
    G("vista-monitor", "screen", [M("Home", "24 inches"), M("Studio", "32 inches")], brand="Vista", kind="monitor"),
    G("frost-fridge", "warranty", [M("Compact", "2 years"), M("Family", "5 years")], brand="Frost", kind="fridge"),
    G("beacon-headset", "weight", [M("Wireless", "250 g"), M("Studio", "310 g")], brand="Beacon", kind="headset"),
    G("nova-camera", "weight", [M("Compact", "420 g"), M("Pro", "780 g")], brand="Nova", kind="camera"),
    G("quill-tablet", "storage", [M("Lite", "32 GB"), M("Pro", "256 GB")], brand="Quill", kind="tablet"),
    G("volt-scooter", "range", [M("S1", "25 km"), M("S3", "40 km"), M("S5", "70 km")], brand="Volt", kind="scooter"),
]


def prod_fields(g, e, rng):
    return F(brand=g["brand"], kind=g["kind"], tag=e["tag"], value=e["value"])


PRODUCTS = Domain("products", PROD_Q, PROD_CTX, PROD_CLAR, PROD_FILLERS, PROD_GROUPS, prod_fields,
                  gen_x=lambda g, attr, rng: rng.choice([f"the {g['brand']} {g['kind']}", f"my {g['brand']} {g['kind']}",
                                                         f"the {g['brand']}"]),
                  qual_x=lambda g, e, attr, rng, t: rng.choice([f"the {g['brand']} {e['tag']}", f"my {g['brand']} {e['tag']}",
                                                               f"the {g['brand']} {e['tag']} {g['kind']}"]))


# ---- 7. people: colleagues who share a first name -------------------------------------

PEOPLE_Q = {
    "ext": ["What's {x}'s extension?", "What extension is {x} on?", "How do I reach {x} by phone?",
            "Phone extension for {x}?", "Can you give me {x}'s extension?", "What number do I dial to get {x}?",
            "I need to call {x}. What's the extension?"],
    "office": ["Where is {x}'s office?", "Which office is {x} in?", "Where does {x} sit?", "Office for {x}?",
               "Where can I find {x}'s desk?", "What room is {x} in?"],
    "manager": ["Who is {x}'s manager?", "Who does {x} report to?", "Who's {x}'s boss?", "Manager of {x}?",
                "Which manager does {x} work under?", "Tell me who manages {x}."],
}
PEOPLE_CTX = {
    "ext": ["{first} {last} ({dept}) is on extension {value}.", "{first} {last} works in {dept}; extension {value}.",
            "Extension {value} belongs to {first} {last} in {dept}.", "{dept}: {first} {last}, ext. {value}."],
    "office": ["{first} {last} from {dept} sits in {value}.", "{first} {last} ({dept}) has an office in {value}.",
               "{Value} is where {first} {last} of {dept} works.", "{dept}: {first} {last}, {value}."],
    "manager": ["{first} {last} in {dept} reports to {value}.", "{first} {last}'s manager in {dept} is {value}.",
                "{value} manages {first} {last} ({dept}).", "{dept}: {first} {last}, manager {value}."],
}
PEOPLE_CLAR = ["{first} {last}.", "I mean {first} from {dept}.", "The one in {dept}.", "Oh, {first} {last} in {dept}.",
               "{first} in {dept}, please.", "Sorry, {first} {last}."]
PEOPLE_FILLERS = ["Company directory, updated monthly.", "Dial 0 for reception.", "Most staff work on site Tuesday to Thursday."]


def Pn(last, dept, value, aliases=()):
    return {"key": last, "last": last, "dept": dept, "value": value, "aliases": list(aliases)}


PEOPLE_GROUPS = [
    G("alex", "ext", [Pn("Chen", "Finance", "4412"), Pn("Romero", "Design", "2290")], first="Alex"),
    G("sam", "office", [Pn("Patel", "Engineering", "Room 3B"), Pn("Okafor", "Sales", "Room 5A"),
                        Pn("Lindqvist", "Legal", "Room 2F")], first="Sam"),
    G("jordan", "manager", [Pn("Blake", "Marketing", "Priya Nair", ["Nair"]), Pn("Ellis", "IT", "Mark Dubois", ["Dubois"])], first="Jordan"),
    G("maria", "ext", [Pn("Gonzalez", "HR", "3107"), Pn("Rossi", "Support", "3350")], first="Maria"),
    G("chris", "office", [Pn("Wong", "Research", "Room 410"), Pn("Adams", "Finance", "Room 118")], first="Chris"),
    G("taylor", "ext", [Pn("Brooks", "Legal", "5021"), Pn("Kim", "Product", "5188"), Pn("Moreno", "Facilities", "5263")], first="Taylor"),
    G("jamie", "manager", [Pn("Foster", "Design", "Leah Gold", ["Leah"]), Pn("Nguyen", "Engineering", "Victor Hale", ["Victor"])], first="Jamie"),
    G("pat", "office", [Pn("Murphy", "Operations", "Room 7C"), Pn("Singh", "Accounting", "Room 1D")], first="Pat"),
    G("daniel", "ext", [Pn("Weber", "Sales", "6642"), Pn("Osei", "Research", "6709")], first="Daniel"),
    G("emma", "manager", [Pn("Clarke", "Support", "Tom Reyes", ["Reyes"]), Pn("Larsen", "Marketing", "Nina Volkova", ["Volkova"])], first="Emma"),
    G("ryan", "ext", [Pn("Cole", "IT", "2011"), Pn("Tanaka", "Logistics", "2078")], first="Ryan"),
    G("lee", "office", [Pn("Harper", "Design", "Room 6E"), Pn("Morgan", "HR", "Room 2A"), Pn("Zhang", "Engineering", "Room 9B")], first="Lee"),
    G("nina", "ext", [Pn("Petrova", "Legal", "7120"), Pn("Ward", "Sales", "7193")], first="Nina"),
    G("omar", "manager", [Pn("Farouk", "Finance", "Helen Cho", ["Helen"]), Pn("Bennett", "Product", "Diego Ruiz", ["Ruiz"])], first="Omar"),
    G("kate", "office", [Pn("Sullivan", "Marketing", "Room 305"), Pn("Ito", "Research", "Room 221")], first="Kate"),
    G("michael", "ext", [Pn("Grant", "Operations", "8034"), Pn("Duarte", "Support", "8077")], first="Michael"),
    G("robin", "manager", [Pn("Hayes", "Sales", "Greta Lund", ["Lund"]), Pn("Ocampo", "Legal", "Paul Mensah", ["Mensah"]),
                           Pn("Fry", "IT", "Ines Araujo", ["Araujo"])], first="Robin"),
]


def people_fields(g, e, rng):
    return F(first=g["first"], last=e["last"], dept=e["dept"], value=e["value"])


def people_qual(g, e, attr, rng, t):
    full = f"{g['first']} {e['last']}"
    if "{x}'s" in t:
        return full
    if "{x} in" in t:
        return rng.choice([full, f"{g['first']} from {e['dept']}"])
    return rng.choice([full, f"{g['first']} from {e['dept']}", f"{g['first']} in {e['dept']}"])


def people_aliases(e):
    v = e["value"]
    return [f"x{v}"] if re.fullmatch(r"\d{4}", v) else []


PEOPLE = Domain("people", PEOPLE_Q, PEOPLE_CTX, PEOPLE_CLAR, PEOPLE_FILLERS, PEOPLE_GROUPS, people_fields,
                gen_x=lambda g, attr, rng: g["first"], qual_x=people_qual,
                prefix=lambda g, rng: rng.choice(["Staff directory:", "Internal contacts:"]))


# ---- 8. policies: rules that differ by purchase channel / customer type ---------------

POLICY_Q = {
    "returns": ["How long do I have to return something{x}?", "What's the return window{x}?",
                "How many days do I get to return an item{x}?", "Return period{x}?",
                "Can I still return this? What's the time limit{x}?", "How long is the return window{x}?"],
    "refunds": ["How long does a refund take{x}?", "When will I get my refund{x}?", "How fast are refunds processed{x}?",
                "Refund processing time{x}?", "How many days until my refund comes through{x}?",
                "If I get a refund{x}, how long does it take?"],
    "shipping": ["How much is shipping{x}?", "What does shipping cost{x}?", "Do I pay for shipping{x}? How much?",
                 "Shipping fee{x}?", "What's the delivery charge{x}?", "How much will delivery cost me{x}?"],
    "cancel": ["Is there a fee to cancel{x}?", "How much does it cost to cancel{x}?", "What's the cancellation fee{x}?",
               "Cancellation charge{x}?", "If I cancel{x}, what do I pay?", "What would I be charged for cancelling{x}?"],
    "late_fee": ["What's the late fee{x}?", "How much is the fine for late returns{x}?",
                 "How much do you charge for overdue items{x}?", "Late fee{x}?",
                 "If I bring something back late{x}, what's the fine?", "What do I owe per day when an item is late{x}?"],
}
POLICY_CTX = {
    "returns": ["{Cond}, returns are accepted within {value}.", "Returns {cond} must be made within {value}.",
                "{Tag}: {value} to return items.", "You have {value} to return items {cond}."],
    "refunds": ["{Cond}, refunds are processed within {value}.", "Refunds {cond} take {value}.",
                "{Tag}: refunds in {value}.", "Expect your refund within {value} {cond}."],
    "shipping": ["{Cond}, shipping costs {value}.", "Shipping {cond} is {value}.", "{Tag}: shipping {value}.",
                 "We charge {value} for shipping {cond}."],
    "cancel": ["{Cond}, cancelling costs {value}.", "The cancellation fee {cond} is {value}.",
               "{Tag}: cancellation fee {value}.", "Cancelling {cond} carries a {value} fee."],
    "late_fee": ["{Cond}, late items cost {value} per day.", "The late fee {cond} is {value} a day.",
                 "{Tag}: {value} per day overdue.", "Overdue fines {cond} are {value} per day."],
}
POLICY_CLAR = ["{C}", "{C}", "{Cond}.", "{Cond}, please.", "The rule {cond}."]
POLICY_FILLERS = ["Receipts are required.", "Policies apply to all locations.", "Questions? Ask at the service desk."]


def Po(tag, cond, value, clars, aliases=()):
    return {"key": tag, "tag": tag, "cond": cond, "value": value, "clars": clars, "aliases": list(aliases)}


POLICY_GROUPS = [
    G("brightway-returns", "returns", [
        Po("online", "for online purchases", "30 days", ["I bought it online.", "It was an online order."]),
        Po("in-store", "for in-store purchases", "14 days", ["I bought it in the store.", "In-store."])], store="Brightway"),
    G("northgate-refunds", "refunds", [
        Po("members", "for members", "3 business days", ["I'm a member.", "As a member."]),
        Po("non-members", "for non-members", "10 business days", ["I'm not a member.", "Non-member."])], store="Northgate Outfitters"),
    G("lumen-shipping", "shipping", [
        Po("standard", "for standard delivery", "$4.99", ["Standard delivery.", "Just the regular shipping."]),
        Po("express", "for express delivery", "$12.99", ["Express.", "The express option."]),
        Po("overnight", "for overnight delivery", "$24.99", ["Overnight.", "I need it overnight."])], store="Lumen Electronics"),
    G("seaview-cancel", "cancel", [
        Po("flexible", "for flexible-rate bookings", "$15", ["I booked the flexible rate.", "Flexible rate."]),
        Po("saver", "for saver-rate bookings", "$75", ["It's a saver-rate booking.", "The saver rate."])], store="Seaview Hotel"),
    G("maple-library-late", "late_fee", [
        Po("books", "for books", "$0.25", ["It's a book.", "A library book."]),
        Po("DVDs", "for DVDs", "$1.00", ["It's a DVD.", "A DVD."])], store="Maple Public Library"),
    G("harbor-books-returns", "returns", [
        Po("sale", "for sale items", "7 days", ["It was on sale.", "A sale item."]),
        Po("full-price", "for full-price items", "60 days", ["I paid full price.", "A full-price item."])], store="Harbor Books"),
    G("pine-refunds", "refunds", [
        Po("card", "for card payments", "5 business days", ["I paid by card.", "Card payment."]),
        Po("PayPal", "for PayPal payments", "2 business days", ["I used PayPal.", "PayPal."])], store="Pine & Co."),
    G("cedar-shipping", "shipping", [
        Po("domestic", "for domestic orders", "$5", ["It's shipping within the country.", "Domestic."]),
        Po("international", "for international orders", "$25", ["It's going abroad.", "International."])], store="Cedar Crafts"),
    G("fitlife-cancel", "cancel", [
        Po("monthly", "for monthly members", "$30", ["I'm on the monthly plan.", "Monthly membership."]),
        Po("annual", "for annual members", "$99", ["I have an annual membership.", "The yearly plan."]),
        Po("student", "for student members", "$10", ["I'm a student member.", "Student membership."])], store="FitLife Gym"),
    G("volt-returns", "returns", [
        Po("electronics", "for electronics", "15 days", ["It's electronics.", "A gadget, so electronics."]),
        Po("clothing", "for clothing", "45 days", ["It's clothing.", "A shirt, so clothing."])], store="Volt Store"),
    G("greenleaf-refunds", "refunds", [
        Po("online", "for online orders", "7 business days", ["I ordered online.", "Online order."]),
        Po("in-store", "for in-store purchases", "1 business day", ["I bought it at the store.", "In-store purchase."])], store="Greenleaf Market"),
    G("campustech-late", "late_fee", [
        Po("laptops", "for laptops", "$5.00", ["It's a laptop.", "A rented laptop."]),
        Po("cameras", "for cameras", "$8.00", ["It's a camera.", "A rented camera."])], store="CampusTech rental desk"),
    G("skyway-cancel", "cancel", [
        Po("economy", "for economy tickets", "$150", ["Economy.", "I'm flying economy."]),
        Po("business", "for business class tickets", "$50", ["Business class.", "I have a business class ticket."])], store="SkyWay Airlines"),
    G("oakline-shipping", "shipping", [
        Po("Plus members", "for Plus members", "$2.99", ["I'm a Plus member.", "Plus member."]),
        Po("regular customers", "for regular customers", "$7.99", ["I don't have Plus.", "Regular customer."])], store="Oakline Home"),
    G("summit-returns", "returns", [
        Po("members", "for members", "90 days", ["I'm a member.", "Member."]),
        Po("non-members", "for non-members", "30 days", ["I'm not a member.", "Non-member."]),
        Po("gift receipts", "for gift receipts", "60 days", ["It was a gift.", "I have a gift receipt."])], store="Summit Sports"),
    G("pixel-arcade-late", "late_fee", [
        Po("new releases", "for new releases", "$2.00", ["It's a new release.", "A new game."]),
        Po("older titles", "for older titles", "$0.50", ["It's an older title.", "An older game."])], store="Pixel Arcade game rentals"),
]


def policy_fields(g, e, rng):
    return F(tag=e["tag"], cond=e["cond"], value=e["value"], c=rng.choice(e["clars"]), store=g["store"])


POLICIES = Domain("policies", POLICY_Q, POLICY_CTX, POLICY_CLAR, POLICY_FILLERS, POLICY_GROUPS, policy_fields,
                  gen_x=lambda g, attr, rng: "", qual_x=lambda g, e, attr, rng, t: " " + e["cond"],
                  prefix=lambda g, rng: rng.choice([f"{g['store']} policy:", f"Policy notes for {g['store']}:"]))


# ---- 9. recipes: variants of one dish --------------------------------------------------

RECIPE_Q = {
    "cook": ["How long does {x} cook?", "What's the cooking time for {x}?", "How long do I cook {x}?",
             "Cook time for {x}?", "How long does {x} take to cook?", "When will {x} be done? How long does it cook?",
             "How long does {x} need?"],
    "temp": ["What temperature do I bake {x} at?", "How hot should the oven be for {x}?", "Oven temperature for {x}?",
             "What do I set the oven to for {x}?", "At what temperature does {x} bake?", "What heat does {x} need in the oven?"],
    "servings": ["How many does {x} serve?", "How many servings does {x} make?", "How many people does {x} feed?",
                 "Servings for {x}?", "Is {x} enough for a crowd? How many servings?", "What's the yield of {x}?"],
}
RECIPE_CTX = {
    "cook": ["The {tag} {dish} cooks for {value}.", "{Tag} {dish}: {value} of cooking time.",
             "Cook the {tag} {dish} for {value}.", "The {tag} version of the {dish} takes {value} to cook."],
    "temp": ["Bake the {tag} {dish} at {value}.", "The {tag} {dish} bakes at {value}.", "{Tag} {dish}: oven at {value}.",
             "For the {tag} {dish}, preheat the oven to {value}."],
    "servings": ["The {tag} {dish} serves {value}.", "{Tag} {dish}: {value} servings.",
                 "The {tag} {dish} recipe makes {value} portions.", "One batch of the {tag} {dish} feeds {value}."],
}
RECIPE_CLAR = ["The {tag} one.", "I mean the {tag} {dish}.", "The {tag} version.", "Oh, the {tag} {dish}.",
               "{Tag}, please.", "I'm making the {tag} one."]
RECIPE_FILLERS = ["From the family recipe box.", "Use fresh ingredients where possible.", "Let it rest before serving."]


def R(tag, value, aliases=()):
    return {"key": tag, "tag": tag, "value": value, "aliases": list(aliases)}


RECIPE_GROUPS = [
    G("chili", "cook", [R("vegan", "40 minutes"), R("beef", "90 minutes")], dish="chili"),
    G("lasagna", "temp", [R("classic", "375°F"), R("gluten-free", "350°F")], dish="lasagna"),
    G("bread", "cook", [R("sourdough", "45 minutes"), R("rye", "50 minutes"), R("banana", "60 minutes")], dish="bread"),
    G("pizza", "temp", [R("thin-crust", "500°F"), R("deep-dish", "425°F")], dish="pizza"),
    G("soup", "servings", [R("lentil", "6"), R("tomato", "4")], dish="soup"),
    G("curry", "cook", [R("chicken", "35 minutes"), R("chickpea", "25 minutes")], dish="curry"),
    G("tart", "temp", [R("fig", "375°F"), R("custard", "325°F")], dish="tart"),
    G("quiche", "servings", [R("spinach", "6"), R("ham", "8")], dish="quiche"),
    G("roast", "cook", [R("chicken", "80 minutes"), R("pork", "2 hours"), R("lamb", "3 hours")], dish="roast"),
    G("cornbread", "temp", [R("skillet", "425°F"), R("honey", "400°F")], dish="cornbread"),
    G("cake", "servings", [R("chocolate", "12"), R("carrot", "10"), R("lemon", "8")], dish="cake"),
    G("risotto", "cook", [R("mushroom", "30 minutes"), R("pea", "20 minutes")], dish="risotto"),
    G("granola", "temp", [R("honey", "300°F"), R("maple", "325°F")], dish="granola"),
    G("stew", "cook", [R("beef", "2 hours"), R("veggie", "50 minutes")], dish="stew"),
    G("pie", "servings", [R("apple", "8"), R("pecan", "10")], dish="pie"),
    G("casserole", "servings", [R("tuna", "6"), R("broccoli", "4")], dish="casserole"),
    G("salmon", "temp", [R("glazed", "400°F"), R("herb-crusted", "450°F")], dish="salmon"),
]


def recipe_fields(g, e, rng):
    return F(dish=g["dish"], tag=e["tag"], value=e["value"])


RECIPES = Domain("recipes", RECIPE_Q, RECIPE_CTX, RECIPE_CLAR, RECIPE_FILLERS, RECIPE_GROUPS, recipe_fields,
                 gen_x=lambda g, attr, rng: rng.choice([f"the {g['dish']}", f"the {g['dish']}"]),
                 qual_x=lambda g, e, attr, rng, t: rng.choice([f"the {e['tag']} {g['dish']}",
                                                              f"the {e['tag']} version of the {g['dish']}"]),
                 prefix=lambda g, rng: rng.choice([f"Recipe notes ({g['dish']}):", "Kitchen notes:"]))


# ---- 10. travel: the user's bookings ---------------------------------------------------

TRAVEL_Q = {
    "depart": ["When does {x} leave?", "What time does {x} depart?", "What's the departure time for {x}?",
               "Departure time for {x}?", "What time is {x}?", "Remind me when {x} leaves.",
               "When do I need to be ready for {x}? What time does it go?"],
    "gate": ["What gate is {x}?", "Which gate does {x} leave from?", "Gate for {x}?", "Where do I board {x}?",
             "What's the gate number for {x}?", "Which gate should I head to for {x}?"],
    "seat": ["What's my seat on {x}?", "Where am I sitting on {x}?", "Seat number for {x}?", "Which seat do I have on {x}?",
             "What seat did I get on {x}?", "Tell me my seat for {x}."],
    "checkin": ["What time is check-in at {x}?", "When can I check in at {x}?", "Check-in time for {x}?",
                "How early can I check in at {x}?", "When does check-in start at {x}?", "What's the check-in time at {x}?"],
    "code": ["What's the confirmation code for {x}?", "What's the booking reference for {x}?", "Booking code for {x}?",
             "Can you find the confirmation number for {x}?", "I need the reference code for {x}.",
             "What code is {x} booked under?"],
}
TRAVEL_CTX = {
    "depart": ["Your {noun} {prep} {tag} departs at {value}.", "The {tag} {noun} leaves at {value}.",
               "{Noun} {prep} {tag}: departs {value}.", "At {value}, your {noun} {prep} {tag} departs."],
    "gate": ["Your {noun} {prep} {tag} boards at {value}.", "The {tag} {noun} leaves from {value}.",
             "{Noun} {prep} {tag}: {value}.", "{Value} is where your {noun} {prep} {tag} boards."],
    "seat": ["On your {noun} {prep} {tag}, you are in seat {value}.", "Seat {value} is booked for the {tag} {noun}.",
             "{Noun} {prep} {tag}: seat {value}.", "Your seat on the {tag} {noun} is {value}."],
    "checkin": ["Check-in at your {noun} {prep} {tag} starts at {value}.", "Your {tag} {noun} allows check-in from {value}.",
                "{Noun} {prep} {tag}: check-in {value}.", "At the {tag} {noun}, you can check in at {value}."],
    "code": ["Your {noun} {prep} {tag} has confirmation code {value}.", "Confirmation for the {tag} {noun}: {value}.",
             "{Value} is the booking code for your {noun} {prep} {tag}.", "The {tag} {noun} was booked under code {value}."],
}
TRAVEL_CLAR = ["The {tag} one.", "I mean the {noun} {prep} {tag}.", "The {tag} {noun}.", "Oh, {tag}.",
               "The one {prep} {tag}.", "My {tag} {noun}, please."]
TRAVEL_FILLERS = ["All times are local.", "Bring your passport.", "All bookings are paid in full.",
                  "Travel insurance is included."]


def T(tag, value, aliases=()):
    return {"key": tag, "tag": tag, "value": value, "aliases": list(aliases)}


TRAVEL_GROUPS = [
    G("rome-madrid", "depart", [T("Rome", "7:15 AM"), T("Madrid", "4:40 PM")], noun="flight", prep="to", traveler="Jo"),
    G("denver-chicago", "gate", [T("Denver", "Gate B12"), T("Chicago", "Gate C4")], noun="flight", prep="to", traveler="Sam"),
    G("lyon-geneva-milan", "depart", [T("Lyon", "8:05 AM"), T("Geneva", "11:50 AM"), T("Milan", "3:25 PM")],
      noun="train", prep="to", traveler="Ana"),
    G("lisbon-porto", "checkin", [T("Lisbon", "3:00 PM"), T("Porto", "2:00 PM")], noun="hotel", prep="in", traveler="Mia"),
    G("tokyo-seoul", "seat", [T("Tokyo", "14C"), T("Seoul", "22A")], noun="flight", prep="to", traveler="Ken"),
    G("oslo-bergen", "code", [T("Oslo", "QX7T2P"), T("Bergen", "LM4R9Z")], noun="flight", prep="to", traveler="Ida"),
    G("boston-albany", "depart", [T("Boston", "9:10 AM"), T("Albany", "1:45 PM")], noun="bus", prep="to", traveler="Lou"),
    G("vienna-prague-budapest", "checkin", [T("Vienna", "2:30 PM"), T("Prague", "4:00 PM"), T("Budapest", "1:00 PM")],
      noun="hotel", prep="in", traveler="Eva"),
    G("miami-atlanta", "gate", [T("Miami", "Gate D7"), T("Atlanta", "Gate A21")], noun="flight", prep="to", traveler="Ray"),
    G("edinburgh-york", "seat", [T("Edinburgh", "42B"), T("York", "17D")], noun="train", prep="to", traveler="Tess"),
    G("naxos-paros", "depart", [T("Naxos", "6:30 AM"), T("Paros", "12:10 PM")], noun="ferry", prep="to", traveler="Nick"),
    G("dublin-galway", "code", [T("Dublin", "BK83QW"), T("Galway", "ZP20LN")], noun="hotel", prep="in", traveler="Orla"),
    G("sydney-auckland", "depart", [T("Sydney", "11:55 PM"), T("Auckland", "6:20 AM")], noun="flight", prep="to", traveler="Liv"),
    G("amsterdam-brussels", "code", [T("Amsterdam", "TR4K8M"), T("Brussels", "TR9W2D")], noun="train", prep="to", traveler="Bas"),
    G("cairo-dubai-doha", "seat", [T("Cairo", "3A"), T("Dubai", "31F"), T("Doha", "18K")], noun="flight", prep="to", traveler="Omar"),
    G("toronto-montreal", "gate", [T("Toronto", "Gate E3"), T("Montreal", "Gate F18")], noun="flight", prep="to", traveler="Dev"),
    G("kyoto-osaka", "checkin", [T("Kyoto", "3:30 PM"), T("Osaka", "12:00 PM")], noun="hotel", prep="in", traveler="Yuki"),
]


def travel_fields(g, e, rng):
    return F(noun=g["noun"], prep=g["prep"], tag=e["tag"], value=e["value"])


TRAVEL = Domain("travel", TRAVEL_Q, TRAVEL_CTX, TRAVEL_CLAR, TRAVEL_FILLERS, TRAVEL_GROUPS, travel_fields,
                gen_x=lambda g, attr, rng: rng.choice([f"my {g['noun']}", f"the {g['noun']}"]),
                qual_x=lambda g, e, attr, rng, t: rng.choice([f"my {g['noun']} {g['prep']} {e['tag']}",
                                                             f"the {e['tag']} {g['noun']}",
                                                             f"the {g['noun']} {g['prep']} {e['tag']}"]),
                prefix=lambda g, rng: rng.choice([f"Trip notes for {g['traveler']}:", "Itinerary:"]))


# ---- 11. sports: teams that share a name -----------------------------------------------

SPORT_Q = {
    "venue": ["Where do {x} play their home games?", "What stadium do {x} play in?", "What venue do {x} call home?",
              "Home venue of {x}?", "Where can I watch {x} play at home?", "Where are {x} based? Which venue?"],
    "founded": ["When were {x} founded?", "What year did {x} start?", "Founding year of {x}?",
                "How old are {x}? What year were they founded?", "In what year were {x} formed?",
                "When did {x} get started?"],
    "practice": ["When do {x} practice?", "What time is practice for {x}?", "Practice time for {x}?",
                 "When should I drop my kid off for {x} practice?", "What time do {x} train?",
                 "When does practice start for {x}?"],
    "coach": ["Who coaches {x}?", "Who is the coach of {x}?", "Who's in charge of {x}?", "Head coach of {x}?",
              "Who runs practice for {x}?", "Tell me who coaches {x}."],
}
SPORT_CTX = {
    "venue": ["{Full} play at {value}.", "{Full} ({tag}) play their home games at {value}.",
              "{Value} is home to {full}.", "{Full}: home venue {value}."],
    "founded": ["{Full} were founded in {value}.", "{Full} ({tag}) date back to {value}.",
                "{Full} got started in {value}.", "{Value} is the founding year of {full}."],
    "practice": ["{Full} practice at {value}.", "Practice for {full} ({tag}) starts at {value}.",
                 "{Full}: practice {value}.", "At {value}, {full} hold practice."],
    "coach": ["{Full} are coached by {value}.", "{Value} coaches {full}.", "{Full} ({tag}): head coach {value}.",
              "The head coach of {full} is {value}."],
}
SPORT_CLAR = ["I mean {c}.", "{C}.", "Oh, {c}.", "{C}, please.", "I'm asking about {c}.", "Sorry, {c}."]
SPORT_FILLERS = ["Notes for a sports trivia night.", "Schedules may change during playoffs.",
                 "Tickets are sold online."]


def Sp(key, tag, full, clars, value, aliases=()):
    return {"key": key, "tag": tag, "full": full, "clars": clars, "value": value, "aliases": list(aliases)}


SPORT_GROUPS = [
    G("rangers", "venue", [
        Sp("new-york", "NHL hockey", "the New York Rangers", ["the hockey team", "the New York team"], "Madison Square Garden", ["MSG"]),
        Sp("texas", "MLB baseball", "the Texas Rangers", ["the baseball team", "the Texas team"], "Globe Life Field"),
        Sp("glasgow", "Scottish football", "Rangers of Glasgow", ["the Scottish club", "the football club in Glasgow"], "Ibrox Stadium", ["Ibrox"]),
    ], name="the Rangers"),
    G("giants", "venue", [
        Sp("new-york", "NFL football", "the New York Giants", ["the football team", "the New York team"], "MetLife Stadium", ["MetLife"]),
        Sp("san-francisco", "MLB baseball", "the San Francisco Giants", ["the baseball team", "the San Francisco team"], "Oracle Park"),
    ], name="the Giants"),
    G("cardinals", "founded", [
        Sp("arizona", "NFL football", "the Arizona Cardinals", ["the football team", "the Arizona team"], "1898"),
        Sp("st-louis", "MLB baseball", "the St. Louis Cardinals", ["the baseball team", "the St. Louis team"], "1882"),
    ], name="the Cardinals"),
    G("kings", "venue", [
        Sp("los-angeles", "NHL hockey", "the Los Angeles Kings", ["the hockey team", "the LA team"], "Crypto.com Arena"),
        Sp("sacramento", "NBA basketball", "the Sacramento Kings", ["the basketball team", "the Sacramento team"], "Golden 1 Center"),
    ], name="the Kings"),
    G("northfield-panthers", "founded", [
        Sp("hockey", "on ice since the sixties", "the Northfield Panthers hockey club", ["the hockey club", "the ice hockey side"], "1962"),
        Sp("football", "plays on grass", "the Northfield Panthers football club", ["the football club", "the football side"], "1978"),
    ], name="the Northfield Panthers"),
    G("jets", "venue", [
        Sp("new-york", "NFL football", "the New York Jets", ["the football team", "the New York team"], "MetLife Stadium", ["MetLife"]),
        Sp("winnipeg", "NHL hockey", "the Winnipeg Jets", ["the hockey team", "the Winnipeg team"], "Canada Life Centre"),
    ], name="the Jets"),
    G("falcons-youth", "practice", [
        Sp("under-10", "ages 8 to 10", "the under-10 Falcons", ["the under-10s", "the younger team"], "5:00 PM"),
        Sp("under-12", "ages 11 and 12", "the under-12 Falcons", ["the under-12s", "the older team"], "6:15 PM"),
    ], name="the Falcons"),
    G("harbor-hawks", "coach", [
        Sp("women", "women's league", "the Harbor Hawks women's team", ["the women's team", "the women's side"], "Dana Reyes", ["Reyes"]),
        Sp("men", "men's league", "the Harbor Hawks men's team", ["the men's team", "the men's side"], "Marcus Bell", ["Bell"]),
    ], name="the Harbor Hawks"),
    G("united", "venue", [
        Sp("manchester", "Manchester club", "Manchester United", ["Manchester United", "the Manchester club"], "Old Trafford"),
        Sp("newcastle", "Newcastle club", "Newcastle United", ["Newcastle United", "the Newcastle club"], "St James' Park", ["St. James' Park", "St James Park"]),
        Sp("west-ham", "East London club", "West Ham United", ["West Ham", "the London club"], "London Stadium"),
    ], name="United"),
    G("rovers-youth", "practice", [
        Sp("under-14", "ages 13 and 14", "the under-14 Rovers", ["the under-14s", "the younger squad"], "4:30 PM"),
        Sp("under-16", "ages 15 and 16", "the under-16 Rovers", ["the under-16s", "the older squad"], "7:00 PM"),
    ], name="the Rovers"),
    G("real", "venue", [
        Sp("madrid", "club from Madrid", "Real Madrid", ["Real Madrid", "the Madrid club"], "Santiago Bernabeu", ["Bernabeu"]),
        Sp("sociedad", "club from San Sebastian", "Real Sociedad", ["Real Sociedad", "the San Sebastian club"], "Anoeta"),
        Sp("betis", "club from Seville", "Real Betis", ["Real Betis", "the Seville club"], "Benito Villamarin", ["Villamarin"]),
    ], name="Real"),
    G("lakeside-lions", "coach", [
        Sp("boys", "boys' league", "the Lakeside Lions boys' team", ["the boys' team", "the boys"], "Sam Ortiz", ["Ortiz"]),
        Sp("girls", "girls' league", "the Lakeside Lions girls' team", ["the girls' team", "the girls"], "Kira Olsen", ["Olsen"]),
    ], name="the Lakeside Lions"),
    G("blues", "venue", [
        Sp("st-louis", "NHL hockey", "the St. Louis Blues", ["the hockey team", "the St. Louis team"], "Enterprise Center"),
        Sp("chelsea", "London football club", "the Chelsea Blues", ["Chelsea", "the football club"], "Stamford Bridge"),
    ], name="the Blues"),
    G("comets", "practice", [
        Sp("varsity", "high school first team", "the varsity Comets", ["varsity", "the varsity team"], "3:45 PM"),
        Sp("jv", "high school second team", "the junior varsity Comets", ["JV", "the junior varsity team"], "5:30 PM"),
    ], name="the Comets"),
    G("wanderers", "founded", [
        Sp("wolverhampton", "Wolverhampton club", "Wolverhampton Wanderers", ["Wolves", "the Wolverhampton club"], "1877"),
        Sp("bolton", "Bolton club", "Bolton Wanderers", ["Bolton", "the Bolton club"], "1874"),
    ], name="the Wanderers"),
    G("river-city-stars", "coach", [
        Sp("basketball", "winter season", "the River City Stars basketball team", ["the basketball team", "basketball"], "Priya Raman", ["Raman"]),
        Sp("soccer", "fall season", "the River City Stars soccer team", ["the soccer team", "soccer"], "Luis Acosta", ["Acosta"]),
        Sp("volleyball", "spring season", "the River City Stars volleyball team", ["the volleyball team", "volleyball"], "June Park", ["June"]),
    ], name="the River City Stars"),
]


def sport_fields(g, e, rng):
    return F(name=g["name"], tag=e["tag"], full=e["full"], value=e["value"], c=rng.choice(e["clars"]))


SPORTS = Domain("sports", SPORT_Q, SPORT_CTX, SPORT_CLAR, SPORT_FILLERS, SPORT_GROUPS, sport_fields,
                gen_x=lambda g, attr, rng: g["name"], qual_x=lambda g, e, attr, rng, t: e["full"])


DOMAINS = [WORLD, SCHEDULE, PRICES, ORDERS, PLACES, PRODUCTS, PEOPLE, POLICIES, RECIPES, TRAVEL, SPORTS]


# --------------------------------------------------------------------------- item building

GREETINGS = ["Hi! ", "Hey! ", "Hello. ", "Quick question. "]
SIGNOFFS = [" Thanks!", " Thank you.", " Thanks in advance."]
# Balanced rotation of unambiguous variants per group: extras average 1 per group -> ~50% ambiguous.
PATTERNS = [("clear",), ("solo",), ("clear", "solo"), ()]


def aliases_for(dom, e):
    al = list(e.get("aliases", [])) + auto_aliases(e["value"])
    if dom is PEOPLE:
        al += people_aliases(e)
    out, seen = [], {e["value"].lower()}
    for a in al:
        if a.lower() not in seen:
            seen.add(a.lower())
            out.append(a)
    return out


def clean_aliases(interps):
    """Drop aliases that collide (as whole words) with another interpretation's answer/aliases."""
    for i, it in enumerate(interps):
        others = [t for j, o in enumerate(interps) if j != i for t in [o["answer"]] + o["aliases"]]
        it["aliases"] = [a for a in it["aliases"]
                         if not any(has_term(o, a) or has_term(a, o) for o in others)]
    return interps


def terms(interp):
    return [interp["answer"]] + interp["aliases"]


def render_question(dom, g, attr, x, rng, tmpl):
    q = tmpl.format(x=x)
    q = cap(q.replace("  ", " ").replace(" ?", "?"))
    r = rng.random()
    if r < 0.12:
        q = rng.choice(GREETINGS) + q
    elif r < 0.2:
        q = q + rng.choice(SIGNOFFS)
    return q


def make_context(dom, g, ents, attr, rng, all_values):
    ents = list(ents)
    rng.shuffle(ents)
    tmpls = dom.ctx[attr]
    same = rng.random() < 0.5
    t0 = rng.choice(tmpls)
    sents = [cap((t0 if same else rng.choice(tmpls)).format_map(dom.fields(g["g"], e, rng))) for e in ents]
    pre = dom.prefix(g["g"], rng) if dom.prefix and rng.random() < 0.4 else None
    fill = rng.choice(dom.fillers) if rng.random() < 0.35 else None
    if fill and any(has_term(fill, v) for v in all_values):
        fill = None
    fill_first = rng.random() < 0.3
    for attempt in range(3):
        parts = list(sents)
        if fill:
            parts = [fill] + parts if fill_first else parts + [fill]
        if pre:
            parts = [pre] + parts
        ctx = " ".join(parts)
        if len(ctx) < MAX_CONTEXT:
            return ctx
        fill, pre = (None, pre) if fill else (None, None)
    raise ValueError(f"context too long for {g['slug']}: {ctx!r}")


def make_interp(dom, g, e, rng):
    f = dom.fields(g["g"], e, rng)
    clar = cap(rng.choice(dom.clar).format_map(f))
    return {"clarification": clar, "answer": e["value"], "aliases": aliases_for(dom, e)}


def build(seed: int = SEED):
    rng = random.Random(seed)
    out = {s: [] for s in SPLITS}
    stats = defaultdict(set)  # domain -> question templates used
    for d_i, dom in enumerate(DOMAINS):
        groups = list(dom.groups)
        rng.shuffle(groups)
        patterns = list(PATTERNS)
        rng.shuffle(patterns)
        for i, g in enumerate(groups):
            split = SPLITS[(i + d_i) % 2]
            pattern = patterns[(i // 2) % len(patterns)]
            attr, ents = g["attr"], g["ents"]
            base = f"{dom.name}-{g['slug']}-{slug(attr)}"
            all_values = [e["value"] for e in ents]
            items = []

            # ambiguous: all entities in the notes, generic question
            t = rng.choice(dom.q[attr])
            stats[dom.name].add(t)
            interps = clean_aliases([make_interp(dom, g, e, rng) for e in ents])
            rng.shuffle(interps)
            items.append({"id": f"{base}-amb",
                          "context": make_context(dom, g, ents, attr, rng, all_values),
                          "question": render_question(dom, g, attr, dom.gen_x(g["g"], attr, rng), rng, t),
                          "interpretations": interps})

            order = list(ents)
            rng.shuffle(order)
            for k, kind in enumerate(pattern):
                e = order[k % len(order)]
                t = rng.choice(dom.q[attr])
                stats[dom.name].add(t)
                # aliases are cleaned against the group's other entities, so they stay precise
                group_interps = clean_aliases([make_interp(dom, g, o, rng) for o in ents])
                interp = group_interps[ents.index(e)]
                if kind == "clear":   # same notes, the question names the entity
                    x = dom.qual_x(g["g"], e, attr, rng, t)
                    ctx = make_context(dom, g, ents, attr, rng, all_values)
                else:                 # notes mention only this entity
                    x = dom.gen_x(g["g"], attr, rng)
                    ctx = make_context(dom, g, [e], attr, rng, all_values)
                items.append({"id": f"{base}-{kind}-{slug(e['key'])}", "context": ctx,
                              "question": render_question(dom, g, attr, x, rng, t),
                              "interpretations": [interp]})
            out[split].extend(items)
    for s in SPLITS:
        rng.shuffle(out[s])
    return out, stats


def write(out):
    for s in SPLITS:
        path = os.path.join(HERE, f"{s}.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            for it in out[s]:
                fh.write(json.dumps(it, ensure_ascii=False) + "\n")
        print(f"wrote {len(out[s])} items -> {os.path.relpath(path)}")


# --------------------------------------------------------------------------- checks

ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
GROUP_RE = re.compile(r"^(.*?)-(amb|clear-.+|solo-.+)$")


def check() -> int:
    errors, warnings = [], []
    data = {}
    for s in SPLITS:
        path = os.path.join(HERE, f"{s}.jsonl")
        items = []
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    errors.append(f"{s}:{n}: bad JSON: {exc}")
        data[s] = items

    domain_names = [d.name for d in DOMAINS]
    ids = Counter()
    group_split = {}
    per = defaultdict(Counter)  # (split) -> counter of domain / domain-amb
    for s, items in data.items():
        for it in items:
            iid = it.get("id", "?")
            for k, typ in (("id", str), ("context", str), ("question", str), ("interpretations", list)):
                if not isinstance(it.get(k), typ) or not it.get(k):
                    errors.append(f"{iid}: missing/empty {k}")
            if errors and errors[-1].startswith(iid + ":"):
                continue
            ids[iid] += 1
            if not ID_RE.match(iid):
                errors.append(f"{iid}: id is not a lowercase slug")
            dom = iid.split("-")[0]
            if dom not in domain_names:
                errors.append(f"{iid}: unknown domain prefix")
            m = GROUP_RE.match(iid)
            grp = m[1] if m else iid
            if group_split.setdefault(grp, s) != s:
                errors.append(f"{iid}: group {grp} appears in both splits")
            interps = it["interpretations"]
            amb = len(interps) >= 2
            if amb != iid.endswith("-amb"):
                errors.append(f"{iid}: interpretation count {len(interps)} disagrees with id")
            per[s][dom] += 1
            per[s][dom + ":amb"] += amb
            if len(it["context"]) >= MAX_CONTEXT:
                errors.append(f"{iid}: context has {len(it['context'])} chars")
            for ip in interps:
                for k in ("clarification", "answer"):
                    if not isinstance(ip.get(k), str) or not ip.get(k).strip():
                        errors.append(f"{iid}: interpretation missing {k}")
                if not isinstance(ip.get("aliases"), list) or not all(isinstance(a, str) and a for a in ip["aliases"]):
                    errors.append(f"{iid}: aliases must be a list of non-empty strings")
                    continue
                if not has_term(it["context"], ip["answer"]):
                    errors.append(f"{iid}: answer {ip['answer']!r} not in context")
                for t in terms(ip):
                    if has_term(it["question"], t):
                        errors.append(f"{iid}: question gives away {t!r}")
                    if has_term(ip["clarification"], t):
                        warnings.append(f"{iid}: clarification contains answer {t!r}")
            for i, a in enumerate(interps):
                for j, b in enumerate(interps):
                    if i == j:
                        continue
                    for ta in terms(a):
                        for tb in terms(b):
                            if has_term(tb, ta):
                                errors.append(f"{iid}: {ta!r} (interp {i}) occurs in {tb!r} (interp {j})")
                if amb and a["clarification"] in [b["clarification"] for j, b in enumerate(interps) if j != i]:
                    errors.append(f"{iid}: duplicate clarification {a['clarification']!r}")
    for iid, n in ids.items():
        if n > 1:
            errors.append(f"{iid}: duplicate id ({n}x)")

    total = sum(len(v) for v in data.values())
    doms_present = {iid.split("-")[0] for iid in ids}
    if total < 330:
        errors.append(f"only {total} items (< 330)")
    if len(doms_present) < 8:
        errors.append(f"only {len(doms_present)} domains (< 8)")
    print(f"{'domain':<10} " + "  ".join(f"{s:>14}" for s in SPLITS) + f"  {'total':>14}")
    for d in domain_names:
        row = []
        for s in SPLITS:
            row.append(f"{per[s][d]:>4} ({per[s][d + ':amb']:>3} amb)")
            if per[s][d] == 0:
                errors.append(f"split {s} has no {d} items")
        tot = sum(per[s][d] for s in SPLITS)
        tot_a = sum(per[s][d + ':amb'] for s in SPLITS)
        print(f"{d:<10} " + "  ".join(row) + f"  {tot:>4} ({tot_a:>3} amb)")
    for s in SPLITS:
        n = len(data[s])
        a = sum(len(it["interpretations"]) >= 2 for it in data[s])
        n3 = sum(len(it["interpretations"]) >= 3 for it in data[s])
        frac = a / n if n else 0
        clear = sum("-clear-" in it["id"] for it in data[s])
        solo = sum("-solo-" in it["id"] for it in data[s])
        print(f"{s}: {n} items, {a} ambiguous ({frac:.0%}; {n3} with 3 readings), "
              f"unambiguous: {clear} named-in-question + {solo} single-entity notes")
        if not 0.4 <= frac <= 0.6:
            errors.append(f"{s}: ambiguous fraction {frac:.2f} outside 40-60%")
    print(f"total: {total} items, {len(doms_present)} domains, {len(group_split)} groups")

    # determinism + template variety: rebuild in memory and compare
    rebuilt, stats = build()
    if any(rebuilt[s] != data[s] for s in SPLITS):
        errors.append("files differ from a fresh build (run build_benchmark.py without --check)")
    print("distinct question templates per domain: " +
          ", ".join(f"{d}={len(stats[d])}" for d in domain_names))
    qlen = defaultdict(list)
    for s in SPLITS:
        for it in data[s]:
            qlen["amb" if len(it["interpretations"]) > 1 else "unamb"].append(len(it["question"]))
    print("mean question length: " + ", ".join(f"{k}={sum(v) / len(v):.1f} chars" for k, v in sorted(qlen.items())))

    for w in warnings[:10]:
        print("warning:", w)
    if len(warnings) > 10:
        print(f"... {len(warnings) - 10} more warnings")
    for e in errors[:50]:
        print("ERROR:", e)
    print("CHECK", "FAILED" if errors else "OK", f"({len(errors)} errors, {len(warnings)} warnings)")
    return 1 if errors else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="validate the written files instead of writing them")
    args = ap.parse_args(argv)
    if args.check:
        return check()
    out, _ = build()
    write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
