"""Refinement rounds: continue a trained adapter several times, each round from the last one's result.

Why: from the same logs, a first Swift run's ask decision is often far from done (a weak seed ranks the
training questions at AUC 0.69), and each further round of 2 epochs at a lower learning rate, with a new
seed (new notes orders and renames), kept improving it on questions it never saw: within the issue's
500-conversation cap, the fourth and fifth rounds of a chain met the reward and ask-rate targets where the
first three did not (measured under the lenient simulated user, docs/LEARNING.md). A round is exactly `clarify train
--from-adapter LAST --set epochs=E --set learning_rate=LR`, so every round is a registered candidate with its parent: a chain
stopped or cancelled part-way keeps the rounds it finished, and none is half-trained.

The chain's result is the weight average of its last `refine_average_last` rounds (learner/average.py),
calibrated like any adapter: single rounds of one seed swing the ask decision by several dev items either way
(seed 1's round 4 asked on 10% of clear items, its round 5 on 24%), and the average of the two asked on 14%
with 93% of ambiguous ones, the best of the three (docs/LEARNING.md). The rounds
stay registered, so either can still be served instead.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from clarify.settings import Settings
from logs_db.store import LogStore

from .average import AverageError, average_registered
from .jobs import TrainingFailed, TrainOutcome, run_training


def refine_rounds(
    settings: Settings,
    store: LogStore,
    start: TrainOutcome,
    rounds: int,
    *,
    overrides: dict | None = None,
    on_progress: Callable[[dict], None] = lambda _: None,
    cancel: threading.Event | None = None,
    **training,
) -> TrainOutcome:
    """`rounds` continuations in a chain from `start`; the last one's outcome, or, with at least
    settings.refine_average_last (>= 2) rounds, the average of the last that many rounds.

    Round r trains with seed settings.seed + r - 1 (each round continues a new adapter, so run_training's
    k-th-continuation rule gives it the settings' seed; the offset makes every round draw new views).
    The refine epochs and learning rate come from the settings; other overrides (max_steps, ...) carry over.
    """
    if rounds < 0:
        raise ValueError(f"rounds is how many refinements to chain, 0 or more, not {rounds}.")
    refine = {**(overrides or {}), "epochs": settings.refine_epochs, "learning_rate": settings.refine_learning_rate}
    outcome, finished = start, []
    for r in range(1, rounds + 1):
        if cancel is not None and cancel.is_set():
            raise TrainingFailed(f"Cancelled before refinement round {r} of {rounds}; {outcome.adapter_id} "
                                 "and the rounds before it stay registered.")
        on_progress({"event": "round", "round": r, "rounds": rounds, "parent_id": outcome.adapter_id})
        try:
            outcome = run_training(settings.with_overrides(seed=settings.seed + r - 1), store, overrides=refine,
                                   parent_id=outcome.adapter_id, on_progress=on_progress, cancel=cancel, **training)
        except TrainingFailed as exc:
            raise TrainingFailed(f"Refinement round {r} of {rounds}: {exc} {outcome.adapter_id} and the rounds "
                                 "before it stay registered.") from exc
        finished.append(outcome)
    last = averaged_rounds(rounds, settings.refine_average_last)
    if not last:
        return outcome
    return _average_of(settings, store, outcome, [o.adapter_id for o in finished[-last:]], on_progress, cancel)


def averaged_rounds(rounds: int, average_last: int) -> int:
    """How many of a chain's last rounds its result averages: `average_last` when the chain has that many and
    it is 2 or more, else 0 (the last round is the result). The one rule the CLI, the UI and the bench share."""
    return average_last if 2 <= average_last <= rounds else 0


def _average_of(settings: Settings, store: LogStore, newest: TrainOutcome, members: list[str],
                on_progress: Callable[[dict], None], cancel: threading.Event | None) -> TrainOutcome:
    """The registered average of the chain's last rounds, its parent the newest round (the chain's lineage)."""
    kept = f"{newest.adapter_id} and the rounds before it stay registered."
    if cancel is not None and cancel.is_set():
        raise TrainingFailed(f"Cancelled before averaging the last {len(members)} rounds; {kept}")
    on_progress({"event": "average", "members": members})
    try:
        adapter_id = average_registered(settings, store, members, parent_id=newest.adapter_id)
    except AverageError as exc:
        raise TrainingFailed(f"Averaging the last {len(members)} rounds failed: {exc} {kept}") from exc
    row = store.get_adapter(adapter_id)
    return TrainOutcome(newest.run_id, adapter_id, Path(row.path), {**newest.metrics, "averaged": members})


def train_with_rounds(settings: Settings, store: LogStore, *, parent_id: str | None = None,
                      rounds: int | None = None, **training) -> TrainOutcome:
    """What the UI and the scheduler call: the first run, then settings.refine_rounds refinements of it. A run
    that itself continues an adapter (the Training tab's Refine) is one refinement, so it gets no further
    rounds unless `rounds` says so."""
    first = run_training(settings, store, parent_id=parent_id, **training)
    if rounds is None:
        rounds = settings.refine_rounds if parent_id is None else 0
    return refine_rounds(settings, store, first, rounds, **training)
