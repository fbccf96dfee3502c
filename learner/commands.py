"""`clarify train` and `clarify adapters ...`."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from clarify.cli_options import DataDir, EngineOpt, ModelPath, Threads, fail, make_settings, open_engine, open_store

# TrainConfig fields `clarify train` sets from its own options or the settings, not through --set.
SET_BY_OPTIONS = {"method": "--method", "base_model": "--model", "threads": "--threads",
                  "seed": "CLARIFY_SEED", "horizon": "CLARIFY_MAX_CLARIFYING_QUESTIONS",
                  "init_adapter": "--from-adapter ID (a registered adapter)", "max_steps": "--max-steps"}

adapters_app = typer.Typer(help="List, inspect and activate trained LoRA adapters.", no_args_is_help=True)


def train_command(
    method: Annotated[str, typer.Option(help="swift | refit | sft | dpo | kto")] = "swift",
    source: Annotated[Optional[str], typer.Option(help="Only conversations from this source: ui | api | simulated.")] = None,
    since: Annotated[Optional[datetime], typer.Option(help="Only conversations started at or after this time.")] = None,
    until: Annotated[Optional[datetime], typer.Option(help="Only conversations started before this time.")] = None,
    from_adapter: Annotated[Optional[str], typer.Option(
        help="Continue training this registered adapter (its id; it becomes the parent) instead of a fresh LoRA.")] = None,
    refine_rounds: Annotated[Optional[int], typer.Option(
        min=0, max=20, help="Then continue the result this many times in a chain (each round: refine_epochs at "
                            "refine_learning_rate from the last round, a new seed), as --from-adapter LAST does by "
                            "hand; prints each round's adapter, the last one is the result. Default: "
                            "CLARIFY_REFINE_ROUNDS for a run from scratch, else 0.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many steps (smoke runs).")] = None,
    activate: Annotated[bool, typer.Option(help="Make the new adapter the active one.")] = False,
    gate: Annotated[bool, typer.Option(help="Run the promotion gate: evaluate on the first gate_items dev items "
                                            "against the active adapter, promote when it passes.")] = False,
    data_dir: DataDir = None,
    model: ModelPath = None,
    threads: Threads = None,
    engine: EngineOpt = None,
    set_fields: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="FIELD=VALUE",
        help="Set a training option, a TrainConfig field of learner/train_adapter.py; repeatable, e.g. --set epochs=3 "
             "--set learning_rate=2e-4 --set notes_views=1 (docs/LEARNING.md).")] = None,
) -> None:
    """Train a LoRA adapter from the rated conversations in the log (reward-weighted fine-tuning)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from logs_db.snapshot import SnapshotFilter

    from .jobs import TrainingFailed, parse_overrides
    from .rounds import train_with_rounds

    settings = make_settings(data_dir=data_dir, model=model, threads=threads, engine=engine,  # engine: --gate only
                             refine_rounds=refine_rounds)
    rounds = settings.refine_rounds if refine_rounds is not None or from_adapter is None else 0
    if activate and gate:
        fail("use either --activate (always) or --gate (only when it passes the promotion gate), not both.")
    try:
        overrides = parse_overrides(set_fields or [], SET_BY_OPTIONS, "the command's own options")
    except TrainingFailed as exc:
        fail(str(exc))
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    with open_store(settings) as store:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn()) as bar:
            task = bar.add_task(f"training {method}", total=None, loss="-")
            logged: set = set()  # the tenths of this run already printed as plain lines
            started = time.monotonic()

            def on_progress(event: dict) -> None:
                if event.get("event") == "round":
                    logged.clear()  # a new run: its tenths are printed again
                    bar.console.print(f"refinement round {event['round']} of {event['rounds']}, "
                                      f"from {event['parent_id']}", soft_wrap=True)
                    bar.update(task, description=f"refining {method}, round {event['round']} of {event['rounds']}",
                               completed=0, total=None, loss="-")
                elif event.get("event") == "average":
                    bar.console.print(f"averaging the last {len(event['members'])} rounds: "
                                      + ", ".join(event["members"]), soft_wrap=True)
                elif event.get("event") == "snapshot":
                    bar.console.print(f"snapshot: {event['n_conversations']} rated conversations")
                    if event.get("run_id"):
                        store.set_training_run_trigger(event["run_id"], "cli")
                elif event.get("event") in ("start", "progress"):
                    loss = event.get("loss")
                    loss_text = f"{loss:.4f}" if isinstance(loss, (int, float)) else "-"
                    bar.update(task, total=event["max_steps"], completed=event["step"], loss=loss_text)
                    if not bar.console.is_terminal and tenth_reached(event["step"], event["max_steps"], logged):
                        bar.console.print(f"step {event['step']}/{event['max_steps']}, loss {loss_text}, "
                                          f"{time.monotonic() - started:.0f} s in", soft_wrap=True)

            training = dict(method=method, overrides=overrides, on_progress=on_progress,
                            filters=SnapshotFilter(source=source, since=since, until=until))
            try:
                outcome = train_with_rounds(settings, store, parent_id=from_adapter, rounds=rounds, **training)
            except TrainingFailed as exc:
                fail(str(exc))
        if activate:
            store.activate_adapter(outcome.adapter_id, kind="cli")
        typer.echo(f"adapter {outcome.adapter_id} registered ({'active' if activate else 'candidate'}): {outcome.path}")
        typer.echo(f"metrics: {outcome.metrics}")
        if gate:
            _gate(settings, store, outcome.adapter_id)


