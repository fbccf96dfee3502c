"""The grader: is a final answer right for the user's hidden intent, and what reward does the conversation earn.

Correct = the final answer mentions the intent's answer (or an alias) as a whole
word / whole number, and mentions no answer of another interpretation (listing
every option is a hedge, not an answer). Matching is case-insensitive and
tolerant of Unicode variants (curly quotes, dashes, accents, full-width
characters), thousands separators and hyphen-vs-space; "5" never matches
inside "15", "5.5", "5:30" or "1,500".

Reward = correct x (1 - question_cost x questions asked), clipped to [0, 1].
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .items import Item

_PUNCT_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ",
})
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_SPACES = re.compile(r"\s+")
_EDGE_PUNCT = " .,;:!?\"'()[]{}"
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)")


def normalize(text: str) -> str:
    """Canonical text for matching: NFKC, ASCII quotes/dashes, no accents, casefolded, 1,500 -> 1500."""
    text = unicodedata.normalize("NFKC", text).translate(_PUNCT_MAP)
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    text = text.casefold()
    text = _THOUSANDS.sub("", text)
    return _SPACES.sub(" ", text).strip()


def answer_key(answer: str) -> str:
    """An answer as matched: normalized, without sentence punctuation or quotes around it."""
    return normalize(answer).strip(_EDGE_PUNCT)


@lru_cache(maxsize=4096)
def _pattern(key: str) -> re.Pattern:
    # Words may be separated by spaces or hyphens ("New-York"); a number and its unit by nothing or
    # either ("40km", "40 km", "40-km").
    body = ""
    for w, word in enumerate(p for p in re.split(r"[\s-]+", key) if p):
        for k, part in enumerate(_DIGIT_LETTER.split(word)):
            if w or k:
                glued = k > 0 or (body[-1].isdigit() != part[0].isdigit())
                body += r"[\s-]*" if glued else r"[\s-]+"
            body += re.escape(part)
    left = right = ""
    if key[0].isalnum():
        left = r"(?<!\w)"
        if key[0].isdigit():
            left += r"(?<!\d[.,:])"     # "5" not inside "1.5", "1,5" or "10:5"
    if key[-1].isalnum():
        right = r"(?!\w)"
        if key[-1].isdigit():
            right += r"(?![.,:]\d)"     # "5" not inside "5.5" or "5:30"
    return re.compile(left + body + right)


def find_answer(text: str, answer: str) -> list[tuple[int, int]]:
    """Spans (in normalized text) where `answer` occurs as a whole word or number. `text` must be normalized."""
    key = answer_key(answer)
    if not key:
        return []
    return [m.span() for m in _pattern(key).finditer(text)]


def mentions(text: str, answer: str) -> bool:
    return bool(find_answer(normalize(text), answer))


@dataclass(frozen=True)
class Grade:
    correct: bool
    found_intent: bool           # the intent's answer (or an alias) is in the final answer
    others: tuple[int, ...]      # other interpretations whose answers it also names


def grade_answer(item: Item, intent: int, final_answer: str) -> Grade:
    """Grade the final answer against interpretation `intent` of `item`."""
    text = normalize(final_answer)
    intent_spans = [s for a in item.interpretations[intent].answers for s in find_answer(text, a)]
    others = []
    for j, interp in enumerate(item.interpretations):
        if j == intent:
            continue
        for answer in interp.answers:
            # A match inside the intent's own answer does not count ("Paris" inside "Paris, Texas").
            spans = [s for s in find_answer(text, answer)
                     if not any(a <= s[0] and s[1] <= b for a, b in intent_spans)]
            if spans:
                others.append(j)
                break
    found = bool(intent_spans)
    return Grade(correct=found and not others, found_intent=found, others=tuple(others))


def conversation_reward(correct: bool, questions: int, question_cost: float) -> float:
    """correct x (1 - question_cost x questions), clipped to [0, 1]."""
    if not correct:
        return 0.0
    return min(1.0, max(0.0, 1.0 - question_cost * questions))
