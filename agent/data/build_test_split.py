#!/usr/bin/env python3
"""Build the frozen test split ``agent/data/test.jsonl`` (reporting only; see docs/TEST_SPLIT.md).

Its own generator, independent of ``build_benchmark.py`` (which makes train and dev): its own
domains (pharmacy, parking, software releases, vet records, library loans, plant care, household
bills, school), its own fact tables and wording, and note styles the other splits rarely use
(unrelated facts mixed in, facts joined by semicolons or commas or packed into one list
sentence, three-way ambiguity, entities named indirectly, lowercase and typos in questions).
The hand-written items of ``test_handwritten.jsonl`` are merged in, and the whole file is
shuffled with a fixed seed so ``--limit`` takes a mix.  Deterministic: the same inputs give the
same bytes.  Run::

    .venv/bin/python agent/data/build_test_split.py          # (re)write agent/data/test.jsonl

Every item is checked with the product's own loader (``agent.items``) and grader matching
(``agent.grader.mentions``: every answer occurs in its notes) before anything is written.
"""

from __future__ import annotations

import json
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from agent.grader import mentions  # noqa: E402
from agent.items import parse_items  # noqa: E402

SEED = 7061
ID_PREFIX = "t-"
OUT = HERE / "test.jsonl"
HANDWRITTEN = HERE / "test_handwritten.jsonl"
MAX_SENTENCES = 6
MAX_CONTEXT = 560

# --------------------------------------------------------------------------- fact tables


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

# ----------------------------------------------------------------- pharmacy and dosage

MEDS_FILLERS = [
    "Bring your insurance card when you pick up.",
    "Generic versions are used unless your doctor says otherwise.",
    "Text reminders are switched on for this account.",
    "Flu shots are available without an appointment.",
    "The drive-through window is closed for repairs.",
    "Ask the pharmacist before mixing any of these with alcohol.",
]

FAMILIES: list[Family] = []

FAMILIES.append(Family(
    "meds", "rx", ["my prescription", "the prescription"],
    [E("lisinopril", "the lisinopril", "Lisinopril", ["the lisinopril", "my lisinopril"],
       ["The lisinopril.", "I mean the lisinopril.", "Lisinopril, please."],
       copay="$4", refills="2 refills", ready="Tuesday"),
     E("atorvastatin", "the atorvastatin", "Atorvastatin", ["the atorvastatin", "my atorvastatin"],
       ["The atorvastatin.", "I mean the atorvastatin one.", "Atorvastatin."],
       copay="$12", refills="5 refills", ready="Friday"),
     E("amoxicillin", "the amoxicillin", "Amoxicillin", ["the amoxicillin", "my amoxicillin"],
       ["The amoxicillin.", "The antibiotic, amoxicillin.", "Amoxicillin, please."],
       copay="$9.50", refills="1 refill", ready="Thursday")],
    [Attr("copay", "money",
          ["{E} has a copay of {v}.", "The copay for {e} is {v}.", "{E} comes to {v} after insurance."],
          "Copays", ["What's the copay for {ref}?", "How much will I pay for {ref}?",
                     "How much is {ref} going to cost me?"],
          lo=("the cheaper prescription", "the cheapest prescription"),
          hi=("the pricier prescription", "the most expensive prescription")),
     Attr("refills", "qty", ["{E} has {v} left.", "{E} still has {v} remaining."],
          "Refills left", ["How many refills are left on {ref}?", "How many refills do I have on {ref}?"]),
     Attr("ready", "day", ["{E} will be ready on {v}.", "{E} is ready for pickup on {v}."],
          "Ready for pickup", ["When will {ref} be ready?", "What day can I pick up {ref}?"],
          pair="{s} on {v}",
          lo=("the prescription that's ready sooner", "the prescription that's ready first"),
          hi=("the prescription that's ready later", "the prescription that's ready last"))],
    MEDS_FILLERS, ["Prescriptions on file for J. Morales:", "Pharmacy account notes:"],
))

FAMILIES.append(Family(
    "meds", "ibuprofen", ["the ibuprofen", "my ibuprofen"],
    [E("200mg", "the 200 mg ibuprofen", "200 mg",
       ["the 200 mg ibuprofen", "the 200 mg tablets"],
       ["The 200 mg tablets.", "I mean the 200 mg ones.", "The lower strength, 200 mg."],
       maxday="6 tablets", gap="4 hours", price="$5.49"),
     E("400mg", "the 400 mg ibuprofen", "400 mg",
       ["the 400 mg ibuprofen", "the 400 mg tablets"],
       ["The 400 mg tablets.", "I mean the 400 mg ones.", "The stronger one, 400 mg."],
       maxday="3 tablets", gap="8 hours", price="$7.99")],
    [Attr("maxday", "qty",
          ["No more than {v} a day of {e}.", "The daily maximum for {e} is {v}.",
           "{E}: at most {v} in 24 hours."],
          "Daily maximum", ["How many tablets of {ref} can I take in a day?",
                            "What's the daily maximum for {ref}?"], pair="{v} of the {s}"),
     Attr("gap", "qty", ["Doses of {e} should be at least {v} apart.", "With {e}, wait {v} between doses."],
          "Time between doses", ["How long should I wait between doses of {ref}?",
                                 "How far apart do doses of {ref} need to be?"], pair="{v} for the {s}"),
     Attr("price", "money", ["A pack of {e} costs {v}.", "{E} is {v} a pack."],
          "Pack prices", ["How much is a pack of {ref}?", "What does {ref} cost?"],
          lo=("the cheaper ibuprofen", "the cheapest ibuprofen"),
          hi=("the pricier ibuprofen", "the priciest ibuprofen"))],
    MEDS_FILLERS, ["Medicine cabinet notes:", "From the pharmacy leaflet:"],
))

# ----------------------------------------------------------------------------- parking

PARKING_FILLERS = [
    "Overnight parking is not allowed on Main Street.",
    "Most pay machines take contactless cards.",
    "Lost tickets are charged the full daily maximum.",
    "Street sweeping happens early on weekday mornings.",
    "Motorcycles park free in the marked bays.",
    "The council wants feedback on the new signs.",
]

