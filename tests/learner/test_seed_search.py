"""Best of K training seeds: the choice rule, and a real two-seed `clarify train --seeds 2` run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from learner.jobs import TrainOutcome
from learner.seed_search import SeedResult, choose



def _result(seed: int, auc: float | None, value: float | None) -> SeedResult:
    return SeedResult(seed, TrainOutcome(f"run-{seed}", f"swift-{seed}", Path("."), {}), auc, value)


def test_the_highest_ranking_auc_wins_then_the_logged_value_then_the_earliest_seed():
    assert choose([_result(0, 0.77, 0.8), _result(1, 0.85, 0.7), _result(2, 0.80, 0.9)]).seed == 1
    assert choose([_result(0, 0.8, 0.70), _result(1, 0.8, 0.75)]).seed == 1
    assert choose([_result(0, 0.8, 0.7), _result(1, 0.8, 0.7)]).seed == 0
    # A run whose decision could not be judged (no AUC) loses to any that could, even a poor one.
    assert choose([_result(0, None, 0.9), _result(1, 0.4, 0.1)]).seed == 1
    assert choose([_result(0, None, None), _result(1, None, 0.5)]).seed == 1


class _FakeRuns:
    """run_training's stand-in for the loop's logic: registers an adapter whose calibration scored `aucs[seed]`."""

    def __init__(self, aucs: dict[int, float | None], cancel_after: int | None = None, cancel=None):
        self.aucs, self.cancel_after, self.cancel, self.seeds = aucs, cancel_after, cancel, []

    def __call__(self, settings, store, *, parent_id=None, on_progress, **_):
        seed = settings.seed + (len(self.seeds) if parent_id else 0)
        self.seeds.append(seed)
        folder = Path(settings.data_dir) / f"a{len(self.seeds)}"
        folder.mkdir(parents=True)
        (folder / "clarify_adapter.json").write_text(json.dumps(
            {"config": {"seed": seed},
             "calibration": {"ranking_auc": self.aucs[seed], "at_threshold": {"logged_value": 0.5}}}))
        adapter_id = store.register_adapter(adapter_id=f"swift-{len(self.seeds)}", method="swift", path=str(folder),
                                            parent_id=parent_id, hyperparams={"seed": seed})
        if self.cancel_after == len(self.seeds):
            self.cancel.set()
        return TrainOutcome(f"run-{seed}", adapter_id, folder, {})


def test_first_runs_take_successive_seeds_and_the_best_ranking_one_is_kept(monkeypatch, settings, store):
    from learner import seed_search

    runs = _FakeRuns({3: 0.70, 4: 0.86, 5: None})
    monkeypatch.setattr(seed_search, "run_training", runs)
    events = []
    search = seed_search.run_seed_search(settings.with_overrides(seed=3), store, 3, on_progress=events.append)
    assert runs.seeds == [3, 4, 5] and [r.seed for r in search.results] == [3, 4, 5]
    assert search.chosen.seed == 4 and search.chosen.outcome.adapter_id == "swift-2"
    assert [e["ranking_auc"] for e in events if e["event"] == "seed_result"] == [0.70, 0.86, None]
    assert [e["adapter_id"] for e in events if e["event"] == "seed_kept"] == ["swift-2"]
    assert seed_search.train_best_seed(settings.with_overrides(seed=3, train_seeds=1), store,
                                       on_progress=events.append).adapter_id == "swift-4"  # one run, seed 3


def test_a_cancel_between_seeds_stops_the_search_and_keeps_the_finished_runs(monkeypatch, settings, store):
    import threading

    from learner import seed_search
    from learner.jobs import TrainingFailed

    cancel = threading.Event()
    monkeypatch.setattr(seed_search, "run_training", _FakeRuns({0: 0.8, 1: 0.9}, cancel_after=1, cancel=cancel))
    with pytest.raises(TrainingFailed, match="Cancelled after 1 of 2 seeds"):
        seed_search.run_seed_search(settings, store, 2, cancel=cancel)
    assert [a.id for a in store.list_adapters()] == ["swift-1"]
    with pytest.raises(ValueError, match="1 to 8"):
        seed_search.run_seed_search(settings, store, 9)


@pytest.mark.slow
def test_cli_trains_each_seed_registers_all_and_keeps_the_best_ranking_one(train_cli):
    output, adapters = train_cli("--seeds", "2")
    assert len(adapters) == 2 and all(a.status == "candidate" for a in adapters.values())
    assert sorted(a.hyperparams["seed"] for a in adapters.values()) == [0, 1]
    aucs = {i: json.loads((Path(a.path) / "clarify_adapter.json").read_text())["calibration"]["ranking_auc"]
            for i, a in adapters.items()}
    assert all(auc is not None for auc in aucs.values())  # both kinds of question were there to rank
    kept = max(aucs, key=lambda i: (aucs[i], -adapters[i].hyperparams["seed"]))
    if len(set(aucs.values())) == 1:  # a tie in AUC goes to the logged value, then the earlier seed
        kept = next(line.split(": ")[1].split(",")[0] for line in output.splitlines()
                    if line.endswith("<- kept"))
    for i, a in adapters.items():
        line = next(line for line in output.splitlines() if line.startswith(f"seed {a.hyperparams['seed']}: {i}"))
        assert f"ranking AUC {aucs[i]}" in line and line.endswith("<- kept") == (i == kept)
    assert f"adapter {kept} registered (candidate)" in output
