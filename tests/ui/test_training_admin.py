"""Training, Adapters, Insights and A/B handlers, with the training service, on a real DuckDB file and the real model.

The admin checks are exercised through the handlers themselves (as a raw HTTP call
to a hidden endpoint would reach them), with gr.Request carrying the signed-in name.
"""

from __future__ import annotations

import random
import threading
import time

import gradio as gr
import pytest

from agent.chat_service import DEFAULT_NOTES, ChatService
from agent.engine import GenerationParams
from learner.jobs import TrainOutcome
from learner.training_service import JobRefused, TrainingManager
from logs_db.store import LogError
from ui.access import Access
from ui.adapters_tab import BASE, NO_AB, AdaptersHandlers
from ui.insights_tab import InsightsHandlers
from ui.training_tab import TrainingHandlers, parse_day, parse_max_steps, progress_html

TINY = {"max_steps": 2, "batch_size": 2}
ACCESS = Access(users={"bob": "pw-bob"}, admins={"root": "pw-root"})
BOB, ROOT = gr.Request(username="bob"), gr.Request(username="root")


def wait_done(manager: TrainingManager, timeout: float = 300) -> None:
    assert manager.join(timeout), f"the job did not finish within {timeout} s: {manager.status()}"


@pytest.fixture
def service(store, engine):
    return ChatService(store, engine, params=GenerationParams(max_new_tokens=16), rng=random.Random(0))


@pytest.fixture
def manager(settings, store, engine):
    m = TrainingManager(settings.with_overrides(gate_items=2, promotion_margin=1.0), store, engine)
    yield m
    m.shutdown()


# -- access ---------------------------------------------------------------------

def test_access_sign_in_and_admin_rule():
    assert ACCESS.check_password("bob", "pw-bob") and ACCESS.check_password("root", "pw-root")
    assert not ACCESS.check_password("bob", "pw-root") and not ACCESS.check_password("eve", "x")
    assert ACCESS.is_admin("root") and not ACCESS.is_admin("bob") and not ACCESS.is_admin(None)
    assert "bob is not an admin" in ACCESS.refusal(BOB) and ACCESS.refusal(ROOT) is None
    assert "not an admin" in ACCESS.refusal(None)                 # auth on, no user: refused
    open_access = Access()
    assert not open_access.configured and open_access.refusal(None) is None  # local default: allowed
    from clarify.settings import Settings

    with pytest.raises(ValueError, match="in both --auth and --admin-auth"):
        Access.from_settings(Settings(auth="ann:a", admin_auth="ann:b"))
    with pytest.raises(ValueError, match="--admin-auth must be"):
        Access.from_settings(Settings(admin_auth="root"))


def test_admin_actions_refuse_a_non_admin(settings, store, log_georgia, service, manager, make_adapter):
    log_georgia(6, source="ui")
    cand = make_adapter()
    training = TrainingHandlers(settings, store, manager, None, ACCESS)
    adapters = AdaptersHandlers(settings, store, service, manager, ACCESS)
    insight = InsightsHandlers(settings, store, ACCESS)

    message, *_ = training.start("swift", "all", "", "", 2, False, False, BOB)
    assert "bob is not an admin" in message
    assert not manager.busy and store.list_training_runs() == []
    assert "not an admin" in training.cancel(BOB)
    assert "not an admin" in adapters.promote(cand, BOB)[0] and store.active_adapter() is None
    assert "not an admin" in adapters.rollback(BOB)[0]
    assert "not an admin" in adapters.gate(cand, BOB) and not manager.busy
    assert "not an admin" in adapters.average([cand, make_adapter()], BOB)[0]
    assert all(a.method != "average" for a in store.list_adapters())
    message, _ = adapters.set_ab(cand, 0.5, BOB)
    assert "not an admin" in message and service.ab_state() == (None, 0.0)
    file, message = insight.export("jsonl", "all", BOB)
    assert file is None and "not an admin" in message
    # No signed-in user at all while auth is configured: refused too.
    assert "not an admin" in adapters.promote(cand, None)[0]
    # The Training tab tells a non-admin why the buttons will refuse.
    assert "needs an admin login" in training.load(BOB)[-1] and training.load(ROOT)[-1] == ""

    # The admin may.
    assert "is now active" in adapters.promote(cand, ROOT)[0] and store.active_adapter().id == cand
    assert store.list_activations()[0].user_id == "root"
    file, message = insight.export("parquet", "ui", ROOT)
    assert file.endswith(".parquet") and "Exported 6 rated conversation(s)" in message


