"""CLI options shared by every command, how they become a Settings object, and the log store and engine the
commands open (`open_store`, `open_engine`: one-line errors, one set of exit codes).

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


def open_engine(settings: Settings):
    """The engine the settings name (agent/engine_factory.py; the caller closes it), or a one-line error and exit
    2: the model is missing, the engine is not installed here, or it cannot start. With 'auto', a local vLLM
    server that cannot start is a warning, and the in-process transformers engine serves instead."""
    from agent.engine import EngineError
    from agent.engine_factory import make_engine, resolve_engine_name

    from .model_store import ModelNotFound

    def warn(reason: str) -> None:
        typer.secho(f"Warning: {reason}", fg=typer.colors.YELLOW, err=True)

    try:
        return make_engine(settings, on_fallback=warn)
    except ModelNotFound as exc:
        fail(str(exc))
    except ImportError as exc:
        fail(f"the {settings.engine} engine is not available in this install ({exc}); use --engine transformers.")
    except (EngineError, OSError, ValueError) as exc:
        fail(f"could not start the {resolve_engine_name(settings)} engine: {exc}")
