"""What the Training tab reads from the runs: the rated conversations since the last successful training run."""

from __future__ import annotations

from logs_db.store import LogStore, RatedSinceRun


def rated(store: LogStore, kind: str = "thumbs", value: float = 1, *, source: str = "ui") -> tuple[str, str]:
    """A conversation of one exchange whose agent reply is rated; (conversation id, reply turn id)."""
    cid = store.new_conversation(source=source, context="The Harbor branch opens at 7 am.")
    store.add_turn(cid, role="user", kind="user", text="When do you open?")
    tid = store.add_turn(cid, role="assistant", kind="answer", text="At 7 am.")
    store.add_rating(tid, kind=kind, value=value)
    return cid, tid


def test_no_training_run_yet_counts_everything_rated_each_conversation_once(store):
    assert store.rated_since_last_run() == RatedSinceRun(None, 0, 0, 0, 0, 0)
    _, up = rated(store, "thumbs", 1)
    rated(store, "thumbs", 0)
    rated(store, "stars", 4, source="api")
    store.add_rating(up, kind="thumbs", value=0)   # re-rated: counted once, as its latest rating (down)
    store.add_rating(up, kind="stars", value=5)    # ... and again: now stars
    # Not rated: an unrated conversation, a graded simulated one, a conversation that went on after its rating
    # (its final reply has none, so the learner does not use it either).
    store.add_turn(store.new_conversation(source="ui", context="n"), role="assistant", kind="answer", text="a")
    sim = store.new_conversation(source="simulated", context="n")
    store.add_turn(sim, role="assistant", kind="answer", text="a")
    store.set_conversation_reward(sim, 0.9)
    went_on, _ = rated(store, "thumbs", 1)
    store.add_turn(went_on, role="user", kind="user", text="And Station?")
    store.add_turn(went_on, role="assistant", kind="answer", text="At 6 am.")
    # 3 conversations: thumbs down (1), stars (2: the re-rated one, the api one); up: none.
    assert store.rated_since_last_run() == RatedSinceRun(None, 3, 0, 1, 2, 3)


def test_counts_since_the_last_successful_run_started(store):
    _, a = rated(store, "thumbs", 1)
    _, b = rated(store, "thumbs", 0)
    rated(store, "stars", 3)
    # A failed, a cancelled and a running run are not "the last run": none produced an adapter.
    for status in ("failed", "cancelled"):
        store.finish_training_run(store.start_training_run(method="swift", config={}), status=status)
    store.start_training_run(method="refit", config={})
    assert store.rated_since_last_run() == RatedSinceRun(None, 3, 1, 1, 1, 3)

    run = store.start_training_run(method="swift", config={})
    rated(store, "thumbs", 1)                      # while it trains: not in its snapshot, so new
    store.finish_training_run(run, status="succeeded", adapter_id="swift-1")
    rated(store, "thumbs", 0)                      # after it
    store.add_rating(b, kind="thumbs", value=1)    # re-rated after it: new, counted once, as thumbs up
    started = store.list_training_runs(1)[0].started_at
    # New: the one rated while it trained (up), the one after (down), b re-rated (up). In all: 5.
    assert store.rated_since_last_run() == RatedSinceRun(started, 3, 2, 1, 0, 5)

    # The next successful run moves the cut-off; a new rating of an older conversation makes it new again, once.
    run = store.start_training_run(method="swift", config={})
    store.finish_training_run(run, status="succeeded", adapter_id="swift-2")
    assert store.rated_since_last_run() == RatedSinceRun(store.list_training_runs(1)[0].started_at, 0, 0, 0, 0, 5)
    store.add_rating(a, kind="stars", value=2)
    assert store.rated_since_last_run().conversations == store.rated_since_last_run().stars == 1
