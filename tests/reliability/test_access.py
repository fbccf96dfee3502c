"""Access: with auth configured, every admin event answers 401 to anonymous callers and 403 to signed-in
non-admins on every Gradio route that runs an event (queue/join by fn_index, run/api/call/call-v2 by api_name),
because hiding an event (api_visibility="private") is not access control. And no user string reaches a path,
SQL or a shell: checked on the product code itself.

The app is the real one, launched in process the way `clarify serve` launches it (launch(auth=...) plus
launch_kwargs(access), which puts ui.access.AdminGuard in front of Gradio's routes).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ["agent", "api", "clarify", "learner", "logs_db", "ui"]

# Every admin event of the UI, with inputs a fresh session accepts (Gradio checks dropdown values against the
# session's choices: a fresh session only has the initial "base" / "none" entries).
ADMIN_EVENTS = {
    "train-start": ["swift", "all", "", "", 2, False, False],
    "train-cancel": [],
    "adapter-promote": ["base"],
    "adapter-rollback": [],
    "adapter-gate": ["base"],
    "ab-apply": ["none", 0.5],
    "adapter-average": [[]],
    "export-button": ["jsonl", "all"],
}
ROUTES = ["queue/join", "run", "api", "call", "call/v2"]


def admin_call(client: httpx.Client, route: str, fn_index: int, api_name: str, data: list) -> httpx.Response:
    """One raw call of an event on one of Gradio's routes, as a script (not the page) would send it."""
    if route == "queue/join":
        return client.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "event_data": None,
                                                           "session_hash": "forged-session"})
    if route == "call/v2":
        return client.post(f"/gradio_api/call/v2/{api_name}", json={})
    return client.post(f"/gradio_api/{route}/{api_name}", json={"data": data, "session_hash": "forged-session"})


@pytest.mark.parametrize("elem_id", list(ADMIN_EVENTS))
def test_admin_event_refused_to_anonymous_and_users_on_every_route(auth_app, http, elem_id):
    """Admin event called over raw HTTP by anonymous and non-admin callers: {case}.

    Done: for the Gradio event behind the button, POST to /gradio_api/queue/join (by fn_index) and to
    /gradio_api/run, /api, /call and /call/v2 (by api_name): signed out, and signed in as the user bob; then as
    the admin root through queue/join.
    Checked: anonymous gets 401 and bob 403 on every route, before anything is queued (no training run, no
    activation, A/B unchanged); root's call is accepted (200) and the handler runs without "not an admin".
    """
    root = http(auth_app["url"], "root")
    fn_index, _ = root.event(elem_id)
    api_name = root.config["dependencies"][fn_index]["api_name"]
    data = ADMIN_EVENTS[elem_id]
    anonymous = httpx.Client(base_url=auth_app["url"], timeout=30)
    bob = http(auth_app["url"], "bob")
    for route in ROUTES:
        response = admin_call(anonymous, route, fn_index, api_name, data)
        assert response.status_code == 401, (route, response.status_code, response.text)
        response = admin_call(bob.client, route, fn_index, api_name, data)
        assert response.status_code == 403, (route, response.status_code, response.text)
        assert "bob is not an admin" in response.json()["detail"]
    anonymous.close()
    store = auth_app["store"]
    assert store.list_training_runs() == [] and store.list_activations() == []
    assert not auth_app["manager"].busy

    outputs = root.call(elem_id, data)
    assert not any("not an admin" in o for o in outputs if isinstance(o, str)), outputs


def test_every_handler_that_checks_admin_rights_is_guarded(auth_app, http):
    """Completeness of the admin guard.

    Done: list the app's events whose handler calls Access.refusal (the in-handler admin check) and those marked
    @admin_only (what AdminGuard refuses over HTTP).
    Checked: the two sets are the same eight events (train start/cancel, promote, rollback, gate, A/B, average,
    export),
    so no admin action is reachable over HTTP by a non-admin, and chat/rating events are not admin-only.
    """
    root = http(auth_app["url"], "root")
    fns = auth_app["demo"].fns
    checks = {i for i, fn in fns.items() if "self.access.refusal(" in _source(fn.fn)}
    marked = {i for i, fn in fns.items() if getattr(fn.fn, "admin_only", False)}
    assert checks == marked and len(marked) == len(ADMIN_EVENTS)
    assert marked == {root.event(elem_id)[0] for elem_id in ADMIN_EVENTS}


