"""The supervised vLLM server (agent/vllm/supervisor.py) without vLLM: which python it runs, when `auto`
picks it, and its API key, a fresh one at every start, given through the environment and checked on every
route by clarify's guard (agent/vllm_server/). A stand-in server plays vLLM (tests/agent/fake_vllm_server.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.engine import EngineError
from agent.vllm_engine import VllmEngine, server_python
from tests.agent.vllm_stand_in import CHAT, SHORT, exercise, records, tiny_adapter


def test_server_python_override(monkeypatch, tmp_path):
    monkeypatch.setenv("CLARIFY_VLLM_PYTHON", str(tmp_path / "missing" / "python"))
    assert server_python() is None
    with pytest.raises(EngineError, match="make vllm"):
        VllmEngine(tmp_path)


def test_factory_auto_without_vllm_uses_transformers(monkeypatch, settings):
    from agent import engine_factory

    monkeypatch.setenv("CLARIFY_VLLM_PYTHON", "/nonexistent/python")
    auto = settings.with_overrides(engine="auto")
    assert engine_factory.resolve_engine_name(auto) == "transformers"
    assert engine_factory.resolve_engine_name(auto.with_overrides(vllm_url="http://gpu-box:8000/v1")) == "vllm"
    monkeypatch.delenv("CLARIFY_VLLM_PYTHON")
    assert engine_factory.resolve_engine_name(auto) == ("vllm" if server_python() else "transformers")


def test_a_supervised_server_gets_a_fresh_key_through_its_environment_and_every_request_sends_it(
        fake_python, tmp_path, monkeypatch):
    import httpx

    python, record = fake_python
    monkeypatch.setenv("VLLM_API_KEY", "the-key-of-some-remote-server")  # never reaches a supervised server
    log_path = tmp_path / "vllm.log"
    engine = VllmEngine(tmp_path, python=python, log_path=log_path, startup_timeout=60, progress=lambda _: None)
    try:
        key = engine.api_key
        assert key and len(key) >= 40 and key != "the-key-of-some-remote-server"
        start = records(record)[0]
        assert start["env_key"] == key                       # the server's environment has it...
        argv = Path(f"/proc/{engine.pid}/cmdline").read_bytes().decode()
        assert key not in argv and "--middleware\0clarify_vllm_guard.RequireKey" in argv  # ...`ps` never shows it
        assert f"VLLM_API_KEY={key}\0".encode() in Path(f"/proc/{engine.pid}/environ").read_bytes()

        exercise(engine, tiny_adapter(tmp_path / "adapter"))
        requests = [r for r in records(record)[1:] if r["path"] != "/health"]
        assert {r["path"] for r in requests} == {"/v1/models", "/v1/load_lora_adapter", "/tokenize",
                                                 "/v1/chat/completions", "/v1/unload_lora_adapter"}
        assert {r["auth"] for r in requests} == {f"Bearer {key}"}

        # The guard: every route but GET /health needs the key, including those vLLM's own check leaves open.
        root = engine.url.removesuffix("/v1")
        assert httpx.get(root + "/health").status_code == 200
        for method, path in [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/invocations"),
                             ("POST", "/adapters"), ("POST", "/v1/load_lora_adapter"), ("POST", "/tokenize"),
                             ("GET", "/metrics"), ("POST", "/health")]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": key}):
                response = httpx.request(method, root + path, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers)
        assert httpx.get(root + "/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200

        # The key appears nowhere a user or a log reader would see it.
        assert key not in repr(engine) and key not in str(engine) and key not in log_path.read_text()

        # A restarted server gets a new key; the old one opens nothing.
        engine._server.restart_pending = True
        engine._ensure_server()
        assert engine.starts == 2 and engine.api_key != key
        assert [r["env_key"] for r in records(record) if "argv" in r] == [key, engine.api_key]
        assert httpx.get(engine.url + "/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401
        before = len(records(record))
        assert [g.text for g in engine.generate_batch([CHAT], SHORT)] == ["Hello there."]
        assert {r["auth"] for r in records(record)[before:]} == {f"Bearer {engine.api_key}"}
    finally:
        engine.close()


def test_the_guard_refuses_to_run_without_a_key(monkeypatch):
    from agent.vllm_server.clarify_vllm_guard import RequireKey

    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="VLLM_API_KEY is not set"):
        RequireKey(app=None)
