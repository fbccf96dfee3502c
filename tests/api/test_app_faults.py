"""api/app.py when things go wrong, with a scripted engine (no model) behind the real ChatService and a real
DuckDB file, served by uvicorn in this process: engine failures before and during a stream, a client that goes
away mid-stream, a second request into a conversation that is still replying, and the in-flight cap.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import openai
import pytest
import uvicorn
from openai import OpenAI

from agent.chat_service import ChatService
from agent.engine import EngineError
from api.app import build_api
from api.keys import ApiKeys

NOTES = "The museum opens at 9 am. The library opens at 8 am."


class ScriptedEngine:
    """Streams `pieces`; raises EngineError after `fail_after` pieces (None: never); after the first piece, waits
    until `gate` is set."""

    name = "scripted"

    def __init__(self):
        self.pieces = ["Do you mean ", "the museum", "?"]
        self.fail_after: int | None = None
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def stream(self, messages, params, adapter=None, explore=None):
        self.started.set()
        for i, piece in enumerate(self.pieces):
            if self.fail_after is not None and i >= self.fail_after:
                raise EngineError("The engine fell over.")
            if i == 1:
                assert self.gate.wait(20), "the test never opened the gate"
            yield piece

    def load_adapter(self, adapter_id, path):
        pass


@pytest.fixture
def served(store):
    """(base URL of the /v1 app, engine, store), served on a free loopback port without keys."""
    engine = ScriptedEngine()
    app = build_api(store, ChatService(store, engine), ApiKeys([], loopback=True), max_in_flight=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", engine, store
    engine.gate.set()
    server.should_exit = True
    thread.join(30)


def ask(question="When does it open?", **extra) -> dict:
    return {"model": "clarify", "messages": [{"role": "system", "content": NOTES},
                                             {"role": "user", "content": question}], **extra}


def turns(store, cid):
    return [(t.role, t.kind, t.status, t.text) for t in store.list_turns(cid)]


def only_conversation(store) -> str:
    [(cid,)] = store.execute("SELECT id FROM conversations").fetchall()
    return cid


def test_an_engine_that_fails_at_once_is_a_503_and_a_failed_turn_then_a_retry_continues(served):
    url, engine, store = served
    engine.fail_after = 0
    failed = httpx.post(url + "/chat/completions", json=ask())
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "engine_error"
    cid = only_conversation(store)
    assert turns(store, cid) == [("user", "user", "ok", "When does it open?"),
                                 ("assistant", "answer", "failed", "")]
    # The retry with the conversation id lands in the same conversation (the unanswered question is skipped).
    engine.fail_after = None
    retried = httpx.post(url + "/chat/completions", json=ask(clarify={"conversation_id": cid}))
    assert retried.status_code == 200, retried.text
    assert retried.json()["clarify"]["kind"] == "ask" and retried.json()["clarify"]["conversation_id"] == cid
    assert [t[2] for t in turns(store, cid)] == ["ok", "failed", "ok", "ok"]


def test_a_failure_mid_stream_is_an_error_event_the_openai_client_raises(served):
    url, engine, store = served
    engine.fail_after = 2
    stream = OpenAI(base_url=url, api_key="unused", max_retries=0).chat.completions.create(
        model="clarify", messages=ask()["messages"], stream=True)
    text = ""
    with pytest.raises(openai.APIError, match="The engine fell over"):
        for chunk in stream:
            text += chunk.choices[0].delta.content or ""
    assert text == "Do you mean the museum"
    assert turns(store, only_conversation(store))[-1] == ("assistant", "answer", "failed", "Do you mean the museum")


def test_a_client_that_leaves_mid_stream_stops_the_reply_and_it_is_logged_as_failed(served):
    url, engine, store = served
    engine.gate.clear()
    with httpx.stream("POST", url + "/chat/completions", json=ask(stream=True), timeout=30) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")   # the role chunk
        assert '"Do you mean"' in next(lines) + next(lines)  # the first piece; the engine now waits
    engine.gate.set()
    deadline = time.monotonic() + 20
    while not store.execute("SELECT count(*) FROM turns WHERE status = 'failed'").fetchone()[0]:
        assert time.monotonic() < deadline, "the interrupted reply was never logged"
        time.sleep(0.1)
    cid = only_conversation(store)
    last = store.list_turns(cid)[-1]
    assert (last.role, last.status, last.error) == ("assistant", "failed", "The reply was interrupted before it finished.")
    assert last.text.startswith("Do you mean")
    # its slot was freed: two more replies fit under the cap of 2
    for _ in range(2):
        assert httpx.post(url + "/chat/completions", json=ask()).status_code == 200


def test_a_conversation_still_replying_refuses_a_second_reply_and_the_cap_refuses_a_third(served):
    url, engine, store = served
    engine.gate.clear()
    first: dict = {}
    worker = threading.Thread(target=lambda: first.update(r=httpx.post(url + "/chat/completions", json=ask(),
                                                                       timeout=30)))
    worker.start()
    assert engine.started.wait(10)
    cid = only_conversation(store)
    busy = httpx.post(url + "/chat/completions", json=ask("Hello?", clarify={"conversation_id": cid}))
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "conversation_busy"
    second = threading.Thread(target=lambda: first.update(s=httpx.post(url + "/chat/completions",
                                                                       json=ask("And the library?"), timeout=30)))
    second.start()
    deadline = time.monotonic() + 10
    while store.execute("SELECT count(*) FROM conversations").fetchone()[0] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    over = httpx.post(url + "/chat/completions", json=ask("A third?"))
    assert over.status_code == 429 and over.json()["error"]["type"] == "rate_limit_error"
    engine.gate.set()
    worker.join(30)
    second.join(30)
    assert first["r"].status_code == 200 and first["s"].status_code == 200
    # the refused requests wrote nothing: two conversations, each one question and one reply
    assert store.execute("SELECT count(*) FROM conversations").fetchone()[0] == 2
    assert turns(store, cid) == [("user", "user", "ok", "When does it open?"),
                                 ("assistant", "ask", "ok", "Do you mean the museum?")]