def _source(fn) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def test_chat_events_stay_open_to_users_and_closed_to_anonymous(auth_app, http):
    """Non-admin events with auth on.

    Done: as bob, rate with no reply yet and reset the conversation over queue/join; signed out, read /config
    and join the queue; sign in with a wrong password.
    Checked: bob's calls run (200, the handler's own answer); anonymous gets 401 for /config and queue/join,
    a wrong password 400; nothing is written.
    """
    bob = http(auth_app["url"], "bob")
    status, *_ = bob.call("rate", [None, 4, "nice"])
    assert "There is no agent reply to rate yet" in status
    assert "next message starts it" in bob.call("new-conversation", [None])[2]
    assert httpx.get(auth_app["url"] + "/config").status_code == 401
    joined = httpx.post(auth_app["url"] + "/gradio_api/queue/join",
                        json={"data": [], "fn_index": 0, "session_hash": "x", "event_data": None})
    assert joined.status_code == 401
    with httpx.Client(base_url=auth_app["url"]) as client:
        assert client.post("/login", data={"username": "bob", "password": "nope"}).status_code == 400
    assert auth_app["store"].execute("SELECT count(*) FROM ratings").fetchone()[0] == 0


def test_an_admin_exports_and_trains_over_http(auth_app, http):
    """The admin's path through the guard.

    Done: as root, export the rated conversations (and download the file through Gradio), then start a
    training run with nothing rated.
    Checked: the export is served to root; the run starts, fails with "at least 4" rated conversations, is
    recorded as failed with trigger ui and user root, and registers no adapter.
    """
    root = http(auth_app["url"], "root")
    exported, message = root.call("export-button", ["jsonl", "all"])
    assert "Exported 0 rated conversation(s)" in message
    download = root.client.get(exported["url"])
    assert download.status_code == 200 and download.text == ""
    assert "Training started" in root.call("train-start", ["swift", "all", "", "", 2, False, False])[0]
    manager, store = auth_app["manager"], auth_app["store"]
    assert manager.join(60)
    job = manager.status()
    assert job.user == "root" and job.status == "failed" and "at least 4" in job.error
    [run] = store.list_training_runs()
    assert run.status == "failed" and run.trigger == "ui" and store.list_adapters() == []


# -- no user string reaches a shell, SQL or a path unescaped (the product code itself) ---------------------------

def _product_files() -> list[Path]:
    return [p for pkg in PRODUCT for p in sorted((REPO / pkg).rglob("*.py")) if "data" not in p.parts]


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield name, node


def test_no_shell_and_no_dynamic_code_anywhere():
    """Shell metacharacters can never reach a shell.

    Done: parse every module of agent, api, clarify, learner, logs_db and ui.
    Checked: no shell=True, os.system, os.popen, eval or exec; every subprocess gets an argument list, so a
    user string is at most one argument, never shell text.
    """
    offences = []
    for path in _product_files():
        tree = ast.parse(path.read_text())
        for name, call in _calls(tree):
            where = f"{path.relative_to(REPO)}:{call.lineno}"
            if name in ("system", "popen", "eval", "exec") and not isinstance(call.func, ast.Attribute) or \
                    name in ("system", "popen") and isinstance(call.func, ast.Attribute) and \
                    getattr(call.func.value, "id", "") == "os":
                offences.append(f"{where}: {name}()")
            for kw in call.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    offences.append(f"{where}: shell=")
            if name in ("Popen", "run", "call", "check_output", "check_call") and call.args and \
                    isinstance(call.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                offences.append(f"{where}: {name}() with a command string")
    assert offences == []


def test_sql_is_constant_and_values_are_bound():
    """User strings never become SQL text.

    Done: parse the product code and look at every call that runs SQL (execute, sql, query_arrow).
    Checked: the SQL argument is a string constant (literal or module-level, as in the snapshot and insights
    queries); the only formatted one is the adapter query's WHERE clause, and every caller passes it a literal
    with ? placeholders; values always travel as bound parameters.
    """
    trees = {path: ast.parse(path.read_text()) for path in _product_files()}
    constants: set[str] = set()  # module-level names bound to string constants (or sums of them)
    for _ in range(2):
        for tree in trees.values():
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                        and all(isinstance(n, (ast.Constant, ast.BinOp, ast.Add)) or
                                (isinstance(n, ast.Name) and n.id in constants) or isinstance(n, ast.Load)
                                for n in ast.walk(node.value)):
                    constants.add(node.targets[0].id)
    offences, where_callers = [], []
    for path, tree in trees.items():
        for name, call in _calls(tree):
            where = f"{path.relative_to(REPO)}:{call.lineno}"
            if name in ("execute", "sql", "query_arrow") and call.args:
                sql = call.args[0]
                if isinstance(sql, ast.Constant) or (isinstance(sql, ast.Name) and sql.id in constants | {"sql"}):
                    continue
                if isinstance(sql, ast.JoinedStr) and path.name == "store.py":
                    names = {n.id for v in sql.values if isinstance(v, ast.FormattedValue)
                             for n in ast.walk(v.value) if isinstance(n, ast.Name)}
                    if names <= {"where"}:
                        continue
                offences.append(f"{where}: {ast.unparse(sql)[:80]}")
            if name == "_adapter_rows" and call.args:
                where_callers.append((where, isinstance(call.args[0], ast.Constant)))
    assert offences == []
    assert where_callers and all(constant for _, constant in where_callers), where_callers
