"""The scheduler's triggers on a real DuckDB file: it fires at the threshold and not below; no sleeping."""

from __future__ import annotations

import time

import pytest

from learner.scheduler import Scheduler

NOTES = "The Harbor branch is open 7 am to 3 pm. The Station branch is open 6 am to 9 pm."


def rated_ui(store, value: int = 1) -> str:
    cid = store.new_conversation(source="ui", context=NOTES)
    store.add_turn(cid, role="user", kind="user", text="When does it open?")
    tid = store.add_turn(cid, role="assistant", kind="ask", text="Which branch?")
    store.add_rating(tid, kind="thumbs", value=value)
    return cid


def graded_simulated(store, reward: float = 0.5) -> str:
    cid = store.new_conversation(source="simulated", context=NOTES)
    store.add_turn(cid, role="user", kind="user", text="When does it open?")
    store.add_turn(cid, role="assistant", kind="answer", text="7 am.")
    store.set_conversation_reward(cid, reward)
    return cid


class FakeManager:
    """Stands in for the TrainingManager: records what the scheduler asked for."""

    def __init__(self, busy: bool = False):
        self.busy = busy
        self.calls: list[dict] = []

    def start_training(self, **kw):
        self.calls.append(kw)


def test_off_by_default(settings, store):
    for _ in range(5):
        rated_ui(store)
    sched = Scheduler(settings, store, FakeManager())
    assert not sched.enabled and sched.check() is None and sched.tick() is None
    assert "Scheduler: off" in sched.describe()


def test_fires_at_the_threshold_and_not_below(settings, store):
    manager = FakeManager()
    sched = Scheduler(settings.with_overrides(schedule_min_new_rated=3, train_max_steps=2), store, manager)
    rated_ui(store)
    store.new_conversation(source="ui", context=NOTES)   # unrated: does not count
    rated_ui(store, value=0)
    assert sched.check() is None and sched.tick() is None and manager.calls == []
    rated_ui(store)
    due = sched.check()
    assert due is not None and due.new_rated == 3 and "threshold 3" in due.reason
    assert "Now: 3 newly rated" in sched.describe()

    # Busy: nothing starts; idle: one scheduled run with the scheduler's method, source and step cap.
    manager.busy = True
    assert sched.tick() is None and manager.calls == []
    manager.busy = False
    assert sched.tick() is not None
    [call] = manager.calls
    assert call["trigger"] == "scheduler" and call["method"] == "swift" and call["overrides"] == {"max_steps": 2}
    assert call["filters"].source is None

    # A run started (the real manager records it): the count starts again from zero.
    store.start_training_run(method="swift", config={})
    assert store.count_rated_since_last_run() == 0 and sched.check() is None
    rated_ui(store)
    rated_ui(store)
    assert sched.check() is None
    graded_simulated(store)        # simulated conversations count too (graded = rated)
    assert sched.check().new_rated == 3


def test_a_new_rating_of_an_old_conversation_counts(settings, store):
    cid = rated_ui(store)
    store.start_training_run(method="swift", config={})
    assert store.count_rated_since_last_run() == 0
    tid = store.list_turns(cid)[-1].id
    store.add_rating(tid, kind="stars", value=5)
    assert store.count_rated_since_last_run() == 1


def test_source_filter(settings, store):
    sched = Scheduler(settings.with_overrides(schedule_min_new_rated=2, schedule_source="ui"), store, FakeManager())
    graded_simulated(store)
    graded_simulated(store)
    rated_ui(store)
    assert sched.check() is None
    rated_ui(store)
    assert sched.check().new_rated == 2


def test_every_t_hours_needs_the_time_and_something_new(settings, store):
    sched = Scheduler(settings.with_overrides(schedule_every_hours=2), store, FakeManager())
    rated_ui(store)
    assert sched.check() is None                      # no run yet: counted from the server's start
    sched.started_at = time.time() - 3 * 3600
    assert "since the last run" in sched.check().reason

    store.start_training_run(method="swift", config={})
    assert store.last_training_run_age_hours() == pytest.approx(0.0, abs=0.05)
    rated_ui(store)
    assert sched.check() is None                      # a run started just now
    store.execute("UPDATE training_runs SET started_at = started_at - INTERVAL 3 HOUR")
    assert store.last_training_run_age_hours() == pytest.approx(3.0, abs=0.05)
    assert sched.check() is not None
    store.execute("UPDATE ratings SET created_at = created_at - INTERVAL 4 HOUR")
    assert sched.check() is None                      # nothing rated since the last run: no point retraining
