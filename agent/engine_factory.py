"""Pick and build the engine named in the settings.

- ``transformers``: the in-process engine (always available).
- ``vllm``: a vLLM OpenAI server; ``--vllm-url`` uses a running one, otherwise
  clarify supervises its own (needs the vLLM environment: ``make vllm``).
  Failures are errors: you asked for vLLM.
- ``auto`` (default): vLLM when a URL is given or the vLLM environment is
  installed, else transformers. If the local vLLM server cannot be started,
  auto says why and falls back to transformers (a given URL is never silently
  replaced: a remote server that cannot be reached is an error).

The commands open their engine through clarify.cli_options.open_engine, which
turns the errors here into one-line messages.
"""

from __future__ import annotations

import logging
from typing import Callable

from clarify.model_store import resolve_model
from clarify.settings import Settings

from .engine import Engine, EngineError

log = logging.getLogger(__name__)


def vllm_available() -> bool:
    """True when a python with vLLM is installed for the supervised server (``.venv-vllm`` or CLARIFY_VLLM_PYTHON)."""
    try:
        from .vllm.supervisor import server_python
    except ImportError:
        return False
    try:
        return server_python() is not None
    except Exception:  # a broken environment is "not available", never a crash
        return False


def resolve_engine_name(settings: Settings) -> str:
    """The engine ``make_engine`` will try first: 'vllm' or 'transformers'."""
    if settings.engine == "auto":
        return "vllm" if (settings.vllm_url or vllm_available()) else "transformers"
    return settings.engine


def make_engine(settings: Settings, on_fallback: Callable[[str], None] | None = None) -> Engine:
    """The engine the settings name. `on_fallback(reason)` hears why 'auto' used transformers instead of the local
    vLLM server it tried first (default: a log warning)."""
    if resolve_engine_name(settings) == "transformers":
        return _transformers(settings)
    if settings.engine == "auto" and not settings.vllm_url:
        try:
            from .vllm_engine import VllmEngine

            return VllmEngine.from_settings(settings)
        except (EngineError, ImportError) as exc:
            (on_fallback or log.warning)(f"could not start the vLLM server, using the in-process transformers "
                                         f"engine instead. Reason: {exc}")
            return _transformers(settings)
    from .vllm_engine import VllmEngine

    return VllmEngine.from_settings(settings)


def _transformers(settings: Settings) -> Engine:
    from .transformers_engine import TransformersEngine

    return TransformersEngine(resolve_model(settings.model, settings.models_dir), threads=settings.threads,
                              dtype=settings.dtype)
