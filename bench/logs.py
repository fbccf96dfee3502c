"""Logging speed: turn writes under concurrent chats, the training snapshot and the insights at 1M turns.

1. A synthetic log of 1M turns (250k conversations of 4 turns: 70% simulated with a grader reward, 30% UI
   of which half are rated, some twice; 5 adapters; A/B arms; 60 days) is generated with DuckDB SQL in a
   few seconds, then its summary columns are built (logs_db.migrations.REBUILD_SUMMARY_SQL).
2. Turn writes: 16 threads, one chat each, write user/agent turns into that 1M-turn log, with a random
   pause of 0-20 ms between two writes of a chat (a real chat writes a turn, then generates a reply for
   seconds: this is 16 chats at ~100x their real pace), and again back to back (no pause: a stress test in
   which 16 Python threads and the writer compete for 2 cores and the GIL). Latency is the time `add_turn`
   blocks its caller:
   * ours: ``LogStore.add_turn`` (write-behind: queued, written by one thread in batches; logs_db/writer.py);
   * the previous implementation: one transaction per turn on the thread's cursor (check the conversation,
     read max(idx), INSERT, COMMIT);
   * a connection per write: the same transaction on a fresh ``duckdb.connect`` each time.
   For ours, "all written" is when the last queued turn is committed (a flush after the last write).
3. The training snapshot of every rated conversation to Parquet: ``export_snapshot`` (summary columns +
   flat messages assembled in Arrow) vs the original query (``logs_db.reference``: aggregates over all
   turns, ``list(... ORDER BY idx)``) written the same way.
4. Each Insights query (``logs_db.insights``) vs its original aggregate query; median of 5 runs each.

Usage: .venv/bin/python bench/logs.py [--conversations 250000] [--writers 16] [--turns-per-writer 60] [--pause-ms 20]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.common import at_once, describe  # noqa: E402
from logs_db import insights, reference  # noqa: E402
from logs_db.migrations import REBUILD_SUMMARY_SQL  # noqa: E402
from logs_db.snapshot import export_snapshot  # noqa: E402
from logs_db.store import LogStore, new_id  # noqa: E402

# -- 1. the synthetic log -----------------------------------------------------------------------------------
# Deterministic pseudo-randomness from hash(i, salt); ids are 32 hex characters like the store's uuid4 hex.
GEN_CONVERSATIONS = """
INSERT INTO conversations (id, created_at, source, context_key, context, adapter_id, engine, arm, user_id, reward, meta)
SELECT md5('c' || i), TIMESTAMP '2026-01-01' + to_seconds(CAST(i * 60 * 86400 // $n AS BIGINT)),
       CASE WHEN hash(i, 'src') % 10 < 7 THEN 'simulated' ELSE 'ui' END,
       'item-' || hash(i, 'ctx') % 380,
       'Reference notes ' || hash(i, 'ctx') % 380 || '. The Harbor branch is open 7 am to 3 pm and its espresso'
           || ' costs $3. The Station branch is open 6 am to 9 pm and its espresso costs $4.',
       CASE WHEN hash(i, 'ad') % 6 = 0 THEN NULL ELSE 'adapter-' || i * 5 // $n END,
       'transformers',
       CASE WHEN hash(i, 'arm') % 10 < 2 THEN (CASE WHEN hash(i, 'ab') % 2 = 0 THEN 'A' ELSE 'B' END) END,
       NULL, CASE WHEN hash(i, 'src') % 10 < 7 THEN (hash(i, 'rw') % 11) / 10.0 END, '{}'
FROM range($n) t(i)
"""
GEN_TURNS = """
INSERT INTO turns (id, conversation_id, idx, role, kind, text, adapter_id, engine, latency_ms, prompt_tokens,
                   completion_tokens, status, error, created_at)
SELECT md5('t' || i || '-' || j), md5('c' || i), j,
       CASE WHEN j % 2 = 0 THEN 'user' ELSE 'assistant' END,
       CASE WHEN j % 2 = 0 THEN 'user' WHEN j = 1 AND hash(i, 'ask') % 3 = 0 THEN 'ask' ELSE 'answer' END,
       CASE WHEN j % 2 = 0 THEN 'How much is an espresso at the branch near me? (' || i || ')'
            ELSE 'An espresso costs $3 at the Harbor branch, which is open 7 am to 3 pm. (' || i || ')' END,
       NULL, 'transformers', CASE WHEN j % 2 = 1 THEN 500 + hash(i, j) % 1000 END, 150, 20,
       CASE WHEN j = 3 AND hash(i, 'fail') % 50 = 0 THEN 'failed' ELSE 'ok' END, NULL,
       TIMESTAMP '2026-01-01' + to_seconds(CAST(i * 60 * 86400 // $n + j * 5 AS BIGINT))
FROM range($n) t(i), range(4) u(j)
"""
GEN_RATINGS = """
INSERT INTO ratings (id, turn_id, conversation_id, kind, value, comment, reward, user_id, created_at)
SELECT md5('r' || i || '-' || k), md5('t' || i || '-3'), md5('c' || i),
       CASE WHEN hash(i, k, 'kind') % 2 = 0 THEN 'thumbs' ELSE 'stars' END,
       CASE WHEN hash(i, k, 'kind') % 2 = 0 THEN hash(i, k) % 2 ELSE 1 + hash(i, k) % 5 END, NULL,
       CASE WHEN hash(i, k, 'kind') % 2 = 0 THEN hash(i, k) % 2 ELSE (hash(i, k) % 5) / 4.0 END, NULL,
       TIMESTAMP '2026-01-01' + to_seconds(CAST(i * 60 * 86400 // $n + 30 + k AS BIGINT))
FROM range($n) t(i), range(2) u(k)
WHERE hash(i, 'src') % 10 >= 7 AND hash(i, 'rated') % 2 = 0 AND (k = 0 OR hash(i, 'twice') % 5 = 0)
"""


def generate(path: Path, conversations: int) -> float:
    LogStore(path).close()  # the schema, through the migrations
    started = time.perf_counter()
    con = duckdb.connect(str(path))
    for sql in (GEN_CONVERSATIONS, GEN_TURNS, GEN_RATINGS):
        con.execute(sql, {"n": conversations})
    con.execute(REBUILD_SUMMARY_SQL)
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - started


# -- 2. turn writes -----------------------------------------------------------------------------------------
def add_turn_transaction(cur, cid: str, role: str, kind: str, text: str) -> None:
    """The previous LogStore.add_turn: a transaction per turn."""
    cur.execute("BEGIN TRANSACTION")
    try:
        if cur.execute("SELECT 1 FROM conversations WHERE id = ?", [cid]).fetchone() is None:
            raise LookupError(cid)
        (idx,) = cur.execute("SELECT coalesce(max(idx) + 1, 0) FROM turns WHERE conversation_id = ?", [cid]).fetchone()
        cur.execute("INSERT INTO turns (id, conversation_id, idx, role, kind, text) VALUES (?, ?, ?, ?, ?, ?)",
                    [new_id(), cid, idx, role, kind, text])
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


def write_load(store: LogStore, mode: str, writers: int, turns: int, pause_s: float) -> dict:
    """`writers` threads, one chat each, `turns` turns each with a random pause of up to `pause_s` between
    them (0: back to back); per-write latencies."""
    latencies: list[list[float]] = [[] for _ in range(writers)]

    def chat(n: int, gate) -> None:
        rng = random.Random(n)
        cid = store.new_conversation(source="ui", context=f"bench notes {n}")
        store.get_conversation(cid)  # written before the clock starts, in every mode
        cur = store._conn.cursor() if mode == "transaction per write" else None
        gate.wait()
        for i in range(turns):
            role, kind = ("user", "user") if i % 2 == 0 else ("assistant", "answer")
            text = f"turn {i} of chat {n}: how much is an espresso at the Harbor branch?"
            t = time.perf_counter()
            if mode == "ours (write-behind)":
                store.add_turn(cid, role=role, kind=kind, text=text)
            elif mode == "transaction per write":
                add_turn_transaction(cur, cid, role, kind, text)
            else:
                con = duckdb.connect(str(store.path))
                try:
                    add_turn_transaction(con, cid, role, kind, text)
                finally:
                    con.close()
            latencies[n].append(time.perf_counter() - t)
            if pause_s:
                time.sleep(rng.uniform(0, pause_s))
        if cur is not None:
            cur.close()

    started = at_once(chat, writers)
    store.execute("SELECT 1")  # waits until every queued write is committed
    wall = time.perf_counter() - started
    flat = sorted(x for per in latencies for x in per)
    return dict(p50=percentile(flat, 50), p99=percentile(flat, 99), max=flat[-1], writes=len(flat),
                wall=wall, per_s=len(flat) / wall)


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))]


# -- 3./4. snapshot and insights ----------------------------------------------------------------------------
def reference_snapshot(store: LogStore, dest: Path) -> int:
    table = store.query_arrow(reference.SNAPSHOT_SQL, [None] * 6 + [False, None])
    pq.write_table(table, dest)
    hashlib.sha256(dest.read_bytes()).hexdigest()
    return table.num_rows


def timed(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--conversations", type=int, default=250_000, help="4 turns each (default: 1M turns)")
    p.add_argument("--writers", type=int, default=16)
    p.add_argument("--turns-per-writer", type=int, default=60)
    p.add_argument("--pause-ms", type=float, default=20.0, help="longest random pause between a chat's writes")
    p.add_argument("--runs", type=int, default=5, help="runs per insights query (median)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    machine = describe()
    rows = []
    with tempfile.TemporaryDirectory(prefix="clarify-bench-log-") as tmp:
        tmp = Path(tmp)
        db = tmp / "log.duckdb"
        gen_s = generate(db, args.conversations)
        log(f"generated {args.conversations * 4:,} turns in {gen_s:.1f} s")
        with LogStore(db) as store:
            for pause, label in ((args.pause_ms / 1000, f"0-{args.pause_ms:g} ms between a chat's writes"),
                                 (0.0, "back to back (stress)")):
                writes = {}
                for mode in ("ours (write-behind)", "transaction per write", "connection per write"):
                    writes[mode] = w = write_load(store, mode, args.writers, args.turns_per_writer, pause)
                    log(f"  {label:35s} {mode:22s} p50 {w['p50'] * 1e3:7.2f} ms  p99 {w['p99'] * 1e3:7.2f} ms  "
                        f"{w['per_s']:7.0f} turns/s")
                ours = writes["ours (write-behind)"]
                for mode in ("transaction per write", "connection per write"):
                    w = writes[mode]
                    rows.append((f"turn write p99, {args.writers} chats, {label}, vs {mode}",
                                 "< 5 ms" if pause else "-", f"{ours['p99'] * 1e3:.2f} ms (p50 {ours['p50'] * 1e3:.2f})",
                                 f"{w['p99'] * 1e3:.1f} ms (p50 {w['p50'] * 1e3:.1f})", f"{w['p99'] / ours['p99']:.0f}x"))
                if not pause:
                    rows.append((f"turns written per second until all committed, {label}", "-",
                                 f"{ours['per_s']:.0f}", f"{writes['transaction per write']['per_s']:.0f}",
                                 f"{ours['per_s'] / writes['transaction per write']['per_s']:.1f}x"))

            snap_ours, snap = timed(lambda: export_snapshot(store, tmp / "ours.parquet"), 2)
            snap_ref, n_ref = timed(lambda: reference_snapshot(store, tmp / "reference.parquet"), 2)
            assert snap.n_conversations == n_ref
            rows.append((f"training snapshot, {snap.n_conversations:,} rated conversations", "< 5 s",
                         f"{snap_ours:.2f} s", f"{snap_ref:.2f} s", f"{snap_ref / snap_ours:.1f}x"))
            log(f"  snapshot ours {snap_ours:.2f} s, original query {snap_ref:.2f} s")

            for name, ref_sql in [*reference.INSIGHTS.items(), ("ratings_per_day", None), ("eval_per_adapter", None)]:
                fn = getattr(insights, name)
                t_ours, _ = timed(lambda: fn(store), args.runs)
                if ref_sql is None:
                    rows.append((f"insights: {name}", "< 200 ms", f"{t_ours * 1e3:.0f} ms", "(unchanged)", "-"))
                    continue
                t_ref, _ = timed(lambda: store.query_arrow(ref_sql, [None, None]).to_pandas(), args.runs)
                rows.append((f"insights: {name}", "< 200 ms", f"{t_ours * 1e3:.0f} ms", f"{t_ref * 1e3:.0f} ms",
                             f"{t_ref / t_ours:.1f}x"))
                log(f"  {name:20s} ours {t_ours * 1e3:6.0f} ms, original {t_ref * 1e3:6.0f} ms")

    print(f"clarify logging bench: {args.conversations * 4:,} synthetic turns ({args.conversations:,} conversations, "
          f"generated with DuckDB SQL in {gen_s:.1f} s); {args.writers} writer threads x {args.turns_per_writer} "
          f"turns per run; DuckDB {duckdb.__version__}")
    print(f"machine: {machine}")
    print()
    print("| measure | target | ours | alternative | alternative / ours |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