FAMILIES.append(Family(
    "parking", "garages", ["the garage", "the parking garage"],
    [E("pier-street", "the Pier Street garage", "Pier Street",
       ["the Pier Street garage", "the garage on Pier Street"],
       ["The one on Pier Street.", "Pier Street.", "I mean the Pier Street garage."],
       rate="$3.50", closes="11 pm", clearance="2.1 m"),
     E("market-square", "the Market Square garage", "Market Square",
       ["the Market Square garage", "the garage at Market Square"],
       ["The Market Square one.", "Market Square.", "I mean the garage at Market Square."],
       rate="$2.75", closes="9:30 pm", clearance="1.9 m"),
     E("station-road", "the Station Road garage", "Station Road",
       ["the Station Road garage", "the garage on Station Road"],
       ["Station Road.", "The one on Station Road.", "I mean the Station Road garage."],
       rate="$4.25", closes="midnight", clearance="2.3 m")],
    [Attr("rate", "money", ["{E} charges {v} an hour.", "Parking at {e} is {v} per hour.",
                            "An hour at {e} costs {v}."],
          "Hourly rates", ["How much is {ref} per hour?", "What does {ref} charge an hour?",
                           "What's the hourly rate at {ref}?"],
          lo=("the cheaper garage", "the cheapest garage"),
          hi=("the pricier garage", "the most expensive garage")),
     Attr("closes", "time", ["{E} closes at {v}.", "{E} locks its gates at {v}."],
          "Closing times", ["What time does {ref} close?", "How late is {ref} open?", "When does {ref} shut?"],
          hi=("the garage that stays open later", "the garage that stays open latest"),
          lo=("the garage that closes earlier", "the garage that closes earliest")),
     Attr("clearance", "qty", ["{E} has a height limit of {v}.", "The clearance at {e} is {v}."],
          "Height limits", ["What's the height limit at {ref}?", "What's the clearance at {ref}?"],
          hi=("the garage with the higher clearance", "the garage with the highest clearance"),
          lo=("the garage with the lower clearance", "the garage with the lowest clearance"))],
    PARKING_FILLERS, ["City parking notes:"],
))

FAMILIES.append(Family(
    "parking", "airport", ["airport parking", "parking at the airport"],
    [E("short-stay", "the short-stay lot", "short-stay", ["the short-stay lot", "short-stay parking"],
       ["The short-stay lot.", "Short stay.", "I mean short-stay parking."],
       daily="$45", walk="3 minutes"),
     E("long-stay", "the long-stay lot", "long-stay", ["the long-stay lot", "long-stay parking"],
       ["The long-stay lot.", "Long stay.", "I mean long-stay parking."],
       daily="$18", walk="10 minutes"),
     E("economy", "the economy lot", "economy", ["the economy lot", "economy parking"],
       ["The economy lot.", "Economy.", "I mean the economy one."],
       daily="$11", walk="20 minutes")],
    [Attr("daily", "money", ["{E} costs {v} a day.", "A day in {e} is {v}."],
          "Daily rates", ["How much is {ref} per day?", "What does {ref} cost for a day?"],
          lo=("the cheaper lot", "the cheapest lot"), hi=("the pricier lot", "the most expensive lot")),
     Attr("walk", "qty", ["From {e} it's {v} to the terminal.", "{E} is {v} from the terminal."],
          "Time to the terminal", ["How far is {ref} from the terminal?",
                                   "How long does it take to get from {ref} to the terminal?"],
          pair="{v} from the {s} lot",
          lo=("the lot nearer the terminal", "the lot nearest the terminal"),
          hi=("the lot farther from the terminal", "the lot farthest from the terminal"))],
    PARKING_FILLERS + ["The terminal drop-off zone allows five minutes of waiting."],
    ["Airport parking options:"],
))

FAMILIES.append(Family(
    "parking", "permits", ["my parking permit", "the residents' permit"],
    [E("zone-a", "the Zone A permit", "Zone A", ["the Zone A permit", "my Zone A permit"],
       ["Zone A.", "The Zone A one.", "I'm in Zone A."], price="$60", renew="March 31"),
     E("zone-b", "the Zone B permit", "Zone B", ["the Zone B permit", "my Zone B permit"],
       ["Zone B.", "The Zone B one.", "I'm in Zone B."], price="$85", renew="September 30")],
    [Attr("price", "money", ["{E} costs {v} a year.", "The yearly price of {e} is {v}."],
          "Yearly prices", ["How much is {ref} a year?", "What does {ref} cost per year?"],
          lo=("the cheaper permit", "the cheapest permit"), hi=("the pricier permit", "the priciest permit")),
     Attr("renew", "date", ["{E} must be renewed by {v}.", "{E} expires on {v}."],
          "Renewal deadlines", ["When do I need to renew {ref}?", "When does {ref} expire?"])],
    PARKING_FILLERS, ["Residents' parking:"],
))

# ------------------------------------------------------------------- software releases

SOFTWARE_FILLERS = [
    "Release notes are posted on the project blog.",
    "Security fixes are announced on the mailing list.",
    "The download mirror in Frankfurt is being retired.",
    "Bug reports go through the public tracker.",
    "Nightly builds are not signed.",
    "The installer now checks for free disk space first.",
]

FAMILIES.append(Family(
    "software", "harbor-os", ["Harbor OS"],
    [E("v5", "Harbor OS 5", "version 5", ["Harbor OS 5", "version 5 of Harbor OS"],
       ["Version 5.", "Harbor OS 5, the LTS one.", "I'm on 5."],
       released="March 2022", support="April 2027", download="3.2 GB"),
     E("v6", "Harbor OS 6", "version 6", ["Harbor OS 6", "version 6 of Harbor OS"],
       ["Version 6.", "Harbor OS 6.", "I'm on 6."],
       released="September 2023", support="October 2025", download="3.8 GB"),
     E("v7", "Harbor OS 7", "version 7", ["Harbor OS 7", "version 7 of Harbor OS"],
       ["Version 7.", "Harbor OS 7, the newest.", "I'm on 7."],
       released="May 2025", support="May 2028", download="4.1 GB")],
    [Attr("support", "month", ["{E} gets security updates until {v}.", "Support for {e} ends in {v}."],
          "End of support", ["When does support end for {ref}?", "Until when does {ref} get security updates?"],
          pair="{s} in {v}"),
     Attr("released", "month", ["{E} was released in {v}.", "{E} came out in {v}."],
          "Release dates", ["When was {ref} released?", "When did {ref} come out?"], pair="{s} in {v}",
          lo=("the older version of Harbor OS", "the oldest version of Harbor OS"),
          hi=("the newer version of Harbor OS", "the newest version of Harbor OS"), ask=False),
     Attr("download", "qty", ["{E} is a {v} download.", "The installer for {e} is {v}."],
          "Download sizes", ["How big is the download for {ref}?", "What's the download size of {ref}?"],
          pair="{v} for {s}", ask=False)],
    SOFTWARE_FILLERS, ["Harbor OS release notes:"],
))

