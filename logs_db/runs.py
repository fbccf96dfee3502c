"""Training runs and evaluation runs, and what the training scheduler asks of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .base import LogError, StoreBase, from_json, new_id, to_json

TRAINING_TRIGGERS = ("cli", "ui", "scheduler")
FINAL_TRAINING_STATUSES = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class TrainingRun:
    id: str
    method: str
    status: str                   # running | succeeded | failed | cancelled
    started_at: datetime
    finished_at: datetime | None
    adapter_id: str | None
    n_conversations: int | None
    error: str | None
    trigger: str | None           # cli | ui | scheduler (None: not recorded)


@dataclass(frozen=True)
class RatedSinceRun:
    """What the Training tab shows: the rated conversations since the last successful training run."""
    run_started_at: datetime | None   # when that run started (its snapshot time); None = no successful run yet
    conversations: int                # conversations rated since then, each counted once
    thumbs_up: int                    # ... whose latest rating is thumbs up
    thumbs_down: int                  # ... thumbs down
    stars: int                        # ... stars
    total: int                        # rated conversations in the whole log


@dataclass(frozen=True)
class EvalRun:
    id: str
    created_at: datetime
    adapter_id: str | None        # None = base model
    items_path: str
    items_hash: str
    n: int
    metrics: dict


class RunStore(StoreBase):
    # -- training runs --------------------------------------------------------
    def start_training_run(self, *, method: str, config: dict, snapshot_path: str | None = None,
                           n_conversations: int | None = None) -> str:
        rid = new_id()
        self._cur.execute(
            "INSERT INTO training_runs (id, method, status, snapshot_path, n_conversations, config)"
            " VALUES (?, ?, 'running', ?, ?, ?)",
            [rid, method, snapshot_path, n_conversations, to_json(config)],
        )
        return rid

    def finish_training_run(self, run_id: str, *, status: str, adapter_id: str | None = None,
                            error: str | None = None) -> None:
        if status not in FINAL_TRAINING_STATUSES:
            raise LogError(f"Unknown final status {status!r}.")
        self._cur.execute(
            "UPDATE training_runs SET status = ?, adapter_id = ?, error = ?, finished_at = current_timestamp"
            " WHERE id = ?",
            [status, adapter_id, error, run_id],
        )

    def set_training_run_trigger(self, run_id: str, trigger: str) -> None:
        if trigger not in TRAINING_TRIGGERS:
            raise LogError(f"Unknown training trigger {trigger!r}.")
        self._cur.execute("UPDATE training_runs SET trigger = ? WHERE id = ?", [trigger, run_id])

    def list_training_runs(self, limit: int = 20) -> list[TrainingRun]:
        """Newest first."""
        return self._rows(TrainingRun, "SELECT id, method, status, started_at, finished_at, adapter_id,"
                                       " n_conversations, error, trigger FROM training_runs"
                                       " ORDER BY started_at DESC LIMIT ?", [limit])

    # -- what the scheduler asks ------------------------------------------------
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

    # -- what the Training tab shows ----------------------------------------------
    def rated_since_last_run(self) -> RatedSinceRun:
        """The conversations rated by people (ui, api) since the last training run that succeeded.

        "Last run": the most recently finished run with status succeeded (a failed or cancelled run registered
        no adapter, so what was rated before it is still new); a run in progress does not count until it ends.
        Its start is the cut-off, since its snapshot is taken when it starts: what was rated while it trained
        is not in it. A conversation counts as rated when its final agent reply has a rating, as in the
        snapshot (logs_db/snapshot.py), once however often it was rated: its latest rating of that reply is
        the one counted (thumbs up, down or stars), and it is new when that rating came after the cut-off.
        Simulated conversations carry grader rewards, not ratings, and are not counted.
        """
        row = self._cur.execute(
            """
            WITH last_run AS (SELECT started_at FROM training_runs WHERE status = 'succeeded'
                              ORDER BY finished_at DESC, started_at DESC LIMIT 1),
            latest AS (
                SELECT r.kind, r.value, r.created_at >= coalesce((SELECT started_at FROM last_run), r.created_at)
                           AS fresh
                FROM ratings r JOIN conversations c ON c.final_turn_id = r.turn_id
                QUALIFY row_number() OVER (PARTITION BY r.turn_id ORDER BY r.created_at DESC, r.rowid DESC) = 1)
            SELECT (SELECT started_at FROM last_run),
                   count(*) FILTER (WHERE fresh),
                   count(*) FILTER (WHERE fresh AND kind = 'thumbs' AND value = 1),
                   count(*) FILTER (WHERE fresh AND kind = 'thumbs' AND value = 0),
                   count(*) FILTER (WHERE fresh AND kind = 'stars'),
                   count(*)
            FROM latest
            """
        ).fetchone()
        return RatedSinceRun(row[0], *(int(n) for n in row[1:]))

    # -- evaluation runs ------------------------------------------------------
    def add_eval_run(self, *, adapter_id: str | None, items_path: str, items_hash: str, n: int,
                     metrics: dict) -> str:
        rid = new_id()
        self._cur.execute(
            "INSERT INTO eval_runs (id, adapter_id, items_path, items_hash, n, metrics) VALUES (?, ?, ?, ?, ?, ?)",
            [rid, adapter_id, items_path, items_hash, n, to_json(metrics)],
        )
        return rid

    def list_eval_runs(self, adapter_id: str | None, items_hash: str, n: int, limit: int = 20) -> list[EvalRun]:
        """Eval runs of one adapter (None = base) on the same items file and size, newest first."""
        return self._rows(lambda *r: EvalRun(*r[:-1], metrics=from_json(r[-1])),
                          "SELECT id, created_at, adapter_id, items_path, items_hash, n, metrics FROM eval_runs"
                          " WHERE adapter_id IS NOT DISTINCT FROM ? AND items_hash = ? AND n = ?"
                          " ORDER BY created_at DESC, id LIMIT ?", [adapter_id, items_hash, n, limit])
