"""CLI options shared by every command, and how they become a Settings object.

Each package defines its own typer commands (agent/commands.py, learner/commands.py,
ui/commands.py) with these options; clarify/cli.py only registers them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .settings import Settings

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Data folder (DuckDB file, models, adapters). Env: CLARIFY_DATA_DIR.")]
ModelPath = Annotated[Optional[str], typer.Option("--model", help="Local HF model folder; default: the bundled SmolLM2-135M-Instruct.")]
EngineOpt = Annotated[Optional[str], typer.Option("--engine", help="auto | transformers | vllm")]
VllmUrl = Annotated[Optional[str], typer.Option("--vllm-url", help="URL of a running vLLM OpenAI server to use.")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="torch threads for the in-process engine / trainer.")]


def make_settings(**flags) -> Settings:
    """Env vars and defaults first, then the flags that were given; clear error for bad values."""
    from pydantic import ValidationError

    try:
        return Settings().with_overrides(**flags) if flags else Settings()
    except ValidationError as exc:
        problems = "; ".join(f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors())
        fail(f"invalid option: {problems}")


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error (no traceback wall) and exit."""
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def open_store(settings: Settings):
    """The command's LogStore, or a one-line error: the file is locked, or the data folder is unwritable or full."""
    import duckdb

    from logs_db.store import DatabaseLocked, LogStore

    try:
        return LogStore(settings.database)
    except DatabaseLocked as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot open the log database {settings.database}: {exc.strerror or exc}")
    except duckdb.Error as exc:
        fail(f"cannot open the log database {settings.database}: {exc}")
