"""Train several seeds and keep the one whose ask decision ranks the training questions best.

Why: on the same logs, Swift runs that differ only in their seed learn ask decisions of very different
quality (docs/RESULTS.md: dev ambiguous ask rates from 44% to 65% for first runs), and averaging two seeds'
runs does not rescue the worse one. Each run's calibration already measures, on renamed copies of the
training questions, how well P(ask) puts the questions where asking paid in the logs above those where
answering paid (`calibration.ranking_auc`). Of three seeds it singled out the weak one, though not the
better of the two good ones (seventeenth session): a guard against a bad draw. The choice uses the
training data alone, never the dev items.

Every run stays registered (a candidate, with its own seed in its hyper-parameters), so the choice can be
inspected and overruled with `clarify adapters activate`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from clarify.settings import MAX_TRAIN_SEEDS as MAX_SEEDS
from clarify.settings import Settings
from logs_db.store import LogStore

from .jobs import TrainingFailed, TrainOutcome, run_training
from .train_adapter import METADATA_FILE


@dataclass
class SeedResult:
    seed: int
    outcome: TrainOutcome
    ranking_auc: float | None   # the calibration's (None: no question where answering paid, or none to rank)
    logged_value: float | None  # the logged reward the calibrated decision earns on those questions


@dataclass
class SeedSearch:
    results: list[SeedResult]
    chosen: SeedResult


def read_result(outcome: TrainOutcome) -> SeedResult:
    """The run's seed and its calibration scores, from the metadata file beside its weights."""
    meta = json.loads((outcome.path / METADATA_FILE).read_text())
    calibration = meta.get("calibration") or {}
    return SeedResult(int(meta["config"]["seed"]), outcome, calibration.get("ranking_auc"),
                      (calibration.get("at_threshold") or {}).get("logged_value"))


def choose(results: list[SeedResult]) -> SeedResult:
    """The highest ranking AUC; then the highest logged value; then the earliest seed. A run without an AUC
    loses to any run with one (its decision could not be judged)."""
    def key(item: tuple[int, SeedResult]):
        i, r = item
        return (r.ranking_auc is not None, r.ranking_auc or 0.0, r.logged_value is not None,
                r.logged_value or 0.0, -i)

    return max(enumerate(results), key=key)[1]


def run_seed_search(
    settings: Settings,
    store: LogStore,
    seeds: int,
    *,
    parent_id: str | None = None,
    on_progress: Callable[[dict], None] = lambda _: None,
    **training,
) -> SeedSearch:
    """`seeds` runs of `run_training` (seeds settings.seed, +1, ...) and the one `choose` keeps.

    A first run takes its seed from the settings; a continuation of `parent_id` already trains with
    settings.seed + (continuations so far), so K continuations of one parent get K seeds by themselves.
    """
    if not 1 <= seeds <= MAX_SEEDS:
        raise ValueError(f"seeds is how many training runs to choose from, 1 to {MAX_SEEDS}, not {seeds}.")
    cancel = training.get("cancel")
    results = []
    for i in range(seeds):
        if cancel is not None and cancel.is_set():
            raise TrainingFailed(f"Cancelled after {i} of {seeds} seeds; their adapters stay registered.")
        run_settings = settings if parent_id is not None else settings.with_overrides(seed=settings.seed + i)
        on_progress({"event": "seed", "index": i, "seeds": seeds})
        results.append(read_result(run_training(run_settings, store, parent_id=parent_id,
                                                on_progress=on_progress, **training)))
        if seeds > 1:
            r = results[-1]
            on_progress({"event": "seed_result", "seed": r.seed, "adapter_id": r.outcome.adapter_id,
                         "ranking_auc": r.ranking_auc, "logged_value": r.logged_value})
    chosen = choose(results)
    if seeds > 1:
        on_progress({"event": "seed_kept", "seed": chosen.seed, "adapter_id": chosen.outcome.adapter_id})
    return SeedSearch(results, chosen)


def train_best_seed(settings: Settings, store: LogStore, **training) -> TrainOutcome:
    """`run_training`'s signature, with `settings.train_seeds` runs behind it: what the UI and scheduler call."""
    return run_seed_search(settings, store, settings.train_seeds, **training).chosen.outcome
