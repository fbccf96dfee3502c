"""The typed API over the DuckDB log: ``LogStore``, one object over the four parts of the log.

- conversations and their turns (logs_db/conversations.py),
- ratings of agent replies (logs_db/ratings.py),
- the adapter registry: adapters, activations, promotion decisions (logs_db/adapters.py),
- training and evaluation runs (logs_db/runs.py),

on one connection (logs_db/base.py) with one writer thread (logs_db/writer.py) and the numbered migrations
(logs_db/migrations.py). The store (with the snapshot and insights queries) is the only code that runs SQL;
all values travel as bound parameters, no SQL text is ever built from user input. Every name callers use is
importable from here.
"""

from __future__ import annotations

from .adapters import ACTIVATION_KINDS, ADAPTER_STATUSES, Activation, Adapter, AdapterStore, PromotionDecision
from .base import DatabaseLocked, DuplicateRating, LogError, UnknownId, new_id
from .conversations import (INTERRUPTED_BY_RESTART, ROLES, TURN_KINDS, Conversation, Turn, context_hash,
                            conversation_key)
from .ratings import RATING_KINDS, Rating, RatingStore, normalized_reward
from .runs import TRAINING_TRIGGERS, EvalRun, RatedSinceRun, RunStore, TrainingRun

__all__ = [
    "ACTIVATION_KINDS", "ADAPTER_STATUSES", "INTERRUPTED_BY_RESTART", "RATING_KINDS", "ROLES", "TRAINING_TRIGGERS",
    "TURN_KINDS", "Activation", "Adapter", "Conversation", "DatabaseLocked", "DuplicateRating", "EvalRun",
    "LogError", "LogStore", "PromotionDecision", "RatedSinceRun", "Rating", "TrainingRun", "Turn", "UnknownId",
    "context_hash", "conversation_key", "new_id", "normalized_reward",
]


class LogStore(RatingStore, AdapterStore, RunStore):
    """The log of one DuckDB file: ``LogStore(path)``, or ``with LogStore(path) as store: ...``.

    DuckDB allows one read-write process per file, so this object is owned by the serving process (or one CLI
    command at a time); threads share it through a cursor each.
    """
