"""Shared by the vLLM tests that need no vLLM: the stand-in server's requests (tests/agent/fake_vllm_server.py,
started by the `fake_python` fixture in tests/agent/conftest.py), a tiny adapter folder, and every kind of
request the engine makes."""

from __future__ import annotations

import json
from pathlib import Path

from agent.engine import GenerationParams

FAKE_SERVER = Path(__file__).with_name("fake_vllm_server.py")
CHAT = [{"role": "user", "content": "Hi"}]
SHORT = GenerationParams(max_new_tokens=4, temperature=0.0)


def records(path: Path) -> list[dict]:
    """The requests the stand-in server recorded, in order (its start first)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def tiny_adapter(folder: Path) -> Path:
    """A folder that passes validate_adapter_folder (the stand-in server never reads it)."""
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(b"-")
    return folder


def exercise(engine, adapter: Path) -> None:
    """Every kind of request the engine makes: models (at connect), adapter load/unload, tokenize, chat."""
    engine.load_adapter("a", adapter)
    engine._decision.token_id("Do")
    assert [g.text for g in engine.generate_batch([CHAT], SHORT, adapter="a")] == ["Hello there."]
    assert "".join(engine.stream(CHAT, SHORT)) == "Hello there."
    engine.unload_adapter("a")
