"""Admin actions over raw HTTP, as NOTES.md warns: hidden (api_visibility="private") events are still callable
through /gradio_api/queue/join with their fn_index. A signed-in non-admin is refused inside the handler;
an admin gets through. The app is launched in-process with launch(auth=callable); no model is needed.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from clarify.settings import Settings
from logs_db.store import LogStore
from ui.access import Access
from ui.app import build_app, launch_kwargs
from ui.training_manager import TrainingManager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app(tmp_path, model_path):
    settings = Settings(data_dir=tmp_path / "data", model=str(model_path), auth="bob:pw-bob",
                        admin_auth="root:pw-root")
    access = Access.from_settings(settings)
    with LogStore(settings.database) as store:
        manager = TrainingManager(settings, store, None)
        demo = build_app(settings, store, None, manager=manager, access=access)
        port = free_port()
        demo.launch(server_port=port, prevent_thread_lock=True, quiet=True, auth=access.check_password,
                    **launch_kwargs())
        try:
            yield dict(url=f"http://127.0.0.1:{port}", store=store, manager=manager)
        finally:
            manager.shutdown()
            demo.close()


def signed_in(url: str, user: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    assert client.post("/login", data={"username": user, "password": password}).json() == {"success": True}
    return client


def endpoint(client: httpx.Client, elem_id: str) -> tuple[int, int]:
    """(fn_index, trigger id) of the click event of the component with this elem_id, read from /config."""
    config = client.get("/config").json()
    [comp] = [c for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id]
    [index] = [i for i, dep in enumerate(config["dependencies"]) if [comp["id"], "click"] in dep["targets"]]
    assert config["dependencies"][index]["api_visibility"] == "private"
    return index, comp["id"]


def call(client: httpx.Client, elem_id: str, data: list) -> list:
    """Run the event through the queue, like the browser does, and return its outputs."""
    fn_index, trigger = endpoint(client, elem_id)
    session = f"test-{elem_id}"
    joined = client.post("/gradio_api/queue/join", json={"data": data, "event_data": None, "fn_index": fn_index,
                                                         "trigger_id": trigger, "session_hash": session})
    assert joined.status_code == 200, joined.text
    with client.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    assert message["success"], message
                    return message["output"]["data"]
    pytest.fail("no process_completed message")


def test_signed_out_requests_are_rejected(app):
    assert httpx.get(app["url"] + "/config").status_code == 401
    joined = httpx.post(app["url"] + "/gradio_api/queue/join",
                        json={"data": [], "fn_index": 0, "session_hash": "x", "event_data": None})
    assert joined.status_code == 401
    client = httpx.Client(base_url=app["url"])
    assert client.post("/login", data={"username": "bob", "password": "nope"}).status_code == 400


def test_a_user_is_refused_admin_actions_over_http_and_an_admin_is_not(app):
    store = app["store"]
    bob = signed_in(app["url"], "bob", "pw-bob")
    for elem_id, data in (("train-start", ["swift", "all", "", "", 2, False]),
                          ("train-cancel", []),
                          # (Gradio itself checks dropdown values against the session's choices: a fresh
                          # session only has the initial "base" / "none" entries.)
                          ("adapter-promote", ["base"]),
                          ("adapter-rollback", []),
                          ("adapter-gate", ["base"]),
                          ("ab-apply", ["none", 0.5]),
                          ("export-button", ["jsonl", "all"])):
        outputs = call(bob, elem_id, data)
        texts = [o for o in outputs if isinstance(o, str)]
        assert any("bob is not an admin" in t for t in texts), (elem_id, outputs)
    assert store.list_training_runs() == [] and store.active_adapter() is None
    assert store.list_activations() == [] and not app["manager"].busy

    root = signed_in(app["url"], "root", "pw-root")
    exported, message = call(root, "export-button", ["jsonl", "all"])
    assert "Exported 0 rated conversation(s)" in message
    download = root.get(exported["url"])           # Gradio serves the file to the admin's session
    assert download.status_code == 200 and download.text == ""
    message = call(root, "train-start", ["swift", "all", "", "", 2, False])[0]
    assert "Training started" in message
    assert app["manager"].join(60)
    job = app["manager"].status()
    assert job.user == "root" and job.status == "failed" and "at least 4" in job.error   # nothing rated yet
    [run] = store.list_training_runs()
    assert run["status"] == "failed" and run["trigger"] == "ui"
