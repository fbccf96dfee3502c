"""Refinement rounds: the chain's seeds, parents and schedules, a cancel or failure part-way, and a real
`clarify train --refine-rounds 1` run that registers the first run and its refinement."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from learner.jobs import TrainingFailed, TrainOutcome


class _FakeRuns:
    """run_training's stand-in: registers an adapter and records the seed, parent and overrides it got."""

    def __init__(self, fail_at: int | None = None, cancel_after: int | None = None, cancel=None):
        self.calls, self.fail_at, self.cancel_after, self.cancel = [], fail_at, cancel_after, cancel

    def __call__(self, settings, store, *, parent_id=None, overrides=None, on_progress=lambda _: None, **_):
        n = len(self.calls) + 1
        self.calls.append({"seed": settings.seed, "parent": parent_id, "overrides": dict(overrides or {})})
        if self.fail_at == n:
            raise TrainingFailed("The trainer process exited with code -9.")
        folder = Path(settings.data_dir) / f"a{n}"
        folder.mkdir(parents=True)
        (folder / "clarify_adapter.json").write_text(json.dumps({"config": {"seed": settings.seed}}))
        adapter_id = store.register_adapter(adapter_id=f"swift-{n}", method="swift", path=str(folder),
                                            parent_id=parent_id, hyperparams={"seed": settings.seed})
        if self.cancel_after == n:
            self.cancel.set()
        return TrainOutcome(f"run-{n}", adapter_id, folder, {})


def _fake_average(settings, store, adapter_ids, *, parent_id=None, **_):
    """average_registered's stand-in (the real one is tested on a real model in test_average.py)."""
    folder = Path(settings.data_dir) / "avg"
    folder.mkdir(parents=True)
    return store.register_adapter(adapter_id="average-1", method="average", path=str(folder), parent_id=parent_id,
                                  hyperparams={"members": list(adapter_ids)})


@pytest.fixture
def fake_runs(monkeypatch):
    from learner import rounds

    def install(**kwargs) -> _FakeRuns:
        runs = _FakeRuns(**kwargs)
        monkeypatch.setattr(rounds, "run_training", runs)
        monkeypatch.setattr(rounds, "average_registered", _fake_average)
        return runs

    return install


def test_a_fresh_run_is_refined_in_a_chain_each_round_from_the_last_with_a_new_seed(fake_runs, settings, store):
    from learner.rounds import train_with_rounds

    runs = fake_runs()
    events = []
    chained = settings.with_overrides(seed=2, refine_rounds=3, refine_epochs=2.0, refine_learning_rate=2e-4,
                                      refine_average_last=0)
    outcome = train_with_rounds(chained, store, overrides={"max_steps": 5, "epochs": 5.0}, on_progress=events.append)
    assert [(c["seed"], c["parent"]) for c in runs.calls] == [
        (2, None), (2, "swift-1"), (3, "swift-2"), (4, "swift-3")]
    assert runs.calls[0]["overrides"] == {"max_steps": 5, "epochs": 5.0}
    # every round: the refine schedule; other overrides (here a step cap) carry over
    assert all(c["overrides"] == {"max_steps": 5, "epochs": 2.0, "learning_rate": 2e-4} for c in runs.calls[1:])
    assert outcome.adapter_id == "swift-4"
    assert [(e["round"], e["rounds"], e["parent_id"]) for e in events if e["event"] == "round"] == [
        (1, 3, "swift-1"), (2, 3, "swift-2"), (3, 3, "swift-3")]
    assert {a.id: a.parent_id for a in store.list_adapters()} == {
        "swift-1": None, "swift-2": "swift-1", "swift-3": "swift-2", "swift-4": "swift-3"}


def test_the_chain_result_is_the_average_of_its_last_rounds_and_every_round_stays(fake_runs, settings, store):
    from learner.rounds import train_with_rounds

    fake_runs()
    events = []
    outcome = train_with_rounds(settings.with_overrides(refine_rounds=3, refine_average_last=2), store,
                                on_progress=events.append)
    assert outcome.adapter_id == "average-1" and outcome.metrics["averaged"] == ["swift-3", "swift-4"]
    averaged = store.get_adapter("average-1")
    assert averaged.hyperparams["members"] == ["swift-3", "swift-4"]
    assert averaged.parent_id == "swift-4"  # the lineage runs through the newest round
    assert [e for e in events if e["event"] == "average"] == [{"event": "average", "members": ["swift-3", "swift-4"]}]
    assert sorted(a.id for a in store.list_adapters()) == ["average-1", "swift-1", "swift-2", "swift-3", "swift-4"]


