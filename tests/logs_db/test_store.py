"""The DuckDB log: migrations, each table's write/read, validation, concurrency, snapshot export."""

from __future__ import annotations

import threading

import duckdb
import pyarrow.parquet as pq
import pytest

from logs_db.migrations import MIGRATIONS
from logs_db.snapshot import SnapshotFilter, export_snapshot
from logs_db.store import LogError, LogStore, UnknownId, normalized_reward


def _chat(store: LogStore, *, source="ui", context="notes", reward=None) -> tuple[str, str]:
    cid = store.new_conversation(source=source, context=context)
    store.add_turn(cid, role="user", kind="user", text="What is the capital of Georgia?")
    tid = store.add_turn(cid, role="assistant", kind="ask", text="Do you mean the country?", latency_ms=12.5,
                         prompt_tokens=40, completion_tokens=7, engine="transformers")
    if reward is not None:
        store.set_conversation_reward(cid, reward)
    return cid, tid


def test_migrations_from_empty_and_rerun_idempotent(tmp_path):
    path = tmp_path / "log.duckdb"
    with LogStore(path) as store:
        assert store.migrations() == [(i + 1, name) for i, (name, _) in enumerate(MIGRATIONS)]
        cid, _ = _chat(store)
    with LogStore(path) as store:  # re-open: nothing re-applied, data intact
        assert len(store.migrations()) == len(MIGRATIONS)
        assert [t.text for t in store.list_turns(cid)][0] == "What is the capital of Georgia?"


def test_closing_twice_is_harmless_and_keeps_what_was_written(tmp_path):
    """An explicit close inside a `with` block (e.g. to hand the file to another process) must not raise on exit."""
    path = tmp_path / "log.duckdb"
    with LogStore(path) as store:
        cid, _ = _chat(store)
        store.close()
    with LogStore(path) as store:
        assert [t.kind for t in store.list_turns(cid)] == ["user", "ask"]


def test_turns_and_conversations_roundtrip(store):
    cid, tid = _chat(store)
    conv = store.get_conversation(cid)
    assert conv.source == "ui" and conv.context == "notes" and conv.context_key.startswith("notes-")
    turns = store.list_turns(cid)
    assert [(t.idx, t.role, t.kind) for t in turns] == [(0, "user", "user"), (1, "assistant", "ask")]
    turn = store.get_turn(tid)
    assert turn.latency_ms == 12.5 and turn.prompt_tokens == 40 and turn.completion_tokens == 7
    assert turn.status == "ok" and turn.engine == "transformers"


def test_ratings_normalized_and_validated(store):
    cid, tid = _chat(store)
    store.add_rating(tid, kind="thumbs", value=1)
    store.add_rating(tid, kind="stars", value=4, comment="good question")
    ratings = store.list_ratings(cid)
    assert [(r.kind, r.value, r.reward, r.comment) for r in ratings] == [
        ("thumbs", 1.0, 1.0, None), ("stars", 4.0, 0.75, "good question")]
    for kind, value in [("stars", 0), ("stars", 6), ("stars", 3.5), ("thumbs", 2), ("likes", 1)]:
        with pytest.raises(LogError):
            store.add_rating(tid, kind=kind, value=value)
    with pytest.raises(LogError):
        store.add_rating(tid, kind="stars", value="5")
    with pytest.raises(UnknownId):
        store.add_rating("no-such-turn", kind="thumbs", value=1)
    user_turn = store.list_turns(cid)[0].id
    with pytest.raises(LogError):
        store.add_rating(user_turn, kind="thumbs", value=1)
    assert len(store.list_ratings(cid)) == 2  # nothing written by the refused ones


def test_rating_someone_elses_conversation_is_refused(store):
    cid = store.new_conversation(source="ui", context="n", user_id="alice")
    tid = store.add_turn(cid, role="assistant", kind="answer", text="hi")
    with pytest.raises(LogError):
        store.add_rating(tid, kind="thumbs", value=1, user_id="mallory")
    store.add_rating(tid, kind="thumbs", value=1, user_id="alice")


def test_the_adapter_that_answered_a_conversation(store):
    base = store.new_conversation(source="ui", context="n")
    cid = store.new_conversation(source="ui", context="n", adapter_id="a1")
    assert store.answering_adapter(base) is None and store.answering_adapter(cid) == "a1"  # no reply yet
    store.add_turn(cid, role="user", kind="user", text="q")
    store.add_turn(cid, role="assistant", kind="answer", text="a", adapter_id="a1")
    assert store.answering_adapter(cid) == "a1"
    # The last successful reply's own record is what counts (a failed one answered nothing).
    store.add_turn(cid, role="user", kind="user", text="q2")
    store.add_turn(cid, role="assistant", kind="answer", text="b", adapter_id=None)
    store.add_turn(cid, role="user", kind="user", text="q3")
    store.add_turn(cid, role="assistant", kind="answer", text="", adapter_id="a2", status="failed", error="boom")
    assert store.answering_adapter(cid) is None
    with pytest.raises(UnknownId):
        store.answering_adapter("no-such-conversation")


