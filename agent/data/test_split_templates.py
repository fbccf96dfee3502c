"""The vocabulary of the frozen test split's generator (agent/data/build_test_split.py): the shape of a fact
table (a Family: two or three Entities a user would call by the same name, and their Attrs), the fillers mixed
into notes of every domain, and the words values are spelled with. The fact tables themselves are in
test_split_families_1.py (pharmacy, parking, software releases, vet clinic) and test_split_families_2.py
(library loans, plant care, household bills, school).

Plain data: changing anything here changes the built file (agent/data/test.jsonl, whose sha256
docs/TEST_SPLIT.md pins).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --------------------------------------------------------------------------- fact table shapes


@dataclass
class Attr:
    key: str
    kind: str                      # time | money | date | month | qty | day | text
    facts: list[str]               # one fact as a sentence: {E} (sentence start) / {e} mention, {v} value
    intro: str                     # list sentence: "<intro>: A v1, B v2 and C v3."
    questions: list[str]           # {ref} is the entity as the user names it
    pair: str = "{s} {v}"          # one entry of the list sentence ({s}: short name)
    lo: tuple[str, str] | None = None   # indirect refs to the entity with the lowest value (of 2, of 3)
    hi: tuple[str, str] | None = None   # ... the highest value
    ask: bool = True               # asked with the generic ref (an ambiguous item)
    target: bool = True            # asked at all (False: only there to tell the entities apart)


@dataclass
class Entity:
    key: str
    mention: str                   # how the notes name it (lowercase "the ..." or a proper name)
    short: str                     # in list sentences
    refs: list[str]                # how a user names it in a question
    clar: list[str]                # the user's reply when asked which one
    vals: dict[str, object]        # attr key -> value or (value, [aliases])


@dataclass
class Family:
    domain: str
    key: str
    generic: list[str]             # the ambiguous way of naming any of the entities
    entities: list[Entity]
    attrs: list[Attr]
    fillers: list[str] = field(default_factory=list)
    intro: list[str] = field(default_factory=list)   # optional headers of the notes
    indirect: list[tuple[str, str, str]] = field(default_factory=list)  # (entity, ref, attr that backs it)


def E(key, mention, short, refs, clar, **vals) -> Entity:
    return Entity(key, mention, short, refs, clar, vals)



# Facts about nothing in particular, mixed into notes of every domain. No numbers, days or times,
# so they can never look like an answer.
GENERAL_FILLERS = [
    "Remember to buy more coffee filters.",
    "The hallway light needs a new bulb.",
    "The spare key is with the downstairs neighbour.",
    "!Aunt Rosa prefers phone calls to texts.",
    "The blue umbrella in the car belongs to the office.",
    "The neighbours are away, so their post comes to us.",
    "Nobody has claimed the grey scarf left at the party.",
    "The car needs new wiper blades.",
]

# --------------------------------------------------------------------------- values

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NUM_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 8: "eight", 10: "ten",
             20: "twenty"}