FAMILIES.append(Family(
    "software", "api", ["the Tidewater API", "the API"],
    [E("v1", "version 1 of the Tidewater API", "v1", ["API v1", "the v1 API"],
       ["v1.", "I'm still on version 1.", "The v1 API."],
       rate=("100 requests per minute", ["100 requests a minute", "100 requests/minute", "100 per minute",
                                         "100 requests"]),
       upload="10 MB"),
     E("v2", "version 2 of the Tidewater API", "v2", ["API v2", "the v2 API"],
       ["v2.", "I'm on version 2.", "The v2 API."],
       rate=("600 requests per minute", ["600 requests a minute", "600 requests/minute", "600 per minute",
                                         "600 requests"]),
       upload="50 MB")],
    [Attr("rate", "text", ["{E} allows {v}.", "The rate limit for {e} is {v}."],
          "Rate limits", ["What's the rate limit on {ref}?", "How many requests per minute does {ref} allow?"],
          pair="{v} on {s}"),
     Attr("upload", "qty", ["{E} accepts uploads of up to {v}.", "The upload limit for {e} is {v}."],
          "Upload limits", ["What's the upload limit on {ref}?", "How big a file can I upload with {ref}?"],
          pair="{v} on {s}")],
    SOFTWARE_FILLERS, ["Tidewater developer notes:"],
    indirect=[("v2", "the newer API version", "rate"), ("v1", "the older API version", "rate")],
))

FAMILIES.append(Family(
    "software", "notely", ["Notely", "the Notely app"],
    [E("ios", "the iOS app", "iOS", ["the iOS app", "Notely on iOS"],
       ["The iOS app.", "I'm on an iPhone, so iOS.", "iOS."],
       version="4.12", minos="iOS 16"),
     E("android", "the Android app", "Android", ["the Android app", "Notely on Android"],
       ["The Android app.", "Android.", "I use it on an Android phone."],
       version="4.11.2", minos="Android 10"),
     E("windows", "the Windows app", "Windows", ["the Windows app", "Notely on Windows"],
       ["The Windows app.", "Windows.", "On my Windows laptop."],
       version="4.10", minos="Windows 11")],
    [Attr("version", "text", ["{E} is at version {v}.", "The current release of {e} is {v}."],
          "Latest versions", ["What's the latest version of {ref}?", "Which version is {ref} on now?"]),
     Attr("minos", "text", ["{E} needs {v} or later.", "{E} runs on {v} and up."],
          "Minimum systems", ["What system does {ref} need?", "What's the minimum OS for {ref}?"],
          pair="{v} for the {s} app")],
    SOFTWARE_FILLERS, ["Notely release status:"],
))

# --------------------------------------------------------------------- vet clinic records

VET_FILLERS = [
    "The clinic is closed on public holidays.",
    "!Dr. Alvarez is on leave until next month.",
    "Bring a stool sample to annual checkups.",
    "Flea treatment is cheaper in the three-pack.",
    "The waiting room has a separate area for cats.",
    "Call ahead if your pet needs to be sedated.",
]

FAMILIES.append(Family(
    "vet", "dogs", ["my dog", "the dog"],
    [E("biscuit", "Biscuit", "Biscuit", ["Biscuit"], ["Biscuit.", "Biscuit, the beagle.", "I mean Biscuit."],
       weight="11 kg", booster="May 12", food="1 cup"),
     E("pepper", "Pepper", "Pepper", ["Pepper"], ["Pepper.", "Pepper, the collie.", "I mean Pepper."],
       weight="19 kg", booster="October 3", food="2 cups")],
    [Attr("weight", "qty", ["{E} weighed {v} at the last visit.", "{E}'s weight is {v}."],
          "Weights", ["How much does {ref} weigh?", "What did {ref} weigh at the last visit?"],
          lo=("the lighter dog", "the lightest dog"), hi=("the heavier dog", "the heaviest dog")),
     Attr("booster", "date", ["{E}'s rabies booster is due on {v}.", "{E} needs a rabies booster by {v}."],
          "Rabies boosters due", ["When is {ref}'s rabies booster due?",
                                  "When does {ref} need the next rabies shot?"]),
     Attr("food", "qty", ["{E} should get {v} of kibble per meal.", "{E} eats {v} of food at each meal."],
          "Food per meal", ["How much food should {ref} get per meal?",
                            "How much kibble does {ref} get at each meal?"])],
    VET_FILLERS, ["Lakeside Vet records for the Novak household:", "Pet notes:"],
))

FAMILIES.append(Family(
    "vet", "cats", ["my cat", "the cat"],
    [E("miso", "Miso", "Miso", ["Miso"], ["Miso.", "I mean Miso.", "Miso, the ginger one."],
       weight="4.2 kg", checkup="June 4", diet=("renal diet", ["renal"])),
     E("tofu", "Tofu", "Tofu", ["Tofu"], ["Tofu.", "I mean Tofu.", "Tofu, the white one."],
       weight="5.8 kg", checkup="June 18", diet=("weight-control diet", ["weight control", "weight-control"])),
     E("juniper", "Juniper", "Juniper", ["Juniper"], ["Juniper.", "I mean Juniper.", "Juniper, the kitten."],
       weight="3.6 kg", checkup="July 2", diet=("sensitive-stomach diet", ["sensitive stomach"]))],
    [Attr("weight", "qty", ["{E} weighs {v}.", "{E} came in at {v} on the clinic scale."],
          "Weights", ["How much does {ref} weigh?", "What's {ref}'s weight?"],
          lo=("the lighter cat", "the lightest cat"), hi=("the heavier cat", "the heaviest cat")),
     Attr("checkup", "date", ["{E}'s next checkup is on {v}.", "{E} is booked for a checkup on {v}."],
          "Next checkups", ["When is {ref}'s next checkup?", "When's {ref} due at the vet next?"]),
     Attr("diet", "text", ["{E} is on a {v}.", "{E} has been switched to a {v}."],
          "Diets", ["Which diet is {ref} on?", "What food is {ref} supposed to eat?"], pair="{s} on a {v}")],
    VET_FILLERS, ["Cat care notes:"],
))

FAMILIES.append(Family(
    "vet", "visits", ["my appointment", "our vet appointment"],
    [E("dental", "the dental cleaning", "dental cleaning", ["the dental cleaning", "the teeth cleaning"],
       ["The dental cleaning.", "The teeth cleaning one.", "I mean the dental."],
       date="April 8", time="9:15 am"),
     E("vaccines", "the vaccination visit", "vaccinations", ["the vaccination visit", "the vaccine appointment"],
       ["The vaccination visit.", "The one for the vaccines.", "I mean the vaccinations."],
       date="April 15", time="3:40 pm")],
    [Attr("date", "date", ["{E} is on {v}.", "{E} is booked for {v}."],
          "Appointments", ["What day is {ref}?", "When is {ref}?"], pair="{s} on {v}",
          lo=("the first appointment", "the first appointment"), hi=("the second appointment", "the last appointment")),
     Attr("time", "time", ["{E} starts at {v}.", "Please arrive for {e} by {v}."],
          "Start times", ["What time is {ref}?", "What time should we be there for {ref}?"], pair="{s} at {v}")],
    VET_FILLERS, ["Lakeside Vet bookings:"],
))

# ------------------------------------------------------------------------- library loans

LIBRARY_FILLERS = [
    "The book drop is emptied every morning.",
    "The children's section is being repainted.",
    "Museum passes can be reserved online.",
    "Quiet study rooms are upstairs.",
    "The used-book sale raises money for the branch.",
    "Printing is paid at the front desk.",
]

