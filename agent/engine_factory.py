"""Pick and build the engine named in the settings (auto: vLLM when installed, else transformers)."""

from __future__ import annotations

import importlib.util

from clarify.model_store import resolve_model
from clarify.settings import Settings

from .engine import Engine


def vllm_available() -> bool:
    from . import vllm_engine  # noqa: F401  (module exists once the vLLM engine lands)

    return vllm_engine.server_python() is not None


def make_engine(settings: Settings) -> Engine:
    choice = settings.engine
    if choice == "auto":
        choice = "vllm" if (settings.vllm_url or _has_vllm_module()) else "transformers"
    if choice == "vllm":
        from .vllm_engine import VllmEngine

        return VllmEngine.from_settings(settings)
    from .transformers_engine import TransformersEngine

    return TransformersEngine(resolve_model(settings.model, settings.models_dir), threads=settings.threads,
                              dtype=settings.dtype)


def _has_vllm_module() -> bool:
    if importlib.util.find_spec("agent.vllm_engine") is None:
        return False
    try:
        return vllm_available()
    except Exception:
        return False
