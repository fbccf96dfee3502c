"""`clarify serve`: the chat UI and the OpenAI-compatible API (/v1, api/) on a local port.

Imports stay light at module level (gradio, torch and the model load only when
the command runs), so `clarify --help` stays fast.
"""

from __future__ import annotations

import ipaddress
import signal
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Optional

import typer

from clarify.cli_options import (DataDir, EngineOpt, ModelPath, Threads, VllmUrl, fail, make_settings, open_engine,
                                 open_store)
from ui.access import Access, parse_auth  # noqa: F401  (parse_auth: re-exported for callers of this module)

Host = Annotated[Optional[str], typer.Option("--host", help="Interface to bind (default 127.0.0.1). "
                                             "A non-loopback host requires --auth. Env: CLARIFY_HOST.")]
Port = Annotated[Optional[int], typer.Option("--port", help="Port (default 7860). Env: CLARIFY_PORT.")]
Auth = Annotated[Optional[str], typer.Option(
    "--auth", help="Comma-separated user:password pairs allowed to chat and rate. Prefer the env var "
                   "CLARIFY_AUTH (command lines are visible to other local users).")]
AdminAuth = Annotated[Optional[str], typer.Option(
    "--admin-auth", help="Comma-separated admin:password pairs allowed to train, promote, roll back, set the A/B "
                         "split and export (they can chat too). Prefer the env var CLARIFY_ADMIN_AUTH.")]


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # any other hostname may resolve to a public interface


def ensure_writable(folder: Path) -> None:
    """Create the data folder and prove a file can be written there (OSError otherwise)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
        pass


def _interrupt(signum, frame):  # SIGTERM -> the same clean shutdown as Ctrl+C
    raise KeyboardInterrupt


def serve_command(
    host: Host = None,
    port: Port = None,
    data_dir: DataDir = None,
    model: ModelPath = None,
    engine: EngineOpt = None,
    vllm_url: VllmUrl = None,
    threads: Threads = None,
    auth: Auth = None,
    admin_auth: AdminAuth = None,
) -> None:
    """Serve the chat UI (default http://127.0.0.1:7860) and the OpenAI-compatible API under /v1. Every turn and
    rating is logged to DuckDB."""
    settings = make_settings(host=host, port=port, data_dir=data_dir, model=model, engine=engine,
                             vllm_url=vllm_url, threads=threads, auth=auth, admin_auth=admin_auth)
    try:
        access = Access.from_settings(settings)
    except ValueError as exc:
        fail(str(exc))
    if not access.configured and not is_loopback(settings.host):
        fail(f"refusing to serve on {settings.host} without authentication: anyone who can reach it could "
             "chat and rate. Pass --auth user:password (or set CLARIFY_AUTH), or use --host 127.0.0.1.")
    from api.keys import ApiKeys

    try:  # the API's rule mirrors the UI's: without keys it answers on a loopback host only
        api_keys = ApiKeys.from_settings(settings, loopback=is_loopback(settings.host))
    except ValueError as exc:
        fail(str(exc))
    try:
        ensure_writable(settings.data_dir)
        if settings.database.parent != settings.data_dir:
            ensure_writable(settings.database.parent)
    except OSError as exc:
        fail(f"the data folder {settings.data_dir} is not writable: {exc.strerror or exc}")

    from agent.chat_service import ChatService
    from agent.engine import EngineError
    from logs_db.store import LogError

    with ExitStack() as cleanup:
        store = open_store(settings)
        cleanup.callback(store.close)
        recovered = store.fail_unanswered_turns()
        if recovered:
            typer.secho(f"Warning: {recovered} reply(ies) were cut off when the server last stopped without a clean "
                        "shutdown; they are logged as failed turns.", fg=typer.colors.YELLOW, err=True)

        typer.echo("Loading the model…", err=True)
        eng = open_engine(settings)
        cleanup.callback(eng.close)

        service = ChatService.from_settings(store, eng, settings)
        if settings.ab_candidate is not None:
            try:
                service.set_ab(settings.ab_candidate, settings.ab_share)
            except (LogError, EngineError) as exc:
                typer.secho(f"Warning: no A/B split: {exc}", fg=typer.colors.YELLOW, err=True)

        from learner.scheduler import Scheduler
        from learner.training_service import TrainingManager
        from ui.app import build_app, launch_kwargs

        manager = TrainingManager(settings, store, eng)
        cleanup.callback(manager.shutdown)   # runs before the engine and the store close
        scheduler = Scheduler(settings, store, manager)
        scheduler.start()
        cleanup.callback(scheduler.stop)

        from api.app import build_api

        demo = build_app(settings, store, service, manager=manager, scheduler=scheduler, access=access)
        api = build_api(store, service, api_keys)
        try:
            demo.launch(server_name=settings.host, server_port=settings.port,
                        auth=access.check_password if access.configured else None,
                        auth_message="clarify: sign in to chat." if access.configured else None,
                        prevent_thread_lock=True, quiet=True, inbrowser=False, share=False,
                        **launch_kwargs(access, mounts={"/v1": api}))
        except OSError as exc:
            fail(f"cannot serve on {settings.host}:{settings.port}: {exc}")
        cleanup.callback(demo.close)

        url = demo.local_url or f"http://{settings.host}:{settings.port}/"
        typer.echo(f"clarify is serving the chat UI on {url} (engine: {eng.name}; log: {settings.database}). "
                   "Ctrl+C to stop.")
        typer.echo(f"OpenAI-compatible API: {url.rstrip('/')}/v1 ("
                   + (f"{api_keys.configured} client key(s)" if api_keys.configured else
                      "no keys: loopback only" if api_keys.open else "off: set CLARIFY_API_KEYS") + ").")
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the clean-up short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            typer.echo("Stopping: closing the server and the log database.", err=True)
    # ExitStack closed the server, the engine, then the store (CHECKPOINT + release the DuckDB file).