FAMILIES.append(Family(
    "library", "loans", ["my library book", "the book I borrowed"],
    [E("orchard", "The Silent Orchard", "The Silent Orchard", ["The Silent Orchard"],
       ["The Silent Orchard.", "The Silent Orchard, please.", "I mean The Silent Orchard."],
       due="May 6", renewals=("2 renewals", ["two renewals", "2 more times", "two more times", "twice"]),
       branch=("the Harbor branch", ["Harbor branch", "Harbor"])),
     E("mosses", "A Field Guide to Mosses", "A Field Guide to Mosses",
       ["A Field Guide to Mosses", "the moss guide"],
       ["The moss field guide.", "A Field Guide to Mosses.", "I mean the guide to mosses."],
       due="May 13", renewals=("1 renewal", ["one renewal", "1 more time", "one more time"]),
       branch=("Central Library", ["Central", "the central library"])),
     E("trains", "Night Trains of Europe", "Night Trains of Europe", ["Night Trains of Europe", "the train book"],
       ["Night Trains of Europe.", "The one about night trains.", "I mean Night Trains of Europe."],
       due="May 20", renewals=("3 renewals", ["three renewals", "3 more times", "three more times"]),
       branch=("the Elm Street branch", ["Elm Street branch", "Elm Street"]))],
    [Attr("due", "date", ["{E} is due back on {v}.", "The due date for {e} is {v}."],
          "Due dates", ["When is {ref} due?", "When do I have to return {ref}?"],
          lo=("the book that's due sooner", "the book that's due first"),
          hi=("the book that's due later", "the book that's due last")),
     Attr("renewals", "text", ["{E} has {v} left.", "{E} still has {v} left."],
          "Renewals left", ["How many renewals are left on {ref}?", "How many times can I still renew {ref}?"]),
     Attr("branch", "text", ["{E} was borrowed from {v}.", "{E} belongs to {v}."],
          "Home branches", ["Which branch does {ref} belong to?", "Which branch did {ref} come from?"],
          pair="{s} from {v}")],
    LIBRARY_FILLERS, ["Library account, current loans:", "Loans on card ending 4471:"],
))

FAMILIES.append(Family(
    "library", "holds", ["my hold", "the book on hold for me"],
    [E("salt", "Salt and Smoke", "Salt and Smoke", ["Salt and Smoke"],
       ["Salt and Smoke.", "The one called Salt and Smoke.", "I mean Salt and Smoke."],
       shelf="H-12", until="May 9"),
     E("winter", "Winter Harbors", "Winter Harbors", ["Winter Harbors"],
       ["Winter Harbors.", "Winter Harbors, please.", "I mean Winter Harbors."],
       shelf="H-31", until="May 11")],
    [Attr("shelf", "text", ["{E} is waiting on hold shelf {v}.", "Pick up {e} from shelf {v}."],
          "Hold shelves", ["Where do I pick up {ref}?", "Which hold shelf has {ref}?"], pair="{s} on {v}"),
     Attr("until", "date", ["{E} will be held until {v}.", "Collect {e} by {v}."],
          "Held until", ["Until when is {ref} held?", "When do I need to collect {ref} by?"],
          lo=("the hold that expires sooner", "the hold that expires first"))],
    LIBRARY_FILLERS, ["Holds ready for pickup:"],
))

FAMILIES.append(Family(
    "library", "rooms", ["my study room booking"],
    [E("tuesday", "the Tuesday booking", "Tuesday", ["the Tuesday booking", "my Tuesday study room"],
       ["The Tuesday one.", "Tuesday's booking.", "I mean Tuesday."], room="Room 3", start="10 am"),
     E("thursday", "the Thursday booking", "Thursday", ["the Thursday booking", "my Thursday study room"],
       ["The Thursday one.", "Thursday's booking.", "I mean Thursday."], room="Room 7", start="4 pm")],
    [Attr("room", "text", ["{E} is in {v}.", "{E} is for {v}."],
          "Rooms", ["Which room is {ref} in?", "What room did I get for {ref}?"], pair="{s} in {v}"),
     Attr("start", "time", ["{E} starts at {v}.", "{E} begins at {v}."],
          "Start times", ["What time does {ref} start?", "When does {ref} begin?"], pair="{s} at {v}",
          lo=("the earlier booking", "the earliest booking"))],
    LIBRARY_FILLERS, ["Study room bookings:"],
))

# ---------------------------------------------------------------------------- plant care

GARDEN_FILLERS = [
    "The compost bin needs turning.",
    "Slugs have been eating the lettuce.",
    "Rain barrels should be emptied before the frost.",
    "The shed key is under the blue pot.",
    "Mulch keeps the roots cool in summer.",
    "The hose has a slow leak near the tap.",
]

FAMILIES.append(Family(
    "garden", "ferns", ["the fern", "my fern"],
    [E("boston", "the Boston fern", "Boston fern", ["the Boston fern"],
       ["The Boston fern.", "The big Boston one.", "I mean the Boston fern."],
       water=("every 3 days", ["every three days"]), light=("bright indirect light", ["indirect light"])),
     E("maidenhair", "the maidenhair fern", "maidenhair fern", ["the maidenhair fern", "the maidenhair"],
       ["The maidenhair.", "The maidenhair fern.", "I mean the delicate maidenhair one."],
       water=("every day", ["daily"]), light=("shade", ["shady spot"])),
     E("birds-nest", "the bird's nest fern", "bird's nest fern", ["the bird's nest fern"],
       ["The bird's nest fern.", "The bird's nest one.", "I mean the bird's nest fern."],
       water=("once a week", ["weekly", "every week"]), light=("morning sun", ["morning sunlight"]))],
    [Attr("water", "text", ["Water {e} {v}.", "{E} wants water {v}."],
          "Watering", ["How often should I water {ref}?", "How often does {ref} need water?"]),
     Attr("light", "text", ["{E} likes {v}.", "Keep {e} in {v}."],
          "Light", ["What kind of light does {ref} need?", "What light does {ref} like?"])],
    GARDEN_FILLERS, ["Houseplant notes:"],
))

FAMILIES.append(Family(
    "garden", "tomatoes", ["the tomatoes", "my tomato plants"],
    [E("cherry", "the cherry tomatoes", "cherry tomatoes", ["the cherry tomatoes"],
       ["The cherry tomatoes.", "The little cherry ones.", "I mean the cherry tomatoes."],
       spacing="45 cm", harvest="65 days"),
     E("beefsteak", "the beefsteak tomatoes", "beefsteak tomatoes", ["the beefsteak tomatoes"],
       ["The beefsteak tomatoes.", "The big beefsteak ones.", "I mean the beefsteaks."],
       spacing="60 cm", harvest="85 days")],
    [Attr("spacing", "qty", ["Space {e} {v} apart.", "{E} need {v} between plants."],
          "Spacing", ["How far apart should I plant {ref}?", "What spacing do {ref} need?"]),
     Attr("harvest", "qty", ["{E} are ready to pick about {v} after planting.",
                             "Expect to harvest {e} {v} after planting."],
          "Days to harvest", ["How long until {ref} are ready to pick?", "How many days until I can harvest {ref}?"],
          lo=("the tomatoes that ripen sooner", "the tomatoes that ripen soonest"),
          hi=("the tomatoes that take longer to ripen", "the tomatoes that take longest to ripen"))],
    GARDEN_FILLERS, ["Vegetable bed plan:"],
))

