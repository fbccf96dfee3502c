"""One training run, end to end, from the process that owns the database.

snapshot -> training_runs row -> trainer subprocess (learner.worker) -> adapter
registered as a candidate. The adapter is registered only after the child
exited 0 and its folder validated, so a failed, cancelled or killed run leaves
no registered adapter and no servable folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

from agent.adapter_metadata import read_metadata
from agent.engine import AdapterLoadError, validate_adapter_folder
from clarify.model_store import resolve_model
from clarify.settings import Settings
from logs_db.snapshot import SnapshotFilter, export_snapshot
from logs_db.store import LogStore, UnknownId

from .train_adapter import TrainConfig, TrainingError
from .worker import EXIT_REFUSED, PROGRESS_PREFIX


class TrainingFailed(RuntimeError):
    pass


@dataclass
class TrainOutcome:
    run_id: str
    adapter_id: str
    path: Path
    metrics: dict


# TrainConfig fields run_training fills from its arguments and the settings; overrides may not name them.
SET_BY_RUN_TRAINING = ("method", "base_model", "threads", "seed", "horizon")


def check_overrides(overrides: dict, method: str = "swift") -> None:
    """Refuse an unknown method, and overrides that clash with run_training's own fields, name no TrainConfig
    field or hold a value TrainConfig refuses: before any snapshot, run row or child process."""
    known = {f.name for f in fields(TrainConfig)}
    for name in overrides:
        if name in SET_BY_RUN_TRAINING:
            raise TrainingFailed(f"Override {name!r} is set by the training run itself (from its method argument "
                                 "or the settings), not by an override.")
        if name not in known:
            raise TrainingFailed(f"Unknown training option {name!r}; known: {', '.join(sorted(known))}.")
    try:
        TrainConfig(method=method, **overrides).check_values()
    except TrainingError as exc:
        raise TrainingFailed(str(exc)) from exc


def parse_overrides(pairs: list[str], use_instead: dict[str, str], own: str) -> dict:
    """`--set FIELD=VALUE` strings -> TrainConfig overrides, each value parsed to the field's type and checked
    as training checks it (check_overrides), before any work. A field in `use_instead` is set by the caller's
    own options (`own`), named there. The message of the TrainingFailed raised names the pair."""
    kinds = {f.name: type(getattr(TrainConfig(), f.name)) for f in fields(TrainConfig)}
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep:
            raise TrainingFailed(f"--set {pair}: expected FIELD=VALUE, e.g. --set epochs=3.")
        if name in use_instead:
            raise TrainingFailed(f"--set {pair}: {name} comes from {own}; use {use_instead[name]}.")
        if name not in kinds:
            raise TrainingFailed(f"--set {pair}: unknown TrainConfig field {name!r}; fields: "
                                 f"{', '.join(sorted(set(kinds) - set(use_instead) - set(SET_BY_RUN_TRAINING)))}.")
        try:
            out[name] = _parse_value(name, kinds[name], text.strip())
            check_overrides({name: out[name]})
        except (ValueError, TrainingFailed) as exc:
            raise TrainingFailed(f"--set {pair}: {exc}") from exc
    return out


def _parse_value(name: str, kind: type, text: str):
    """`text` as a value of a TrainConfig field of type `kind` (a list: comma-separated)."""
    if kind is bool:
        if text.lower() not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            raise ValueError(f"{name} takes true or false, not {text!r}.")
        return text.lower() in ("true", "yes", "on", "1")
    if kind is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"{name} takes {'a whole number' if kind is int else 'a number'}, not {text!r}.") from None
    return text


def new_adapter_id(method: str) -> str:
    return f"{method}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def clean_stale_temp_folders(adapters_dir: Path) -> None:
    """Folders of runs that were killed: never registered, never served, removed at the next run."""
    if adapters_dir.is_dir():
        for tmp in adapters_dir.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)


def run_training(
    settings: Settings,
    store: LogStore,
    *,
    method: str = "swift",
    filters: SnapshotFilter = SnapshotFilter(),
    overrides: dict | None = None,
    on_progress: Callable[[dict], None] = lambda _: None,
    cancel: threading.Event | None = None,
    parent_id: str | None = None,
) -> TrainOutcome:
    check_overrides(overrides or {}, method)
    clean_stale_temp_folders(settings.adapters_dir)
    base_model = resolve_model(settings.model, settings.models_dir)
    cfg = TrainConfig(method=method, base_model=str(base_model.resolve()), threads=settings.threads, seed=settings.seed,
                      horizon=settings.max_clarifying_questions, **(overrides or {}))
    if parent_id is not None:
        cfg.init_adapter = _parent_folder(store, parent_id)
        cfg.seed = settings.seed + _continuations_of(store, parent_id)
    adapter_id = new_adapter_id(method)
    snapshot = export_snapshot(store, settings.snapshots_dir / f"{adapter_id}.parquet", filters)
    run_id = store.start_training_run(method=method, config=asdict(cfg), snapshot_path=str(snapshot.path),
                                      n_conversations=snapshot.n_conversations)
    out_dir = settings.adapters_dir / adapter_id
    on_progress({"event": "snapshot", "n_conversations": snapshot.n_conversations, "run_id": run_id})
    try:
        if snapshot.n_conversations < cfg.min_conversations:
            raise TrainingFailed(
                f"Only {snapshot.n_conversations} rated conversation(s) match; at least {cfg.min_conversations} "
                "are needed to train. Rate more answers (unrated conversations are not used)."
            )
        _run_worker(snapshot.path, out_dir, cfg, on_progress, cancel)
        validate_adapter_folder(out_dir)
        metrics = read_metadata(out_dir).metrics
    except BaseException as exc:
        status = "cancelled" if cancel is not None and cancel.is_set() else "failed"
        store.finish_training_run(run_id, status=status, error=str(exc)[:2000])
        shutil.rmtree(out_dir, ignore_errors=True)
        clean_stale_temp_folders(settings.adapters_dir)
        if isinstance(exc, (TrainingFailed, AdapterLoadError)):
            raise TrainingFailed(str(exc)) from exc
        raise
    store.register_adapter(adapter_id=adapter_id, method=method, path=str(out_dir.resolve()), parent_id=parent_id,
                           hyperparams=asdict(cfg), snapshot_hash=snapshot.sha256, train_metrics=metrics)
    store.finish_training_run(run_id, status="succeeded", adapter_id=adapter_id)
    return TrainOutcome(run_id, adapter_id, out_dir, metrics)


def _parent_folder(store: LogStore, parent_id: str) -> str:
    """The registered adapter to continue training from; refused before any work if it is unknown or broken."""
    try:
        folder = Path(store.get_adapter(parent_id).path)
        validate_adapter_folder(folder)
    except (UnknownId, AdapterLoadError) as exc:
        raise TrainingFailed(f"Cannot continue from adapter {parent_id!r}: {exc}") from exc
    return str(folder)


def _continuations_of(store: LogStore, parent_id: str) -> int:
    """Registered trainings that continued this parent (averages excluded).

    The n-th continuation of a parent trains with seed settings.seed + n, so refining the same adapter again
    gives another draw (data order, dropout, notes orders) that can be averaged with the first
    (learner/average.py), while each run stays reproducible; the seed is recorded with the adapter.
    """
    return sum(1 for a in store.list_adapters() if a.parent_id == parent_id and a.method != "average")


def _run_worker(snapshot: Path, out_dir: Path, cfg: TrainConfig, on_progress, cancel) -> None:
    cmd = [sys.executable, "-m", "learner.worker", "--snapshot", str(snapshot.resolve()), "--out", str(out_dir.resolve()),
           "--config", json.dumps(asdict(cfg))]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr_tail: list[str] = []
    drain = threading.Thread(target=lambda: stderr_tail.extend(proc.stderr), daemon=True)
    drain.start()
    if cancel is not None:
        threading.Thread(target=_kill_on_cancel, args=(proc, cancel), daemon=True).start()
    error_message = None
    for line in proc.stdout:
        if line.startswith(PROGRESS_PREFIX):
            event = json.loads(line[len(PROGRESS_PREFIX):])
            if event.get("event") == "error":
                error_message = event.get("message")
            on_progress(event)
    code = proc.wait()
    drain.join(timeout=5)
    if cancel is not None and cancel.is_set():
        raise TrainingFailed("Training was cancelled.")
    if code == EXIT_REFUSED and error_message:
        raise TrainingFailed(error_message)
    if code != 0:
        tail = "".join(stderr_tail[-15:]).strip()
        raise TrainingFailed(f"The trainer process exited with code {code}.\n{tail}")


def _kill_on_cancel(proc: subprocess.Popen, cancel: threading.Event) -> None:
    while proc.poll() is None:
        if cancel.wait(0.5):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            return
