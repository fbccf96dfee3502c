"""The typed API over the DuckDB log. The only module (with the snapshot export) that runs SQL.

All values travel as bound parameters; no SQL text is ever built from user input.
DuckDB allows one read-write process per file, so this object is owned by the
serving process (or one CLI command at a time); threads share it through a
cursor each. New conversations, turns and grader rewards are written behind
the caller by one writer thread (logs_db/writer.py); every other call first
waits for them, so reads always see every write made before them.
"""

from __future__ import annotations

import json
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

import duckdb

from .migrations import apply_migrations
from .writer import WriteBehind, now

ROLES = ("user", "assistant")
TURN_KINDS = ("user", "ask", "answer")
RATING_KINDS = ("thumbs", "stars")
ADAPTER_STATUSES = ("candidate", "active", "retired")
ACTIVATION_KINDS = ("manual", "gate", "rollback", "cli")
TRAINING_TRIGGERS = ("cli", "ui", "scheduler")


class LogError(ValueError):
    """Bad input for the log: the message is meant for the person who sent it."""


class UnknownId(LogError):
    pass


class DuplicateRating(LogError):
    """The same rating of the same reply by the same user again (a double click, a replayed request)."""


class DatabaseLocked(RuntimeError):
    pass


INTERRUPTED_BY_RESTART = "The server stopped before this reply finished."


def new_id() -> str:
    return uuid.uuid4().hex


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
class Adapter:
    id: str
    parent_id: str | None
    method: str
    path: str
    hyperparams: dict
    snapshot_hash: str | None
    train_metrics: dict
    eval_results: dict
    status: str
    created_at: datetime


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _unjson(text: str | None) -> dict:
    return json.loads(text) if text else {}



def _dicts(cur) -> list[dict]:
    """Every remaining row of a query as {column: value}."""
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]

class LogStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._connect()
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise DatabaseLocked(
                    f"{self.path} is open in another clarify process (DuckDB allows one writer). "
                    "Stop it, or point this command at another --data-dir."
                ) from exc
            raise
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()
        self._ratings_lock = threading.Lock()   # the double-rating check and the insert are one step
        apply_migrations(self._conn)
        self._writer = WriteBehind(self._conn)
        self._closed = False

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            # A creation cut short (disk full at the first start) leaves an empty file DuckDB refuses for good;
            # it holds nothing, so start afresh. (A file another process is creating is locked: not this case.)
            if "not a valid DuckDB database file" not in str(exc) or not self.path.is_file() \
                    or self.path.stat().st_size != 0:
                raise
            self.path.unlink()
            return duckdb.connect(str(self.path))

    # -- plumbing -------------------------------------------------------------
    @property
    def _cur(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor, once every write queued before this call is committed."""
        self._writer.flush()
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._conn.cursor()
            self._local.cursor = cur
            with self._cursors_lock:
                self._cursors.append(cur)
        return cur

    def execute(self, sql: str, params: Iterable[Any] = ()):
        """Read-only queries for the insights and snapshot code (constant SQL, bound params)."""
        return self._cur.execute(sql, list(params))

    def query_arrow(self, sql: str, params: Iterable[Any] = ()):
        """A constant query straight to an Arrow table (no row-by-row copy): snapshots, insights."""
        # A fresh cursor: the thread's cursor may hold a half-fetched result (fetchone), which DuckDB
        # refuses to mix with a relation query on the same connection.
        self._writer.flush()
        cur = self._conn.cursor()
        try:
            return cur.sql(sql, params=list(params)).to_arrow_table()
        finally:
            cur.close()

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor in one transaction, so several queries read one state of the log (the snapshot)."""
        self._writer.flush()
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            yield cur
        finally:
            cur.execute("ROLLBACK")
            cur.close()

    def close(self) -> None:
        """Flush, checkpoint and close; closing again is a no-op (a `with` block around an explicit close)."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with self._cursors_lock:
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()
        self._conn.execute("CHECKPOINT")
        self._conn.close()

    def __enter__(self) -> "LogStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def migrations(self) -> list[tuple[int, str]]:
        return self.execute("SELECT version, name FROM _migrations ORDER BY version").fetchall()

    # -- conversations and turns ---------------------------------------------
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
                cid, (cid, now(), source, key, context, adapter_id, engine, arm, user_id, _json(meta or {})))
            return cid
        self._cur.execute(  # a caller's id may exist already: written now, so a clash raises here
            "INSERT INTO conversations (id, source, context_key, context, adapter_id, engine, arm, user_id, meta)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [conversation_id, source, key, context, adapter_id, engine, arm, user_id, _json(meta or {})],
        )
        return conversation_id

    def get_conversation(self, conversation_id: str) -> Conversation:
        row = self._cur.execute(
            "SELECT id, created_at, source, context_key, context, adapter_id, engine, arm, user_id, reward, meta"
            " FROM conversations WHERE id = ?",
            [conversation_id],
        ).fetchone()
        if row is None:
            raise UnknownId(f"No conversation with id {conversation_id!r}.")
        return Conversation(*row[:-1], meta=_unjson(row[-1]))

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
    ) -> str:
        if role not in ROLES:
            raise LogError(f"Unknown role {role!r}.")
        if kind not in TURN_KINDS or (role == "user") != (kind == "user"):
            raise LogError(f"Turn kind {kind!r} does not fit role {role!r}.")
        if status not in ("ok", "failed"):
            raise LogError(f"Unknown turn status {status!r}.")
        tid = new_id()
        queued = self._writer.put_turn(
            conversation_id,
            lambda idx: (tid, conversation_id, idx, role, kind, text, adapter_id, engine, latency_ms,
                         prompt_tokens, completion_tokens, status, error, now()),
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
        row = self._cur.execute(
            "SELECT id, conversation_id, idx, role, kind, text, adapter_id, engine, latency_ms, prompt_tokens,"
            " completion_tokens, status, error, created_at FROM turns WHERE id = ?",
            [turn_id],
        ).fetchone()
        if row is None:
            raise UnknownId(f"No turn with id {turn_id!r}.")
        return Turn(*row)

    def list_turns(self, conversation_id: str) -> list[Turn]:
        rows = self._cur.execute(
            "SELECT id, conversation_id, idx, role, kind, text, adapter_id, engine, latency_ms, prompt_tokens,"
            " completion_tokens, status, error, created_at FROM turns WHERE conversation_id = ? ORDER BY idx",
            [conversation_id],
        ).fetchall()
        return [Turn(*r) for r in rows]

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

    # -- ratings --------------------------------------------------------------
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
        if comment is not None and len(comment) > 4000:
            raise LogError("A rating comment may be at most 4000 characters.")
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
            cur = self._cur
            cur.execute("BEGIN TRANSACTION")
            try:
                cur.execute(
                    "INSERT INTO ratings (id, turn_id, conversation_id, kind, value, comment, reward, user_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [rid, turn_id, turn.conversation_id, kind, float(value), comment, reward, user_id],
                )
                # The conversation's reward is the last rating of its final agent turn (migration 3).
                cur.execute("UPDATE conversations SET rated_reward = ? WHERE id = ? AND final_turn_id = ?",
                            [reward, turn.conversation_id, turn_id])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return rid

    def list_ratings(self, conversation_id: str) -> list[Rating]:
        rows = self._cur.execute(
            "SELECT id, turn_id, conversation_id, kind, value, comment, reward, user_id, created_at"
            " FROM ratings WHERE conversation_id = ? ORDER BY created_at, id",
            [conversation_id],
        ).fetchall()
        return [Rating(*r) for r in rows]

    # -- adapters -------------------------------------------------------------
    def register_adapter(
        self,
        *,
        adapter_id: str,
        method: str,
        path: str,
        parent_id: str | None = None,
        hyperparams: dict | None = None,
        snapshot_hash: str | None = None,
        train_metrics: dict | None = None,
        status: str = "candidate",
    ) -> str:
        if status not in ADAPTER_STATUSES:
            raise LogError(f"Unknown adapter status {status!r}.")
        self._cur.execute(
            "INSERT INTO adapters (id, parent_id, method, path, hyperparams, snapshot_hash, train_metrics,"
            " eval_results, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [adapter_id, parent_id, method, path, _json(hyperparams or {}), snapshot_hash,
             _json(train_metrics or {}), _json({}), status],
        )
        return adapter_id

    def _adapter_rows(self, where: str = "", params: list | None = None) -> list[Adapter]:
        rows = self._cur.execute(
            "SELECT id, parent_id, method, path, hyperparams, snapshot_hash, train_metrics, eval_results, status,"
            f" created_at FROM adapters {where} ORDER BY created_at DESC, id",
            params or [],
        ).fetchall()
        return [
            Adapter(r[0], r[1], r[2], r[3], _unjson(r[4]), r[5], _unjson(r[6]), _unjson(r[7]), r[8], r[9])
            for r in rows
        ]

    def list_adapters(self) -> list[Adapter]:
        return self._adapter_rows()

    def get_adapter(self, adapter_id: str) -> Adapter:
        rows = self._adapter_rows("WHERE id = ?", [adapter_id])
        if not rows:
            raise UnknownId(f"No adapter with id {adapter_id!r}.")
        return rows[0]

    def active_adapter(self) -> Adapter | None:
        rows = self._adapter_rows("WHERE status = 'active'")
        return rows[0] if rows else None

    def set_adapter_eval(self, adapter_id: str, results: dict) -> None:
        self.get_adapter(adapter_id)
        self._cur.execute("UPDATE adapters SET eval_results = ? WHERE id = ?", [_json(results), adapter_id])

    def activate_adapter(self, adapter_id: str | None, *, kind: str = "manual", user_id: str | None = None,
                         reason: str | None = None) -> None:
        """Make one adapter active (None = base model); the previous active one is retired.

        The change is recorded in ``activations`` (same transaction), which is what rollback walks.
        Activating what is already active changes and records nothing.
        """
        if kind not in ACTIVATION_KINDS:
            raise LogError(f"Unknown activation kind {kind!r}.")
        if adapter_id is not None:
            self.get_adapter(adapter_id)
        cur = self._cur
        cur.execute("BEGIN TRANSACTION")
        try:
            row = cur.execute("SELECT id FROM adapters WHERE status = 'active' ORDER BY created_at DESC LIMIT 1").fetchone()
            previous = row[0] if row else None
            if previous == adapter_id:  # already active: nothing changes, nothing to record (rollback stays sane)
                cur.execute("COMMIT")
                return
            cur.execute("UPDATE adapters SET status = 'retired' WHERE status = 'active'")
            if adapter_id is not None:
                cur.execute("UPDATE adapters SET status = 'active' WHERE id = ?", [adapter_id])
            cur.execute(
                "INSERT INTO activations (id, seq, adapter_id, previous_id, kind, user_id, reason)"
                " SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ? FROM activations",
                [new_id(), adapter_id, previous, kind, user_id, reason],
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def list_activations(self, limit: int = 50) -> list[dict]:
        """Newest first."""
        cur = self._cur.execute(
            "SELECT id, created_at, seq, adapter_id, previous_id, kind, user_id, reason FROM activations"
            " ORDER BY seq DESC LIMIT ?",
            [limit],
        )
        return _dicts(cur)

    def last_forward_activation(self, adapter_id: str | None) -> dict | None:
        """The latest non-rollback activation that made `adapter_id` (None = base) active, or None."""
        cur = self._cur.execute(
            "SELECT id, created_at, seq, adapter_id, previous_id, kind, user_id, reason FROM activations"
            " WHERE adapter_id IS NOT DISTINCT FROM ? AND kind <> 'rollback' ORDER BY seq DESC LIMIT 1",
            [adapter_id],
        )
        rows = _dicts(cur)
        return rows[0] if rows else None

    # -- training and eval runs ----------------------------------------------
    def start_training_run(self, *, method: str, config: dict, snapshot_path: str | None = None,
                           n_conversations: int | None = None) -> str:
        rid = new_id()
        self._cur.execute(
            "INSERT INTO training_runs (id, method, status, snapshot_path, n_conversations, config)"
            " VALUES (?, ?, 'running', ?, ?, ?)",
            [rid, method, snapshot_path, n_conversations, _json(config)],
        )
        return rid

    def finish_training_run(self, run_id: str, *, status: str, adapter_id: str | None = None,
                            error: str | None = None) -> None:
        if status not in ("succeeded", "failed", "cancelled"):
            raise LogError(f"Unknown final status {status!r}.")
        self._cur.execute(
            "UPDATE training_runs SET status = ?, adapter_id = ?, error = ?, finished_at = current_timestamp"
            " WHERE id = ?",
            [status, adapter_id, error, run_id],
        )

    def list_training_runs(self, limit: int = 20) -> list[dict]:
        cur = self._cur.execute(
            "SELECT id, method, status, started_at, finished_at, adapter_id, n_conversations, error, trigger"
            " FROM training_runs ORDER BY started_at DESC LIMIT ?",
            [limit],
        )
        return _dicts(cur)

    def add_eval_run(self, *, adapter_id: str | None, items_path: str, items_hash: str, n: int,
                     metrics: dict) -> str:
        rid = new_id()
        self._cur.execute(
            "INSERT INTO eval_runs (id, adapter_id, items_path, items_hash, n, metrics) VALUES (?, ?, ?, ?, ?, ?)",
            [rid, adapter_id, items_path, items_hash, n, _json(metrics)],
        )
        return rid


    def list_eval_runs(self, adapter_id: str | None, items_hash: str, n: int, limit: int = 20) -> list[dict]:
        """Eval runs of one adapter (None = base) on the same items file and size, newest first."""
        cur = self._cur.execute(
            "SELECT id, created_at, adapter_id, items_path, items_hash, n, metrics FROM eval_runs"
            " WHERE adapter_id IS NOT DISTINCT FROM ? AND items_hash = ? AND n = ?"
            " ORDER BY created_at DESC, id LIMIT ?",
            [adapter_id, items_hash, n, limit],
        )
        return [{**row, "metrics": _unjson(row["metrics"])} for row in _dicts(cur)]

    def set_training_run_trigger(self, run_id: str, trigger: str) -> None:
        if trigger not in TRAINING_TRIGGERS:
            raise LogError(f"Unknown training trigger {trigger!r}.")
        self._cur.execute("UPDATE training_runs SET trigger = ? WHERE id = ?", [trigger, run_id])

    # -- scheduler ------------------------------------------------------------
    def last_training_run_age_hours(self) -> float | None:
        """Hours since the last training run started (any status), or None when there was none."""
        (hours,) = self._cur.execute(
            "SELECT (epoch(CAST(current_timestamp AS TIMESTAMP)) - epoch(max(started_at))) / 3600.0"
            " FROM training_runs"
        ).fetchone()
        return hours

    def count_rated_since_last_run(self, source: str | None = None) -> int:
        """Conversations rated (or graded, for simulated ones) after the last training run started.

        With no run yet, every rated conversation counts. `source` limits the count to one source.
        """
        (n,) = self._cur.execute(
            """
            WITH last_run AS (SELECT max(started_at) AS t FROM training_runs)
            SELECT count(*) FROM conversations c, last_run
            WHERE (CAST(? AS VARCHAR) IS NULL OR c.source = ?)
              AND ((c.reward IS NOT NULL AND (last_run.t IS NULL OR c.created_at >= last_run.t))
                   OR EXISTS (SELECT 1 FROM ratings r
                              WHERE r.conversation_id = c.id AND (last_run.t IS NULL OR r.created_at >= last_run.t)))
            """,
            [source, source],
        ).fetchone()
        return int(n)

    # -- promotion decisions --------------------------------------------------
    def add_promotion_decision(self, *, candidate_id: str, baseline_id: str | None, candidate_reward: float,
                               baseline_reward: float, margin: float, n_items: int, passed: bool, promoted: bool,
                               candidate_eval_id: str | None = None, baseline_eval_id: str | None = None,
                               reason: str | None = None, user_id: str | None = None) -> str:
        self.get_adapter(candidate_id)
        did = new_id()
        self._cur.execute(
            "INSERT INTO promotion_decisions (id, candidate_id, baseline_id, candidate_reward, baseline_reward, margin,"
            " n_items, candidate_eval_id, baseline_eval_id, passed, promoted, reason, user_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [did, candidate_id, baseline_id, float(candidate_reward), float(baseline_reward), float(margin),
             int(n_items), candidate_eval_id, baseline_eval_id, bool(passed), bool(promoted), reason, user_id],
        )
        return did

    def list_promotion_decisions(self, limit: int = 50, candidate_id: str | None = None) -> list[dict]:
        """Newest first; optionally only one candidate's."""
        cur = self._cur.execute(
            "SELECT id, created_at, candidate_id, baseline_id, candidate_reward, baseline_reward, margin, n_items,"
            " candidate_eval_id, baseline_eval_id, passed, promoted, reason, user_id FROM promotion_decisions"
            " WHERE CAST(? AS VARCHAR) IS NULL OR candidate_id = ? ORDER BY created_at DESC, id LIMIT ?",
            [candidate_id, candidate_id, limit],
        )
        return _dicts(cur)


def context_hash(context: str) -> str:
    import hashlib

    return "notes-" + hashlib.sha256(context.strip().encode()).hexdigest()[:16]
