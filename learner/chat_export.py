"""Export the rated conversations in the chat-messages form TRL (and `datasets`) read directly.

The log gives the rated conversations as data (``logs_db.snapshot.snapshot_table``: the trainer's
snapshot rows); the policy's prompt is added here. One record per rated conversation::

    {"messages": [{"role": "system", "content": <agent.policy.build_prompt's system prompt>},
                  {"role": "user", "content": ...}, {"role": "assistant", "content": ...}, ...],
     "reward": 0.75, "conversation_id": "...", "context_key": "...", "source": "ui"}

The system message is the prompt of the conversation's first agent turn (the
reference notes included). After ``max_clarifying_questions`` questions the
server appends a "do not ask again" sentence to the system prompt for the next
turn; the learner rebuilds those per-turn prompts itself (learner/examples.py).

Files are written atomically (temp file + rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from agent.policy import build_prompt
from logs_db.snapshot import SnapshotFilter, snapshot_table
from logs_db.store import LogStore

FORMATS = ("jsonl", "parquet")

SCHEMA = pa.schema([
    ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
    ("reward", pa.float64()),
    ("conversation_id", pa.string()),
    ("context_key", pa.string()),
    ("source", pa.string()),
])


def chat_records(store: LogStore, filters: SnapshotFilter = SnapshotFilter(), *, horizon: int = 1) -> list[dict]:
    rows = snapshot_table(store, filters).to_pylist()
    records = []
    for r in rows:
        system = build_prompt(r["context"], [], horizon)[0]
        records.append({
            "messages": [{"role": "system", "content": system["content"]}]
                        + [{"role": m["role"], "content": m["content"]} for m in r["messages"]],
            "reward": float(r["reward"]),
            "conversation_id": r["conversation_id"],
            "context_key": r["context_key"],
            "source": r["source"],
        })
    return records


def export_chat(store: LogStore, out: str | Path, fmt: Literal["jsonl", "parquet"] = "jsonl",
                filters: SnapshotFilter = SnapshotFilter(), *, horizon: int = 1) -> int:
    """Write the records to `out`; returns how many were written."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}; use jsonl or parquet.")
    records = chat_records(store, filters, horizon=horizon)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent)
    try:
        if fmt == "jsonl":
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                for rec in records:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        else:
            os.close(fd)
            pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return len(records)
