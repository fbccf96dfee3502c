"""The Training tab: start / cancel a training run, watch its progress and log, see the scheduler.

The run lives in the server's ``TrainingManager`` (one at a time, for every
session); the browser polls its state with a gr.Timer that is switched on when a
run starts (or when a page loads while one runs) and off when it ends, so a page
reload or a second browser sees the same run. Start and Cancel are admin actions,
checked inside the handlers.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta

import gradio as gr
import pandas as pd

from clarify.settings import Settings
from learner.rounds import averaged_rounds
from learner.scheduler import Scheduler
from learner.train_adapter import METHODS
from learner.training_service import JobRefused, JobStatus, TrainingManager
from logs_db.snapshot import SnapshotFilter
from logs_db.store import LogStore, RatedSinceRun

from .access import Access, admin_only

POLL_SECONDS = 1.0     # while a run is in progress
WATCH_SECONDS = 10.0   # otherwise: notice a run started by another session or by the scheduler
SOURCES = ("all", "ui", "api", "simulated")
RUN_COLUMNS = ["started", "method", "trigger", "status", "conversations", "adapter", "error"]


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_html(job: JobStatus | None) -> str:
    """The progress block: bar, status, step/max_steps (%), loss, elapsed, ETA, the adapter and the gate."""
    if job is None:
        return '<div class="train-progress">No training run since the server started.</div>'
    pct = job.percent
    if pct is not None:
        bar = f'<progress max="100" value="{pct:.0f}" style="width:100%"></progress>'
    else:
        bar = '<progress style="width:100%"></progress>' if job.running else ""
    what = "training run" if job.kind == "train" else "promotion gate"
    head = [f"<b>{_esc(job.status)}</b>", _esc(f"{what}" + (f" ({job.method})" if job.method else ""))]
    if job.running:
        head.append(_esc(f"phase: {job.phase}"))
    if job.max_steps:
        head.append(_esc(f"step {job.step}/{job.max_steps} ({pct:.0f}%)"))
    if job.loss is not None:
        head.append(_esc(f"loss {job.loss:.4f}"))
    head.append(_esc(f"elapsed {fmt_seconds(job.elapsed)}"))
    if job.running and job.phase == "training":
        head.append(_esc(f"ETA {fmt_seconds(job.eta)}"))
    lines = [" · ".join(head)]
    if job.n_conversations is not None:
        lines.append(_esc(f"{job.n_conversations} rated conversation(s) in the snapshot"))
    if job.adapter_id:
        lines.append(_esc(f"adapter {job.adapter_id}"))
    if job.gate:
        lines.append(_esc(f"gate: {job.gate['reason']}"))
    if job.error:
        lines.append(f'<span class="error">{_esc(job.error)}</span>')
    return f'<div class="train-progress">{bar}<div>' + "<br>".join(lines) + "</div></div>"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def rated_since_text(rated: RatedSinceRun) -> str:
    """The tab's line "Rated since the last training run (2026-12-07 14:02): 37 conversations (21 thumbs up,
    16 down), 412 rated in all"; before any successful run, what was rated so far."""
    kinds = f"{rated.thumbs_up} thumbs up, {rated.thumbs_down} down" + (
        f", {rated.stars} with stars" if rated.stars else "")
    counts = f"{_count(rated.conversations, 'conversation')} ({kinds})"
    if rated.run_started_at is None:
        return f"**Rated so far** (no training run yet): {counts}."
    return (f"**Rated since the last training run** ({str(rated.run_started_at)[:16]}): {counts}, "
            f"{rated.total} rated in all.")


def log_text(job: JobStatus | None) -> str:
    return "\n".join(job.log) if job else ""


