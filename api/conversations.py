"""An OpenAI messages list as a clarify conversation, and which logged conversation a request continues.

OpenAI's chat API is stateless: every request resends the whole conversation. clarify logs conversations, so a
follow-up must land in the conversation it continues, and a client may never write into one it does not own.

The rule (README, "Embed clarify (API)"):
- The system (or developer) messages are the reference notes; the last message is the new user question; the
  messages between them are the conversation so far.
- Nothing so far: a new conversation.
- ``"clarify": {"conversation_id": ID}`` in the request: continue that conversation. It must be one this client
  made through the API (403 otherwise), and the messages so far must be its logged turns (409 otherwise).
- No id: the messages so far are matched against this client's API conversations over the same notes whose
  last agent reply is the last assistant message; the newest one whose logged turns are exactly the messages
  so far is continued, and none is 409. Assistant messages are never taken from the client: clarify's log
  only holds what its agent said.

"The logged turns" are the ok turns, without a user message whose reply failed (a client that retries after an
error resends the conversation without it). Texts compare with whitespace runs squashed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agent.chat_service import clean_text
from logs_db.store import Conversation, LogStore, Turn, UnknownId, context_hash, conversation_key

from .errors import ApiError

SOURCE = "api"
NOTE_ROLES = ("system", "developer")
MATCH_CANDIDATES = 20


@dataclass(frozen=True)
class ChatRequest:
    notes: str | None             # cleaned; None when the request has no system message
    so_far: list[tuple[str, str]]  # (role, text) before the new question
    question: str                 # the last user message, as sent (the chat service validates it)


def content_text(content: Any, where: str) -> str:
    """A message's text: a string, or a list of text parts ({"type": "text", "text": ...})."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, f"{where}: only text content is supported (parts of type 'text').",
                               "unsupported_content")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ApiError(400, f"{where}: content must be a string or a list of text parts.", "invalid_content")


def parse_messages(messages: Any) -> ChatRequest:
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list of {role, content}.", "invalid_messages")
    notes: list[str] = []
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise ApiError(400, f"{where} must be an object with role and content.", "invalid_messages")
        role = message.get("role")
        if message.get("tool_calls") or message.get("function_call"):
            raise ApiError(400, f"{where}: clarify does not call tools.", "unsupported_role")
        text = content_text(message.get("content"), where)
        if role in NOTE_ROLES:
            if turns:
                raise ApiError(400, f"{where}: the system message (the reference notes) must come before the "
                                    "conversation.", "invalid_messages")
            notes.append(text)
        elif role in ("user", "assistant"):
            turns.append((role, text))
        else:
            raise ApiError(400, f"{where}: role must be system, user or assistant, got {role!r}.", "unsupported_role")
    if not turns or turns[-1][0] != "user":
        raise ApiError(400, "The last message must be the user's new question.", "invalid_messages")
    return ChatRequest(notes=clean_text("\n\n".join(notes)) if notes else None, so_far=turns[:-1],
                       question=turns[-1][1])


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def answered_turns(turns: list[Turn]) -> list[tuple[str, str]]:
    """(role, text) of the ok turns, without user turns left unanswered (their reply failed or is running)."""
    out = []
    for i, turn in enumerate(turns):
        after = turns[i + 1] if i + 1 < len(turns) else None
        if turn.status != "ok" or turn.role == "user" and (after is None or after.status != "ok"):
            continue
        out.append((turn.role, turn.text))
    return out


def _same(so_far: list[tuple[str, str]], logged: list[tuple[str, str]]) -> bool:
    return len(so_far) == len(logged) and all(
        role == logged_role and _squash(clean_text(text) if role == "user" else text) == _squash(logged_text)
        for (role, text), (logged_role, logged_text) in zip(so_far, logged))


def _fits(conv: Conversation, chat: ChatRequest, model: str) -> bool:
    return (chat.notes is None or chat.notes == conv.context) and model in ("clarify", conv.adapter_id)


def _candidate_keys(chat: ChatRequest) -> list[str | None]:
    """The context keys the continued conversation may have: the notes and the opening question (what
    ChatService.start gives an API conversation), then the notes alone (conversations logged before the key
    held the opening). None: no notes were sent, so any key."""
    if chat.notes is None:
        return [None]
    opening = next((text for role, text in chat.so_far if role == "user"), None)
    keys = [] if opening is None else [conversation_key(chat.notes, clean_text(opening))]
    return keys + [context_hash(chat.notes)]


def find_continuation(store: LogStore, chat: ChatRequest, *, client: str | None, model: str,
                      conversation_id: str | None) -> Conversation | None:
    """The logged conversation this request continues, None for a new one; ApiError 403/404/409 otherwise."""
    if conversation_id is not None:
        try:
            conv = store.get_conversation(conversation_id)
        except UnknownId:
            raise ApiError(404, f"No conversation with id {conversation_id!r}.", "conversation_not_found") from None
        if conv.source != SOURCE or conv.user_id != client:
            raise ApiError(403, "That conversation was not made with your API key; you can only continue your own.",
                           "not_your_conversation")
        if not _fits(conv, chat, model) or not _same(chat.so_far, answered_turns(store.list_turns(conv.id))):
            raise ApiError(409, "The notes, model or messages so far do not match that conversation's log: send "
                                "the messages as clarify returned them, then the new question.", "conversation_mismatch")
        return conv
    if not chat.so_far:
        return None
    role, last = chat.so_far[-1]
    if role == "assistant":
        for key in _candidate_keys(chat):
            for cid in store.conversations_ending_with(source=SOURCE, user_id=client, final_text=last.strip(),
                                                       context_key=key, limit=MATCH_CANDIDATES):
                conv = store.get_conversation(cid)
                if _fits(conv, chat, model) and _same(chat.so_far, answered_turns(store.list_turns(cid))):
                    return conv
    raise ApiError(409, "These messages do not continue a conversation you made with clarify (its assistant "
                        "messages are clarify's replies, as returned). Send only the new question to start a new "
                        "conversation, or pass clarify.conversation_id.", "conversation_mismatch")