FAMILIES.append(Family(
    "garden", "feed", ["the plant food", "the fertilizer"],
    [E("rose", "the rose feed", "rose feed", ["the rose feed"],
       ["The rose feed.", "The one for the roses.", "I mean the rose feed."],
       dose="10 ml", often=("every 2 weeks", ["every two weeks", "fortnightly"])),
     E("lawn", "the lawn feed", "lawn feed", ["the lawn feed"],
       ["The lawn feed.", "The one for the grass.", "I mean the lawn feed."],
       dose="25 ml", often=("every 6 weeks", ["every six weeks"])),
     E("tomato", "the tomato feed", "tomato feed", ["the tomato feed"],
       ["The tomato feed.", "The one for the tomatoes.", "I mean the tomato feed."],
       dose="20 ml", often=("every week", ["weekly", "once a week"]))],
    [Attr("dose", "qty", ["Use {v} of {e} per watering can.", "{E}: {v} per can of water."],
          "Doses per watering can", ["How much of {ref} goes in a watering can?",
                                     "How much of {ref} do I mix per can?"]),
     Attr("often", "text", ["Apply {e} {v}.", "{E} goes on {v}."],
          "How often", ["How often should I use {ref}?", "How often does {ref} go on?"])],
    GARDEN_FILLERS, ["Garden shed labels:"],
))

# ------------------------------------------------------------------------- household bills

BILLS_FILLERS = [
    "Paper statements now cost extra.",
    "The landlord covers the trash service.",
    "Meter readings are estimated in winter.",
    "Late payments add a small fee.",
    "Paperless billing is switched on for every account.",
    "The bank card on file expires soon.",
]

FAMILIES.append(Family(
    "bills", "utilities", ["my bill", "the utility bill"],
    [E("electricity", "the electricity bill", "Electricity", ["the electricity bill", "the power bill"],
       ["The electricity bill.", "Electricity.", "The power one."], amount="$84.20", due="June 12"),
     E("water", "the water bill", "Water", ["the water bill"],
       ["The water bill.", "Water.", "I mean the water one."], amount="$31.75", due="June 20"),
     E("gas", "the gas bill", "Gas", ["the gas bill"],
       ["The gas bill.", "Gas.", "I mean the gas one."], amount="$56.10", due="June 28")],
    [Attr("amount", "money", ["{E} is {v} this month.", "{E} came to {v}."],
          "This month's amounts", ["How much is {ref} this month?", "What do I owe on {ref}?"],
          lo=("the smaller bill", "the smallest bill"), hi=("the bigger bill", "the biggest bill")),
     Attr("due", "date", ["{E} is due on {v}.", "Payment for {e} is due {v}."],
          "Due dates", ["When is {ref} due?", "What's the due date for {ref}?"],
          lo=("the bill that's due sooner", "the bill that's due first"))],
    BILLS_FILLERS, ["Household bills for June:"],
))

FAMILIES.append(Family(
    "bills", "subscriptions", ["my subscription"],
    [E("reelbox", "Reelbox", "Reelbox", ["Reelbox", "the Reelbox subscription"],
       ["Reelbox.", "The Reelbox one.", "I mean Reelbox."],
       price="$15.99", renews="July 3"),
     E("tunely", "Tunely", "Tunely", ["Tunely", "my Tunely plan"],
       ["Tunely.", "The Tunely one.", "I mean Tunely."], price="$10.99", renews="July 19"),
     E("vaultly", "Vaultly", "Vaultly", ["Vaultly", "the Vaultly plan"],
       ["Vaultly.", "The Vaultly one.", "I mean Vaultly."], price="$2.99", renews="August 1")],
    [Attr("price", "money", ["{E} costs {v} a month.", "{E} charges {v} per month."],
          "Monthly prices", ["How much is {ref} a month?", "What am I paying per month for {ref}?"],
          lo=("the cheaper subscription", "the cheapest subscription"),
          hi=("the pricier subscription", "the priciest subscription")),
     Attr("renews", "date", ["{E} renews on {v}.", "{E} will renew on {v}."],
          "Renewal dates", ["When does {ref} renew?", "When is {ref} up for renewal?"], pair="{s} on {v}")],
    BILLS_FILLERS, ["Subscriptions on the joint card:"],
))

FAMILIES.append(Family(
    "bills", "insurance", ["my insurance", "the insurance policy"],
    [E("home", "the home insurance", "Home", ["the home insurance", "the house insurance"],
       ["The home insurance.", "For the house.", "I mean home insurance."],
       deductible="$500", premium="$38", renewal="September 9"),
     E("car", "the car insurance", "Car", ["the car insurance", "the auto policy"],
       ["The car insurance.", "For the car.", "I mean the auto policy."],
       deductible="$1,000", premium="$71", renewal="November 15")],
    [Attr("deductible", "money", ["{E} has a {v} deductible.", "The deductible on {e} is {v}."],
          "Deductibles", ["What's the deductible on {ref}?", "How big is the deductible for {ref}?"]),
     Attr("premium", "money", ["{E} costs {v} a month.", "The monthly premium for {e} is {v}."],
          "Monthly premiums", ["How much is {ref} a month?", "What's the monthly premium for {ref}?"],
          lo=("the cheaper policy", "the cheapest policy"), hi=("the pricier policy", "the priciest policy")),
     Attr("renewal", "date", ["{E} renews on {v}.", "{E} is up for renewal on {v}."],
          "Renewals", ["When does {ref} renew?", "When is {ref} up for renewal?"], pair="{s} on {v}")],
    BILLS_FILLERS, ["Insurance summary:"],
))

# --------------------------------------------------------------------------------- school

SCHOOL_FILLERS = [
    "Picture day forms are in the blue folder.",
    "The bake sale needs volunteers.",
    "Lost property is kept by the gym doors.",
    "The school nurse asked for updated allergy forms.",
    "Parents' evening sign-up opens soon.",
    "Library bags go back every week.",
]

