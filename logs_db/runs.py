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
