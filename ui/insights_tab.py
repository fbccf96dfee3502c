"""The Insights tab: plots over the log (logs_db/insights.py), the A/B arms, and an export of the rated data.

Export is an admin action (checked inside the handler): the file holds every
rated conversation.
"""

from __future__ import annotations

import html
import tempfile
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from clarify.settings import Settings
from learner.chat_export import FORMATS, export_chat
from logs_db import insights
from logs_db.snapshot import SnapshotFilter
from logs_db.store import LogStore

from .access import Access, admin_only

SOURCES = ("all", "ui", "api", "simulated")
ARM_COLUMNS = ["arm", "adapter", "conversations", "mean_reward", "ci95_low", "ci95_high"]


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _day_label(df: pd.DataFrame) -> pd.DataFrame:
    """Bar plots read a plain date label better than a temporal axis."""
    df = df.copy()
    df["day"] = pd.to_datetime(df["day"]).dt.strftime("%Y-%m-%d") if len(df) else pd.Series(dtype=str)
    return df


class InsightsHandlers:
    def __init__(self, settings: Settings, store: LogStore, access: Access):
        self.settings = settings
        self.store = store
        self.access = access
        self._export_dir: Path | None = None   # created on the first export

    def refresh(self, source: str = "all") -> tuple:
        """(reward/day, reward/adapter, ask rate/day, ratings/day, eval/adapter, explored share/day,
        reward by action/day, arms, message)."""
        if source not in SOURCES:
            source = "all"
        per_adapter = insights.reward_per_adapter(self.store, source)
        per_adapter["label"] = per_adapter["adapter"] + " (" + per_adapter["source"] + ")"
        evals = insights.eval_per_adapter(self.store)
        evals["label"] = evals["adapter"] + " · " + evals["items"]
        arms = insights.arms(self.store).round(3)
        per_day = insights.reward_per_day(self.store, source)
        n_rated = int(per_day["conversations"].sum())
        message = _esc(f"{n_rated} rated conversation(s) ({source}); refreshed {time.strftime('%H:%M:%S')}.")
        return (per_day, per_adapter, insights.ask_rate_per_day(self.store, source),
                _day_label(insights.ratings_per_day(self.store, source)), evals,
                insights.explored_per_day(self.store, source), insights.reward_by_action_per_day(self.store, source),
                arms, message)

    @admin_only
    def export(self, fmt: str, source: str, request: gr.Request = None) -> tuple:
        """(file for download or None, message). Admin only."""
        refusal = self.access.refusal(request)
        if refusal:
            return None, f'<span class="error">{_esc(refusal)}</span>'
        if fmt not in FORMATS or source not in SOURCES:
            return None, '<span class="error">Choose jsonl or parquet, and all, ui, api or simulated.</span>'
        if self._export_dir is None:
            self._export_dir = Path(tempfile.mkdtemp(prefix="clarify-export-"))
        out = self._export_dir / f"clarify-{source}-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
        n = export_chat(self.store, out, fmt, SnapshotFilter(source=None if source == "all" else source),
                        horizon=self.settings.max_clarifying_questions)
        return str(out), _esc(f"Exported {n} rated conversation(s) to {out.name}.")


def build_insights_tab(h: InsightsHandlers) -> dict:
    private = dict(api_visibility="private")
    with gr.Row():
        source = gr.Radio(list(SOURCES), value="all", label="Conversations", elem_id="insights-source")
        refresh = gr.Button("Refresh", size="sm", elem_id="insights-refresh", scale=0)
    message = gr.Markdown("", elem_id="insights-message")
    with gr.Row():
        reward_day = gr.LinePlot(x="day", y="mean_reward", color="source", title="Mean reward per day",
                                 y_title="mean reward", y_lim=[0, 1], elem_id="plot-reward-day",
                                 caption="Rated conversations by start day. A line needs two days; hover a point.")
        ask_day = gr.LinePlot(x="day", y="ask_rate", color="source", title="Ask rate (first agent turn) per day",
                              y_title="share asking first", y_lim=[0, 1], elem_id="plot-ask-rate",
                              caption="Conversations whose first agent turn is a clarifying question.")
    with gr.Row():
        reward_adapter = gr.BarPlot(x="label", y="mean_reward", color="source", title="Mean reward per adapter",
                                    x_title="adapter (source)", y_title="mean reward", y_lim=[0, 1],
                                    elem_id="plot-reward-adapter")
        ratings_day = gr.BarPlot(x="day", y="ratings", color="kind", title="Ratings per day",
                                 elem_id="plot-ratings-day")
    with gr.Row():
        explored_day = gr.LinePlot(x="day", y="explored_share", color="source", title="Explored share per day",
                                   y_title="share explored", y_lim=[0, 1], elem_id="plot-explored",
                                   caption="Agent turns that could ask and took the action their decision did not "
                                           "choose (CLARIFY_EXPLORE).")
        action_day = gr.LinePlot(x="day", y="mean_reward", color="action", title="Mean reward by action per day",
                                 y_title="mean reward", y_lim=[0, 1], elem_id="plot-reward-action",
                                 caption="Rated conversations by whether their first agent turn asked or answered.")
    evals = gr.BarPlot(x="label", y="mean_reward", color="adapter", title="Dev-benchmark mean reward per adapter",
                       x_title="adapter · items", y_title="mean reward", y_lim=[0, 1], elem_id="plot-eval")
    arms = gr.Dataframe(pd.DataFrame(columns=ARM_COLUMNS), interactive=False, elem_id="ab-arms",
                        label="A/B arms: mean rating reward, count and 95% CI (normal approximation; empty below 2)")
    with gr.Row():
        fmt = gr.Radio(list(FORMATS), value="jsonl", label="Export format (chat messages + reward, for TRL)",
                       elem_id="export-format")
        export = gr.Button("Export rated conversations", elem_id="export-button")
        exported = gr.File(label="Export", interactive=False, elem_id="export-file")

    outputs = [reward_day, reward_adapter, ask_day, ratings_day, evals, explored_day, action_day, arms, message]
    refresh.click(h.refresh, inputs=[source], outputs=outputs, show_progress="hidden", **private)
    source.change(h.refresh, inputs=[source], outputs=outputs, show_progress="hidden", **private)
    export.click(h.export, inputs=[fmt, source], outputs=[exported, message], show_progress="hidden", **private)
    return dict(refresh_fn=h.refresh, refresh_inputs=[source], refresh_outputs=outputs)