FAMILIES.append(Family(
    "school", "kids", ["my kid", "my child"],
    [E("maya", "Maya", "Maya", ["Maya"], ["Maya.", "I mean Maya.", "Maya, my older one."],
       grade=("grade 3", ["third grade", "3rd grade"]), teacher=("Ms. Okafor", ["Okafor"]),
       pickup=("3:15 pm", ["3:15 p.m.", "15:15"])),
     E("leo", "Leo", "Leo", ["Leo"], ["Leo.", "I mean Leo.", "Leo, the little one."],
       grade=("kindergarten", ["kinder"]), teacher=("Mr. Lindqvist", ["Lindqvist"]),
       pickup=("12:30 pm", ["12:30 p.m."]))],
    [Attr("grade", "text", ["{E} is in {v}.", "{E} started {v} this year."],
          "Grades", ["What grade is {ref} in?"], ask=False, target=False),
     Attr("teacher", "text", ["{E}'s teacher is {v}.", "{E} is in {v}'s class."],
          "Teachers", ["Who is {ref}'s teacher?", "What's the name of {ref}'s teacher?"]),
     Attr("pickup", "text", ["{E} gets out at {v}.", "Pickup for {e} is at {v}."],
          "Pickup times", ["What time do I pick up {ref}?", "When does {ref} get out of school?"],
          pair="{s} at {v}")],
    SCHOOL_FILLERS, ["School notes for the Haddad kids:"],
    indirect=[("maya", "my third grader", "grade"), ("leo", "my kindergartner", "grade")],
))

FAMILIES.append(Family(
    "school", "clubs", ["the after-school club", "Sam's club"],
    [E("chess", "chess club", "Chess", ["chess club", "the chess club"],
       ["Chess club.", "The chess one.", "I mean chess."],
       day=("Monday", ["Mondays"]), room="art room", fee="$40"),
     E("robotics", "robotics club", "Robotics", ["robotics club", "the robotics club"],
       ["Robotics.", "The robotics club.", "I mean robotics."],
       day=("Wednesday", ["Wednesdays"]), room="science lab", fee="$65"),
     E("choir", "choir", "Choir", ["choir", "the choir"],
       ["Choir.", "The choir.", "I mean choir practice."],
       day=("Thursday", ["Thursdays"]), room="music room", fee="$25")],
    [Attr("day", "day", ["{E} meets every {v}.", "{E} is on {v} after school."],
          "Meeting days", ["What day is {ref}?", "Which day does {ref} meet?"], pair="{s} on {v}"),
     Attr("room", "text", ["{E} meets in the {v}.", "{E} uses the {v}."],
          "Rooms", ["Where does {ref} meet?", "Which room is {ref} in?"], pair="{s} in the {v}"),
     Attr("fee", "money", ["{E} costs {v} a term.", "The term fee for {e} is {v}."],
          "Term fees", ["How much is {ref} per term?", "What's the fee for {ref}?"],
          lo=("the cheaper club", "the cheapest club"), hi=("the pricier club", "the priciest club"))],
    SCHOOL_FILLERS, ["Sam's after-school clubs:"],
))

FAMILIES.append(Family(
    "school", "trips", ["the field trip", "the school trip"],
    [E("museum", "the museum trip", "Museum", ["the museum trip", "the trip to the museum"],
       ["The museum trip.", "The museum one.", "I mean the trip to the museum."],
       date="March 12", cost="$8"),
     E("zoo", "the zoo trip", "Zoo", ["the zoo trip", "the trip to the zoo"],
       ["The zoo trip.", "The zoo one.", "I mean the trip to the zoo."],
       date="April 2", cost="$14")],
    [Attr("date", "date", ["{E} is on {v}.", "{E} takes place on {v}."],
          "Trip dates", ["When is {ref}?", "What's the date of {ref}?"], pair="{s} on {v}",
          lo=("the earlier trip", "the earliest trip"), hi=("the later trip", "the latest trip")),
     Attr("cost", "money", ["{E} costs {v}.", "Please send {v} for {e}."],
          "Costs", ["How much is {ref}?", "What does {ref} cost?"],
          lo=("the cheaper trip", "the cheapest trip"), hi=("the pricier trip", "the priciest trip"))],
    SCHOOL_FILLERS, ["Class newsletter:"],
))

DOMAINS = sorted({f.domain for f in FAMILIES})

# --------------------------------------------------------------------------- values

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NUM_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 8: "eight", 10: "ten",
             20: "twenty"}


def value_of(entity: Entity, attr: Attr) -> tuple[str, list[str]]:
    """The entity's value of `attr` and its aliases (given, else made from the value's kind)."""
    raw = entity.vals[attr.key]
    value, aliases = (raw[0], list(raw[1])) if isinstance(raw, tuple) else (raw, auto_aliases(raw, attr.kind))
    seen = {value.casefold()}
    out = []
    for alias in aliases:
        if alias.casefold() not in seen:
            seen.add(alias.casefold())
            out.append(alias)
    return value, out


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def auto_aliases(v: str, kind: str) -> list[str]:
    if kind == "money":
        amount = v.lstrip("$")
        out = [f"{amount} dollars"]
        if "." not in amount:
            out.append(f"${amount}.00")
        return out
    if kind == "time":
        if v == "midnight":
            return ["12 am", "12:00 am"]
        m = re.fullmatch(r"(\d+)(?::(\d+))? (am|pm)", v)
        hour, minute, half = int(m[1]), m[2] or "00", m[3]
        out = [f"{hour}:{minute} {half[0]}.m."]            # "11:00 p.m.", "9:30 p.m."
        if m[2] is None:
            out[:0] = [f"{hour}:{minute} {half}", f"{hour} {half[0]}.m."]   # "11:00 pm", "11 p.m."
        if half == "pm" and hour != 12:                     # "23:00"
            out.append(f"{hour + 12}:{minute}")
        return out
    if kind == "date":
        month, day = v.split()
        return [f"{month[:3]} {day}", f"{day} {month}", f"{month} {ordinal(int(day))}"]
    if kind == "month":
        month, year = v.split()
        return [f"{month[:3]} {year}"]
    if kind == "day":
        return [v + "s"]
    if kind == "qty":
        number, unit = v.split(" ", 1)
        units = {"mg": "milligrams", "kg": "kilograms", "m": "meters", "cm": "centimeters", "ml": "milliliters",
                 "MB": "megabytes", "GB": "gigabytes"}
        if unit in units:   # "45cm", "45 centimeters"
            return [f"{number}{unit}", f"{number} {units[unit]}"]
        if number.isdigit() and int(number) in NUM_WORDS:   # "two refills", "eight hours"
            return [f"{NUM_WORDS[int(number)]} {unit}"]
        return []
    return []


def sort_key(v: str, kind: str) -> float:
    if kind == "money":
        return float(v.lstrip("$").replace(",", ""))
    if kind == "time":
        if v == "midnight":
            return 24 * 60
        m = re.fullmatch(r"(\d+)(?::(\d+))? (am|pm)", v)
        return (int(m[1]) % 12 + (12 if m[3] == "pm" else 0)) * 60 + int(m[2] or 0)
    if kind == "date":
        month, day = v.split()
        return MONTHS.index(month) * 40 + int(day)
    if kind == "month":
        month, year = v.split()
        return int(year) * 12 + MONTHS.index(month)
    if kind == "day":
        return DAYS.index(v)
    if kind == "qty":
        return float(v.split()[0])
    raise ValueError(f"no order for {kind} values")


