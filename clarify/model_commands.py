"""`clarify model`: convert the bundled model (or check a given one) ahead of first use."""

from __future__ import annotations

from .cli_options import DataDir, ModelPath, fail, make_settings
from .model_store import ModelNotFound, resolve_model


def model(data_dir: DataDir = None, model: ModelPath = None) -> None:
    """Print the model folder the engines will load, converting the bundled GGUF on first use."""
    settings = make_settings(data_dir=data_dir, model=model)
    try:
        print(resolve_model(settings.model, settings.models_dir))
    except ModelNotFound as exc:
        fail(str(exc))
