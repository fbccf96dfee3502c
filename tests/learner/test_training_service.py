"""The training job service (learner/training_service.py) on its own; tests/ui/test_training_admin.py drives it
through the Training and Adapters tabs."""

from __future__ import annotations

import pytest

from learner.jobs import TrainingFailed, TrainOutcome
from learner.training_service import JobRefused, TrainingManager


def test_a_chain_shows_its_rounds_and_final_average_in_the_job_log(settings, store):
    """The manager's log of a chain (its events faked here; tests/learner/test_rounds.py runs a real one)."""
    def chain(settings, store, *, on_progress, **_):
        on_progress({"event": "round", "round": 1, "rounds": 2, "parent_id": "swift-1"})
        on_progress({"event": "round", "round": 2, "rounds": 2, "parent_id": "swift-2"})
        on_progress({"event": "average", "members": ["swift-2", "swift-3"]})
        return TrainOutcome("run-1", "average-1", settings.data_dir, {"averaged": ["swift-2", "swift-3"]})

    m = TrainingManager(settings, store, None, train_fn=chain)
    try:
        m.start_training(method="swift", gate=False)
        assert m.join(60), m.status()
        job = m.status()
    finally:
        m.shutdown()
    lines = [line.split(" ", 1)[1] for line in job.log]  # without the HH:MM:SS stamp
    assert job.status == "succeeded" and job.adapter_id == "average-1"
    assert "refinement round 2 of 2, from swift-2" in lines
    assert "averaging the last 2 rounds: swift-2, swift-3" in lines
    assert "adapter average-1 registered as a candidate" in lines


def test_one_job_at_a_time_and_cancel_reaches_the_running_job(settings, store):
    """A second start is refused by the service itself; cancel sets the event the running job watches."""
    def waits_for_cancel(settings, store, *, cancel, **_):
        assert cancel.wait(60)
        raise TrainingFailed("training cancelled")

    m = TrainingManager(settings, store, None, train_fn=waits_for_cancel)
    try:
        m.start_training(method="swift", gate=False, user="ann")
        with pytest.raises(JobRefused, match="already in progress .*started by ann"):
            m.start_training(method="sft")
        with pytest.raises(JobRefused, match="Unknown method"):
            m.start_training(method="ppo")
        assert m.busy and "Cancelling" in m.cancel("root")
        assert m.join(60)
        job = m.status()
    finally:
        m.shutdown()
    assert job.status == "cancelled" and job.user == "ann" and m.cancel() == "No run is in progress."
