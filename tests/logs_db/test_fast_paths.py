"""The logging optimizations change speed, not results (docs/BENCHMARKS.md, bench/logs.py).

- Write-behind (logs_db/writer.py): conversations and turns are queued and written in batches by one thread;
  every read sees every write made before it, positions stay unique under concurrent writers.
- Summary columns (migration 3): the snapshot and the insights read one row per conversation instead of
  aggregating every turn. Checked against the original aggregate queries (logs_db/reference.py) on a
  randomized log (failed turns, ratings of earlier replies, re-ratings, later turns that make a rating
  stale), written through the store and through migration 3's backfill of an old-schema file.
"""

from __future__ import annotations

import random
import threading

import duckdb
import pandas as pd
import pytest

from logs_db import insights
from logs_db.migrations import MIGRATIONS, REBUILD_SUMMARY_SQL
from logs_db.reference import INSIGHTS as REFERENCE_INSIGHTS
from logs_db.reference import SNAPSHOT_SQL as REFERENCE_SNAPSHOT_SQL
from logs_db.snapshot import SnapshotFilter, snapshot_table
from logs_db.store import LogError, LogStore, UnknownId
from logs_db.writer import now

SUMMARY = "SELECT id, final_idx, final_turn_id, first_agent_kind, rated_reward FROM conversations ORDER BY id"


def _params(f: SnapshotFilter) -> list:
    return [f.source, f.source, f.since, f.since, f.until, f.until, f.by_adapter, f.adapter_id]


def random_log(store: LogStore, rng: random.Random, n: int = 80) -> None:
    """Conversations of every shape the chat, the simulator and the UI's ratings produce, interleaved."""
    store.register_adapter(adapter_id="cand", method="swift", path="/nowhere")
    open_convs: list[tuple[str, list[str]]] = []
    for i in range(n):
        source = rng.choice(["ui", "ui", "simulated"])
        cid = store.new_conversation(source=source, context=f"notes {i % 7}", adapter_id=rng.choice([None, "cand"]),
                                     arm=rng.choice([None, "A", "B"]))
        open_convs.append((cid, []))
        for _ in range(rng.randint(1, 4)):  # touch other open conversations in between
            other, agent_turns = rng.choice(open_convs)
            action = rng.random()
            if action < 0.4:
                store.add_turn(other, role="user", kind="user", text=f"q{rng.random():.3f}")
                status = "failed" if rng.random() < 0.2 else "ok"
                tid = store.add_turn(other, role="assistant", kind=rng.choice(["ask", "answer"]),
                                     text=f"a{rng.random():.3f}", status=status)
                if status == "ok":
                    agent_turns.append(tid)
            elif action < 0.8 and agent_turns:
                tid = rng.choice(agent_turns[-2:])  # usually the final reply, sometimes an earlier one
                kind = rng.choice(["thumbs", "stars"])
                try:
                    store.add_rating(tid, kind=kind, value=rng.choice([0, 1]) if kind == "thumbs" else rng.randint(1, 5))
                except LogError:  # the same rating twice in a row is refused; nothing was written
                    pass
            elif store.get_conversation(other).source == "simulated":
                store.set_conversation_reward(other, round(rng.random(), 2))


def _assert_same_as_reference(store: LogStore) -> None:
    filters = [SnapshotFilter(), SnapshotFilter(source="ui"), SnapshotFilter(source="simulated"),
               SnapshotFilter(by_adapter=True, adapter_id=None), SnapshotFilter(by_adapter=True, adapter_id="cand")]
    for f in filters:
        reference = store.query_arrow(REFERENCE_SNAPSHOT_SQL, _params(f))
        fast = snapshot_table(store, f)
        assert fast.schema == reference.schema
        assert fast.equals(reference), f
    for name, reference_sql in REFERENCE_INSIGHTS.items():
        sources = [None] if name == "arms" else [None, "ui", "simulated"]
        for source in sources:
            fast = getattr(insights, name)(store) if name == "arms" else getattr(insights, name)(store, source)
            reference = store.query_arrow(reference_sql, [source, source]).to_pandas()
            # Same rows and counts; sums over rows may be added in another order (last-bit float differences).
            pd.testing.assert_frame_equal(fast, reference, check_exact=False, rtol=1e-12, atol=1e-12,
                                          obj=f"{name} (source={source})")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_snapshot_and_insights_equal_the_original_queries(store, seed):
    random_log(store, random.Random(seed))
    assert store.execute("SELECT count(*) FROM ratings").fetchone()[0] > 10
    _assert_same_as_reference(store)


