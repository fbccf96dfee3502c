"""The Adapters tab: the registry (status, method, training metrics, evaluation, gate decision), promote,
run the promotion gate, roll back, the A/B split, and averaging adapters into a new candidate.

Promote, gate, rollback, A/B and average are admin actions, checked inside the handlers.
Activation hot-loads the adapter into the serving engine: new conversations use
it; conversations already started keep the adapter they were started with.
"""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from agent.chat_service import ChatService
from agent.engine import EngineError
from clarify.settings import Settings
from learner.average import AverageError, average_registered
from learner.promotion import PromotionError, activate, label, rollback
from learner.training_service import JobRefused, TrainingManager
from logs_db.store import LogError, LogStore

from .access import Access, admin_only

BASE = "base"
NO_AB = "none"
ADAPTER_COLUMNS = ["id", "status", "method", "created", "steps", "train loss", "eval reward", "eval n", "gate"]
DECISION_COLUMNS = ["time", "candidate", "vs", "candidate reward", "active reward", "margin", "items", "passed",
                    "promoted", "by"]


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _err(message) -> str:
    return f'<span class="error">Error: {_esc(message)}</span>'


def _num(value, digits: int = 3):
    return round(float(value), digits) if isinstance(value, (int, float)) else None


class AdaptersHandlers:
    def __init__(self, settings: Settings, store: LogStore, service: ChatService, manager: TrainingManager | None,
                 access: Access):
        self.settings = settings
        self.store = store
        self.service = service
        self.manager = manager
        self.access = access

    # -- views ----------------------------------------------------------------
    def adapters_table(self) -> pd.DataFrame:
        latest: dict[str, dict] = {}
        for d in self.store.list_promotion_decisions(500):
            latest.setdefault(d.candidate_id, d)
        rows = []
        for a in self.store.list_adapters():
            d = latest.get(a.id)
            gate = ("" if d is None else
                    f"{'passed' if d.passed else 'rejected'} {d.candidate_reward:.3f} vs "
                    f"{label(d.baseline_id)} {d.baseline_reward:.3f}" + (" · promoted" if d.promoted else ""))
            rows.append([a.id, a.status, a.method, str(a.created_at)[:19], a.train_metrics.get("steps"),
                         _num(a.train_metrics.get("train_loss"), 4), _num(a.eval_results.get("mean_reward")),
                         a.eval_results.get("n"), gate])
        return pd.DataFrame(rows, columns=ADAPTER_COLUMNS)

    def decisions_table(self) -> pd.DataFrame:
        rows = [[str(d.created_at)[:19], d.candidate_id, label(d.baseline_id), round(d.candidate_reward, 3),
                 round(d.baseline_reward, 3), d.margin, d.n_items, d.passed, d.promoted, d.user_id or ""]
                for d in self.store.list_promotion_decisions(50)]
        return pd.DataFrame(rows, columns=DECISION_COLUMNS)

    def active_text(self) -> str:
        active = self.store.active_adapter()
        if active is None:
            text = "**Active: base model** (no adapter)."
        else:
            loss = active.train_metrics.get("train_loss")
            text = (f"**Active: `{active.id}`** ({active.method}"
                    + (f", train loss {loss:.4f}" if isinstance(loss, (int, float)) else "") + ").")
        text += " New conversations use it; conversations already started keep their adapter."
        candidate, share = self.service.ab_state() if self.service is not None else (None, 0.0)
        if candidate is not None:
            text += f"\n\n**A/B on:** arm B = `{candidate}` for {share:.0%} of new conversations, arm A = the active one."
        else:
            text += "\n\n**A/B: off.**"
        return text

    def refresh(self) -> tuple:
        """(active text, adapters table, adapter choice, decisions table, A/B candidate choice, A/B share,
        adapters to average)."""
        adapters = self.store.list_adapters()
        choices = [("base model (no adapter)", BASE)] + [(f"{a.id} · {a.status}", a.id) for a in adapters]
        candidate, share = self.service.ab_state() if self.service is not None else (None, 0.0)
        ab_choices = [("none (no A/B)", NO_AB)] + [(a.id, a.id) for a in adapters]
        # Preselect the newest candidate (what one usually promotes), else the active one: never base by accident.
        preselect = next((a.id for a in adapters if a.status == "candidate"), None) or \
            next((a.id for a in adapters if a.status == "active"), BASE)
        return (self.active_text(), self.adapters_table(),
                gr.Dropdown(choices=choices, value=preselect),
                self.decisions_table(),
                gr.Dropdown(choices=ab_choices, value=candidate or NO_AB), gr.Slider(value=share),
                gr.Dropdown(choices=[(a.id, a.id) for a in adapters], value=[], multiselect=True))

    # -- admin actions --------------------------------------------------------
    def _user(self, request) -> str | None:
        return getattr(request, "username", None) if request is not None else None

    @admin_only
    def promote(self, adapter_id: str | None, request: gr.Request = None) -> tuple:
        """Make the chosen adapter (or base) active now, without the gate. Returns (message, *refresh())."""
        refusal = self.access.refusal(request)
        if refusal:
            return (_err(refusal), *self.refresh())
        if not adapter_id:
            return (_err("Choose an adapter first."), *self.refresh())
        target = None if adapter_id == BASE else adapter_id
        try:
            activate(self.store, self.service.engine if self.service else None, target, kind="manual",
                     user_id=self._user(request), reason="promoted in the Adapters tab")
        except (PromotionError, LogError) as exc:
            return (_err(exc), *self.refresh())
        return (_esc(f"{label(target)} is now active: new conversations use it."), *self.refresh())

    @admin_only
    def rollback(self, request: gr.Request = None) -> tuple:
        refusal = self.access.refusal(request)
        if refusal:
            return (_err(refusal), *self.refresh())
        try:
            current, target = rollback(self.store, self.service.engine if self.service else None,
                                       user_id=self._user(request))
        except (PromotionError, LogError) as exc:
            return (_err(exc), *self.refresh())
        return (_esc(f"Rolled back from {label(current)} to {label(target)}: new conversations use it."),
                *self.refresh())

    @admin_only
    def gate(self, adapter_id: str | None, request: gr.Request = None) -> str:
        """Start the promotion gate for one adapter in the background (follow it in the Training tab)."""
        refusal = self.access.refusal(request)
        if refusal:
            return _err(refusal)
        if not adapter_id or adapter_id == BASE:
            return _err("Choose an adapter (not the base model) to evaluate.")
        if self.manager is None:
            return _err("No training manager in this process.")
        try:
            self.store.get_adapter(adapter_id)
            self.manager.start_gate(adapter_id, user=self._user(request))
        except (JobRefused, LogError) as exc:
            return _err(exc)
        return _esc(f"The promotion gate for {adapter_id} started: follow it in the Training tab.")

    @admin_only
    def set_ab(self, candidate: str | None, share, request: gr.Request = None) -> tuple:
        """Returns (message, active text)."""
        refusal = self.access.refusal(request)
        if refusal:
            return _err(refusal), self.active_text()
        target = None if candidate in (None, "", NO_AB) else candidate
        try:
            share = float(share)
        except (TypeError, ValueError):
            return _err(f"The B share must be a number from 0 to 1, got {share!r}."), self.active_text()
        try:
            self.service.set_ab(target, share)
        except (LogError, EngineError) as exc:
            return _err(exc), self.active_text()
        if target is None:
            return _esc("A/B split off: every new conversation uses the active adapter."), self.active_text()
        return _esc(f"A/B split on: {share:.0%} of new conversations go to {target} (arm B)."), self.active_text()

    @admin_only
    def average(self, members: list[str] | None, request: gr.Request = None) -> tuple:
        """Average the chosen adapters into a new candidate (learner/average.py). Returns (message, *refresh())."""
        refusal = self.access.refusal(request)
        if refusal:
            return (_err(refusal), *self.refresh())
        try:
            adapter_id = average_registered(self.settings, self.store, list(members or []))
        except (AverageError, LogError) as exc:
            return (_err(exc), *self.refresh())
        return (_esc(f"{adapter_id} (candidate) is the average of {', '.join(members)}: run the gate or promote it."),
                *self.refresh())


