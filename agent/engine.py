"""The engine interface: anything that turns chat messages into streamed text, optionally through a LoRA adapter.

Two implementations: the in-process transformers engine (always available) and
the vLLM engine (a supervised local server or a remote URL). The UI, simulator,
evaluator and trainer only see this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol

if TYPE_CHECKING:
    from .decision import Exploration


class EngineError(RuntimeError):
    """The engine failed to produce a reply; the message is safe to show a user."""


class AdapterLoadError(EngineError):
    pass


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 96
    temperature: float = 0.0     # 0 = greedy
    top_p: float = 1.0
    seed: int | None = None
    calibrated_ask: bool = True  # apply the adapter's calibrated ask threshold, if it has one (agent/decision.py)


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int


class Engine(Protocol):
    name: str

    def stream(self, messages: list[dict], params: GenerationParams, adapter: str | None = None,
               explore: "Exploration | None" = None) -> Iterator[str]:
        """Yield text pieces of one reply. Raises EngineError on failure.

        `explore` (a turn that may ask): the serving exploration, settled where the ask decision is applied
        (agent/decision.py); it records the decision's P(ask) and the action taken."""

    def generate_batch(
        self, prompts: list[list[dict]], params: GenerationParams, adapter: str | None = None,
        prefixes: list[str] | None = None, explorations: "list[Exploration | None] | None" = None,
    ) -> list[Generation]:
        """Many independent replies at once (simulation, evaluation).

        `prefixes` force the start of each reply (the text returned includes it):
        the simulator's forced asks use it to make the behaviour policy ask.
        `explorations[i]`: prompt i's serving exploration, as `stream`'s `explore`.
        """

    def load_adapter(self, adapter_id: str, path: Path) -> None:
        """Make an adapter servable under `adapter_id`. Raises AdapterLoadError for a bad folder."""

    def unload_adapter(self, adapter_id: str) -> None: ...

    def close(self) -> None: ...


def validate_adapter_folder(path: Path, max_rank: int | None = None) -> dict:
    """Check a PEFT adapter folder before any engine touches it; returns its config."""
    import json

    path = Path(path)
    config_file = path / "adapter_config.json"
    weights = [path / "adapter_model.safetensors", path / "adapter_model.bin"]
    if not path.is_dir():
        raise AdapterLoadError(f"Adapter folder {path} does not exist.")
    if not config_file.is_file() or not any(w.is_file() for w in weights):
        raise AdapterLoadError(f"{path} is not a PEFT adapter (needs adapter_config.json and adapter weights).")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise AdapterLoadError(f"{config_file} is not valid JSON: {exc}") from exc
    if config.get("peft_type") != "LORA":
        raise AdapterLoadError(f"{path} is a {config.get('peft_type')!r} adapter; only LoRA is served.")
    if max_rank is not None and int(config.get("r", 0)) > max_rank:
        raise AdapterLoadError(f"Adapter rank {config.get('r')} exceeds the engine's max LoRA rank {max_rank}.")
    return config