def test_summary_columns_kept_on_write_equal_their_definition(store):
    random_log(store, random.Random(3), n=80)
    kept = store.execute(SUMMARY).fetchall()
    store.execute(REBUILD_SUMMARY_SQL)
    assert store.execute(SUMMARY).fetchall() == kept


def test_migration_backfills_an_old_log(tmp_path):
    """A file written before migration 3 (its conversations have no summary) gets it on open."""
    path = tmp_path / "old.duckdb"
    with LogStore(tmp_path / "new.duckdb") as store:
        random_log(store, random.Random(4))
        tables = {t: store.query_arrow(f"SELECT * FROM {t}") for t in ("conversations", "turns", "ratings")}  # noqa: S608
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE _migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
    for version, (name, sql) in enumerate(MIGRATIONS[:2], start=1):
        con.execute(sql)
        con.execute("INSERT INTO _migrations (version, name) VALUES (?, ?)", [version, name])
    for name, table in tables.items():
        if name == "conversations":
            table = table.drop_columns(["final_idx", "final_turn_id", "first_agent_kind", "rated_reward"])
        if name == "turns":  # migration 4's columns
            table = table.drop_columns(["p_ask", "action", "propensity", "explored"])
        con.register("src", table)
        con.execute(f"INSERT INTO {name} SELECT * FROM src")  # noqa: S608
        con.unregister("src")
    con.close()
    with LogStore(path) as store:
        assert (3, "conversation_summary") in store.migrations()
        assert store.execute("SELECT count(*) FROM conversations WHERE final_idx IS NOT NULL").fetchone()[0] > 0
        _assert_same_as_reference(store)


def test_reads_see_every_earlier_write_from_any_thread(store):
    cid = store.new_conversation(source="ui", context="notes")
    tid = store.add_turn(cid, role="assistant", kind="answer", text="hi")
    seen = {}
    reader = threading.Thread(target=lambda: seen.update(turn=store.get_turn(tid), conv=store.get_conversation(cid)))
    reader.start()
    reader.join()
    assert seen["turn"].text == "hi" and seen["conv"].id == cid
    store.set_conversation_reward(cid, 0.25)
    store.set_conversation_reward(cid, 0.75)  # queued too: the last one wins
    assert store.get_conversation(cid).reward == 0.75
    with pytest.raises(UnknownId):
        store.add_turn("no-such-conversation", role="user", kind="user", text="q")
    with pytest.raises(UnknownId):
        store.set_conversation_reward("no-such-conversation", 0.5)


def test_positions_unique_and_in_order_under_16_concurrent_writers(tmp_path):
    path = tmp_path / "log.duckdb"
    with LogStore(path) as store:
        shared = store.new_conversation(source="ui", context="shared")
        own: dict[int, str] = {}

        def worker(n):
            own[n] = cid = store.new_conversation(source="ui", context=f"notes {n}")
            for i in range(20):
                store.add_turn(cid, role="user", kind="user", text=f"{n}-{i}")
                store.add_turn(shared, role="assistant", kind="answer", text=f"shared {n}-{i}")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [t.idx for t in store.list_turns(shared)] == list(range(16 * 20))
        for n, cid in own.items():
            assert [t.text for t in store.list_turns(cid)] == [f"{n}-{i}" for i in range(20)]
        final = store.list_turns(shared)[-1]
        assert store.execute("SELECT final_idx, final_turn_id FROM conversations WHERE id = ?",
                             [shared]).fetchone() == (final.idx, final.id)
    con = duckdb.connect(str(path), read_only=True)  # closing wrote everything
    assert con.execute("SELECT count(*) FROM turns").fetchone()[0] == 16 * 20 * 2
    con.close()


def test_a_failed_batch_loses_only_its_bad_row_and_is_reported(store):
    """A clash inside a batch: the writer retries row by row, keeps the good rows and raises at the next call."""
    cid = store.new_conversation(source="ui", context="notes")
    store.add_turn(cid, role="user", kind="user", text="kept before")
    store.execute("SELECT 1")  # everything above is written
    writer = store._writer
    with writer._cond:  # hold the writer so the next three rows land in one batch
        writer.put("turns", ("dup", cid, 1, "user", "user", "first", None, None, None, None, None, "ok", None, now(),
                              None, None, None, None))
        writer.put("turns", ("dup", cid, 2, "user", "user", "clash", None, None, None, None, None, "ok", None, now(),
                              None, None, None, None))
    with pytest.raises(RuntimeError, match="Writing to the log failed"):
        store.execute("SELECT 1")
    assert [t.text for t in store.list_turns(cid)] == ["kept before", "first"]