# ------------------------------------------------------------------------- sentences


@dataclass
class Sentence:
    text: str           # with its full stop
    lower_ok: bool      # its first letter may be lowercased after a semicolon or comma
    about: str = ""     # "fact:<attr>" / "list:<attr>" (all entities in one sentence) / "filler"
    joined: bool = False  # already two facts in one sentence


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def filler(text: str) -> Sentence:
    return Sentence(text.lstrip("!"), not text.startswith("!"), "filler")


def fact(rng: random.Random, ent: Entity, attr: Attr) -> Sentence:
    template = rng.choice(attr.facts)
    value, _ = value_of(ent, attr)
    text = template.format(E=cap(ent.mention), e=ent.mention, v=value)
    # After a semicolon "the lisinopril ..." or "chess club ..." may go lowercase; "Biscuit ..." may not.
    lower_ok = not template.startswith("{E}") or ent.mention[:1].islower()
    return Sentence(cap(text), lower_ok, f"fact:{attr.key}")


def list_sentence(ents: list[Entity], attr: Attr) -> Sentence:
    parts = [attr.pair.format(s=e.short, v=value_of(e, attr)[0]) for e in ents]
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    # joined=True: a list sentence is never glued to another one
    return Sentence(f"{attr.intro}: {body}.", True, f"list:{attr.key}", joined=True)


def join(a: Sentence, b: Sentence, glue: str) -> Sentence:
    second = b.text
    if b.lower_ok:
        second = second[:1].lower() + second[1:]
    about = a.about if a.about.startswith("fact:") else b.about
    return Sentence(a.text[:-1] + glue + second, a.lower_ok, about, joined=True)


def facts_block(rng: random.Random, ents: list[Entity], attr: Attr, style: str) -> list[Sentence]:
    """The facts of `attr` for `ents`: one sentence each, one list sentence, or joined by ';' / ','."""
    if style == "list" and len(ents) >= 2:
        return [list_sentence(ents, attr)]
    sents = [fact(rng, e, attr) for e in ents]
    if style == "semicolon" and len(sents) >= 2:
        out = sents[0]
        for s in sents[1:]:
            out = join(out, s, "; ")
        return [out]
    if style == "comma" and len(sents) >= 2:
        out = sents[0]
        for s in sents[1:-1]:
            out = join(out, s, ", ")
        return [join(out, sents[-1], ", and ")]
    return sents


# ------------------------------------------------------------------------- questions

TYPO_SAFE = re.compile(r"^[a-z]{4,}$")


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["swap", "drop", "double"])
    if kind == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1:]


def render_question(rng: random.Random, template: str, ref: str, style: str) -> str:
    """A question from `template` with {ref}; `style`: plain | lower | typo | lower-typo.

    Typos only touch the template's own words (never the entity the user names)."""
    assert not template.startswith("{"), template
    if style in ("typo", "lower-typo"):
        words = template.split(" ")
        slots = [i for i, w in enumerate(words) if TYPO_SAFE.match(w.lower()) and "{" not in w]
        if slots:
            i = rng.choice(slots)
            words[i] = typo(words[i], rng)
        template = " ".join(words)
    q = template.replace("{ref}", ref)
    opener = rng.choice(["", "", "", "", "Hi, ", "Quick question: ", "Hey, "])
    if opener:
        q = opener + q[:1].lower() + q[1:]
    if style in ("lower", "lower-typo"):
        q = q.lower()
        if rng.random() < 0.6:
            q = q.rstrip("?")
    return q


QUESTION_STYLES = ["plain"] * 11 + ["lower"] * 4 + ["typo"] * 3 + ["lower-typo"] * 2


# ------------------------------------------------------------------------- items


def notes(rng: random.Random, fam: Family, core: list[list[Sentence]], extra_facts: list[Sentence],
          n_fillers: int, header: bool) -> str:
    """Core fact blocks (kept together in order within a block) + related facts + fillers, mixed."""
    pool = [filler(t) for t in fam.fillers] + [filler(t) for t in GENERAL_FILLERS]
    rng.shuffle(pool)
    units: list[Sentence] = [s for block in core for s in block]
    budget = MAX_SENTENCES - len(units)
    extra = extra_facts[:max(0, budget)]
    units += extra
    budget = MAX_SENTENCES - len(units)
    units += pool[:max(0, min(n_fillers, budget))]
    rng.shuffle(units)
    # Sometimes an unrelated fact shares a sentence with a fact (semicolon or comma).
    free = [i for i in range(len(units) - 1) if not units[i].joined and not units[i + 1].joined]
    if free and rng.random() < 0.35:
        i = rng.choice(free)
        glue = rng.choice(["; ", ", and "])
        units[i:i + 2] = [join(units[i], units[i + 1], glue)]
    # A header introduces a plain fact (not an unrelated remark, not "Closing times: ...").
    first = next((i for i, s in enumerate(units) if s.about.startswith("fact:")), None)
    header = header and bool(fam.intro) and first is not None
    if header:
        units.insert(0, units.pop(first))
    text = " ".join(s.text for s in units)
    if header:
        text = rng.choice(fam.intro) + " " + text
    return text


def interp(rng: random.Random, ent: Entity, attr: Attr) -> dict:
    value, aliases = value_of(ent, attr)
    return {"clarification": rng.choice(ent.clar), "answer": value, "aliases": aliases}


def other_facts(rng: random.Random, fam: Family, ents: list[Entity], skip: set[str]) -> list[Sentence]:
    """Facts about the same entities on other attributes: related, but they answer nothing asked."""
    out = [fact(rng, e, a) for a in fam.attrs if a.key not in skip for e in ents]
    rng.shuffle(out)
    return out


def pick_style(rng: random.Random, n: int) -> str:
    if n == 1:
        return "sentences"
    return rng.choice(["sentences", "sentences", "list", "semicolon", "comma"])


def make_item(rng: random.Random, fam: Family, item_id: str, core: list[list[Sentence]], question: str,
              interps: list[dict], related: list[Sentence]) -> dict:
    n_related = rng.choice([0, 0, 1, 1, 2])
    n_fill = rng.choice([0, 1, 1, 2, 2, 3])
    for _ in range(8):
        ctx = notes(rng, fam, core, related[:n_related], n_fill, header=rng.random() < 0.3)
        if len(ctx) <= MAX_CONTEXT:
            break
        n_fill, n_related = max(0, n_fill - 1), max(0, n_related - 1)
    else:
        raise ValueError(f"{item_id}: notes too long")
    return {"id": item_id, "domain": fam.domain, "source": "generated", "context": ctx, "question": question,
            "interpretations": interps}


