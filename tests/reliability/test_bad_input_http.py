"""Bad input over raw HTTP, one test per case: forged payloads to the app with auth, in process, with the real
model (tests/reliability/conftest.py); each gets a clear answer and changes nothing it should not.
"""

from __future__ import annotations

import json

import pytest

from agent.chat_service import DEFAULT_NOTES

pytestmark = pytest.mark.slow  # the real model


# -- raw HTTP with forged payloads (the app with auth, in process, real model) ----------------------------------

def forged_join(session, **body):
    """POST /gradio_api/queue/join with exactly this body (session_hash added unless given)."""
    return session.client.post("/gradio_api/queue/join", json={"session_hash": session.session_hash, **body})


FORGED = {
    "unknown fn_index": (dict(data=[], fn_index=9999, event_data=None), 400, "no event with fn_index 9999"),
    "fn_index that is not a number": (dict(data=[], fn_index="0; DROP TABLE turns", event_data=None), 400,
                                      "no event with fn_index"),
    "wrong number of inputs": (dict(data=["only one"], fn_index="send", event_data=None), 422,
                               "takes 3 input value(s), got 1"),
    "no session": (dict(data=["Hi", DEFAULT_NOTES, None], fn_index="send", event_data=None, session_hash=None),
                   400, "Session hash not found"),
}


@pytest.mark.parametrize("case", list(FORGED))
def test_forged_queue_request(chat_app, http, rows, case):
    """Raw HTTP to the Gradio queue: {case}.

    Done: as the signed-in user bob, POST that payload to /gradio_api/queue/join.
    Checked: a 4xx answer that says what is wrong (never a 500 with a traceback in the server log); nothing is
    queued or written.
    """
    bob = http(chat_app["url"], "bob")
    body, status, detail = FORGED[case]
    if body["fn_index"] == "send":
        body = {**body, "fn_index": bob.event("send")[0]}
    before = rows(chat_app["store"])
    response = forged_join(bob, **body)
    assert response.status_code == status, response.text
    assert detail in json.dumps(response.json())
    assert rows(chat_app["store"]) == before


@pytest.mark.parametrize("body", [b"{'data': [}", b'{"data": ["\xff\xfe"]}'], ids=["not JSON", "invalid UTF-8"])
def test_undecodable_request_body(chat_app, http, rows, body):
    """Raw HTTP body that cannot be decoded: {case}.

    Done: as bob, POST those bytes to /gradio_api/queue/join with Content-Type application/json.
    Checked: 400/422 from the server saying the body could not be decoded, nothing written, and the server
    keeps serving (bob's next call works).
    """
    bob = http(chat_app["url"], "bob")
    before = rows(chat_app["store"])
    response = bob.client.post("/gradio_api/queue/join", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422) and ("pars" in response.text or "JSON decode" in response.text), response.text
    assert rows(chat_app["store"]) == before
    assert "no agent reply to rate" in bob.call("rate", [None, 4, ""])[0]


def test_forged_state_cannot_reach_another_users_conversation(chat_app, http):
    """Raw HTTP with a forged session state: rate another user's reply.

    Done: bob chats and gets a reply; eve sends the Rate event with a forged gr.State value naming bob's
    conversation and reply, and the thumbs event with bob's message index and text.
    Checked: the server ignores client-sent state (it keeps each session's state itself): eve is told there
    is nothing to rate and no rating row exists; bob's own rating then works.
    """
    store = chat_app["store"]
    bob, eve = http(chat_app["url"], "bob"), http(chat_app["url"], "eve")
    _, _, chatbot, _, status = bob.call("send", ["How much is an espresso?", DEFAULT_NOTES, None])
    assert "Rate this reply" in status
    [cid] = [c for (c,) in store.execute("SELECT id FROM conversations").fetchall()]
    turn = store.list_turns(cid)[-1]
    forged = {"conversation_id": cid, "last_turn_id": turn.id, "turns": {"1": turn.id}, "messages": chatbot}
    assert "There is no agent reply to rate yet" in eve.call("rate", [forged, 5, "mine now"])[0]
    reply_text = chatbot[1]["content"][0]["text"] if isinstance(chatbot[1]["content"], list) else chatbot[1]["content"]
    liked = eve.call("chatbot", [forged], trigger="like",
                     event_data={"index": 1, "value": reply_text, "liked": True})[0]
    assert "There is no agent reply to rate yet" in liked
    assert store.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0
    assert "5 ★ recorded" in bob.call("rate", [None, 5, ""])[0]
    assert store.execute("SELECT user_id FROM ratings").fetchall() == [("bob",)]


