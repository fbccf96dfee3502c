"""Export the rated conversations to a Parquet snapshot: the only thing the trainer reads.

DuckDB lets one process hold the file, and that is the server; the trainer runs in
another process, so it gets a frozen, hashed copy of exactly the data it trains on.

Reward of a conversation: simulated conversations carry their grader reward; a
real one takes the *last* rating given to its final agent reply (thumbs 1/0,
stars (s-1)/4). Unrated conversations are left out.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

from .store import LogStore

SNAPSHOT_SQL = """
WITH final_turn AS (
    SELECT conversation_id, arg_max(idx, idx) AS final_idx, arg_max(id, idx) AS turn_id
    FROM turns WHERE role = 'assistant' AND status = 'ok' GROUP BY conversation_id
),
last_rating AS (
    SELECT r.conversation_id, arg_max(r.reward, r.created_at) AS reward
    FROM ratings r JOIN final_turn f ON r.turn_id = f.turn_id GROUP BY r.conversation_id
),
msgs AS (
    SELECT t.conversation_id,
           list({'role': t.role, 'content': t.text, 'kind': t.kind} ORDER BY t.idx) AS messages
    FROM turns t JOIN final_turn f ON f.conversation_id = t.conversation_id
    WHERE t.status = 'ok' AND t.idx <= f.final_idx
    GROUP BY t.conversation_id
)
SELECT c.id AS conversation_id, c.context_key, c.context, c.source, c.adapter_id, c.created_at,
       coalesce(c.reward, lr.reward) AS reward, m.messages
FROM conversations c
JOIN msgs m ON m.conversation_id = c.id
LEFT JOIN last_rating lr ON lr.conversation_id = c.id
WHERE coalesce(c.reward, lr.reward) IS NOT NULL
  AND (CAST(? AS VARCHAR) IS NULL OR c.source = ?)
  AND (CAST(? AS TIMESTAMP) IS NULL OR c.created_at >= ?)
  AND (CAST(? AS TIMESTAMP) IS NULL OR c.created_at < ?)
  AND (NOT CAST(? AS BOOLEAN) OR c.adapter_id IS NOT DISTINCT FROM ?)
ORDER BY c.created_at, c.id
"""


@dataclass(frozen=True)
class SnapshotFilter:
    source: str | None = None          # ui | simulated | None for all
    since: datetime | None = None
    until: datetime | None = None
    by_adapter: bool = False           # when True, keep only conversations produced by `adapter_id`
    adapter_id: str | None = None      # None with by_adapter=True means the base model


@dataclass(frozen=True)
class Snapshot:
    path: Path
    sha256: str
    n_conversations: int


def export_snapshot(store: LogStore, dest: Path, filters: SnapshotFilter = SnapshotFilter()) -> Snapshot:
    """Write atomically (temp file + rename) so a reader never sees half a snapshot."""
    params = [filters.source, filters.source, filters.since, filters.since, filters.until, filters.until,
              filters.by_adapter, filters.adapter_id]
    table = store.query_arrow(SNAPSHOT_SQL, params)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", suffix=".parquet", dir=dest.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return Snapshot(dest, digest, table.num_rows)
