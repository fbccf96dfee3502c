"""A remote vLLM server reached at a URL (agent/vllm/client.py) without vLLM: one that does not answer is a
clear error, never silently replaced, and it gets the API key in VLLM_API_KEY or no key at all. A stand-in
server plays vLLM (tests/agent/fake_vllm_server.py).
"""

from __future__ import annotations

import socket
import time

import pytest

from agent.engine import EngineError
from agent.vllm_engine import VllmEngine
from tests.agent.vllm_stand_in import exercise, records, tiny_adapter


# -- no server needed ----------------------------------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_remote_url_that_does_not_answer_is_a_clear_error():
    with pytest.raises(EngineError, match="Could not reach the vLLM server at http://127.0.0.1:"):
        VllmEngine(url=f"127.0.0.1:{_closed_port()}/v1/")


def test_factory_given_url_is_never_silently_replaced(settings):
    from agent.engine_factory import make_engine

    with pytest.raises(EngineError, match="Could not reach"):
        make_engine(settings.with_overrides(engine="auto", vllm_url=f"http://127.0.0.1:{_closed_port()}"))


@pytest.fixture
def fake_remote(fake_python):
    """The stand-in server without the guard, as a remote server: (its URL, its request record)."""
    import subprocess

    python, record = fake_python
    port = _closed_port()
    proc = subprocess.Popen([str(python), "--port", str(port)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (record.exists() and len(record.read_text().splitlines()) > 0
                                                   and _answers(port)):
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1", record
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("key", ["remote-secret", None])
def test_a_remote_server_gets_the_key_in_VLLM_API_KEY_or_no_key_at_all(fake_remote, tmp_path, monkeypatch, key):
    url, record = fake_remote
    if key:
        monkeypatch.setenv("VLLM_API_KEY", key)
    else:
        monkeypatch.delenv("VLLM_API_KEY", raising=False)
    with VllmEngine(url=url) as engine:
        assert engine.api_key == key
        exercise(engine, tiny_adapter(tmp_path / "adapter"))
    requests = records(record)[1:]
    assert len({r["path"] for r in requests}) == 5
    assert {r["auth"] for r in requests} == {f"Bearer {key}" if key else None}


def test_a_key_is_only_given_to_a_remote_server(tmp_path):
    with pytest.raises(ValueError, match="remote"):
        VllmEngine(tmp_path, api_key="mine")
