"""Snapshot rows -> tokenized training examples, one per agent turn.

Each agent turn a_t becomes (prompt = build_prompt(notes, tau_<t), completion = a_t):
the exact prompt the serving path would have built at that point, so the policy
is trained on what it will be asked. Only completion tokens carry loss; the
notes and the user's turns are context.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.parquet as pq

from agent.policy import Message, build_prompt, reorder_notes
from agent.renaming import content_words, rename_texts, word_family  # noqa: F401 (re-exported)
from agent.seeding import stable_int


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
                vocabulary: list[str] | None = None, key: str | None = None) -> list[Conversation]:
    """The conversation itself, then `views - 1` copies whose notes are reordered (each with its own seed)
    and, with `rename_fraction` > 0, whose content words are renamed (`rename_words`). The seeds come from
    `seed` and `key` (default: the conversation's `content_key`; see `view_keys`)."""
    key = key or content_key(conv)
    out = [conv]
    for v in range(1, views):
        view = replace(conv, context=reorder_notes(conv.context, stable_int(seed, key, v)))
        if rename_fraction > 0:
            view = rename_words(view, rename_fraction, vocabulary or [], stable_int("rename", seed, key, v))
        out.append(view)
    return out
