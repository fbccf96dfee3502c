"""A chat session against the engine, with every turn logged: what the UI (or any client) drives.

Keeps the UI thin: validation, prompt building, streaming, ask/answer
labelling, latency and token accounting, and failure logging live here.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from logs_db.store import LogError, LogStore, UnknownId, conversation_key

from .decision import Exploration, may_ask
from .engine import AdapterLoadError, Engine, EngineError, GenerationParams
from .policy import Message, build_prompt, classify_agent_turn

if TYPE_CHECKING:
    from clarify.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_NOTES = (
    "Clarify Café has two branches. The Harbor branch is open 7 am to 3 pm and its espresso costs $3. "
    "The Station branch is open 6 am to 9 pm and its espresso costs $4. "
    "Both branches sell a large latte for $5."
)


def clean_text(text: str) -> str:
    """Drop NUL and other control characters (keeping newlines and tabs) and lone surrogates (invalid UTF-8 that
    arrived as JSON escapes, which DuckDB cannot store); normalize Unicode."""
    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")).strip()


@dataclass
class Reply:
    """Streams the growing reply text; after the stream ends, the logged turn is described here."""

    pieces: Iterator[str]
    turn_id: str | None = None
    kind: str | None = None
    text: str = ""
    error: str | None = None

    def __iter__(self) -> Iterator[str]:
        # `yield from` forwards close(): a consumer that stops early stops (and logs) the stream now,
        # not whenever the garbage collector breaks the Reply <-> stream reference cycle.
        yield from self.pieces


@dataclass
class ChatService:
    store: LogStore
    engine: Engine
    params: GenerationParams = field(default_factory=GenerationParams)
    horizon: int = 1
    max_message_chars: int = 4000
    max_context_chars: int = 8000
    # A/B: new conversations go to arm B (the candidate) with probability ab_share, else arm A (active).
    ab_candidate: str | None = None
    ab_share: float = 0.0
    # Exploration (Settings.explore): on a turn that may ask, take the action the decision did not choose with this
    # probability. 0: the decision alone, exactly as without exploration (its P(ask) is still logged when read).
    explore: float = 0.0
    rng: random.Random = field(default_factory=random.Random, repr=False)
    _ab_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @classmethod
    def from_settings(cls, store: LogStore, engine: Engine, settings: Settings, **kwargs) -> ChatService:
        """The service `clarify serve` runs (and bench/traffic.py drives): generation, horizon, limits and
        exploration from the settings."""
        return cls(store, engine,
                   params=GenerationParams(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature),
                   horizon=settings.max_clarifying_questions, max_message_chars=settings.max_message_chars,
                   max_context_chars=settings.max_context_chars, explore=settings.explore, **kwargs)

    def set_ab(self, candidate: str | None, share: float) -> None:
        """Change the A/B split for new conversations (running ones keep their adapter). Loads the candidate."""
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= float(share) <= 1.0:
            raise LogError(f"The B share must be a number from 0 to 1, got {share!r}.")
        if candidate is not None:
            record = self.store.get_adapter(candidate)          # UnknownId (a LogError) for a bad id
            self.engine.load_adapter(candidate, Path(record.path))  # AdapterLoadError for a broken folder
        with self._ab_lock:
            self.ab_candidate, self.ab_share = candidate, float(share)

    def ab_state(self) -> tuple[str | None, float]:
        with self._ab_lock:
            return self.ab_candidate, self.ab_share

    def assign(self) -> tuple[str | None, str | None]:
        """(adapter, arm) for a new conversation. arm is None when no experiment runs (no candidate, or the
        candidate is the active adapter); otherwise "B" with probability ab_share, else "A"."""
        active = self.active_adapter()
        with self._ab_lock:
            candidate, share = self.ab_candidate, self.ab_share
            if candidate is None or candidate == active:
                return active, None
            draw = self.rng.random()
        if draw >= share:
            return active, "A"
        try:
            record = self.store.get_adapter(candidate)
            self.engine.load_adapter(candidate, Path(record.path))
        except (UnknownId, AdapterLoadError) as exc:  # never serve a broken candidate; keep it out of the stats
            log.warning("A/B candidate %s cannot be served (%s); this conversation uses the active adapter", candidate, exc)
            return active, None
        return candidate, "B"

    def active_adapter(self) -> str | None:
        """The adapter new conversations use; loaded into the engine on demand."""
        adapter = self.store.active_adapter()
        if adapter is None:
            return None
        try:
            self.engine.load_adapter(adapter.id, Path(adapter.path))
        except AdapterLoadError:
            return None  # a broken adapter is never served; the base model answers instead
        return adapter.id

    def start(self, context: str = DEFAULT_NOTES, *, opening: str | None = None, user_id: str | None = None,
              adapter_id: str | None = "active", arm: str | None = None, source: str = "ui") -> str:
        """Log a new conversation over these notes (source "ui" for the Chat tab, "api" for /v1) and return its id.

        `opening` is the user's first message, about to be sent with ``reply``: the conversation's context key is
        the notes and it (logs_db.conversations.conversation_key), so the learner groups the conversations that
        ask the same question on the same notes; without it, the notes alone. adapter_id "active" draws the A/B
        arm; an explicit id (or None = base) is used as given."""
        context = clean_text(context or "")
        if not context:
            raise LogError("The reference notes are empty: give the agent something to answer from.")
        if len(context) > self.max_context_chars:
            raise LogError(f"The reference notes are {len(context)} characters; the limit is {self.max_context_chars}.")
        if adapter_id == "active":
            adapter, drawn_arm = self.assign()
            arm = arm if arm is not None else drawn_arm
        else:
            adapter = adapter_id
        key = conversation_key(context, clean_text(opening)) if opening is not None else None
        return self.store.new_conversation(
            source=source, context=context, context_key=key, adapter_id=adapter, engine=self.engine.name, arm=arm,
            user_id=user_id,
        )

    def validate_message(self, text: str) -> str:
        if not isinstance(text, str):
            raise LogError("A message must be text.")
        text = clean_text(text)
        if not text:
            raise LogError("The message is empty.")
        if len(text) > self.max_message_chars:
            raise LogError(
                f"The message is {len(text)} characters; the limit is {self.max_message_chars}. Nothing was sent."
            )
        return text

    def history(self, conversation_id: str) -> list[Message]:
        return [
            Message(t.role, t.text, t.kind)
            for t in self.store.list_turns(conversation_id)
            if t.status == "ok"
        ]

    def reply(self, conversation_id: str, user_text: str, *, user_id: str | None = None) -> Reply:
        """Validate and log the user turn, then stream the agent's reply and log it (ok or failed)."""
        text = self.validate_message(user_text)
        conv = self.store.get_conversation(conversation_id)
        if conv.user_id is not None and user_id is not None and conv.user_id != user_id:
            raise LogError("This conversation belongs to another user.")
        self.store.add_turn(conversation_id, role="user", kind="user", text=text)
        history = self.history(conversation_id)
        prompt = build_prompt(conv.context, history, self.horizon)
        reply = Reply(iter(()))
        reply.pieces = self._stream(conv.id, conv.adapter_id, prompt, reply)
        return reply

    def exploration(self, prompt: list[dict]) -> Exploration | None:
        """The turn's exploration (None: a turn that must answer). Draws from `rng` only when exploring."""
        if not may_ask(prompt):
            return None
        if self.explore <= 0:
            return Exploration(0.0)
        with self._ab_lock:
            return Exploration(self.explore, self.rng.random())

    def _stream(self, conversation_id: str, adapter: str | None, prompt: list[dict], reply: Reply) -> Iterator[str]:
        started = time.perf_counter()
        n_pieces = 0
        explore = self.exploration(prompt)
        try:
            if adapter is not None:
                record = self.store.get_adapter(adapter)
                self.engine.load_adapter(adapter, Path(record.path))
            for piece in self.engine.stream(prompt, self.params, adapter=adapter, explore=explore):
                n_pieces += 1
                reply.text += piece
                yield reply.text
        except (EngineError, OSError) as exc:
            reply.error = str(exc) if isinstance(exc, EngineError) else f"Engine unavailable: {exc}"
            reply.turn_id = self.store.add_turn(
                conversation_id, role="assistant", kind="answer", text=reply.text, adapter_id=adapter,
                engine=self.engine.name, latency_ms=(time.perf_counter() - started) * 1000,
                status="failed", error=reply.error,
            )
            raise EngineError(reply.error) from exc
        except GeneratorExit:
            # The consumer stopped reading (browser closed mid-reply): log what was shown as a failed
            # turn, so the logged user turn is never left without its reply.
            reply.error = "The reply was interrupted before it finished."
            reply.turn_id = self.store.add_turn(
                conversation_id, role="assistant", kind="answer", text=reply.text, adapter_id=adapter,
                engine=self.engine.name, latency_ms=(time.perf_counter() - started) * 1000,
                status="failed", error=reply.error,
            )
            raise
        reply.text = reply.text.strip()
        columns = explore.columns() if explore is not None else {}
        # The action the policy took is the turn's kind (a forbidden ask that still ends in "?" is an answer).
        reply.kind = columns.get("action") or classify_agent_turn(reply.text)
        reply.turn_id = self.store.add_turn(
            conversation_id, role="assistant", kind=reply.kind, text=reply.text, adapter_id=adapter,
            engine=self.engine.name, latency_ms=(time.perf_counter() - started) * 1000,
            completion_tokens=n_pieces, **columns,
        )
