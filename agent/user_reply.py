"""The simulated user's reply to a clarifying question: its clarification only when the question names the options.

A user can only pick an option the agent puts in front of them. "Do you mean the espresso?", when the notes
price an espresso at the Harbor and at the Station branch, names neither branch: it repeats the user's own
question, and a real user can only say "Yes, the espresso." So a question earns the clarification only when it
contains a *distinguishing word* of at least one interpretation:

- the content words and numbers of the interpretation's clarification and of the notes sentence that holds its
  answer, as word families (agent.renaming.word_family: "branches" matches "branch", "southbound" matches
  "south");
- minus the words every interpretation shares ("branch", "espresso", "sells": they tell nothing apart), the
  words of the user's own question (the agent repeating them adds nothing) and generic words ("one",
  "version", "sorry"). A clear item (one interpretation) has nothing to share: its words are its clarification
  and answer sentence minus the question's.

The reply to a question that names:
- the intended option only: "Yes, " + the clarification;
- other options only: "No, " + the clarification;
- several options, the intended one among them: the clarification;
- nothing: an unhelpful reply ("What I asked.", or the agent's own vague words back: "Yes, the espresso."),
  chosen by `pick` (the simulator seeds it like the intents), so the agent must answer without the clarification.

Pure functions of the item and the agent's text: no model, no grader verdict.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

from .grader import mentions, normalize
from .items import Item
from .policy import split_sentences
from .renaming import content_words, word_family

# Words that never single out an option, however an item's sentences happen to use them: kinds of thing
# ("the S3 version"), ways of asking and interjections ("Sorry, the hockey club"), the verbs and nouns facts are
# stated with ("got started in", "is scheduled for", "population"), units, and labels of the notes.
_GENERIC = frozenset(word_family(w)[0] for w in """
one version model type kind sort option choice location place thing item rule information info detail
sorry oh ah um hmm well actually ask talking referring meant clarify specify like want wonder looking interested
exactly sure okay ok right particular specific said say thinking refer
found start begin debut mark led lead allow make made feed serve cost charge pay paid take last open close arrive
leave depart sell weigh measure tall high long year time date price total fee schedule order deliver delivery
work belong reach find handle carry run teach taught expect back meet first people live population resident
am pm km kg gb mb tb inch inches minute hour meter metre mile lb cm mm
notes directory itinerary list policy contacts source
""".split())
# Two word families of letters match when they share this many first letters (see _same).
_MIN_PREFIX = 5
_PIECE = re.compile(r"(?<=[.;])\s+")
_HEAD = re.compile(r"^([^:.!?]{1,60}):\s+(?=\S)")   # "Staff directory: " (not the colon of "4:40")
_HEADER_WORDS = frozenset("notes note directory itinerary list policy policies contacts customer source prices "
                          "orders account about".split())
_INTERJECTION = re.compile(r"^\s*(?:oh|ah|um|hmm|well|sorry)\b[,.!]?\s*", re.IGNORECASE)
_ECHO = re.compile(r"\b(?:do|did) you mean\s+(.+?)\s*\?+\s*$", re.IGNORECASE)
_WH = re.compile(r"^(?:which|what|who|where|when|how)\b", re.IGNORECASE)
_UNHELPFUL = ("What I asked.", "The one in my question.", "Just what I said.")
_UNHELPFUL_YES = ("Yes, that one.",)


@dataclass(frozen=True)
class UserReply:
    text: str
    kind: str                  # clarification | yes | no | unhelpful
    options: tuple[int, ...]   # interpretations the agent's question named

    @property
    def named(self) -> bool:
        """The question named at least one option (anything but an unhelpful reply)."""
        return bool(self.options)


def word_set(text: str) -> frozenset[str]:
    """Content word families and numbers of `text`, generic words left out ("Harbor branches" -> harbor, branch;
    "1,700 kg at 7:00" -> 1700, 7; "one-bedroom" -> one-bedroom, bedroom)."""
    plain = normalize(text)
    spaced = plain.replace("-", " ")
    acronyms = ({w.lower() for w in re.findall(r"\b[A-Z]{2,}\b", text)}   # "IT" is not "it"
                | {w.replace(".", "").lower() for w in re.findall(r"\b(?:[A-Za-z]\.){2,}", text)})   # "D.C." is "dc"
    compounds = set(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)+", plain))       # "one-bedroom" as well as "bedroom"
    words = {word_family(w)[0] for w in content_words([spaced]) + sorted(acronyms | compounds)}
    numbers = {n for n in re.findall(r"[0-9]+", spaced) if n.strip("0")}
    return frozenset(w for w in words if "'" not in w and w not in _GENERIC) | frozenset(numbers)


def _same(word: str, family: str) -> bool:
    """One word family, inflection-tolerant: equal, or (letters only) sharing all but at most the shorter one's
    last letter and at least _MIN_PREFIX letters ("south"/"southbound", "argentina"/"argentinian", but not
    "chicken"/"chickpea")."""
    if word == family:
        return True
    if not (word.isalpha() and family.isalpha()):
        return False
    common = len(os.path.commonprefix([word, family]))
    return common >= max(_MIN_PREFIX, min(len(word), len(family)) - 1)


def answer_sentences(item: Item, i: int) -> list[str]:
    """The notes sentences that hold interpretation `i`'s answer (those holding no other answer, when there are).

    A sentence that holds another answer too is cut at every ". " or "; " first: split_sentences keeps
    "The Nova Pro weighs 780 g. The Nova Compact weighs 420 g." whole ("g." could be an initial)."""
    own_answers = item.interpretations[i].answers
    others = [a for j, interp in enumerate(item.interpretations) if j != i for a in interp.answers]
    own = [s for s in split_sentences(item.context) if any(mentions(s, a) for a in own_answers)]
    pieces = [p for s in own for p in (_PIECE.split(s) if any(mentions(s, a) for a in others) else [s])]
    alone = [p for p in pieces if any(mentions(p, a) for a in own_answers) and not any(mentions(p, a) for a in others)]
    return alone or own


def _without_header(sentence: str) -> str:
    """`sentence` without leading labels that head the notes rather than name an option ("Policy notes for
    Lumen Electronics: We charge ...", "Staff directory: Sales: Sam Okafor ..."): a label with a header word, or
    one followed by another label. "Flight to Madrid: departs 4:40 PM." keeps its label."""
    while (match := _HEAD.match(sentence)) and (_HEADER_WORDS & set(re.findall(r"[a-z]+", match.group(1).lower()))
                                                or _HEAD.match(sentence[match.end():])):
        sentence = sentence[match.end():]
    return sentence


@lru_cache(maxsize=1024)
def distinguishing_words(item: Item) -> tuple[frozenset[str], ...]:
    """Per interpretation, the words that point at it and at not every other one (see the module docstring)."""
    words = [word_set(" ".join([interp.clarification, *map(_without_header, answer_sentences(item, i))]))
             for i, interp in enumerate(item.interpretations)]
    shared = frozenset.intersection(*words) if len(words) > 1 else frozenset()
    asked = word_set(item.question)
    return tuple(frozenset(w for w in ws - shared if not any(_same(w, q) for q in asked)) for ws in words)


def named_options(item: Item, text: str) -> tuple[int, ...]:
    """The interpretations whose distinguishing words occur in `text` (the agent's turn)."""
    said = word_set(text)
    return tuple(i for i, ws in enumerate(distinguishing_words(item))
                 if any(_same(w, s) for w in ws for s in said))


def _after_yes_no(item: Item, clarification: str) -> str:
    """The clarification as the rest of a "Yes, ..." / "No, ...": no leading "Oh,"/"Sorry,", and a lower-case
    first word unless it is a name (written capitalized inside a sentence of the notes or the question)."""
    rest = _INTERJECTION.sub("", clarification).strip() or clarification.strip()
    first = rest.split()[0].strip(",.!?") if rest.split() else ""
    if first in ("I", "I'm", "I'd", "I've") or (content_words([first]) and first in _names(item)):
        return rest
    return rest[:1].lower() + rest[1:]


@lru_cache(maxsize=1024)
def _names(item: Item) -> frozenset[str]:
    """Capitalized words of the notes and the question that do not start a sentence or follow a label's colon."""
    names = set()
    for sentence in split_sentences(f"{item.context} {item.question}"):
        words = sentence.split()
        names.update(w.strip(",.;:!?()\"'") for prev, w in zip(words, words[1:]) if not prev.endswith(":"))
    return frozenset(n for n in names if n[:1].isupper())


def _echo(question: str) -> str | None:
    """The agent's own words after "Do you mean" when short and not a choice ("the espresso"), else None."""
    last = next((s for s in reversed(split_sentences(question)) if s.rstrip().endswith("?")), "")
    match = _ECHO.search(last)
    if not match:
        return None
    phrase = match.group(1).strip(" ,.;:\"'")
    if not phrase or len(phrase.split()) > 6 or _WH.match(phrase) or re.search(r"\bor\b", phrase, re.IGNORECASE):
        return None
    return phrase


def user_reply(item: Item, intent: int, agent_turn: str, pick: int = 0) -> UserReply:
    """The user's reply to the clarifying question `agent_turn` when their hidden intent is interpretation `intent`.

    `pick` chooses among the unhelpful replies (any integer; the simulator derives it from its seed).
    """
    options = named_options(item, agent_turn)
    clarification = item.interpretations[intent].clarification
    if not options:
        echo = _echo(agent_turn)
        choices = (*_UNHELPFUL, *_UNHELPFUL_YES, f"Yes, {echo}.") if echo else _UNHELPFUL
        return UserReply(choices[pick % len(choices)], "unhelpful", options)
    if options == (intent,):
        return UserReply(f"Yes, {_after_yes_no(item, clarification)}", "yes", options)
    if intent not in options:
        return UserReply(f"No, {_after_yes_no(item, clarification)}", "no", options)
    return UserReply(clarification, "clarification", options)
