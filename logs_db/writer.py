"""Write-behind for the hot writes (new conversations, turns, grader rewards): callers never wait for DuckDB.

A turn is validated, given its id and position (idx) in the caller's thread, queued, and written by one
writer thread, which takes everything queued since its previous write and inserts it in one transaction:
one multi-row INSERT per table (from an Arrow batch) plus the update of the conversations' summary
columns. A single-row INSERT costs DuckDB 2-5 ms on this machine, and DuckDB serializes concurrent
writers, so with 16 chats writing at once a synchronous write waits for the others; the queue costs the
caller microseconds (docs/BENCHMARKS.md).

Read-your-writes: every other LogStore call first waits until everything queued before it is committed
(``flush``), so no read, from any thread, misses a turn written before it. A batch that fails is retried
row by row (one bad row loses only itself); the error is logged and raised by the next call on the store.

Summary columns on ``conversations`` (migration 3), updated in the same transaction as the turns:
``final_idx``/``final_turn_id`` (the last ok agent turn), ``first_agent_kind`` (the kind of the first ok agent
turn) and ``rated_reward`` (the last rating of the final turn: reset here when a new final turn arrives, set
by ``LogStore.add_rating``). The snapshot and the insights read them instead of aggregating every turn.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Callable

import pyarrow as pa

log = logging.getLogger(__name__)

CONVERSATION_SCHEMA = pa.schema([
    ("id", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")), ("source", pa.string()),
    ("context_key", pa.string()), ("context", pa.string()), ("adapter_id", pa.string()), ("engine", pa.string()),
    ("arm", pa.string()), ("user_id", pa.string()), ("meta", pa.string()),
])
TURN_SCHEMA = pa.schema([
    ("id", pa.string()), ("conversation_id", pa.string()), ("idx", pa.int32()), ("role", pa.string()),
    ("kind", pa.string()), ("text", pa.string()), ("adapter_id", pa.string()), ("engine", pa.string()),
    ("latency_ms", pa.float64()), ("prompt_tokens", pa.int32()), ("completion_tokens", pa.int32()),
    ("status", pa.string()), ("error", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
    ("p_ask", pa.float64()), ("action", pa.string()), ("propensity", pa.float64()), ("explored", pa.bool_()),
])
REWARD_SCHEMA = pa.schema([("conversation_id", pa.string()), ("reward", pa.float64())])
SUMMARY_SCHEMA = pa.schema([
    ("conversation_id", pa.string()), ("final_idx", pa.int32()), ("final_turn_id", pa.string()),
    ("first_kind", pa.string()),
])

# Constant SQL over the registered Arrow batches. created_at is taken when the caller queued the row; the
# cast to TIMESTAMP is the one DuckDB applies to the columns' current_timestamp default.
INSERT_CONVERSATIONS_SQL = """
INSERT INTO conversations (id, created_at, source, context_key, context, adapter_id, engine, arm, user_id, meta)
SELECT id, CAST(created_at AS TIMESTAMP), source, context_key, context, adapter_id, engine, arm, user_id, meta
FROM batch_conversations
"""
INSERT_TURNS_SQL = """
INSERT INTO turns (id, conversation_id, idx, role, kind, text, adapter_id, engine, latency_ms, prompt_tokens,
                   completion_tokens, status, error, created_at, p_ask, action, propensity, explored)
SELECT id, conversation_id, idx, role, kind, text, adapter_id, engine, latency_ms, prompt_tokens,
       completion_tokens, status, error, CAST(created_at AS TIMESTAMP), p_ask, action, propensity, explored
FROM batch_turns
"""
# A new final agent turn: its ratings are yet to come, so the rating reward starts over.
UPDATE_SUMMARY_SQL = """
UPDATE conversations
SET final_idx = s.final_idx, final_turn_id = s.final_turn_id, rated_reward = NULL,
    first_agent_kind = coalesce(conversations.first_agent_kind, s.first_kind)