def tenth_reached(step: int, total: int, logged: set) -> bool:
    """Whether `step` reaches a tenth of `total` not printed yet (and marks it). Why: without a terminal
    (nohup, CI, a log file) rich draws no live bar, so an hour of training would otherwise print nothing."""
    tenth = min(10, step * 10 // total) if total > 0 and step > 0 else 0
    if tenth == 0 or tenth in logged:
        return False
    logged.add(tenth)
    return True


def _gate(settings, store, adapter_id: str) -> None:
    from agent.engine import EngineError

    from .promotion import PromotionError, run_gate

    engine = open_engine(settings)
    try:
        result = run_gate(settings, store, engine, adapter_id, promote=True, log=typer.echo)
    except (PromotionError, EngineError) as exc:
        fail(str(exc), code=1)
    finally:
        engine.close()
    typer.echo(("promoted: " if result.promoted else "not promoted: ") + result.reason)


@adapters_app.command("list")
def adapters_list(data_dir: DataDir = None) -> None:
    """All adapters, newest first."""
    from rich.console import Console
    from rich.table import Table

    settings = make_settings(data_dir=data_dir)
    with open_store(settings) as store:
        table = Table("id", "method", "status", "created", "train loss", "eval reward")
        for a in store.list_adapters():
            table.add_row(a.id, a.method, a.status, str(a.created_at)[:19], str(a.train_metrics.get("train_loss", "")),
                          str(a.eval_results.get("mean_reward", "")))
    Console().print(table)


@adapters_app.command("show")
def adapters_show(adapter_id: str, data_dir: DataDir = None) -> None:
    """One adapter's registry row as JSON."""
    import dataclasses
    import json

    from logs_db.store import UnknownId

    settings = make_settings(data_dir=data_dir)
    with open_store(settings) as store:
        try:
            adapter = store.get_adapter(adapter_id)
        except UnknownId as exc:
            fail(str(exc))
    typer.echo(json.dumps(dataclasses.asdict(adapter), indent=2, default=str))


@adapters_app.command("average")
def adapters_average(
    adapter_ids: Annotated[list[str], typer.Argument(help="Two or more adapter ids, e.g. refinements with different seeds.")],
    combination: Annotated[str, typer.Option(help="svd: back to the members' rank (serves as they do) | cat: exact, "
                                                  "at the sum of their ranks.")] = "svd",
    rank: Annotated[Optional[int], typer.Option(help="Rank of the svd average (default: the members' rank).")] = None,
    data_dir: DataDir = None,
    model: ModelPath = None,
) -> None:
    """Average adapters' weights into a new candidate adapter (a model soup); activate it like any other."""
    from .average import AverageError, average_registered

    settings = make_settings(data_dir=data_dir, model=model)
    with open_store(settings) as store:
        try:
            adapter_id = average_registered(settings, store, adapter_ids, combination=combination, rank=rank)
        except AverageError as exc:
            fail(str(exc))
    typer.echo(f"adapter: {adapter_id} (candidate; average of {', '.join(adapter_ids)})")


@adapters_app.command("calibrate")
def adapters_calibrate(
    adapter_id: str,
    snapshot: Annotated[Optional[Path], typer.Option(
        help="The Parquet snapshot to calibrate on (default: the one the adapter was trained on, e.g. an "
             "average's first member's).")] = None,
    max_needless_asks: Annotated[Optional[float], typer.Option(
        help="The ask threshold may ask on at most this share of the calibration questions where answering paid "
             "(default: the adapter's own, else 0.2; 1: the threshold of the most logged reward).")] = None,
    data_dir: DataDir = None,
    model: ModelPath = None,
    threads: Threads = None,
) -> None:
    """Set the adapter's ask threshold again, on renamed copies of its training questions
    (learner/calibration.py).
    A running server applies the new threshold from its next reply."""
    import torch

    from agent.engine import AdapterLoadError, validate_adapter_folder
    from clarify.model_store import resolve_model
    from logs_db.store import UnknownId

    from .calibration import CalibrationError, calibrate_folder

    settings = make_settings(data_dir=data_dir, model=model, threads=threads)
    torch.set_num_threads(settings.threads)
    with open_store(settings) as store:
        try:
            folder = Path(store.get_adapter(adapter_id).path)
            validate_adapter_folder(folder)
            if max_needless_asks is not None and not 0.0 <= max_needless_asks <= 1.0:
                raise CalibrationError(f"--max-needless-asks must be from 0 to 1, not {max_needless_asks}.")
            result = calibrate_folder(str(resolve_model(settings.model, settings.models_dir)), folder, snapshot,
                                      max_needless=max_needless_asks)
        except (UnknownId, AdapterLoadError, CalibrationError) as exc:
            fail(str(exc))
    typer.echo(describe_calibration(result))


def describe_calibration(result: dict) -> str:
    stats, threshold = result["calibration"], result["ask_threshold"]
    at, greedy = stats["at_threshold"], stats["at_0.5"]
    return (f"ask threshold: {'none (too few questions)' if threshold is None else threshold}. "
            f"On {stats['n_questions']} {stats['questions']} ({stats['answering_paid']} where answering paid) "
            f"it asks on {at['asked']} ({at['needless']} needless), logged reward {at['logged_value']}; "
            f"greedy decoding asks on {greedy['asked']} ({greedy['needless']} needless), {greedy['logged_value']}."
            + (f" Ranking AUC (asking paid above answering paid): {stats['ranking_auc']}."
               if stats.get("ranking_auc") is not None else ""))


@adapters_app.command("activate")
def adapters_activate(adapter_id: Annotated[str, typer.Argument(help="Adapter id, or 'base' for no adapter.")],
                      data_dir: DataDir = None) -> None:
    """Serve this adapter for new conversations (the previous one is retired). Needs the server stopped
    (it holds the database); a running server's Adapters tab does the same without a restart."""
    from pathlib import Path

    from agent.engine import AdapterLoadError, validate_adapter_folder
    from logs_db.store import UnknownId

    settings = make_settings(data_dir=data_dir)
    with open_store(settings) as store:
        try:
            if adapter_id == "base":
                store.activate_adapter(None, kind="cli")
            else:
                validate_adapter_folder(Path(store.get_adapter(adapter_id).path))
                store.activate_adapter(adapter_id, kind="cli")
        except (UnknownId, AdapterLoadError) as exc:
            fail(str(exc))
    typer.echo(f"active: {adapter_id}")


@adapters_app.command("rollback")
def adapters_rollback(data_dir: DataDir = None) -> None:
    """Re-activate the adapter that was active before the current one (or the base model)."""
    from learner.promotion import PromotionError, label, rollback

    settings = make_settings(data_dir=data_dir)
    with open_store(settings) as store:
        try:
            current, target = rollback(store, None)
        except PromotionError as exc:
            fail(str(exc))
    typer.echo(f"rolled back from {label(current)}; active: {label(target)}")


def export_command(
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl | parquet")] = "jsonl",
    source: Annotated[Optional[str], typer.Option(help="Only conversations from this source: ui | api | simulated.")] = None,
    since: Annotated[Optional[datetime], typer.Option(help="Only conversations started at or after this time.")] = None,
    until: Annotated[Optional[datetime], typer.Option(help="Only conversations started before this time.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Export the rated conversations as chat messages + reward (what TRL's trainers read directly)."""
    from learner.chat_export import FORMATS, export_chat
    from logs_db.snapshot import SnapshotFilter

    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}.")
    if source not in (None, "ui", "api", "simulated"):
        fail(f"--source must be ui, api or simulated, got {source!r}.")
    settings = make_settings(data_dir=data_dir)
    with open_store(settings) as store:
        try:
            n = export_chat(store, out, fmt, SnapshotFilter(source=source, since=since, until=until),
                            horizon=settings.max_clarifying_questions)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc}")
    typer.echo(f"{n} rated conversation(s) written to {out} ({fmt})")
