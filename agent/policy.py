"""The clarifying QA policy: how a conversation becomes a prompt, and what an agent turn is.

One function, ``build_prompt``, is used by the chat UI, the simulator, the
evaluator and the trainer, so the model is trained on exactly the prompts it is
served with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SYSTEM_TEMPLATE = (
    "You are a helpful assistant. Answer the user's question using only the reference notes below. "
    "If the question could refer to more than one thing in the notes, ask one short clarifying question "
    "instead of answering. Otherwise answer directly in one short sentence.\n\n"
    "Reference notes:\n{context}"
)
MUST_ANSWER_SUFFIX = "\n\nYou have already asked a clarifying question. Do not ask again: answer now."


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


def build_prompt(context: str, history: list[Message], horizon: int) -> list[dict]:
    """Chat messages for the engine: system notes + the conversation so far (ending with a user turn)."""
    system = SYSTEM_TEMPLATE.format(context=context.strip())
    if must_answer(history, horizon):
        system += MUST_ANSWER_SUFFIX
    return [{"role": "system", "content": system}] + [
        {"role": m.role, "content": m.content} for m in history
    ]


# -- the ask/answer classifier ------------------------------------------------

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_CLARIFY_CUES = re.compile(
    r"\b(do you mean|did you mean|which (one|of|is)|are you (asking|referring|talking)|you mean|"
    r"could you (clarify|specify|tell me which)|can you (clarify|specify)|please (clarify|specify)|"
    r"referring to|would you like|do you want|is it the|or the|or\b)",
    re.IGNORECASE,
)


def classify_agent_turn(text: str) -> str:
    """'ask' when the turn asks the user something back, else 'answer'.

    A turn is a question when its last sentence ends with '?', or when any
    question sentence in it carries a clarification cue ("do you mean",
    "which one", "... or ...?"). A closing pleasantry ("Anything else?")
    after a statement is not a clarifying question.
    """
    sentences = [s.strip() for s in _SENTENCE.findall(text.strip()) if s.strip()]
    if not sentences:
        return "answer"
    questions = [s for s in sentences if s.endswith("?")]
    if not questions:
        return "answer"
    if any(_CLARIFY_CUES.search(q) for q in questions):
        return "ask"
    statements = [s for s in sentences if not s.endswith("?")]
    if sentences[-1].endswith("?") and not statements:
        return "ask"
    return "answer"
