"""Conversations and their turns: created, continued, read back; what the chat, the API and the simulator write."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from .base import LogError, StoreBase, UnknownId, from_json, new_id, to_json
from .writer import now

ROLES = ("user", "assistant")
TURN_KINDS = ("user", "ask", "answer")
INTERRUPTED_BY_RESTART = "The server stopped before this reply finished."


@dataclass(frozen=True)
class Conversation:
    id: str
    created_at: datetime
    source: str
    context_key: str
    context: str
    adapter_id: str | None
    engine: str | None
    arm: str | None
    user_id: str | None
    reward: float | None
    meta: dict


@dataclass(frozen=True)
class Turn:
    id: str
    conversation_id: str
    idx: int
    role: str
    kind: str
    text: str
    adapter_id: str | None
    engine: str | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    status: str
    error: str | None
    created_at: datetime
    # The serving policy's ask decision (agent/decision.py Exploration); None where the turn could not ask.
    p_ask: float | None = None
    action: str | None = None
    propensity: float | None = None
    explored: bool | None = None


ACTIONS = ("ask", "answer")


def context_hash(context: str) -> str:
    """The key of a conversation over these notes whose opening question is not known."""
    return "notes-" + hashlib.sha256(context.strip().encode()).hexdigest()[:16]


def normalized_opening(text: str) -> str:
    """A user's opening message as the key reads it: casefolded, whitespace runs as one space, without trailing
    punctuation ("How much is  an espresso?" and "how much is an espresso" are one question)."""
    text = " ".join(text.casefold().split())
    while text and unicodedata.category(text[-1]).startswith("P"):
        text = text[:-1].rstrip()
    return text


def conversation_key(context: str, opening: str) -> str:
    """The key of a chat conversation: its notes and its opening user message. Conversations that share it are one
    decision problem (the same question on the same notes), which the learner compares with each other, as it
    compares a simulated item's conversations (their key is the item id)."""
    text = context.strip() + "\n" + normalized_opening(opening)
    return "chat-" + hashlib.sha256(text.encode()).hexdigest()[:16]


_TURN_COLUMNS = ("id, conversation_id, idx, role, kind, text, adapter_id, engine, latency_ms, prompt_tokens,"
                 " completion_tokens, status, error, created_at, p_ask, action, propensity, explored")