# -- training from the UI ---------------------------------------------------------

def test_input_validation():
    assert parse_day("", "Since") is None
    assert str(parse_day("2024-05-01", "Until", end=True)) == "2024-05-02 00:00:00"
    assert str(parse_day("2024-05-01 10:30", "Since")) == "2024-05-01 10:30:00"
    with pytest.raises(JobRefused, match="is not a date"):
        parse_day("yesterday", "Since")
    assert parse_max_steps(0) is None and parse_max_steps(3) == 3 and parse_max_steps(None) is None
    for bad in (-1, 2.5, "x"):
        with pytest.raises(JobRefused):
            parse_max_steps(bad)


def test_bad_inputs_start_nothing(settings, store, manager):
    h = TrainingHandlers(settings, store, manager, None, Access())
    assert "Unknown method" in h.start("ppo", "all", "", "", 2, False)[0]
    assert "Unknown source" in h.start("swift", "web", "", "", 2, False)[0]
    assert "is not a date" in h.start("swift", "all", "May 1st", "", 2, False)[0]
    assert "Since must be before until" in h.start("swift", "all", "2024-05-02", "2024-05-01", 2, False)[0]
    assert "No active adapter to refine" in h.start("swift", "all", "", "", 2, False, True)[0]
    assert not manager.busy and store.list_training_runs() == []


@pytest.mark.slow
def test_one_run_at_a_time_progress_to_100_then_gate_and_hot_swap(settings, store, log_georgia, service, manager):
    log_georgia(8, source="ui")
    h = TrainingHandlers(settings, store, manager, None, Access())
    started = time.monotonic()
    message, progress, _, timer = h.start("swift", "ui", "", "", 2, True, False, None)
    assert "Training started" in message and timer.active
    # A second start, from any session, is refused by the manager, not by the UI.
    message, *_ = h.start("refit", "all", "", "", 2, False, False, None)
    assert "A run is already in progress" in message
    with pytest.raises(JobRefused, match="already in progress"):
        manager.start_training(method="sft")

    # A conversation that started before the promotion keeps its adapter (the base model).
    before = service.start(DEFAULT_NOTES)

    wait_done(manager)
    job = manager.status()
    assert job.status == "succeeded", job.log
    assert job.step == job.max_steps == 2 and job.percent == 100.0 and job.n_conversations == 8
    # The gate ran (2 dev items, margin 1.0 so it passes) and promoted the new adapter.
    assert job.gate["passed"] and job.gate["promoted"] and job.gate["n_items"] == 2
    assert store.active_adapter().id == job.adapter_id
    [run] = store.list_training_runs()
    assert run.status == "succeeded" and run.trigger == "ui" and run.adapter_id == job.adapter_id
    progress, log, timer, runs, seen, _ = h.poll("")
    assert "succeeded" in progress and "step 2/2 (100%)" in progress and "loss" in progress
    assert f"adapter {job.adapter_id} registered as a candidate" in log
    assert "promoted to active" in log and not timer.active and len(runs) == 1 and seen.endswith(":succeeded")
    assert h.poll(seen)[3] is not runs  # unchanged job: the runs table is not re-read (gr.skip())

    # Hot swap: the new conversation uses the new adapter, the old one keeps the base model; no restart.
    after = service.start(DEFAULT_NOTES)
    assert store.get_conversation(after).adapter_id == job.adapter_id
    assert store.get_conversation(before).adapter_id is None
    for cid, adapter in ((before, None), (after, job.adapter_id)):
        reply = service.reply(cid, "What is the Harbor branch's espresso price?")
        text = "".join(reply)
        assert text and store.get_turn(reply.turn_id).adapter_id == adapter

    # Refine: the next run continues the active adapter with the refine schedule and records it as its parent.
    message, *_ = h.start("swift", "all", "", "", 1, False, True, None)
    assert f"refining {job.adapter_id}" in message
    wait_done(manager)
    refined = manager.status()
    assert refined.status == "succeeded", refined.log
    record = store.get_adapter(refined.adapter_id)
    assert record.parent_id == job.adapter_id and record.hyperparams["init_adapter"].endswith(job.adapter_id)
    assert (record.hyperparams["epochs"], record.hyperparams["learning_rate"]) == (
        settings.refine_epochs, settings.refine_learning_rate)
    print(f"train + gate + 2 replies + refine: {time.monotonic() - started:.0f} s")


