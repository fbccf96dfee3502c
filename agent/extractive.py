"""The scripted (extractive) behaviour policy of the simulator: answers and questions taken from the notes.

It uses only what the agent sees (the notes and the user's words), never the item's answers. With
``extractive_answers`` the simulator's behaviour policy answers with the note sentence closest to the user's
words (``extractive_answer``) and, when forced to ask, names the note facts that match the question
(``extractive_question``).
"""

from __future__ import annotations

import re

from .policy import split_sentences
from .renaming import word_family

_STOPWORDS = frozenset(
    "the a an i i'm im mean one please oh sorry it is of for to in on at and or my me about with that this was "
    "which what when where who how do does did you your can could would will".split())


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS}


def extractive_answer(context: str, question: str, clarification: str | None = None) -> str:
    """A scripted behaviour answer: the note sentence sharing most words with the clarification
    (then the question). Uses only what the agent sees (notes and the user's words), never the
    item's answers: a retrieval answerer that explores what a competent reply is worth."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", context.strip()) if s.strip()] or [context.strip()]
    clar, quest = _content_words(clarification or ""), _content_words(question)
    return max(sentences, key=lambda s: (len(clar & _content_words(s)), len(quest & _content_words(s))))


_QUESTION_STOPWORDS = _STOPWORDS | frozenset(
    "are were its be has have had there their our we us get got is".split())
_TOKEN = re.compile(r"[$#]?[A-Za-z0-9][A-Za-z0-9'#$%.:/-]*[A-Za-z0-9%]|[$#]?[A-Za-z0-9]")
_NOTES_LABEL = re.compile(r"^[^:.!?]{1,60}:\s+(?=\D)")   # "Greenleaf Market policy: " (not the colon of "6:15")


def _families(text: str) -> list[tuple[str, str]]:
    """(word, its family) for each word of `text`, in order."""
    return [(w, word_family(w.lower().strip("$#.:/-'"))[0]) for w in _TOKEN.findall(text)]


def _is_stopword(word: str) -> bool:
    """A function word; a capital letter naming a thing ("Room A") is not."""
    return word.lower() in _QUESTION_STOPWORDS and not (len(word) == 1 and word.isupper() and word != "I")


def extractive_question(context: str, question: str) -> str:
    """A scripted behaviour question: "Do you mean A or B?", where A, B (up to three) are the note facts that
    share the most words with the user's question, each named by its first words that no other of them has
    and the question does not repeat ("Do you mean Lite 6 or Max 9?"). Uses only what the agent sees. Why:
    the base model, forced to ask, mostly repeats the question ("Do you mean the espresso?"), which a user who
    answers the question asked cannot use, so the logs would show asking as a loss on every ambiguous item;
    exploration must also try the question that works."""
    facts = [_NOTES_LABEL.sub("", piece).strip() for sentence in split_sentences(context)
             for piece in re.split(r"(?<=;)\s+", sentence) if piece.strip()]
    asked = {f for w, f in _families(question) if not _is_stopword(w)}
    words = [_families(fact) for fact in facts]   # (word, family) of each fact, read once
    shared = [len({f for _, f in ws} & asked) for ws in words]
    ranked = sorted(range(len(facts)), key=lambda i: -shared[i])
    best = shared[ranked[0]] if ranked else 0
    picked = [i for i in ranked if shared[i] == best and best > 0][:3]
    if len(picked) < 2:
        picked = [i for i in ranked if shared[i] > 0][:2]
    if len(picked) < 2:
        return f"Do you mean {facts[picked[0]].rstrip('.;') if picked else 'the notes'}?"
    families = [{f for _, f in words[i]} for i in picked]
    names = []
    for k, i in enumerate(picked):
        others = set().union(*(f for j, f in enumerate(families) if j != k))
        own = [w for w, f in words[i] if f not in others and f not in asked and not _is_stopword(w)]
        names.append(" ".join(own[:4]) or facts[i].rstrip(".;"))
    return f"Do you mean {', '.join(names[:-1])} or {names[-1]}?"