def parse_day(text: str | None, name: str, *, end: bool = False) -> datetime | None:
    """'' -> None; 'YYYY-MM-DD' (an `until` date includes that whole day) or 'YYYY-MM-DD HH:MM[:SS]'."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise JobRefused(f"{name}: {text!r} is not a date; use YYYY-MM-DD (or YYYY-MM-DD HH:MM).") from None
    if end and len(text) <= 10:
        value += timedelta(days=1)  # until a date = through the end of that day
    return value.replace(tzinfo=None)


def parse_max_steps(value) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise JobRefused(f"Max steps must be a whole number, got {value!r}.") from None
    if number != number or not number.is_integer() or number < 0:
        raise JobRefused(f"Max steps must be a whole number >= 0 (0 = a full run), got {value!r}.")
    return int(number) or None


class TrainingHandlers:
    def __init__(self, settings: Settings, store: LogStore, manager: TrainingManager,
                 scheduler: Scheduler | None, access: Access):
        self.settings = settings
        self.store = store
        self.manager = manager
        self.scheduler = scheduler
        self.access = access

    def runs_table(self) -> pd.DataFrame:
        rows = [[str(r.started_at)[:19], r.method, r.trigger or "cli", r.status,
                 r.n_conversations, r.adapter_id or "", (r.error or "")[:200]]
                for r in self.store.list_training_runs(20)]
        return pd.DataFrame(rows, columns=RUN_COLUMNS)

    def rated_text(self) -> str:
        """The rated conversations since the last successful run (LogStore.rated_since_last_run)."""
        return rated_since_text(self.store.rated_since_last_run())

    def scheduler_text(self) -> str:
        return self.scheduler.describe() if self.scheduler is not None else "**Scheduler: not running in this process.**"

    def _view(self, job: JobStatus | None) -> tuple:
        return progress_html(job), log_text(job), gr.Timer(active=bool(job and job.running))

    @admin_only
    def start(self, method: str, source: str, since: str, until: str, max_steps, gate: bool, refine: bool = False,
              request: gr.Request = None) -> tuple:
        """Returns (message, progress, log, timer)."""
        refusal = self.access.refusal(request)
        if refusal:
            return (f'<span class="error">{_esc(refusal)}</span>', *self._view(self.manager.status()))
        try:
            if method not in METHODS:
                raise JobRefused(f"Unknown method {method!r}; use one of {', '.join(METHODS)}.")
            if source not in SOURCES:
                raise JobRefused(f"Unknown source {source!r}; use all, ui, api or simulated.")
            filters = SnapshotFilter(source=None if source == "all" else source,
                                     since=parse_day(since, "Since"), until=parse_day(until, "Until", end=True))
            if filters.since and filters.until and filters.since >= filters.until:
                raise JobRefused("Since must be before until.")
            steps = parse_max_steps(max_steps)
            overrides, parent = ({"max_steps": steps} if steps else {}), None
            if refine:  # the measured best recipe: a second, gentler schedule on top of the active adapter
                active = self.store.active_adapter()
                if active is None:
                    raise JobRefused("No active adapter to refine: train one and promote it first (Adapters tab).")
                parent = active.id
                overrides.update(epochs=self.settings.refine_epochs, learning_rate=self.settings.refine_learning_rate)
            job = self.manager.start_training(method=method, filters=filters, overrides=overrides or None,
                                              gate=bool(gate), trigger="ui", user=getattr(request, "username", None),
                                              parent_id=parent)
        except JobRefused as exc:
            return (f'<span class="error">{_esc(exc)}</span>', *self._view(self.manager.status()))
        what = f"{method}, refining {parent}" if parent else method
        return (_esc(f"Training started ({what}). Progress below; you can leave or reload this page."),
                *self._view(job))

    @admin_only
    def cancel(self, request: gr.Request = None) -> str:
        refusal = self.access.refusal(request)
        if refusal:
            return f'<span class="error">{_esc(refusal)}</span>'
        return _esc(self.manager.cancel(getattr(request, "username", None)))

    def poll(self, seen: str | None) -> tuple:
        """Timer tick: (progress, log, timer, runs table, seen, rated since the last run). The runs table and the
        rated count are re-read only when the job's status changes (a run starts or ends)."""
        job = self.manager.status()
        key = f"{job.job_id}:{job.status}" if job else ""
        changed = key != seen
        return (*self._view(job), self.runs_table() if changed else gr.skip(), key,
                self.rated_text() if changed else gr.skip())

    def watch(self) -> gr.Timer:
        """Slow timer tick: switch the fast poll on when a run started elsewhere (another session, the scheduler)."""
        return gr.Timer(active=True) if self.manager.busy else gr.skip()

    def load(self, request: gr.Request = None) -> tuple:
        """Page load: (progress, log, timer, runs table, seen, scheduler, rated since the last run, access note)."""
        job = self.manager.status()
        key = f"{job.job_id}:{job.status}" if job else ""
        note = ""
        if self.access.configured and not self.access.is_admin(getattr(request, "username", None)):
            note = "You can watch training here; starting and cancelling runs needs an admin login."
        return (*self._view(job), self.runs_table(), key, self.scheduler_text(), self.rated_text(), note)