def test_normalized_reward_table():
    assert [normalized_reward("stars", s) for s in range(1, 6)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert normalized_reward("thumbs", 0) == 0.0


def test_bad_turns_refused(store):
    cid, _ = _chat(store)
    with pytest.raises(UnknownId):
        store.add_turn("missing", role="user", kind="user", text="x")
    with pytest.raises(LogError):
        store.add_turn(cid, role="user", kind="answer", text="x")
    with pytest.raises(LogError):
        store.set_conversation_reward(cid, 1.5)


def test_adapters_training_and_eval_runs(store):
    store.register_adapter(adapter_id="a1", method="swift", path="/x/a1", hyperparams={"lr": 1e-4},
                           snapshot_hash="abc", train_metrics={"loss": 0.5})
    store.register_adapter(adapter_id="a2", method="refit", path="/x/a2", parent_id="a1")
    assert {a.id for a in store.list_adapters()} == {"a1", "a2"}
    assert store.get_adapter("a1").hyperparams == {"lr": 1e-4}
    assert store.active_adapter() is None
    store.activate_adapter("a1")
    store.activate_adapter("a2")
    assert store.active_adapter().id == "a2" and store.get_adapter("a1").status == "retired"
    store.set_adapter_eval("a2", {"mean_reward": 0.7})
    assert store.get_adapter("a2").eval_results == {"mean_reward": 0.7}
    with pytest.raises(UnknownId):
        store.activate_adapter("../etc")
    run = store.start_training_run(method="swift", config={"epochs": 1}, n_conversations=3)
    store.finish_training_run(run, status="succeeded", adapter_id="a2")
    assert store.list_training_runs()[0].status == "succeeded"
    store.add_eval_run(adapter_id="a2", items_path="dev.jsonl", items_hash="h", n=5, metrics={"n": 5})
    assert store.execute("SELECT count(*) FROM eval_runs").fetchone()[0] == 1


def test_activation_log_and_training_trigger(store):
    store.register_adapter(adapter_id="a1", method="swift", path="/x")
    store.activate_adapter("a1", kind="gate", user_id="root", reason="passed")
    store.activate_adapter(None, kind="rollback")
    latest, first = store.list_activations()
    assert (first.adapter_id, first.previous_id, first.kind, first.user_id) == ("a1", None, "gate", "root")
    assert (latest.adapter_id, latest.previous_id, latest.kind) == (None, "a1", "rollback")
    assert latest.seq == first.seq + 1
    assert store.last_forward_activation("a1").id == first.id
    assert store.last_forward_activation(None) is None          # the only base activation was a rollback
    assert store.last_activation(None).id == latest.id and store.last_activation("a1").id == first.id
    assert store.last_activation("never-active") is None
    with pytest.raises(LogError, match="Unknown activation kind"):
        store.activate_adapter("a1", kind="magic")
    run = store.start_training_run(method="swift", config={})
    store.set_training_run_trigger(run, "scheduler")
    assert store.list_training_runs()[0].trigger == "scheduler"
    with pytest.raises(LogError):
        store.set_training_run_trigger(run, "cron")


def test_concurrent_writes_from_8_threads_lose_nothing(tmp_path):
    path = tmp_path / "log.duckdb"
    errors = []
    with LogStore(path) as store:
        def worker(n):
            try:
                for i in range(25):
                    cid = store.new_conversation(source="ui", context=f"notes {n}")
                    store.add_turn(cid, role="user", kind="user", text=f"q{n}-{i}")
                    tid = store.add_turn(cid, role="assistant", kind="answer", text=f"a{n}-{i}")
                    store.add_rating(tid, kind="stars", value=1 + (i % 5))
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM conversations").fetchone()[0] == 200
    assert con.execute("SELECT count(*) FROM turns").fetchone()[0] == 400
    assert con.execute("SELECT count(*) FROM ratings").fetchone()[0] == 200
    assert con.execute("SELECT count(DISTINCT text) FROM turns").fetchone()[0] == 400
    con.close()


def test_snapshot_rewards_filters_and_last_rating_wins(store, tmp_path):
    sim, _ = _chat(store, source="simulated", context="sim notes", reward=0.9)
    rated, tid = _chat(store, context="ui notes")
    store.add_rating(tid, kind="thumbs", value=0)
    store.add_rating(tid, kind="stars", value=5)       # the last rating wins
    _chat(store, context="unrated")                    # left out
    failed = store.new_conversation(source="ui", context="f")
    store.add_turn(failed, role="user", kind="user", text="q")
    ok = store.add_turn(failed, role="assistant", kind="answer", text="a")
    store.add_turn(failed, role="user", kind="user", text="q2")
    store.add_turn(failed, role="assistant", kind="answer", text="", status="failed", error="boom")
    store.add_rating(ok, kind="thumbs", value=1)

    snap = export_snapshot(store, tmp_path / "snap.parquet")
    rows = {r["conversation_id"]: r for r in pq.read_table(snap.path).to_pylist()}
    assert set(rows) == {sim, rated, failed} and snap.n_conversations == 3 and len(snap.sha256) == 64
    assert rows[sim]["reward"] == 0.9 and rows[rated]["reward"] == 1.0
    assert [m["content"] for m in rows[failed]["messages"]] == ["q", "a"]  # failed turn and after dropped
    assert rows[rated]["messages"][1] == {"role": "assistant", "content": "Do you mean the country?", "kind": "ask"}

    only_sim = export_snapshot(store, tmp_path / "sim.parquet", SnapshotFilter(source="simulated"))
    assert only_sim.n_conversations == 1


def test_snapshot_after_a_half_fetched_query_on_the_same_thread(store, tmp_path):
    """DuckDB refuses a relation query while the cursor holds an unfinished result; the export must not care."""
    _chat(store, source="simulated", reward=0.5)
    store.execute("SELECT id FROM conversations").fetchone()  # leaves the result unfinished
    assert export_snapshot(store, tmp_path / "s.parquet").n_conversations == 1