@pytest.mark.slow
def test_cancel_stops_the_run_and_registers_nothing(settings, store, log_georgia, manager):
    log_georgia(8, source="ui")
    h = TrainingHandlers(settings, store, manager, None, Access())
    h.start("refit", "all", "", "", 50, False, False, None)
    assert "Cancelling" in h.cancel(None)       # at once: the trainer process is stopped wherever it is
    wait_done(manager, 120)
    job = manager.status()
    assert job.status == "cancelled" and "cancelled" in (job.error or "")
    assert store.list_adapters() == [] and store.list_training_runs()[0].status == "cancelled"
    assert "No run is in progress." in h.cancel(None)
    assert "cancelled" in h.poll("")[0]


def test_the_rated_line_counts_since_the_last_run_and_refreshes_when_a_run_ends(settings, store, log_georgia):
    """The run is held open by its (fake) trainer, which records it in the real store like learner/jobs.py."""
    started, release = threading.Event(), threading.Event()

    def trains(settings, store, *, on_progress, **_):
        run = store.start_training_run(method="swift", config={})
        on_progress({"event": "snapshot", "n_conversations": 4, "run_id": run})
        started.set()
        assert release.wait(60)
        store.finish_training_run(run, status="succeeded", adapter_id="swift-fake")
        return TrainOutcome(run, "swift-fake", settings.data_dir, {})

    manager = TrainingManager(settings, store, None, train_fn=trains)
    h = TrainingHandlers(settings, store, manager, None, Access())
    log_georgia(4, source="ui")                          # 2 x 5 stars, 2 x thumbs down
    *_, seen, _, rated, _ = h.load()
    assert rated == "**Rated so far** (no training run yet): 4 conversations (0 thumbs up, 2 down, 2 with stars)."
    try:
        h.start("swift", "all", "", "", 0, False, False, None)
        assert started.wait(60)
        log_georgia(2, source="ui")                      # rated while it trains: not in its snapshot
        *_, seen, rated = h.poll(seen)                   # the run started: re-read, still no finished run
        assert rated.startswith("**Rated so far** (no training run yet): 6 conversations")
        assert h.poll(seen)[5] == gr.skip()              # no change of the job: not re-read
        release.set()
        wait_done(manager, 60)
    finally:
        release.set()
        manager.shutdown()
    *_, seen, rated = h.poll(seen)
    when = str(store.list_training_runs(1)[0].started_at)[:16]
    assert rated == (f"**Rated since the last training run** ({when}): 2 conversations (0 thumbs up, 1 down, "
                     "1 with stars), 6 rated in all.")
    assert h.load()[-2] == rated


def test_progress_html_escapes_and_formats():
    from learner.training_service import JobStatus

    job = JobStatus(job_id="j", kind="train", trigger="ui", user=None, method="swift", step=1, max_steps=4,
                    loss=1.23456, eta=75, phase="training", error="<script>x</script>")
    text = progress_html(job)
    assert "step 1/4 (25%)" in text and "loss 1.2346" in text and "ETA 1:15" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "No training run" in progress_html(None)


# -- adapters tab -----------------------------------------------------------------