class ConversationStore(StoreBase):
    def new_conversation(
        self,
        *,
        source: str,
        context: str,
        context_key: str | None = None,
        adapter_id: str | None = None,
        engine: str | None = None,
        arm: str | None = None,
        user_id: str | None = None,
        meta: dict | None = None,
        conversation_id: str | None = None,
    ) -> str:
        key = context_key or context_hash(context)
        if conversation_id is None:  # a fresh id cannot clash: written behind the caller
            cid = new_id()
            self._writer.put_conversation(
                cid, (cid, now(), source, key, context, adapter_id, engine, arm, user_id, to_json(meta or {})))
            return cid
        self._cur.execute(  # a caller's id may exist already: written now, so a clash raises here
            "INSERT INTO conversations (id, source, context_key, context, adapter_id, engine, arm, user_id, meta)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [conversation_id, source, key, context, adapter_id, engine, arm, user_id, to_json(meta or {})],
        )
        return conversation_id

    def get_conversation(self, conversation_id: str) -> Conversation:
        return self._one(lambda *r: Conversation(*r[:-1], meta=from_json(r[-1])),
                         "SELECT id, created_at, source, context_key, context, adapter_id, engine, arm, user_id,"
                         " reward, meta FROM conversations WHERE id = ?",
                         [conversation_id], f"No conversation with id {conversation_id!r}.")

    def set_conversation_reward(self, conversation_id: str, reward: float) -> None:
        if not 0.0 <= reward <= 1.0:
            raise LogError(f"Reward must be in [0, 1], got {reward}.")
        self._writer.put_reward(conversation_id, float(reward), self.get_conversation)

    def add_turn(
        self,
        conversation_id: str,
        *,
        role: str,
        kind: str,
        text: str,
        adapter_id: str | None = None,
        engine: str | None = None,
        latency_ms: float | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        status: str = "ok",
        error: str | None = None,
        p_ask: float | None = None,
        action: str | None = None,
        propensity: float | None = None,
        explored: bool | None = None,
    ) -> str:
        """Queue a turn. An agent turn that may ask can carry the serving policy's decision: its P(ask), the
        action taken, that action's propensity and whether exploration chose it (agent/decision.py)."""
        if role not in ROLES:
            raise LogError(f"Unknown role {role!r}.")
        if kind not in TURN_KINDS or (role == "user") != (kind == "user"):
            raise LogError(f"Turn kind {kind!r} does not fit role {role!r}.")
        if status not in ("ok", "failed"):
            raise LogError(f"Unknown turn status {status!r}.")
        if action is not None and (action not in ACTIONS or role != "assistant"):
            raise LogError(f"Action {action!r} does not fit a {role} turn.")
        for name, value in (("p_ask", p_ask), ("propensity", propensity)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise LogError(f"{name} must be in [0, 1], got {value}.")
        tid = new_id()
        queued = self._writer.put_turn(
            conversation_id,
            lambda idx: (tid, conversation_id, idx, role, kind, text, adapter_id, engine, latency_ms,
                         prompt_tokens, completion_tokens, status, error, now(), p_ask, action, propensity,
                         explored),
            self._next_idx_in_db,
        )
        if not queued:
            raise UnknownId(f"No conversation with id {conversation_id!r}.")
        return tid

    def _next_idx_in_db(self, conversation_id: str) -> int | None:
        """The next turn position of a conversation (None when there is no such conversation)."""
        row = self._cur.execute(
            "SELECT (SELECT coalesce(max(idx) + 1, 0) FROM turns WHERE conversation_id = c.id)"
            " FROM conversations c WHERE c.id = ?",
            [conversation_id],
        ).fetchone()
        return None if row is None else int(row[0])

    def fail_unanswered_turns(self, error: str = INTERRUPTED_BY_RESTART) -> int:
        """Give every chat conversation (Chat tab or API) whose last turn is a user turn a failed agent turn; returns
        how many.

        Only a crash of the serving process mid-reply leaves one (a reply is otherwise always logged, ok or
        failed). The serving process runs this at start, while it holds the file and nobody chats yet.
        """
        rows = self._cur.execute(
            "SELECT t.conversation_id FROM turns t JOIN conversations c ON c.id = t.conversation_id"
            " WHERE c.source IN ('ui', 'api') AND t.role = 'user'"
            " AND t.idx = (SELECT max(u.idx) FROM turns u WHERE u.conversation_id = t.conversation_id)"
        ).fetchall()
        for (cid,) in rows:
            self.add_turn(cid, role="assistant", kind="answer", text="", status="failed", error=error)
        return len(rows)

    def get_turn(self, turn_id: str) -> Turn:
        return self._one(Turn, f"SELECT {_TURN_COLUMNS} FROM turns WHERE id = ?", [turn_id],
                         f"No turn with id {turn_id!r}.")

    def list_turns(self, conversation_id: str) -> list[Turn]:
        return self._rows(Turn, f"SELECT {_TURN_COLUMNS} FROM turns WHERE conversation_id = ? ORDER BY idx",
                          [conversation_id])

    def answering_adapter(self, conversation_id: str) -> str | None:
        """The adapter (None = the base model) that wrote the conversation's last successful agent reply, as its
        turn records it; before any such reply, the adapter the conversation was started with. UnknownId when
        there is no such conversation."""
        return self._one(lambda adapter: adapter,
                         "SELECT CASE WHEN t.id IS NULL THEN c.adapter_id ELSE t.adapter_id END"
                         " FROM conversations c LEFT JOIN turns t ON t.id = c.final_turn_id WHERE c.id = ?",
                         [conversation_id], f"No conversation with id {conversation_id!r}.")

    def conversations_ending_with(self, *, source: str, user_id: str | None, final_text: str,
                                  context_key: str | None = None, limit: int = 20) -> list[str]:
        """Ids of this source's and user's conversations (over these notes, when given) whose final ok agent turn
        says exactly `final_text`, newest first: how a client that resends a conversation is matched to the
        logged one (api/conversations.py checks the rest of the turns)."""
        rows = self._cur.execute(
            "SELECT c.id FROM conversations c JOIN turns t ON t.id = c.final_turn_id"
            " WHERE c.source = ? AND c.user_id IS NOT DISTINCT FROM ? AND t.text = ?"
            " AND (CAST(? AS VARCHAR) IS NULL OR c.context_key = ?)"
            " ORDER BY c.created_at DESC, c.id LIMIT ?",
            [source, user_id, final_text, context_key, context_key, limit],
        ).fetchall()
        return [row[0] for row in rows]
