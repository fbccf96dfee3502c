"""The clarifying QA policy: how a conversation becomes a prompt, and what an agent turn is.

One function, ``build_prompt``, is used by the chat UI, the simulator, the
evaluator and the trainer, so the model is trained on exactly the prompts it is
served with.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

NOTES_HEADER = "Reference notes:\n"
SYSTEM_TEMPLATE = (
    "You are a helpful assistant. Answer the user's question using only the reference notes below. "
    "If the question could refer to more than one thing in the notes, ask one short clarifying question "
    "instead of answering. Otherwise answer directly in one short sentence.\n\n"
    + NOTES_HEADER + "{context}"
)
MUST_ANSWER_SUFFIX = "\n\nYou have already asked a clarifying question. Do not ask again: answer now."
# How a clarifying question starts: the simulator forces it to explore asking, and the calibrated ask
# decision (agent/decision.py) reads the probability of its first token.
ASK_PREFIXES = ("Do you mean",)


@dataclass(frozen=True)
class Message:
    role: str   # user | assistant
    content: str
    kind: str   # user | ask | answer


def pending_questions(history: list[Message]) -> int:
    """Clarifying questions asked since the last answer: the horizon counts these."""
    count = 0
    for msg in reversed(history):
        if msg.role != "assistant":
            continue
        if msg.kind == "ask":
            count += 1
        else:
            break
    return count


def must_answer(history: list[Message], horizon: int) -> bool:
    return pending_questions(history) >= horizon


# Text that imitates a chat-template control token (<|im_start|>, <|im_end|>, <|eot_id|>, ...). The tokenizer would
# turn it into the real token, letting a user close their turn and forge a system or assistant turn; a zero-width
# non-joiner after "<" keeps it plain text. Only the prompt changes: the log keeps what the user wrote.
_CONTROL_TOKEN = re.compile(r"<(?=\|[^<>|\s]{1,64}\|>)")


def neutralize_control_tokens(text: str) -> str:
    return _CONTROL_TOKEN.sub("<\u200c", text)


def fold_clarifications(history: list[Message]) -> list[Message]:
    """The conversation with its pending clarifying exchange restated as one question: "Q" / ask / "C"
    becomes "Q (C)".

    Why: a small model answering after its own question tends to echo the user's clarification ("The Volt
    S3 version.") instead of looking it up; asked the question restated with the clarification, it answers
    as it does a clear question (the base model: right 62% of the time against 19%, on items nobody on the
    team wrote). The user still sees the conversation as it was; only the prompt changes, the same way for
    serving, evaluation and training. Earlier, finished exchanges (up to the last answer) stay as they were.
    """
    if pending_questions(history) == 0 or not history or history[-1].role != "user":
        return history
    start = max((i + 1 for i, m in enumerate(history) if m.role == "assistant" and m.kind != "ask"), default=0)
    episode = history[start:]
    users = [m.content.strip() for m in episode if m.role == "user"]
    if len(users) < 2 or episode[0].role != "user":
        return history
    restated = users[0] + "".join(f" ({reply})" for reply in users[1:])
    return history[:start] + [Message("user", restated, "user")]


def build_prompt(context: str, history: list[Message], horizon: int) -> list[dict]:
    """Chat messages for the engine: system notes + the conversation so far (ending with a user turn), with a
    pending clarifying exchange restated as one question (`fold_clarifications`)."""
    system = SYSTEM_TEMPLATE.format(context=neutralize_control_tokens(context.strip()))
    if must_answer(history, horizon):
        system += MUST_ANSWER_SUFFIX
    return [{"role": "system", "content": system}] + [
        {"role": m.role, "content": neutralize_control_tokens(m.content)} for m in fold_clarifications(history)
    ]


# -- the ask/answer classifier ------------------------------------------------

# A sentence ends at . ! ? (plus closing quotes/brackets) before whitespace or the end, or at a newline;
# not after an abbreviation or an initial ("St. Petersburg", "Michael B. Jordan", "7 a.m."), and never
# inside a number ("$3.50").
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s|$)|\n+")
_ABBREVIATION = re.compile(
    r"(?:[a-z]|st|mt|mr|mrs|ms|dr|jr|sr|prof|gen|col|lt|capt|vs|etc|approx|no|nos|fig|ft|inc|ltd|co|corp|"
    r"e\.g|i\.e|u\.s|u\.k|d\.c|a\.m|p\.m|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)",
    re.IGNORECASE,
)
# Asking the user to choose between readings.
_CLARIFY_CUES = re.compile(
    r"\b(do you mean|did you mean|you mean|which (one|of|is|are|do|did|would|should)|"
    r"are you (asking|referring|talking|interested|thinking|looking)|asking about|referring to|"
    r"could you (clarify|specify|tell me which)|can you (clarify|specify|tell me which)|"
    r"please (clarify|specify)|to clarify|is it the|or the|or\b)",
    re.IGNORECASE,
)
_STARTS_WITH_WHICH = re.compile(r"^\W*which\b", re.IGNORECASE)
# Closing offers after an answer are not clarifying questions.
_PLEASANTRY = re.compile(
    r"\b(anything else|any other questions?|any (more|further) questions|(can|may) i help|help you with|"
    r"else i can|would you like (to know|to learn|to hear|more|me to)|do you (want|need) (to know )?more|"
    r"let me know|hope (this|that) helps|do you have (any|other|more) questions|does (this|that) help)",
    re.IGNORECASE,
)


# Greetings and interjections say nothing: "Hey! Which branch?" is all question.
_FILLER = re.compile(
    r"^\W*(hi|hello|hey|sure|ok|okay|of course|certainly|absolutely|thanks|thank you|great question|good question|"
    r"hmm|well|oh|ah|yes|no)\b[^.!?]{0,20}[.!]*$",
    re.IGNORECASE,
)


def split_sentences(text: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        mark = match.group()
        if mark.startswith(".") and mark.rstrip("\"'\u201d\u2019)]") == ".":
            words = text[start:match.start()].split()
            if words and _ABBREVIATION.fullmatch(words[-1].lstrip("(\"'")):
                continue
        piece = text[start:match.end()].strip()
        if piece:
            sentences.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _is_question(sentence: str) -> bool:
    return sentence.rstrip("\"'\u201d\u2019)]").endswith("?")


def classify_agent_turn(text: str) -> str:
    """'ask' when the turn asks the user something back, else 'answer'.

    A turn is a clarifying question when one of its questions carries a
    clarification cue ("do you mean", "which one", "are you asking about",
    "... or ...?", a question starting with "Which"), or when it consists of
    questions only (greetings aside). Closing offers ("Anything else?", "Would you like to know
    more?") are not clarifying questions, and a statement followed by a
    question without a cue ("It was 1963. Why do you ask?") is an answer.
    """
    sentences = split_sentences(text.strip())
    questions = [s for s in sentences if _is_question(s) and not _PLEASANTRY.search(s)]
    if not questions:
        return "answer"
    if any(_CLARIFY_CUES.search(q) or _STARTS_WITH_WHICH.search(q) for q in questions):
        return "ask"
    if all(_is_question(s) or _FILLER.match(s) for s in sentences):
        return "ask"
    return "answer"


def reorder_notes(context: str, seed: int) -> str:
    """The same notes, sentences in another (seeded) order: a view of the context that keeps its facts.

    Training on several orders (learner/examples.py) keeps the policy from keying on where a fact sits in the
    notes instead of on what the question asks (docs/LEARNING.md); the calibrated ask
    decision averages over a few orders (agent/decision.py). One sentence or none: unchanged.
    """
    sentences = split_sentences(context)
    if len(sentences) < 2:
        return context
    rng = random.Random(seed)
    for _ in range(8):  # a different order when there is one
        order = sentences[:]
        rng.shuffle(order)
        if order != sentences:
            break
    return " ".join(order)