def build_adapters_tab(h: AdaptersHandlers) -> dict:
    private = dict(api_visibility="private")
    active = gr.Markdown(elem_id="active-adapter")
    adapters = gr.Dataframe(pd.DataFrame(columns=ADAPTER_COLUMNS), label="Adapters (newest first)",
                            interactive=False, wrap=True, elem_id="adapters-table")
    with gr.Row():
        choice = gr.Dropdown(choices=[("base model (no adapter)", BASE)], value=BASE, label="Adapter",
                             elem_id="adapter-choice", scale=3)
        promote = gr.Button("Promote (make active)", variant="primary", elem_id="adapter-promote", scale=1)
        gate = gr.Button("Run promotion gate", elem_id="adapter-gate", scale=1)
        back = gr.Button("Roll back", variant="stop", elem_id="adapter-rollback", scale=1)
        refresh = gr.Button("Refresh", size="sm", elem_id="adapter-refresh", scale=0)
    message = gr.Markdown("", elem_id="adapters-message")
    gr.Markdown("Promote makes the chosen adapter active now (an admin's override of the gate). The gate evaluates "
                "it on the dev benchmark against the active one and promotes it only if its mean reward is not lower "
                "by more than the margin. Roll back re-activates the adapter that was active before (or the base model).")
    decisions = gr.Dataframe(pd.DataFrame(columns=DECISION_COLUMNS), label="Promotion gate decisions",
                             interactive=False, wrap=True, elem_id="gate-decisions")
    with gr.Group():
        gr.Markdown("**A/B split**: new conversations go to arm B (a candidate) with the given share, else to "
                    "arm A (the active adapter). Each conversation records its arm; see the Insights tab.")
        with gr.Row():
            ab_candidate = gr.Dropdown(choices=[("none (no A/B)", NO_AB)], value=NO_AB, label="Arm B adapter",
                                       elem_id="ab-candidate")
            ab_share = gr.Slider(0, 1, value=h.settings.ab_share, step=0.05, label="Share of arm B",
                                 elem_id="ab-share")
            ab_apply = gr.Button("Apply A/B split", elem_id="ab-apply")
    with gr.Group():
        gr.Markdown("**Average adapters**: the weight average of two or more adapters (e.g. refinements of the "
                    "active one with different seeds) becomes a new candidate at their rank. Averaging removes the "
                    "luck of one training seed (docs/LEARNING.md).")
        with gr.Row():
            members = gr.Dropdown(choices=[], value=[], multiselect=True, label="Adapters to average",
                                  elem_id="average-members", scale=3)
            average = gr.Button("Average into a new candidate", elem_id="adapter-average", scale=1)

    view = [active, adapters, choice, decisions, ab_candidate, ab_share, members]
    promote.click(h.promote, inputs=[choice], outputs=[message, *view], show_progress="hidden", **private)
    back.click(h.rollback, outputs=[message, *view], show_progress="hidden", **private)
    gate.click(h.gate, inputs=[choice], outputs=[message], show_progress="hidden", **private)
    ab_apply.click(h.set_ab, inputs=[ab_candidate, ab_share], outputs=[message, active], show_progress="hidden",
                   **private)
    average.click(h.average, inputs=[members], outputs=[message, *view], show_progress="minimal", **private)
    refresh.click(h.refresh, outputs=view, show_progress="hidden", **private)
    return dict(refresh_fn=h.refresh, refresh_outputs=view)