def test_fewer_rounds_than_the_average_wants_serve_the_last_round(fake_runs, settings, store):
    from learner.rounds import train_with_rounds

    fake_runs()
    outcome = train_with_rounds(settings.with_overrides(refine_rounds=1, refine_average_last=2), store)
    assert outcome.adapter_id == "swift-2"
    assert "average-1" not in {a.id for a in store.list_adapters()}


def test_a_failed_average_names_the_rounds_that_stay(fake_runs, settings, store, monkeypatch):
    from learner import rounds
    from learner.average import AverageError

    fake_runs()

    def broken(*_, **__):
        raise AverageError("The adapters adapt different modules and cannot be averaged.")

    monkeypatch.setattr(rounds, "average_registered", broken)
    with pytest.raises(TrainingFailed, match="Averaging the last 2 rounds failed: The adapters adapt different "
                                             "modules and cannot be averaged. swift-3 and the rounds before it"):
        rounds.train_with_rounds(settings.with_overrides(refine_rounds=2, refine_average_last=2), store)
    assert sorted(a.id for a in store.list_adapters()) == ["swift-1", "swift-2", "swift-3"]


def test_a_refine_run_gets_no_further_rounds_unless_asked_and_zero_rounds_is_one_run(fake_runs, settings, store):
    from learner.rounds import train_with_rounds

    runs = fake_runs()
    first = train_with_rounds(settings.with_overrides(refine_rounds=0), store)
    assert len(runs.calls) == 1 and first.adapter_id == "swift-1"
    refined = train_with_rounds(settings.with_overrides(refine_rounds=4), store, parent_id="swift-1")
    assert len(runs.calls) == 2 and refined.adapter_id == "swift-2"  # the Training tab's Refine: one refinement
    train_with_rounds(settings, store, parent_id="swift-2", rounds=1)
    assert [c["parent"] for c in runs.calls] == [None, "swift-1", "swift-2", "swift-3"]


def test_a_cancel_between_rounds_stops_the_chain_and_keeps_the_finished_rounds(fake_runs, settings, store):
    from learner.rounds import train_with_rounds

    cancel = threading.Event()
    fake_runs(cancel_after=2, cancel=cancel)
    with pytest.raises(TrainingFailed, match="Cancelled before refinement round 2 of 3; swift-2 and the rounds"):
        train_with_rounds(settings.with_overrides(refine_rounds=3), store, cancel=cancel)
    assert sorted(a.id for a in store.list_adapters()) == ["swift-1", "swift-2"]


def test_a_failed_round_names_the_adapter_that_stays_and_bad_round_counts_are_refused(fake_runs, settings, store):
    from learner.rounds import refine_rounds

    runs = fake_runs(fail_at=2)
    start = TrainOutcome("run-0", "swift-1", Path("."), {})
    with pytest.raises(TrainingFailed, match="Refinement round 2 of 2: The trainer process exited with code -9. "
                                             "swift-1 and the rounds before it stay registered"):
        refine_rounds(settings, store, start, 2)
    assert [c["parent"] for c in runs.calls] == ["swift-1", "swift-1"]
    with pytest.raises(ValueError, match="0 or more"):
        refine_rounds(settings, store, start, -1)


@pytest.mark.slow
def test_cli_refine_rounds_registers_the_first_run_its_refinements_and_their_average(train_cli):
    output, adapters = train_cli("--refine-rounds", "2")  # the default refine_average_last is 2
    assert len(adapters) == 4
    first = next(a for a in adapters.values() if a.parent_id is None)
    refined = next(a for a in adapters.values() if a.parent_id == first.id)
    second = next(a for a in adapters.values() if a.parent_id == refined.id and a.method != "average")
    average = next(a for a in adapters.values() if a.method == "average")
    assert f"refinement round 1 of 2, from {first.id}" in output
    assert output.count("step 1/1, loss ") == 3  # no terminal: a plain line for each run, not a silent hour
    assert f"averaging the last 2 rounds: {refined.id}, {second.id}" in output
    assert f"adapter {average.id} registered (candidate)" in output
    assert average.parent_id == second.id and average.hyperparams["members"] == [refined.id, second.id]
    assert refined.hyperparams["epochs"] == 2.0 and refined.hyperparams["learning_rate"] == 2e-4
    assert refined.hyperparams["init_adapter"] == first.path
    for adapter in (first, refined, second, average):
        assert (Path(adapter.path) / "adapter_model.safetensors").is_file()


def test_the_average_rule_needs_two_or_more_rounds_and_that_many_in_the_chain():
    from learner.rounds import averaged_rounds

    assert [averaged_rounds(rounds, 2) for rounds in (0, 1, 2, 5)] == [0, 0, 2, 2]
    assert averaged_rounds(5, 1) == averaged_rounds(5, 0) == 0 and averaged_rounds(3, 3) == 3
