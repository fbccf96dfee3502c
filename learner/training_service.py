"""The training job service: one background job at a time (a training run, then its promotion gate; or a gate
alone), shared by every client of the serving process.

The serving process owns the DuckDB file, so it runs the job: ``learner.jobs.run_training`` (then
``settings.refine_rounds`` chained refinements of it: ``learner.rounds``) snapshots the rated
conversations to Parquet and trains in a child process, then
``learner.promotion.run_gate`` evaluates the new candidate on the serving engine.
Browser sessions only read the job's state (``status()``, which the Training tab polls), so a
page reload, or a second browser, sees the same run. The one-at-a-time rule is enforced
here, under a lock, not in the UI.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from clarify.settings import Settings
from logs_db.snapshot import SnapshotFilter
from logs_db.store import LogStore

from .jobs import TrainingFailed
from .promotion import GateCancelled, PromotionError, run_gate
from .rounds import train_with_rounds
from .train_adapter import METHODS

log = logging.getLogger(__name__)

MAX_LOG_LINES = 400


class JobRefused(ValueError):
    """The job cannot start (one is already running, bad input); the message is for the person who asked."""


@dataclass
class JobStatus:
    job_id: str
    kind: str                         # train | gate
    trigger: str                      # ui | scheduler
    user: str | None
    method: str | None = None
    status: str = "running"           # running | succeeded | failed | cancelled
    phase: str = "starting"           # starting | snapshot | training | averaging | gate | done
    step: int = 0
    max_steps: int | None = None
    loss: float | None = None
    eta: float | None = None          # seconds left in the training phase, from the trainer
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    n_conversations: int | None = None
    run_id: str | None = None
    adapter_id: str | None = None
    metrics: dict = field(default_factory=dict)
    gate: dict | None = None          # the gate's decision (logs_db PromotionDecision as a dict)
    error: str | None = None
    log: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.time()) - self.started_at

    @property
    def percent(self) -> float | None:
        if not self.max_steps:
            return None
        return 100.0 * min(self.step, self.max_steps) / self.max_steps

    def copy(self) -> "JobStatus":
        return dataclasses.replace(self, log=list(self.log), metrics=dict(self.metrics),
                                   gate=dict(self.gate) if self.gate else None)


class TrainingManager:
    """Starts, tracks and cancels the one background job of this server."""

    def __init__(self, settings: Settings, store: LogStore, engine=None, *,
                 train_fn: Callable = train_with_rounds, gate_fn: Callable = run_gate):
        self.settings = settings
        self.store = store
        self.engine = engine                  # the serving engine (the gate evaluates on it); None = no gate
        self._train_fn = train_fn
        self._gate_fn = gate_fn
        self._lock = threading.Lock()
        self._job: JobStatus | None = None
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    # -- reading --------------------------------------------------------------
    def status(self) -> JobStatus | None:
        """A copy of the current (or last) job's state."""
        with self._lock:
            return self._job.copy() if self._job else None

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._job is not None and self._job.running

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job thread (tests, shutdown). True when no job is running afterwards."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy

    # -- starting and cancelling ---------------------------------------------
    def _refuse_if_busy(self) -> None:
        job = self._job
        if job is not None and job.running:
            who = f" by {job.user}" if job.user else (" by the scheduler" if job.trigger == "scheduler" else "")
            what = "a training run" if job.kind == "train" else "a promotion gate"
            raise JobRefused(f"A run is already in progress ({what} started{who} "
                             f"{time.strftime('%H:%M:%S', time.localtime(job.started_at))}). "
                             "Wait for it to finish or cancel it; only one runs at a time.")

    def start_training(self, *, method: str = "swift", filters: SnapshotFilter = SnapshotFilter(),
                       overrides: dict | None = None, gate: bool | None = None, trigger: str = "ui",
                       user: str | None = None, parent_id: str | None = None) -> JobStatus:
        if method not in METHODS:
            raise JobRefused(f"Unknown method {method!r}; use one of {', '.join(METHODS)}.")
        gate = self.settings.gate_after_training if gate is None else gate
        with self._lock:
            self._refuse_if_busy()
            job = JobStatus(job_id=uuid.uuid4().hex[:12], kind="train", trigger=trigger, user=user, method=method)
            self._start(job, self._run_training, job, method, filters, dict(overrides or {}), gate, parent_id)
            return job.copy()

    def start_gate(self, adapter_id: str, *, user: str | None = None) -> JobStatus:
        if self.engine is None:
            raise JobRefused("No engine to evaluate on in this process.")
        with self._lock:
            self._refuse_if_busy()
            job = JobStatus(job_id=uuid.uuid4().hex[:12], kind="gate", trigger="ui", user=user,
                            adapter_id=adapter_id, phase="gate")
            self._start(job, self._run_gate_only, job)
            return job.copy()

    def _start(self, job: JobStatus, target, *args) -> None:  # called with the lock held
        self._job = job
        self._cancel = threading.Event()
        self._append(job, f"{job.kind} started" + (f" by {job.user}" if job.user else "")
                     + (f" ({job.trigger})" if job.trigger != "ui" else ""))
        self._thread = threading.Thread(target=target, args=args, name=f"clarify-{job.kind}", daemon=True)
        self._thread.start()

    def cancel(self, user: str | None = None) -> str:
        with self._lock:
            job = self._job
            if job is None or not job.running:
                return "No run is in progress."
            self._cancel.set()
            self._append(job, "cancel requested" + (f" by {user}" if user else ""))
            if job.phase == "gate":
                return "Cancelling: the gate stops after the evaluation in progress."
            return ("Cancelling: the trainer process is being stopped; the run in progress registers nothing "
                    "(rounds already finished stay registered as candidates).")

    def shutdown(self, timeout: float = 30.0) -> None:
        """Server exit: stop a running job (the trainer child is terminated) and wait a little for it."""
        if self.busy:
            self.cancel()
            self.join(timeout)

    # -- the job thread -------------------------------------------------------
    def _append(self, job: JobStatus, line: str) -> None:  # lock held, or called via _log
        job.log.append(time.strftime("%H:%M:%S ") + line)
        del job.log[:-MAX_LOG_LINES]

    def _log(self, job: JobStatus, line: str) -> None:
        with self._lock:
            self._append(job, line)

    def _update(self, job: JobStatus, **changes) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(job, k, v)

    def _on_progress(self, job: JobStatus, event: dict) -> None:
        kind = event.get("event")
        if kind == "snapshot":
            self._update(job, phase="training", n_conversations=event.get("n_conversations"), run_id=event.get("run_id"))
            self._log(job, f"snapshot: {event.get('n_conversations')} rated conversation(s)")
            if event.get("run_id"):
                try:
                    self.store.set_training_run_trigger(event["run_id"], job.trigger)
                except Exception:  # bookkeeping only
                    log.exception("could not record the training trigger")
        elif kind == "start":
            self._update(job, max_steps=event.get("max_steps"), step=0)
            self._log(job, f"training: {event.get('max_steps')} step(s)")
        elif kind == "progress":
            loss = event.get("loss")
            self._update(job, step=int(event.get("step") or 0), max_steps=event.get("max_steps"),
                         loss=loss if isinstance(loss, (int, float)) else job.loss, eta=event.get("eta"))
            self._log(job, f"step {event.get('step')}/{event.get('max_steps')}"
                      + (f" loss {loss:.4f}" if isinstance(loss, (int, float)) else ""))
        elif kind == "done":
            self._update(job, metrics=dict(event.get("metrics") or {}), eta=0.0)
            self._log(job, f"trainer done: {event.get('metrics')}")
        elif kind == "error":
            self._log(job, f"trainer: {event.get('message')}")
        elif kind == "round":
            self._update(job, step=0, max_steps=None)
            self._log(job, f"refinement round {event.get('round')} of {event.get('rounds')}, "
                           f"from {event.get('parent_id')}")
        elif kind == "average":
            self._update(job, phase="averaging")
            self._log(job, f"averaging the last {len(event.get('members') or [])} rounds: "
                           + ", ".join(event.get("members") or []))

    def _finish(self, job: JobStatus, status: str, error: str | None = None) -> None:
        with self._lock:
            job.status, job.phase, job.error, job.finished_at = status, "done", error, time.time()
            self._append(job, f"{job.kind} {status}" + (f": {error}" if error else "") + f" after {job.elapsed:.0f} s")

    def _run_training(self, job: JobStatus, method: str, filters: SnapshotFilter, overrides: dict, gate: bool,
                      parent_id: str | None = None) -> None:
        try:
            outcome = self._train_fn(self.settings, self.store, method=method, filters=filters, overrides=overrides,
                                     on_progress=lambda e: self._on_progress(job, e), cancel=self._cancel,
                                     parent_id=parent_id)
        except TrainingFailed as exc:
            self._finish(job, "cancelled" if self._cancel.is_set() else "failed", str(exc))
            return
        except Exception as exc:  # never leave a job "running" forever
            log.exception("training job failed")
            self._finish(job, "failed", f"{type(exc).__name__}: {exc}")
            return
        self._update(job, adapter_id=outcome.adapter_id, metrics=dict(outcome.metrics),
                     step=job.max_steps or job.step)
        self._log(job, f"adapter {outcome.adapter_id} registered as a candidate")
        if gate and self.engine is not None:
            status, error = self._gate(job, outcome.adapter_id)
            self._finish(job, status, error)
        else:
            if gate:
                self._log(job, "gate skipped: no engine in this process")
            self._finish(job, "succeeded")

    def _run_gate_only(self, job: JobStatus) -> None:
        status, error = self._gate(job, job.adapter_id)
        self._finish(job, status, error)

    def _gate(self, job: JobStatus, adapter_id: str) -> tuple[str, str | None]:
        self._update(job, phase="gate")
        try:
            result = self._gate_fn(self.settings, self.store, self.engine, adapter_id, user_id=job.user,
                                   log=lambda line: self._log(job, line), cancel=self._cancel)
        except GateCancelled as exc:
            return "cancelled", str(exc)
        except PromotionError as exc:
            return "failed", f"gate: {exc}"
        except Exception as exc:
            log.exception("promotion gate failed")
            return "failed", f"gate: {type(exc).__name__}: {exc}"
        self._update(job, gate=dataclasses.asdict(result))
        return "succeeded", None