def family_items(rng: random.Random, fam: Family) -> list[dict]:
    items: list[dict] = []
    pre = f"{ID_PREFIX}{fam.domain}-{fam.key}"
    ents = fam.entities
    n = len(ents)
    rotation = 0
    qstyle = lambda: rng.choice(QUESTION_STYLES)  # noqa: E731

    def ambiguous(attr: Attr, chosen: list[Entity], suffix: str) -> dict:
        style = pick_style(rng, len(chosen))
        core = [facts_block(rng, chosen, attr, style)]
        q = render_question(rng, rng.choice(attr.questions), rng.choice(fam.generic), qstyle())
        interps = [interp(rng, e, attr) for e in chosen]
        rng.shuffle(interps)
        return make_item(rng, fam, f"{pre}-{attr.key}-{suffix}", core, q, interps,
                         other_facts(rng, fam, chosen, {attr.key}))

    def named(attr: Attr, target: Entity, suffix: str) -> dict:
        style = pick_style(rng, n)
        core = [facts_block(rng, ents, attr, style)]
        q = render_question(rng, rng.choice(attr.questions), rng.choice(target.refs), qstyle())
        return make_item(rng, fam, f"{pre}-{attr.key}-{suffix}-{target.key}", core, q,
                         [interp(rng, target, attr)], other_facts(rng, fam, ents, {attr.key}))

    for attr in fam.attrs:
        if not attr.target:
            continue
        values = [value_of(e, attr)[0] for e in ents]
        assert len(set(values)) == n, f"{fam.key}.{attr.key}: values must differ"
        if attr.ask:
            items.append(ambiguous(attr, ents, "amb"))
            if n == 3:   # the same question on two of the three: a two-way reading of the same table
                pair = sorted(rng.sample(ents, 2), key=ents.index)
                items.append(ambiguous(attr, pair, "amb-" + "-".join(e.key for e in pair)))
            else:
                items.append(ambiguous(attr, ents, "amb2"))
        target = ents[rotation % n]   # the clear counterpart: the same notes, one entity named
        rotation += 1
        items.append(named(attr, target, "clear"))

    # Entities named indirectly: the one with the lowest/highest value of an attribute the notes list.
    indirect: list[tuple[Entity, str, Attr]] = []
    for cmp_attr in fam.attrs:
        for side, phrases in (("lo", cmp_attr.lo), ("hi", cmp_attr.hi)):
            if not phrases:
                continue
            keys = [sort_key(value_of(e, cmp_attr)[0], cmp_attr.kind) for e in ents]
            assert len(set(keys)) == n, f"{fam.key}.{cmp_attr.key}: ties make 'the cheaper one' ambiguous"
            best = (min if side == "lo" else max)(range(n), key=lambda i: keys[i])
            indirect.append((ents[best], phrases[0 if n == 2 else 1], cmp_attr))
    for ent_key, ref, attr_key in fam.indirect:
        indirect.append((next(e for e in ents if e.key == ent_key), ref,
                         next(a for a in fam.attrs if a.key == attr_key)))
    rng.shuffle(indirect)
    for target, ref, cmp_attr in indirect[:3]:
        asked = [a for a in fam.attrs if a.key != cmp_attr.key and a.target]
        if not asked:
            continue
        attr = rng.choice(asked)
        core = [facts_block(rng, ents, cmp_attr, pick_style(rng, n)), facts_block(rng, ents, attr, pick_style(rng, n))]
        q = render_question(rng, rng.choice(attr.questions), ref, rng.choice(["plain", "plain", "lower"]))
        items.append(make_item(rng, fam, f"{pre}-{attr.key}-ind-{target.key}-by-{cmp_attr.key}", core, q,
                               [interp(rng, target, attr)], []))

    # Notes about one entity only: the generic question has a single answer.
    asked = [a for a in fam.attrs if a.ask]
    attr = rng.choice(asked)
    target = rng.choice(ents)
    related = [fact(rng, target, a) for a in fam.attrs if a.key != attr.key]
    rng.shuffle(related)
    q = render_question(rng, rng.choice(attr.questions), rng.choice(fam.generic), qstyle())
    items.append(make_item(rng, fam, f"{pre}-{attr.key}-solo-{target.key}", [[fact(rng, target, attr)]], q,
                           [interp(rng, target, attr)], related))
    return items


# ------------------------------------------------------------------------- checks, output


def check(items: list[dict]) -> None:
    """The product's loader accepts every line; answers occur in the notes; ids and pairs unique."""
    lines = [json.dumps(it, ensure_ascii=False) for it in items]
    parse_items(lines, source="test.jsonl")
    pairs = set()
    for it in items:
        if not it["id"].startswith(ID_PREFIX):
            raise ValueError(f"{it['id']}: test ids start with {ID_PREFIX!r}")
        pair = (it["context"], it["question"])
        if pair in pairs:
            raise ValueError(f"{it['id']}: the same notes and question twice")
        pairs.add(pair)
        for ip in it["interpretations"]:
            if not mentions(it["context"], ip["answer"]):
                raise ValueError(f"{it['id']}: answer {ip['answer']!r} is not in the notes")
            others = [o for o in it["interpretations"] if o is not ip]
            for alias in ip["aliases"]:
                for o in others:
                    for a in [o["answer"], *o["aliases"]]:
                        if mentions(a, alias) or mentions(alias, a):
                            raise ValueError(f"{it['id']}: alias {alias!r} overlaps {a!r}")


def generated_items() -> list[dict]:
    rng = random.Random(SEED)
    items: list[dict] = []
    for fam in FAMILIES:
        items += family_items(rng, fam)
    return items


def handwritten_items(path: Path = HANDWRITTEN) -> list[dict]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        obj = json.loads(line)
        obj.setdefault("source", "handwritten")
        if obj["source"] != "handwritten":
            raise ValueError(f"{path}:{number}: source must be 'handwritten'")
        items.append({"id": obj["id"], "domain": obj["domain"], "source": "handwritten",
                      "context": obj["context"], "question": obj["question"],
                      "interpretations": [{"clarification": ip["clarification"], "answer": ip["answer"],
                                           "aliases": list(ip.get("aliases", []))}
                                          for ip in obj["interpretations"]]})
    return items


def build_items() -> list[dict]:
    items = generated_items() + handwritten_items()
    random.Random(SEED + 1).shuffle(items)
    check(items)
    return items


def write_test_split(path: str | Path = OUT) -> list[dict]:
    """Build the split and write it to `path` (UTF-8 JSON Lines, one item a line); returns the items."""
    items = build_items()
    text = "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items)
    Path(path).write_bytes(text.encode("utf-8"))
    return items


def main() -> None:
    items = write_test_split(OUT)
    amb = sum(len(it["interpretations"]) >= 2 for it in items)
    three = sum(len(it["interpretations"]) >= 3 for it in items)
    hand = sum(it["source"] == "handwritten" for it in items)
    print(f"{OUT}: {len(items)} items, {amb} ambiguous ({three} three-way), {hand} hand-written, "
          f"generated domains: {', '.join(DOMAINS)}")


if __name__ == "__main__":
    main()
