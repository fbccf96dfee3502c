"""Ratings of agent replies (thumbs or stars, with a comment) and the reward each one stands for."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .base import DuplicateRating, LogError, new_id
from .conversations import ConversationStore

RATING_KINDS = ("thumbs", "stars")
MAX_COMMENT_CHARS = 4000


@dataclass(frozen=True)
class Rating:
    id: str
    turn_id: str
    conversation_id: str
    kind: str
    value: float
    comment: str | None
    reward: float
    user_id: str | None
    created_at: datetime


def normalized_reward(kind: str, value: float) -> float:
    """Thumbs up/down -> 1/0; stars 1..5 -> (s - 1) / 4. Raises LogError when out of range."""
    if kind == "thumbs":
        if value not in (0, 1):
            raise LogError(f"A thumbs rating must be 0 (down) or 1 (up), got {value!r}.")
        return float(value)
    if kind == "stars":
        if isinstance(value, bool) or float(value) != int(value) or not 1 <= value <= 5:
            raise LogError(f"A star rating must be a whole number from 1 to 5, got {value!r}.")
        return (float(value) - 1.0) / 4.0
    raise LogError(f"Unknown rating kind {kind!r}; use one of {RATING_KINDS}.")


class RatingStore(ConversationStore):
    def __init__(self, path: str | Path):
        super().__init__(path)
        self._ratings_lock = threading.Lock()   # the double-rating check and the insert are one step

    def add_rating(
        self,
        turn_id: str,
        *,
        kind: str,
        value: float,
        comment: str | None = None,
        user_id: str | None = None,
    ) -> str:
        """Validate first, then write: a refused rating changes nothing."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise LogError(f"A rating value must be a number, got {type(value).__name__}.")
        reward = normalized_reward(kind, value)
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            raise LogError(f"A rating comment may be at most {MAX_COMMENT_CHARS} characters.")
        turn = self.get_turn(turn_id)
        if turn.role != "assistant" or turn.status != "ok":
            raise LogError("Only a successful agent reply can be rated.")
        conv = self.get_conversation(turn.conversation_id)
        if conv.user_id is not None and user_id is not None and conv.user_id != user_id:
            raise LogError("You can only rate replies in your own conversations.")
        rid = new_id()
        with self._ratings_lock:
            # A repeated identical rating (double click, replayed request) would change nothing but the count.
            last = self._cur.execute(
                "SELECT kind, value, comment FROM ratings WHERE turn_id = ? AND user_id IS NOT DISTINCT FROM ?"
                " ORDER BY created_at DESC, rowid DESC LIMIT 1",
                [turn_id, user_id],
            ).fetchone()
            if last == (kind, float(value), comment):
                raise DuplicateRating("This reply already has exactly this rating from you; nothing new was recorded.")
            with self._transaction() as cur:
                cur.execute(
                    "INSERT INTO ratings (id, turn_id, conversation_id, kind, value, comment, reward, user_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [rid, turn_id, turn.conversation_id, kind, float(value), comment, reward, user_id],
                )
                # The conversation's reward is the last rating of its final agent turn (migration 3).
                cur.execute("UPDATE conversations SET rated_reward = ? WHERE id = ? AND final_turn_id = ?",
                            [reward, turn.conversation_id, turn_id])
        return rid

    def list_ratings(self, conversation_id: str) -> list[Rating]:
        return self._rows(Rating, "SELECT id, turn_id, conversation_id, kind, value, comment, reward, user_id,"
                                  " created_at FROM ratings WHERE conversation_id = ? ORDER BY created_at, id",
                          [conversation_id])
