"""Scheduled retraining: the serving process starts a training run by itself.

Two triggers, both off by default (settings):

- ``schedule_min_new_rated = N`` (> 0): at least N conversations were rated (or,
  for simulated ones, graded) since the last training run started;
- ``schedule_every_hours = T`` (> 0): T hours passed since the last run started
  (or since the server started, when there was none) *and* at least one
  conversation was rated since: retraining on the same data would only repeat
  the same run.

``check()`` is the whole decision (a real store, no clock mocking needed: it
reads the times from the database); ``tick()`` acts on it through the training
manager, which enforces one run at a time; ``start()`` runs ``tick()`` every
``schedule_poll_seconds`` in a daemon thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from clarify.settings import Settings
from logs_db.snapshot import SnapshotFilter
from logs_db.store import LogStore

log = logging.getLogger(__name__)


class Starter(Protocol):
    """What the scheduler needs from the training manager (learner.training_service.TrainingManager)."""

    @property
    def busy(self) -> bool: ...

    def start_training(self, *, method: str, filters: SnapshotFilter, overrides: dict | None,
                       gate: bool | None, trigger: str, user: str | None): ...


@dataclass(frozen=True)
class Due:
    reason: str
    new_rated: int


class Scheduler:
    def __init__(self, settings: Settings, store: LogStore, manager: Starter | None = None):
        self.settings = settings
        self.store = store
        self.manager = manager
        self.started_at = time.time()
        self.last_error: str | None = None
        self.last_fired: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.schedule_min_new_rated > 0 or self.settings.schedule_every_hours > 0

    def check(self) -> Due | None:
        """Is a run due now? (None when not, or when the scheduler is off.)"""
        if not self.enabled:
            return None
        s = self.settings
        new = self.store.count_rated_since_last_run(s.schedule_source)
        if s.schedule_min_new_rated > 0 and new >= s.schedule_min_new_rated:
            return Due(f"{new} conversation(s) rated since the last run (threshold {s.schedule_min_new_rated})", new)
        if s.schedule_every_hours > 0 and new > 0:
            age = self.store.last_training_run_age_hours()
            if age is None:
                age = (time.time() - self.started_at) / 3600.0
            if age >= s.schedule_every_hours:
                return Due(f"{age:.1f} h since the last run (every {s.schedule_every_hours:g} h), "
                           f"{new} newly rated conversation(s)", new)
        return None

    def tick(self) -> Due | None:
        """Start a run when one is due and none is running. Returns what fired, if anything."""
        if self.manager is None or self.manager.busy:
            return None
        due = self.check()
        if due is None:
            return None
        s = self.settings
        overrides = {"max_steps": s.train_max_steps} if s.train_max_steps else None
        try:
            self.manager.start_training(method=s.schedule_method, filters=SnapshotFilter(source=s.schedule_source),
                                        overrides=overrides, gate=None, trigger="scheduler", user=None)
        except ValueError as exc:  # JobRefused: a run started in between
            self.last_error = str(exc)
            return None
        self.last_fired = time.strftime("%Y-%m-%d %H:%M:%S ") + due.reason
        log.info("scheduler started a training run: %s", due.reason)
        return due

    def describe(self) -> str:
        """One paragraph of Markdown for the Training tab."""
        s = self.settings
        if not self.enabled:
            return ("**Scheduler: off.** Set `CLARIFY_SCHEDULE_MIN_NEW_RATED` (runs when that many conversations "
                    "were rated since the last run) and/or `CLARIFY_SCHEDULE_EVERY_HOURS` to turn it on.")
        triggers = []
        if s.schedule_min_new_rated > 0:
            triggers.append(f"at least **{s.schedule_min_new_rated}** conversations rated since the last run")
        if s.schedule_every_hours > 0:
            triggers.append(f"every **{s.schedule_every_hours:g} h** (when something new was rated)")
        try:
            new = self.store.count_rated_since_last_run(s.schedule_source)
            age = self.store.last_training_run_age_hours()
        except Exception as exc:  # the description must never break the tab
            return f"**Scheduler: on**, state unavailable: {exc}"
        text = (f"**Scheduler: on.** Trains `{s.schedule_method}` on "
                f"{s.schedule_source or 'all'} conversations when " + " or ".join(triggers)
                + f"; checks every {s.schedule_poll_seconds:g} s. Now: {new} newly rated, last run "
                + (f"{age:.1f} h ago." if age is not None else "never."))
        if self.last_fired:
            text += f" Last scheduled start: {self.last_fired}."
        return text

    # -- background thread ----------------------------------------------------
    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="clarify-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.schedule_poll_seconds):
            try:
                self.tick()
            except Exception as exc:  # keep checking; show the error in the UI
                self.last_error = str(exc)
                log.exception("scheduler check failed")
