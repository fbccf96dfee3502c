"""Shared by the reliability tests: a raw-HTTP Gradio session (what the browser sends), an in-process app with
auth, and the record the report script (bench/reliability.py) turns into docs/RELIABILITY.md.

Each reliability test's docstring is its row in the report: a first line (the scenario), then "Done:" and
"Checked:" paragraphs; in a parametrized test "{case}" stands for the case's id.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest

# Where the report script collects results (unset in a plain `pytest` run: nothing is written).
RESULTS_ENV = "CLARIFY_RELIABILITY_RESULTS"
# The in-process apps' sign-ins: users chat and rate, admins also train, promote, export.
USERS = {"bob": "pw-bob", "eve": "pw-eve"}
ADMINS = {"root": "pw-root"}
PASSWORDS = {**USERS, **ADMINS}


def results_dir() -> Path | None:
    folder = os.environ.get(RESULTS_ENV)
    return Path(folder) if folder else None


class GradioHTTP:
    """One browser session over raw HTTP: sign in, read /config, join the queue, read the event stream.

    The client never sends gr.State values or turn ids (the server keeps them per session_hash), exactly like
    the browser; forged payloads are built on top of `join`.
    """

    def __init__(self, url: str, user: str | None = None, password: str | None = None, timeout: float = 300):
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.session_hash = uuid.uuid4().hex[:12]
        self.user = user
        self._config: dict | None = None
        if user is not None:
            response = self.client.post("/login", data={"username": user, "password": password})
            assert response.json() == {"success": True}, response.text

    def close(self) -> None:
        self.client.close()

    @property
    def config(self) -> dict:
        if self._config is None:
            response = self.client.get("/config")
            response.raise_for_status()
            self._config = response.json()
        return self._config

    def component_id(self, elem_id: str) -> int:
        [comp] = [c for c in self.config["components"] if c.get("props", {}).get("elem_id") == elem_id]
        return comp["id"]

    def event(self, elem_id: str, trigger: str = "click") -> tuple[int, int]:
        """(fn_index, trigger id) of the `trigger` event of the component with this elem_id."""
        comp = self.component_id(elem_id)
        [index] = [dep.get("id", i) for i, dep in enumerate(self.config["dependencies"])
                   if [comp, trigger] in dep["targets"]]
        return index, comp

    def join(self, fn_index, data, *, trigger_id=None, event_data=None, **extra) -> httpx.Response:
        body = {"data": data, "event_data": event_data, "fn_index": fn_index, "trigger_id": trigger_id,
                "session_hash": self.session_hash, **extra}
        return self.client.post("/gradio_api/queue/join", json=body)

    def messages(self, event_id: str):
        """The event's messages from the session's stream, up to and including process_completed."""
        with self.client.stream("GET", f"/gradio_api/queue/data?session_hash={self.session_hash}") as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") not in (None, event_id):
                    continue
                yield message
                if message.get("msg") == "process_completed":
                    return
        raise AssertionError(f"the event stream ended before event {event_id} completed")

    def submit(self, elem_id: str, data: list, *, trigger: str = "click", event_data=None) -> str:
        fn_index, trigger_id = self.event(elem_id, trigger)
        joined = self.join(fn_index, data, trigger_id=trigger_id, event_data=event_data)
        assert joined.status_code == 200, joined.text
        return joined.json()["event_id"]

    def call(self, elem_id: str, data: list, *, trigger: str = "click", event_data=None, on_message=None) -> list:
        """Run the event like the browser does and return its final outputs; `on_message(message)` sees each
        message of its stream as it arrives (the load test times the first streamed text)."""
        event_id = self.submit(elem_id, data, trigger=trigger, event_data=event_data)
        done = None
        for done in self.messages(event_id):
            if on_message is not None:
                on_message(done)
        assert done["success"], done
        return done["output"]["data"]


@pytest.fixture
def http():
    """`http(url, user=None, password=None)` -> a GradioHTTP session (the in-process apps' users need no password
    here); all are closed at teardown."""
    sessions: list[GradioHTTP] = []

    def open_session(url: str, user: str | None = None, password: str | None = None) -> GradioHTTP:
        session = GradioHTTP(url, user, password if password is not None else PASSWORDS.get(user))
        sessions.append(session)
        return session

    yield open_session
    for session in sessions:
        session.close()


@pytest.fixture
def chat(settings, store, engine):
    """The Chat tab's handlers on a real DuckDB file and the real model (replies of at most 4 new tokens)."""
    from agent.chat_service import ChatService
    from agent.engine import GenerationParams
    from ui.app import ChatHandlers

    return ChatHandlers(settings, store, ChatService(store, engine, params=GenerationParams(max_new_tokens=4)))


