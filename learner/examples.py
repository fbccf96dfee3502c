"""Snapshot rows -> tokenized training examples, one per agent turn.

Each agent turn a_t becomes (prompt = build_prompt(notes, tau_<t), completion = a_t):
the exact prompt the serving path would have built at that point, so the policy
is trained on what it will be asked. Only completion tokens carry loss; the
notes and the user's turns are context.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.parquet as pq

from agent.policy import Message, build_prompt, reorder_notes, split_sentences
from agent.simulator import stable_int


@dataclass
class Conversation:
    conversation_id: str
    context_key: str
    context: str
    reward: float
    messages: list[Message]


@dataclass
class TurnExample:
    conversation_id: str
    context_key: str
    prompt: list[dict]
    completion: str


def read_snapshot(path: Path) -> list[Conversation]:
    rows = pq.read_table(path).to_pylist()
    return [
        Conversation(
            r["conversation_id"], r["context_key"], r["context"], float(r["reward"]),
            [Message(m["role"], m["content"], m["kind"]) for m in r["messages"]],
        )
        for r in rows
    ]


def turn_examples(conv: Conversation, horizon: int) -> list[TurnExample]:
    out = []
    for t, msg in enumerate(conv.messages):
        if msg.role == "assistant" and msg.content.strip():
            out.append(TurnExample(conv.conversation_id, conv.context_key,
                                   build_prompt(conv.context, conv.messages[:t], horizon), msg.content.strip()))
    return out


def tokenize_example(tokenizer, ex: TurnExample, max_length: int) -> dict | None:
    """input_ids = prompt + completion + end-of-turn; labels = -100 except on the completion."""
    prompt_text = tokenizer.apply_chat_template(ex.prompt, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(ex.completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = prompt_ids + completion_ids
    if len(ids) > max_length:
        return None
    return {
        "input_ids": ids,
        "labels": [-100] * len(prompt_ids) + completion_ids,
        "conversation_id": ex.conversation_id,
    }


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


def _surface(texts) -> set[str]:
    """Word families and numbers of `texts` (one set: a family is letters, a number digits): what a rename must
    not produce and a distractor sentence must not share with a conversation."""
    return ({word_family(w)[0] for w in content_words(texts)}
            | {n for t in texts for n in _NUMBER.findall(t)})


def rename_words(conv: Conversation, fraction: float, vocabulary: list[str], seed: int) -> Conversation:
    """The conversation with a seeded share of its notes' content words and numbers renamed, everywhere,
    consistently.

    Each chosen word family of the notes ("arrive", "arrives", ...) becomes another word of the snapshot's
    vocabulary, inflected the same way, and each chosen number another number with as many digits, in the
    notes, the question, the clarification and the agent's turns alike. So every fact keeps its structure:
    which sentences the question could refer to, and which one the clarification picks. What changes is the
    surface the policy could memorize instead ("the salmon item -> ask", "order 8801 -> ask"). Whole words,
    case kept.
    """
    families = sorted({word_family(w)[0] for w in content_words([conv.context])})
    numbers = sorted(set(_NUMBER.findall(conv.context)))
    candidates = [("word", f) for f in families] + [("number", n) for n in numbers]
    if fraction <= 0 or not candidates:
        return conv
    texts = [conv.context, *(m.content for m in conv.messages)]
    used = _surface(texts)
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
        return conv

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

    return replace(conv, context=_WORD_OR_NUMBER.sub(rename, conv.context),
                   messages=[replace(m, content=_WORD_OR_NUMBER.sub(rename, m.content)) for m in conv.messages])


class DistractorPool:
    """Sentences of the snapshot's notes, to add to other conversations' notes as distractors.

    Why: whether to ask depends on how many facts in the notes *match the question*, not on how many
    facts the notes hold. Logged notes tie the two together (a question about one of two similar facts
    is ambiguous, a lone fact is not), so a policy can learn "several facts -> ask". A sentence from
    unrelated notes adds a fact that matches nothing, and changes neither which reply was right nor the
    reward. Unrelated means sharing no word family or number with the conversation (notes and every
    turn); a sentence about the same kind of thing in other words ("my package" vs "shipment") would
    pass that test and is the residual risk (docs/LEARNING.md).
    """

    def __init__(self, contexts):
        self.sentences: list[tuple[str, frozenset]] = []
        for context in sorted(set(contexts)):
            for sentence in split_sentences(context):
                self.sentences.append((sentence, frozenset(_surface([sentence]))))

    def draw(self, conv: Conversation, count: int, seed: int) -> list[str]:
        """Up to `count` sentences unrelated to `conv` (seeded; fewer when the pool has none left)."""
        taken = _surface([conv.context, *(m.content for m in conv.messages)])
        rng, out = random.Random(seed), []
        for _ in range(32 * count):
            if len(out) == count or not self.sentences:
                break
            sentence, surface = self.sentences[rng.randrange(len(self.sentences))]
            if surface and not surface & taken:
                out.append(sentence)
                taken |= surface  # two distractors must not match each other either
        return out


def notes_views(conv: Conversation, views: int, seed: int, rename_fraction: float = 0.0,
                vocabulary: list[str] | None = None, distractors: DistractorPool | None = None,
                distractor_count: int = 0) -> list[Conversation]:
    """The conversation itself, then `views - 1` copies whose notes are reordered (each with its own seed),
    with `distractor_count` unrelated sentences added (`DistractorPool`) and, with `rename_fraction` > 0,
    whose content words are renamed (`rename_words`)."""
    out = [conv]
    for v in range(1, views):
        context = conv.context
        if distractors is not None and distractor_count > 0:
            added = distractors.draw(conv, distractor_count, stable_int("distract", seed, conv.conversation_id, v))
            context = " ".join([context.strip(), *added])
        view = replace(conv, context=reorder_notes(context, stable_int(seed, conv.conversation_id, v)))
        if rename_fraction > 0:
            view = rename_words(view, rename_fraction, vocabulary or [], stable_int("rename", seed, conv.conversation_id, v))
        out.append(view)
    return out


FOLDED_SUFFIX = "~folded"


def fold_clarification(conv: Conversation) -> Conversation | None:
    """Hindsight relabeling: "Q" / ask / "C" / answer becomes "Q C" / answer, in a context of its own.

    The user's clarification, had it come with the question, would have made the question clear, and the
    logged final answer shows what answering it directly looks like. Each ambiguous item then also teaches
    its minimal pair: the question as asked (where asking paid) and the question with its variant named
    (where answering does). Only a conversation with exactly one clarifying exchange folds.
    """
    kinds = [m.kind for m in conv.messages]
    if kinds != ["user", "ask", "user", "answer"]:
        return None
    question, _, clarification, answer = conv.messages
    if not (question.content.strip() and clarification.content.strip() and answer.content.strip()):
        return None
    asked = f"{question.content.strip()} {clarification.content.strip()}"
    return replace(conv, conversation_id=conv.conversation_id + FOLDED_SUFFIX, context_key=conv.context_key + FOLDED_SUFFIX,
                   messages=[Message("user", asked, "user"), answer])
