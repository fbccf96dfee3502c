"""Snapshot rows -> tokenized training examples, one per agent turn.

Each agent turn a_t becomes (prompt = build_prompt(notes, tau_<t), completion = a_t):
the exact prompt the serving path would have built at that point, so the policy
is trained on what it will be asked. Only completion tokens carry loss; the
notes and the user's turns are context.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.parquet as pq

from agent.policy import Message, build_prompt, reorder_notes, split_sentences
from agent.renaming import content_words, inflect, rename_texts, surface, word_family  # noqa: F401 (re-exported)
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


def rename_words(conv: Conversation, fraction: float, vocabulary: list[str], seed: int) -> Conversation:
    """The conversation with a seeded share of its notes' content words and numbers renamed, in the notes and
    every turn alike (agent.renaming.rename_texts); the logged conversation itself is never changed."""
    context, contents = rename_texts(conv.context, [m.content for m in conv.messages], fraction, vocabulary, seed)
    if context == conv.context and contents == [m.content for m in conv.messages]:
        return conv
    return replace(conv, context=context,
                   messages=[replace(m, content=c) for m, c in zip(conv.messages, contents)])


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
                self.sentences.append((sentence, frozenset(surface([sentence]))))

    def draw(self, conv: Conversation, count: int, seed: int) -> list[str]:
        """Up to `count` sentences unrelated to `conv` (seeded; fewer when the pool has none left)."""
        taken = surface([conv.context, *(m.content for m in conv.messages)])
        rng, out = random.Random(seed), []
        for _ in range(32 * count):
            if len(out) == count or not self.sentences:
                break
            sentence, words = self.sentences[rng.randrange(len(self.sentences))]
            if words and not words & taken:
                out.append(sentence)
                taken |= words  # two distractors must not match each other either
        return out


def content_key(conv: Conversation) -> str:
    """A key from what was logged (notes, turns, reward), not from the id the log gave it."""
    return f"{stable_int(conv.context, conv.reward, *(f'{m.role}|{m.kind}|{m.content}' for m in conv.messages)):016x}"


def view_keys(convs: list[Conversation]) -> list[str]:
    """`content_key` of each conversation, numbered among identical ones (the sampled replies often repeat).

    The training views are seeded by these keys, so the same logs and seed train on the same views even
    when they were logged again under new random ids (a re-made simulation); identical conversations are
    interchangeable, so numbering them in snapshot order is stable too.
    """
    seen: dict[str, int] = {}
    out = []
    for conv in convs:
        key = content_key(conv)
        seen[key] = seen.get(key, 0) + 1
        out.append(f"{key}#{seen[key]}")
    return out


def notes_views(conv: Conversation, views: int, seed: int, rename_fraction: float = 0.0,
                vocabulary: list[str] | None = None, distractors: DistractorPool | None = None,
                distractor_count: int = 0, key: str | None = None) -> list[Conversation]:
    """The conversation itself, then `views - 1` copies whose notes are reordered (each with its own seed),
    with `distractor_count` unrelated sentences added (`DistractorPool`) and, with `rename_fraction` > 0,
    whose content words are renamed (`rename_words`). The seeds come from `seed` and `key` (default: the
    conversation's `content_key`; see `view_keys`)."""
    key = key or content_key(conv)
    out = [conv]
    for v in range(1, views):
        context = conv.context
        if distractors is not None and distractor_count > 0:
            added = distractors.draw(conv, distractor_count, stable_int("distract", seed, key, v))
            context = " ".join([context.strip(), *added])
        view = replace(conv, context=reorder_notes(context, stable_int(seed, key, v)))
        if rename_fraction > 0:
            view = rename_words(view, rename_fraction, vocabulary or [], stable_int("rename", seed, key, v))
        out.append(view)
    return out


FOLDED_SUFFIX = "~folded"


def one_clarifying_exchange(conv: Conversation) -> tuple[Message, Message, Message, Message] | None:
    """(question, ask, clarification, answer) when the turns are exactly one clarifying exchange, else None."""
    if [m.kind for m in conv.messages] != ["user", "ask", "user", "answer"]:
        return None
    question, ask, clarification, answer = conv.messages
    return question, ask, clarification, answer


def fold_clarification(conv: Conversation) -> Conversation | None:
    """Hindsight relabeling: "Q" / ask / "C" / answer becomes "Q C" / answer, in a context of its own.

    The user's clarification, had it come with the question, would have made the question clear, and the
    logged final answer shows what answering it directly looks like. Each ambiguous item then also teaches
    its minimal pair: the question as asked (where asking paid) and the question with its variant named
    (where answering does). Only a conversation with exactly one clarifying exchange folds.
    """
    exchange = one_clarifying_exchange(conv)
    if exchange is None:
        return None
    question, _, clarification, answer = exchange
    if not (question.content.strip() and clarification.content.strip() and answer.content.strip()):
        return None
    asked = f"{question.content.strip()} {clarification.content.strip()}"
    return replace(conv, conversation_id=conv.conversation_id + FOLDED_SUFFIX, context_key=conv.context_key + FOLDED_SUFFIX,
                   messages=[Message("user", asked, "user"), answer])


NARROWED_SUFFIX = "~narrowed"


def narrow_to_clarified(conv: Conversation) -> Conversation | None:
    """Counterfactual notes: "Q" / ask / "C" / answer becomes "Q" / answer, with the notes cut down to the
    fact the clarification picked.

    Why: whether to ask depends on how many facts of the notes match the question, but a vague question
    ("When does my order arrive?") comes with several matching facts in most logged conversations, so a
    policy can learn "vague question -> ask" and then asks when the notes hold one order. Drop the other
    facts that match the question and the same question has one reading: the logged answer to it is the
    right direct reply. Each ambiguous item then teaches its minimal pair on the notes' side (fold_clarification
    does it on the question's side).

    Kept: the one sentence that shares the most word families and numbers with the clarification and the
    answer (it must be the only best and share at least one), and every sentence that shares none with the
    question (filler that matched nothing). None when nothing would be dropped, or the turns are not one
    clarifying exchange.
    """
    exchange = one_clarifying_exchange(conv)
    if exchange is None:
        return None
    question, _, clarification, answer = exchange
    sentences = split_sentences(conv.context)
    picked = surface([clarification.content, answer.content])
    scores = [len(surface([s]) & picked) for s in sentences]
    best = max(scores, default=0)
    if best == 0 or scores.count(best) > 1:
        return None
    asked = surface([question.content])
    kept = [s for s, score in zip(sentences, scores) if score == best or not surface([s]) & asked]
    if len(kept) == len(sentences):
        return None
    return replace(conv, conversation_id=conv.conversation_id + NARROWED_SUFFIX,
                   context_key=conv.context_key + NARROWED_SUFFIX, context=" ".join(kept),
                   messages=[question, answer])