def test_promote_rollback_and_listing(settings, store, service, make_adapter):
    h = AdaptersHandlers(settings, store, service, None, Access())
    a, b = make_adapter("a"), make_adapter("b", train_metrics={"steps": 7, "train_loss": 0.5})
    store.set_adapter_eval(b, {"mean_reward": 0.625, "n": 2})
    active_md, table, choice, decisions, ab_choice, ab_share, members = h.refresh()
    assert "Active: base model" in active_md and "A/B: off" in active_md
    assert set(table["id"]) == {a, b} and choice.value in (a, b)
    row = table.set_index("id").loc[b]
    assert row["steps"] == 7 and row["train loss"] == 0.5 and row["eval reward"] == 0.625
    assert decisions.empty and ab_choice.value == NO_AB
    assert {value for _, value in members.choices} == {a, b} and members.value == []

    assert "is now active" in h.promote(a)[0]
    msg, active_md, table, *_ = h.promote(b)
    assert f"Active: `{b}`" in active_md and table.set_index("id").loc[a, "status"] == "retired"
    assert f"Rolled back from {b} to {a}" in h.rollback()[0] and store.active_adapter().id == a
    assert "Rolled back from" in h.rollback()[0] and store.active_adapter() is None
    assert "Nothing to roll back" in h.rollback()[0]
    assert "base is already active" in h.promote(BASE)[0]
    h.promote(a)
    assert "base is now active" in h.promote(BASE)[0] and store.active_adapter() is None
    assert "Error" in h.promote("no-such-adapter")[0]
    assert "Choose an adapter (not the base model)" in h.gate(BASE)

    assert "at least two" in h.average([a])[0]
    msg, active_md, table, *_ = h.average([a, b])
    averaged = store.list_adapters()[0]
    assert f"{averaged.id} (candidate) is the average of {a}, {b}" in msg
    assert averaged.method == "average" and averaged.hyperparams["members"] == [a, b]
    assert table.set_index("id").loc[averaged.id, "status"] == "candidate"


# -- A/B ------------------------------------------------------------------------------

def test_ab_arm_assignment_is_logged(settings, store, service, make_adapter):
    active, cand = make_adapter("active"), make_adapter("cand")
    store.activate_adapter(active)

    def arms(n: int) -> list[tuple[str | None, str | None]]:
        ids = [service.start(DEFAULT_NOTES) for _ in range(n)]
        return [(store.get_conversation(c).arm, store.get_conversation(c).adapter_id) for c in ids]

    assert arms(3) == [(None, active)] * 3                        # no experiment: no arm
    service.set_ab(cand, 0.0)
    assert arms(10) == [("A", active)] * 10
    service.set_ab(cand, 1.0)
    assert arms(10) == [("B", cand)] * 10
    service.set_ab(cand, 0.5)
    split = arms(40)
    assert set(split) == {("A", active), ("B", cand)}             # both arms, each with its own adapter
    assert 8 <= sum(arm == "B" for arm, _ in split) <= 32
    # The candidate becomes the active one: the experiment is over, no arm recorded.
    store.activate_adapter(cand)
    assert arms(2) == [(None, cand)] * 2

    with pytest.raises(LogError, match="from 0 to 1"):
        service.set_ab(cand, 1.5)
    with pytest.raises(LogError, match="No adapter"):
        service.set_ab("nope", 0.5)


def test_ab_split_from_the_adapters_tab_and_per_arm_insights(settings, store, service, make_adapter):
    cand = make_adapter("cand")
    h = AdaptersHandlers(settings, store, service, None, ACCESS)
    message, active_md = h.set_ab(cand, 1.0, ROOT)
    assert "100% of new conversations go to" in message and "A/B on" in active_md
    assert "from 0 to 1" in h.set_ab(cand, 2, ROOT)[0] and service.ab_state() == (cand, 1.0)
    for value in (1, 1, 0):
        cid = service.start(DEFAULT_NOTES)
        store.add_turn(cid, role="user", kind="user", text="Espresso?")
        tid = store.add_turn(cid, role="assistant", kind="answer", text="$3 at Harbor.", adapter_id=cand)
        store.add_rating(tid, kind="thumbs", value=value)
    *_, arms, message = InsightsHandlers(settings, store, ACCESS).refresh("all")
    [row] = arms.to_dict("records")
    assert row["arm"] == "B" and row["adapter"] == cand and row["conversations"] == 3
    assert row["mean_reward"] == pytest.approx(0.667, abs=1e-3) and row["ci95_low"] < row["mean_reward"] < row["ci95_high"]
    assert "A/B split off" in h.set_ab(NO_AB, 0.3, ROOT)[0] and service.ab_state() == (None, 0.3)
