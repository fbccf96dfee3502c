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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .store import LogStore

# The rated conversations, in snapshot order (rn). Their reward and final agent turn are summary columns kept
# on every write (migration 3), so this reads one row per conversation. Placeholders: the filters below.
KEPT_SQL = """
SELECT row_number() OVER (ORDER BY c.created_at, c.id) - 1 AS rn,
       c.id AS conversation_id, c.context_key, c.context, c.source, c.adapter_id, c.created_at,
       coalesce(c.reward, c.rated_reward) AS reward, c.final_idx
FROM conversations c
WHERE c.final_idx IS NOT NULL AND coalesce(c.reward, c.rated_reward) IS NOT NULL
  AND (CAST(? AS VARCHAR) IS NULL OR c.source = ?)
  AND (CAST(? AS TIMESTAMP) IS NULL OR c.created_at >= ?)
  AND (CAST(? AS TIMESTAMP) IS NULL OR c.created_at < ?)
  AND (NOT CAST(? AS BOOLEAN) OR c.adapter_id IS NOT DISTINCT FROM ?)
ORDER BY rn
"""

# Their ok turns up to the final agent turn, flat and in order; `snapshot_kept` is KEPT_SQL's result.
# (Nesting them with list(... ORDER BY idx) in SQL was 3-4x slower at 1M turns: docs/BENCHMARKS.md.)
MESSAGES_SQL = """
SELECT k.rn, t.role, t.text AS content, t.kind
FROM turns t JOIN snapshot_kept k ON t.conversation_id = k.conversation_id
WHERE t.status = 'ok' AND t.idx <= k.final_idx
ORDER BY k.rn, t.idx
"""

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string()), ("kind", pa.string())])
MESSAGES = pa.list_(pa.field("l", MESSAGE))


@dataclass(frozen=True)
class SnapshotFilter:
    source: str | None = None          # ui | api | simulated | None for all
    since: datetime | None = None
    until: datetime | None = None
    by_adapter: bool = False           # when True, keep only conversations produced by `adapter_id`
    adapter_id: str | None = None      # None with by_adapter=True means the base model


@dataclass(frozen=True)
class Snapshot:
    path: Path
    sha256: str
    n_conversations: int


def snapshot_table(store: LogStore, filters: SnapshotFilter = SnapshotFilter()) -> pa.Table:
    """One row per rated conversation (oldest first) with its reward and `messages`, a list of
    {role, content, kind}: its ok turns up to its final agent turn. Both queries read one database state."""
    params = [filters.source, filters.source, filters.since, filters.since, filters.until, filters.until,
              filters.by_adapter, filters.adapter_id]
    with store.reading() as cur:
        kept = cur.sql(KEPT_SQL, params=params).to_arrow_table()
        cur.register("snapshot_kept", kept.select(["rn", "conversation_id", "final_idx"]))
        try:
            flat = cur.sql(MESSAGES_SQL).to_arrow_table()
        finally:
            cur.unregister("snapshot_kept")
    # rn is 0..n-1 and sorted, so conversation i's messages start at the first row with rn >= i.
    offsets = np.searchsorted(flat.column("rn").to_numpy(), np.arange(kept.num_rows + 1)).astype(np.int32)
    messages = pa.StructArray.from_arrays([flat.column(n).combine_chunks() for n in MESSAGE.names],
                                          fields=list(MESSAGE))
    lists = pa.ListArray.from_arrays(pa.array(offsets), messages, type=MESSAGES)
    return kept.drop_columns(["rn", "final_idx"]).append_column("messages", lists)


def export_snapshot(store: LogStore, dest: Path, filters: SnapshotFilter = SnapshotFilter()) -> Snapshot:
    """Write atomically (temp file + rename) so a reader never sees half a snapshot."""
    table = snapshot_table(store, filters)
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