TABLES = ("conversations", "turns", "ratings", "adapters", "activations", "training_runs", "eval_runs")


@pytest.fixture
def rows():
    """`rows(store)` -> {table: row count} of every log table: what a refused input must leave unchanged."""
    return lambda store: {t: store.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


@pytest.fixture
def log_rated():
    """`log_rated(store, n)`: n rated UI conversations (one question, one answer, 5 stars each)."""
    from agent.chat_service import DEFAULT_NOTES

    def log(store, n: int) -> None:
        for i in range(n):
            cid = store.new_conversation(source="ui", context=DEFAULT_NOTES)
            store.add_turn(cid, role="user", kind="user", text=f"Question {i}?")
            store.add_rating(store.add_turn(cid, role="assistant", kind="answer", text=f"Answer {i}."),
                             kind="stars", value=5)

    return log


def _launch(tmp_path: Path, model_path: Path, engine=None):
    """The whole app in process with users (bob, eve) and an admin (root), launched the way `clarify serve`
    launches it: launch(auth=...) and launch_kwargs(access), so the AdminGuard is in front of the routes."""
    from agent.chat_service import ChatService
    from agent.engine import GenerationParams
    from clarify.settings import Settings
    from learner.training_service import TrainingManager
    from logs_db.store import LogStore
    from ui.access import Access
    from ui.app import build_app, launch_kwargs

    settings = Settings(data_dir=tmp_path / "data", model=str(model_path),
                        auth=",".join(f"{u}:{p}" for u, p in USERS.items()),
                        admin_auth=",".join(f"{u}:{p}" for u, p in ADMINS.items()))
    access = Access.from_settings(settings)
    with LogStore(settings.database) as store:
        service = ChatService(store, engine, params=GenerationParams(max_new_tokens=4))  # engine None: no chat
        manager = TrainingManager(settings, store, None)
        demo = build_app(settings, store, service, manager=manager, access=access)
        demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, auth=access.check_password,
                    **launch_kwargs(access))
        try:
            yield dict(url=demo.local_url.rstrip("/"), demo=demo, store=store, manager=manager, service=service)
        finally:
            manager.shutdown()
            demo.close()


@pytest.fixture
def auth_app(tmp_path, model_path):
    """In-process app with auth and no engine (admin actions, ratings, refusals)."""
    yield from _launch(tmp_path, model_path)


@pytest.fixture
def chat_app(tmp_path, model_path, engine):
    """In-process app with auth and the real engine (replies of at most 4 new tokens)."""
    yield from _launch(tmp_path, model_path, engine)


# -- the record behind docs/RELIABILITY.md -------------------------------------------------------------------------

_records: list[dict] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if results_dir() is None:
        return
    record = next((r for r in _records if r["nodeid"] == item.nodeid), None)
    if record is None:
        doc = getattr(item, "function", None).__doc__ if hasattr(item, "function") else None
        record = dict(nodeid=item.nodeid, module=item.module.__name__.rsplit(".", 1)[-1], test=item.originalname,
                      case=item.callspec.id if hasattr(item, "callspec") else None, doc=doc or "",
                      outcome="passed", duration=0.0, message="")
        _records.append(record)
    record["duration"] += report.duration
    if report.failed:
        record["outcome"] = "failed"
        record["message"] = str(report.longrepr).strip().splitlines()[-1][:300] if report.longrepr else ""
    elif report.skipped and record["outcome"] != "failed":
        record["outcome"] = "skipped"
        record["message"] = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)


_deselected: list[str] = []


def pytest_deselected(items):
    """The tests a -k run left out: the report keeps the earlier rows of a section that did not run in full."""
    _deselected.extend(item.nodeid for item in items)


def pytest_sessionfinish(session, exitstatus):
    folder = results_dir()
    if folder is not None and _records:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tests.json").write_text(json.dumps(_records, indent=1))
        (folder / "deselected.json").write_text(json.dumps(_deselected, indent=1))


@pytest.fixture
def record_result():
    """`record_result(name, data)`: numbers a test measured (the load test's latencies) for the report; a plain
    pytest run writes nothing."""

    def write(name: str, data: dict) -> None:
        folder = results_dir()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.json").write_text(
                json.dumps({**data, "written_at": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))

    return write