def build_training_tab(h: TrainingHandlers) -> dict:
    """Lay out the tab (inside a gr.Tab) and wire its events; returns the components the app needs."""
    private = dict(api_visibility="private")
    s = h.settings
    gr.Markdown("Train a LoRA adapter from the rated conversations. The run happens in a separate process; "
                "chat keeps working meanwhile. Only one run at a time, for the whole server. "
                + (f"A fresh run is then refined {s.refine_rounds} time(s) in a chain ({s.refine_epochs:g} epochs at lr "
                   f"{s.refine_learning_rate:g} each, CLARIFY_REFINE_ROUNDS); every round is a candidate"
                   + (f", and the result is the average of the last {s.refine_average_last} rounds. "
                      if averaged_rounds(s.refine_rounds, s.refine_average_last) else ". ")
                   if s.refine_rounds else "")
                + ("After training, the promotion gate evaluates the new adapter on the first "
                   f"{s.gate_items} dev items against the active one (margin {s.promotion_margin:g})"
                   + (" and promotes it when it passes." if s.auto_promote else "; promote it in the Adapters tab.")))
    access_note = gr.Markdown("", elem_id="train-access")
    rated = gr.Markdown("", elem_id="train-rated-since")
    with gr.Row():
        method = gr.Dropdown(list(METHODS), value="swift", label="Method", elem_id="train-method",
                             info="swift: per-context standardized rewards (default); refit: raw rewards; "
                                  "sft: the good ones; dpo / kto: TRL baselines")
        source = gr.Radio(list(SOURCES), value="all", label="Conversations", elem_id="train-source")
        since = gr.Textbox(label="Since (optional)", placeholder="YYYY-MM-DD", elem_id="train-since")
        until = gr.Textbox(label="Until (optional, inclusive)", placeholder="YYYY-MM-DD", elem_id="train-until")
    with gr.Row():
        max_steps = gr.Number(s.train_max_steps or 0, precision=0, minimum=0, label="Max steps (0 = full run)",
                              elem_id="train-max-steps")
        gate = gr.Checkbox(s.gate_after_training, label="Run the promotion gate after training",
                           elem_id="train-gate")
        refine = gr.Checkbox(False, label=f"Refine the active adapter ({s.refine_epochs:g} more epochs at lr "
                                          f"{s.refine_learning_rate:g}) instead of a fresh one", elem_id="train-refine")
        start = gr.Button("Start training", variant="primary", elem_id="train-start")
        cancel = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
    message = gr.Markdown("", elem_id="train-message")
    progress = gr.HTML(progress_html(None), elem_id="train-progress")
    log = gr.Textbox(label="Log", lines=10, max_lines=20, interactive=False, elem_id="train-log", autoscroll=True)
    schedule = gr.Markdown(h.scheduler_text(), elem_id="train-scheduler")
    runs = gr.Dataframe(pd.DataFrame(columns=RUN_COLUMNS), label="Recent training runs", interactive=False,
                        elem_id="train-runs", wrap=True)
    timer = gr.Timer(POLL_SECONDS, active=False)
    watcher = gr.Timer(WATCH_SECONDS)
    seen = gr.State("")

    start.click(h.start, inputs=[method, source, since, until, max_steps, gate, refine],
                outputs=[message, progress, log, timer], show_progress="hidden", **private)
    cancel.click(h.cancel, outputs=[message], show_progress="hidden", **private)
    timer.tick(h.poll, inputs=[seen], outputs=[progress, log, timer, runs, seen, rated], show_progress="hidden",
               concurrency_limit=None, **private)
    watcher.tick(h.watch, outputs=[timer], show_progress="hidden", concurrency_limit=None, **private)
    return dict(load_fn=h.load, load_outputs=[progress, log, timer, runs, seen, schedule, rated, access_note])
