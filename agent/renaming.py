"""Renamed copies of a text: the same facts in other words.

A seeded share of the notes' content words and numbers becomes other words (from a vocabulary, usually a
training snapshot's notes) and other numbers, consistently in the notes and every turn. The learner trains on
such copies (learner/examples.py) so the policy learns the notes' structure, not the items, and sets the ask
threshold on fully renamed copies of the training questions (learner/calibration.py).
"""

from __future__ import annotations

import math
import random
import re


# Words a rename never touches: the language the question and the agent's turns are made of. Content
# words (names, things, places, attributes) are what an item is *about*; these are how it is asked.
_FUNCTION_WORDS = frozenset("""
a about above after again all also am an and any are as at be because been before being both but by can
could did do does done each few for from get got had has have having he her here hers him his how i if in
into is it its just let may me mean might more most much must my no nor not now of off on once one only or
other our out over own please same she should so some such than thank thanks that the their them then there
these they this those through to too two under until up very was we were what when where which while who
whom why will with would yes you your hello hey hi quick question tell give know need
""".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]")
_NUMBER = re.compile(r"(?<![0-9])[0-9]+(?![0-9])")
_WORD_OR_NUMBER = re.compile(f"{_WORD.pattern}|{_NUMBER.pattern}")


def content_words(texts) -> list[str]:
    """The distinct lower-cased content words of `texts`, sorted: the vocabulary renames draw from."""
    return sorted({w.lower() for t in texts for w in _WORD.findall(t)} - _FUNCTION_WORDS)


def _same_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word


def word_family(word: str) -> tuple[str, str]:
    """(family key, inflection) of a lower-cased word: "arrive", "arrives", "arrived" and "arriving" share
    the key "arriv". A crude suffix strip on purpose: it only has to keep a question's "arrive" tied to the
    notes' "arrives" when both are renamed, and a wrong merge just renames two words the same way."""
    for suffix, inflection, stem_end in (("'s", "'s", ""), ("ing", "ing", ""), ("ed", "ed", ""), ("ies", "s", "y"),
                                         ("es", "s", ""), ("s", "s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith(("ss", "us", "is")):
            word = word[: -len(suffix)] + stem_end
            break
    else:
        inflection = ""
    return (word[:-1] if word.endswith("e") and len(word) > 3 else word), inflection


def inflect(word: str, inflection: str) -> str:
    """`word` (a base form) with the inflection `word_family` stripped from the word it replaces."""
    if inflection == "'s":
        return word + "'s"
    if inflection == "s":
        if word.endswith(("s", "x", "z", "ch", "sh")):
            return word + "es"
        return word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
    if inflection == "ed":
        return word + "d" if word.endswith("e") else word + "ed"
    if inflection == "ing":
        return (word[:-1] if word.endswith("e") and not word.endswith("ee") else word) + "ing"
    return word


def _other_number(number: str, rng: random.Random) -> str:
    """A number with as many digits, and a leading zero only where the original had one."""
    if len(number) == 1 or number.startswith("0"):
        return "".join(str(rng.randrange(10)) for _ in number)
    return str(rng.randrange(10 ** (len(number) - 1), 10 ** len(number)))


def surface(texts) -> set[str]:
    """Word families and numbers of `texts` (one set: a family is letters, a number digits): what a rename must
    not produce."""
    return ({word_family(w)[0] for w in content_words(texts)}
            | {n for t in texts for n in _NUMBER.findall(t)})


def rename_texts(notes: str, texts: list[str], fraction: float, vocabulary, seed: int) -> tuple[str, list[str]]:
    """`notes` and `texts` (the turns) with a seeded share of the notes' content words and numbers renamed,
    everywhere, consistently.

    Each chosen word family of the notes ("arrive", "arrives", ...) becomes another word of the vocabulary,
    inflected the same way, and each chosen number another number with as many digits, in the notes and every
    turn alike. So every fact keeps its structure: which sentences the question could refer to, and which one
    a clarification picks. What changes is the surface a policy could memorize instead ("the salmon item ->
    ask", "order 8801 -> ask"). Whole words, case kept. Unchanged when there is nothing to rename.
    """
    families = sorted({word_family(w)[0] for w in content_words([notes])})
    numbers = sorted(set(_NUMBER.findall(notes)))
    candidates = [("word", f) for f in families] + [("number", n) for n in numbers]
    if fraction <= 0 or not candidates:
        return notes, list(texts)
    used = surface([notes, *texts])
    rng = random.Random(seed)
    renamed_families, renamed_numbers = {}, {}
    for kind, old in rng.sample(candidates, min(len(candidates), math.ceil(fraction * len(candidates)))):
        for _ in range(32):  # rejection sampling: a snapshot's vocabulary can be large, its overlap is small
            if kind == "number":
                new = _other_number(old, rng)
                if new not in used:
                    renamed_numbers[old] = new
                    used.add(new)
                    break
            elif vocabulary:
                new = vocabulary[rng.randrange(len(vocabulary))]
                family, inflection = word_family(new)
                if not inflection and family not in used:
                    renamed_families[old] = new
                    used.add(family)
                    break
    if not renamed_families and not renamed_numbers:
        return notes, list(texts)

    def rename(match: re.Match) -> str:
        token = match.group()
        if token[0].isdigit():
            return renamed_numbers.get(token, token)
        lower = token.lower()
        if lower in _FUNCTION_WORDS:
            return token
        family, inflection = word_family(lower)
        if family not in renamed_families:
            return token
        return _same_case(inflect(renamed_families[family], inflection), token)

    return _WORD_OR_NUMBER.sub(rename, notes), [_WORD_OR_NUMBER.sub(rename, t) for t in texts]