FROM batch_summary s
WHERE conversations.id = s.conversation_id AND (conversations.final_idx IS NULL OR conversations.final_idx < s.final_idx)
"""

UPDATE_REWARDS_SQL = """
UPDATE conversations SET reward = r.reward FROM batch_rewards r WHERE conversations.id = r.conversation_id
"""

_POSITIONS_CACHED = 100_000   # conversations whose next idx is remembered (the rest are read back on use)


def now() -> datetime:
    return datetime.now(timezone.utc)


def summary_rows(turns: list[tuple]) -> list[tuple]:
    """(conversation_id, final_idx, final_turn_id, first_kind) per conversation with ok agent turns in `turns`."""
    out: dict[str, list] = {}
    for row in turns:
        tid, cid, idx, role, kind, status = row[0], row[1], row[2], row[3], row[4], row[11]
        if role != "assistant" or status != "ok":
            continue
        s = out.setdefault(cid, [cid, idx, tid, kind, idx])
        if idx > s[1]:
            s[1], s[2] = idx, tid
        if idx < s[4]:
            s[3], s[4] = kind, idx
    return [tuple(s[:4]) for s in out.values()]


class WriteBehind:
    """One writer thread over its own cursor; `put` queues a row, `flush` waits until it is committed."""

    def __init__(self, conn):
        self._conn = conn
        self._cond = threading.Condition()
        self._queue: list[tuple[str, tuple]] = []
        self._queued = 0
        self._written = 0
        self._error: BaseException | None = None
        self._stopping = False
        self._positions: OrderedDict[str, int] = OrderedDict()
        self._positions_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="logstore-writer", daemon=True)
        self._thread.start()
        atexit.register(self._drain)  # a process that exits without closing the store still writes its queue

    # -- callers ------------------------------------------------------------------------------------------
    def put(self, table: str, row: tuple) -> None:
        with self._cond:
            if self._stopping:
                raise RuntimeError("The log store is closed.")
            self._queue.append((table, row))
            self._queued += 1
            self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every row queued so far is written; raise a write error if one happened."""
        with self._cond:
            target = self._queued
            while self._written < target:
                self._cond.wait()
            error, self._error = self._error, None
        if error is not None:
            raise RuntimeError(f"Writing to the log failed: {error}") from error

    def put_conversation(self, conversation_id: str, row: tuple) -> None:
        """Queue a new conversation (a fresh id): its first turn will be idx 0."""
        with self._positions_lock:
            self.put("conversations", row)
            self._remember(conversation_id, 0)

    def put_turn(self, conversation_id: str, build: Callable[[int], tuple],
                 load: Callable[[str], int | None]) -> bool:
        """Queue the turn `build(idx)` at the next position of its conversation; False for an unknown one.

        Positions are reserved and queued under one lock, so they are unique and queued in order even when
        two threads write to the same conversation. `load` reads the next position from the database (after
        a flush) for a conversation not seen lately, or returns None when there is no such conversation.
        """
        with self._positions_lock:
            idx = self._positions.get(conversation_id)
            if idx is None:
                self.flush()
                idx = load(conversation_id)
                if idx is None:
                    return False
            self.put("turns", build(idx))
            self._remember(conversation_id, idx + 1)
            return True

    def put_reward(self, conversation_id: str, reward: float, check: Callable[[str], object]) -> None:
        """Queue a conversation's (grader) reward; `check` raises for an unknown conversation not seen lately."""
        with self._positions_lock:
            if conversation_id not in self._positions:
                check(conversation_id)
            self.put("rewards", (conversation_id, reward))

    def _remember(self, conversation_id: str, idx: int) -> None:
        self._positions[conversation_id] = idx
        self._positions.move_to_end(conversation_id)
        while len(self._positions) > _POSITIONS_CACHED:
            self._positions.popitem(last=False)

    def _drain(self) -> None:
        try:
            self.flush()
        except RuntimeError as exc:
            log.error("%s", exc)

    def close(self) -> None:
        atexit.unregister(self._drain)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            log.error("A log write failed before the store closed: %s", error)

    # -- the writer thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        cur = self._conn.cursor()
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._stopping:
                        self._cond.wait()
                    if not self._queue:
                        return
                    batch, self._queue = self._queue, []
                try:
                    self._write(cur, batch)
                except Exception as exc:  # noqa: BLE001 - isolate the bad row, keep the others
                    self._write_one_by_one(cur, batch, exc)
                with self._cond:
                    self._written += len(batch)
                    self._cond.notify_all()
        finally:
            cur.close()

    def _write(self, cur, batch: list[tuple[str, tuple]]) -> None:
        conversations = [row for table, row in batch if table == "conversations"]
        turns = [row for table, row in batch if table == "turns"]
        summary = summary_rows(turns)
        rewards = list({row[0]: row for table, row in batch if table == "rewards"}.values())  # the last one wins
        cur.execute("BEGIN TRANSACTION")
        try:
            for name, sql, rows, schema in (
                ("batch_conversations", INSERT_CONVERSATIONS_SQL, conversations, CONVERSATION_SCHEMA),
                ("batch_turns", INSERT_TURNS_SQL, turns, TURN_SCHEMA),
                ("batch_summary", UPDATE_SUMMARY_SQL, summary, SUMMARY_SCHEMA),
                ("batch_rewards", UPDATE_REWARDS_SQL, rewards, REWARD_SCHEMA),
            ):
                if rows:
                    cur.register(name, pa.Table.from_arrays(
                        [pa.array(col, type=f.type) for col, f in zip(zip(*rows), schema)], schema=schema))
                    try:
                        cur.execute(sql)
                    finally:
                        cur.unregister(name)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def _write_one_by_one(self, cur, batch, first_error: Exception) -> None:
        failed = first_error
        if len(batch) > 1:
            failed = None
            for item in batch:
                try:
                    self._write(cur, [item])
                except Exception as exc:  # noqa: BLE001
                    failed = failed or exc
        if failed is not None:
            log.error("Could not write to the log: %s", failed)
            with self._cond:
                self._error = self._error or failed