@pytest.mark.parametrize("event_data, expected", [
    pytest.param({"index": 0, "value": "How much?", "liked": True}, "Only the agent's replies",
                 id="index of the user's own message"),
    pytest.param({"index": 99, "value": "x", "liked": True}, "Only the agent's replies", id="index out of range"),
    pytest.param({"index": 1, "value": "I never said that", "liked": True}, "does not match the logged reply",
                 id="text that is not the logged reply"),
    pytest.param({"index": 1, "value": None, "liked": "maybe"}, "Unknown feedback",
                 id="feedback that is not up or down"),
])
def test_forged_thumbs_event(chat_app, http, event_data, expected):
    """Raw HTTP thumbs event with forged event data: {case}.

    Done: bob chats and gets a reply, then sends the chatbot's like event with that event_data.
    Checked: the status line refuses it with a clear message; no rating row is written.
    """
    bob = http(chat_app["url"], "bob")
    bob.call("send", ["How much?", DEFAULT_NOTES, None])
    status = bob.call("chatbot", [None], trigger="like", event_data=event_data)[0]
    assert expected in status
    assert chat_app["store"].execute("SELECT count(*) FROM ratings").fetchone()[0] == 0


@pytest.mark.parametrize("message, logged", [
    pytest.param("a" * 1_048_576, None, id="1 MB message"),
    pytest.param(12345, "12345", id="a number as the message"),
    pytest.param(["How", "much?"], "['How', 'much?']", id="a list as the message"),
])
def test_forged_message_value(chat_app, http, rows, message, logged):
    """Raw HTTP send with a forged message value: {case}.

    Done: bob sends the Send event with that value in place of the textbox's text.
    Checked: a 1 MB message is refused ("the limit is 4000", nothing written); a number or a list is only
    ever text (Gradio's textbox turns it into its string, which is logged as the user turn, like typing it).
    """
    store = chat_app["store"]
    bob = http(chat_app["url"], "bob")
    before = rows(store)
    *_, status = bob.call("send", [message, DEFAULT_NOTES, None])
    if logged is None:
        assert "the limit is 4000. Nothing was sent." in status and rows(store) == before
    else:
        assert "Rate this reply" in status
        assert store.execute("SELECT text FROM turns WHERE role = 'user'").fetchall() == [(logged,)]


@pytest.mark.parametrize("path", ["/gradio_api/file=/etc/passwd", "/gradio_api/file=../../../../etc/passwd",
                                  "/gradio_api/file=%2e%2e/%2e%2e/etc/passwd"],
                         ids=["absolute path", "dot-dot path", "encoded dot-dot path"])
def test_file_route_does_not_serve_other_files(chat_app, http, path):
    """Raw HTTP file download outside the app's files: {case}.

    Done: as bob, GET a path outside the app's files (absolute, with .., with encoded ..) through Gradio's
    file route.
    Checked: refused (403/404), and the answer does not contain the file.
    """
    bob = http(chat_app["url"], "bob")
    response = bob.client.get(path)
    assert response.status_code in (403, 404) and "root:" not in response.text


def test_upload_larger_than_the_limit(chat_app, http):
    """Raw HTTP upload of 2 MB (the app allows 1 MB; it has no upload field at all).

    Done: as bob, POST a 2 MB file to /gradio_api/upload.
    Checked: refused with 413 and nothing is stored in the log.
    """
    bob = http(chat_app["url"], "bob")
    response = bob.client.post("/gradio_api/upload", files={"files": ("big.txt", b"x" * 2_000_000)})
    assert response.status_code == 413, response.status_code
