"""The chat UI's handlers, called directly (no browser), on a real DuckDB file and the real bundled model.

Also `clarify serve`'s refusals (public host without auth, locked DB, missing
model, unwritable data folder), through the real typer app.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gradio as gr
import pytest
from typer.testing import CliRunner

from agent.chat_service import DEFAULT_NOTES, ChatService, clean_text
from agent.engine import GenerationParams
from agent.policy import classify_agent_turn
from logs_db.store import conversation_key
from ui.app import EMPTY_RATING_TARGET, NOT_RATABLE, ChatHandlers, ChatSession, message_text
from ui.commands import is_loopback, parse_auth

REPLY = "The Harbor branch espresso costs $3."


# -- helpers ------------------------------------------------------------------

def count(store, table: str) -> int:
    assert table in ("conversations", "turns", "ratings")
    return store.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def run_send(h: ChatHandlers, message: str, notes: str = DEFAULT_NOTES, session: ChatSession | None = None,
             request=None) -> list[tuple]:
    """Drive the streaming handler to the end; every yield is (message box, send button, chatbot, session, status)."""
    return list(h.send(message, notes, session, request))


def logged_exchange(store, *, user_id: str | None = None, status: str = "ok") -> tuple[ChatSession, str]:
    """A conversation with one user turn and one agent reply, written through the real store."""
    cid = store.new_conversation(source="ui", context=DEFAULT_NOTES, user_id=user_id)
    store.add_turn(cid, role="user", kind="user", text="How much is an espresso at Harbor?")
    tid = store.add_turn(cid, role="assistant", kind="answer", text=REPLY, status=status,
                         error=None if status == "ok" else "boom")
    session = ChatSession(conversation_id=cid, notes=clean_text(DEFAULT_NOTES),
                          messages=[{"role": "user", "content": "How much is an espresso at Harbor?"},
                                    {"role": "assistant", "content": REPLY}],
                          turns={1: tid}, last_turn_id=tid)
    return session, tid


def like(index, liked, value=None) -> gr.LikeData:
    return gr.LikeData(None, {"index": index, "value": value, "liked": liked})


@pytest.fixture
def rating_handlers(settings, store) -> ChatHandlers:
    """Rating and reset handlers never touch the engine; no model is loaded for these tests."""
    return ChatHandlers(settings, store, service=None)


@pytest.fixture
def handlers(settings, store, engine) -> ChatHandlers:
    service = ChatService(store, engine, params=GenerationParams(max_new_tokens=24),
                          horizon=settings.max_clarifying_questions, max_message_chars=settings.max_message_chars)
    return ChatHandlers(settings, store, service)


# -- message_text -------------------------------------------------------------

def test_message_text_accepts_strings_and_lists_of_parts():
    assert message_text("plain") == "plain"
    assert message_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "a\nb"
    assert message_text([[{"type": "text", "text": "nested"}]]) == "nested"
    assert message_text({"role": "assistant", "content": [{"type": "text", "text": "msg"}]}) == "msg"
    assert message_text([{"type": "file", "file": {"path": "x.png"}}]) == ""
    assert message_text(None) == ""


# -- thumbs -------------------------------------------------------------------

def test_thumbs_up_and_down_are_logged_with_rewards(rating_handlers, store):
    session, tid = logged_exchange(store)
    # The browser sends the liked message's content as a list of parts; a plain string is accepted too.
    status = rating_handlers.like(session, like(1, True, [[{"type": "text", "text": REPLY}]]))
    assert "Thumbs up recorded" in status
    status = rating_handlers.like(session, like(1, False, [REPLY]))
    assert "Thumbs down recorded" in status
    rows = store.execute("SELECT turn_id, kind, value, reward, comment FROM ratings ORDER BY created_at").fetchall()
    assert rows == [(tid, "thumbs", 1.0, 1.0, None), (tid, "thumbs", 0.0, 0.0, None)]


def test_unclicking_a_thumb_writes_nothing(rating_handlers, store):
    session, _ = logged_exchange(store)
    status = rating_handlers.like(session, like(1, "", [REPLY]))
    assert "kept" in status and count(store, "ratings") == 0


@pytest.mark.parametrize("index", [0, 2, 99, -1, (0, 1)])
def test_thumbs_on_anything_but_an_agent_reply_is_refused(rating_handlers, store, index):
    session, _ = logged_exchange(store)
    status = rating_handlers.like(session, like(index, True, ["x"]))
    assert "Error" in status and NOT_RATABLE in status
    assert count(store, "ratings") == 0


def test_thumbs_with_no_conversation_yet(rating_handlers, store):
    status = rating_handlers.like(ChatSession(), like(1, True, [REPLY]))
    assert EMPTY_RATING_TARGET in status and count(store, "ratings") == 0
    status = rating_handlers.like(None, like(1, True, [REPLY]))
    assert EMPTY_RATING_TARGET in status and count(store, "ratings") == 0


def test_thumbs_refused_when_the_shown_text_is_not_the_logged_reply(rating_handlers, store):
    session, _ = logged_exchange(store)
    status = rating_handlers.like(session, like(1, True, ["Some other message"]))
    assert "does not match" in status and count(store, "ratings") == 0


def test_thumbs_unknown_feedback_value_refused(rating_handlers, store):
    session, _ = logged_exchange(store)
    assert "Unknown feedback" in rating_handlers.like(session, like(1, "Love it", [REPLY]))
    assert count(store, "ratings") == 0


# -- stars --------------------------------------------------------------------

def test_stars_with_comment_are_logged(rating_handlers, store):
    session, tid = logged_exchange(store)
    status, stars_out, comment_out = rating_handlers.rate_last(session, 4, "  Good, but ask which branch.\x00 ")
    assert "4 ★ recorded" in status
    assert stars_out["value"] is None and comment_out["value"] == ""  # the form is reset after a rating
    rows = store.execute("SELECT turn_id, kind, value, reward, comment FROM ratings").fetchall()
    assert rows == [(tid, "stars", 4.0, 0.75, "Good, but ask which branch.")]


def test_stars_as_text_and_without_comment(rating_handlers, store):
    session, _ = logged_exchange(store)
    assert "5 ★ recorded" in rating_handlers.rate_last(session, "5", "   ")[0]
    assert store.execute("SELECT value, reward, comment FROM ratings").fetchall() == [(5.0, 1.0, None)]


@pytest.mark.parametrize("stars, message", [
    (0, "whole number from 1 to 5"), (6, "whole number from 1 to 5"), (-1, "whole number from 1 to 5"),
    (3.5, "whole number from 1 to 5"), ("abc", "whole number from 1 to 5, got 'abc'"),
    (True, "whole number from 1 to 5"), (float("nan"), "whole number from 1 to 5"),
    (None, "Choose 1 to 5 stars first."), ("", "Choose 1 to 5 stars first."),
])
def test_stars_out_of_range_refused_and_nothing_written(rating_handlers, store, stars, message):
    session, _ = logged_exchange(store)
    status, stars_out, comment_out = rating_handlers.rate_last(session, stars, "comment")
    assert status.startswith('<span class="error">Error: ') and message in status
    assert stars_out == gr.skip() and comment_out == gr.skip()  # the form keeps the user's input
    assert count(store, "ratings") == 0


def test_star_comment_too_long_refused(rating_handlers, store):
    session, _ = logged_exchange(store)
    status, _, _ = rating_handlers.rate_last(session, 3, "x" * 4001)
    assert "at most 4000 characters" in status and count(store, "ratings") == 0


def test_error_text_is_escaped(rating_handlers, store):
    session, _ = logged_exchange(store)
    status, _, _ = rating_handlers.rate_last(session, "<img src=x onerror=alert(1)>", None)
    assert "<img" not in status and "&lt;img" in status


def test_rating_before_any_reply(rating_handlers, store):
    for session in (ChatSession(), None):
        status, _, _ = rating_handlers.rate_last(session, 4, "")
        assert EMPTY_RATING_TARGET in status
    assert count(store, "ratings") == 0


def test_rating_an_unknown_turn_id(rating_handlers, store):
    session = ChatSession(conversation_id="gone", messages=[{"role": "user", "content": "q"},
                                                            {"role": "assistant", "content": "a"}],
                          turns={1: "no-such-turn"}, last_turn_id="no-such-turn")
    assert "No turn with id 'no-such-turn'" in rating_handlers.like(session, like(1, True, ["a"]))
    assert "No turn with id 'no-such-turn'" in rating_handlers.rate_last(session, 4, "")[0]
    assert count(store, "ratings") == 0


def test_a_failed_reply_cannot_be_rated(rating_handlers, store):
    session, _ = logged_exchange(store, status="failed")
    assert "Only a successful agent reply can be rated" in rating_handlers.rate_last(session, 4, "")[0]
    assert count(store, "ratings") == 0


def test_signed_in_users_rate_only_their_own_conversations(rating_handlers, store):
    session, tid = logged_exchange(store, user_id="alice")
    assert "your own conversations" in rating_handlers.rate_last(session, 2, "", gr.Request(username="bob"))[0]
    assert count(store, "ratings") == 0
    assert "2 ★ recorded" in rating_handlers.rate_last(session, 2, "", gr.Request(username="alice"))[0]
    assert store.execute("SELECT user_id FROM ratings").fetchall() == [("alice",)]


def test_new_conversation_resets_the_session(rating_handlers, store):
    session, _ = logged_exchange(store)
    chat, new_session, status, stars_out, comment_out = rating_handlers.new_conversation(session)
    assert chat == [] and new_session == ChatSession() and "next message starts it" in status
    assert "Error" not in rating_handlers.rate_last(session, 3, "")[0]  # the old session object is untouched
    assert EMPTY_RATING_TARGET in rating_handlers.rate_last(new_session, 3, "")[0]


# -- which adapter answers ----------------------------------------------------

def test_the_answering_line_names_the_adapter_that_wrote_the_last_reply(settings, rating_handlers, store):
    h = rating_handlers
    assert h.answering(None) == h.answering(ChatSession()) == "Answering: base model"
    session, _ = logged_exchange(store)                  # answered by the base model
    assert h.answering(session) == "Answering: base model"

    store.register_adapter(adapter_id="a1", method="swift", path="/adapters/a1")
    store.activate_adapter("a1")
    activated = str(store.last_activation("a1").created_at)[:16]
    # A conversation keeps the adapter it started with; before one, the line names what a new one uses.
    assert h.answering(session) == "Answering: base model · new conversations use `a1`"
    assert h.answering(ChatSession()) == f"Answering: adapter `a1` (activated {activated})"
    cid = store.new_conversation(source="ui", context=DEFAULT_NOTES, adapter_id="a1")
    store.add_turn(cid, role="user", kind="user", text="Espresso?")
    store.add_turn(cid, role="assistant", kind="answer", text=REPLY, adapter_id="a1")
    assert h.answering(ChatSession(conversation_id=cid)) == f"Answering: adapter `a1` (activated {activated})"

    # An A/B candidate answers without ever having been active.
    store.register_adapter(adapter_id="b1", method="swift", path="/adapters/b1")
    cid = store.new_conversation(source="ui", context=DEFAULT_NOTES, adapter_id="b1", arm="B")
    store.add_turn(cid, role="user", kind="user", text="Espresso?")
    store.add_turn(cid, role="assistant", kind="answer", text=REPLY, adapter_id="b1")
    assert h.answering(ChatSession(conversation_id=cid)) == (
        "Answering: adapter `b1` (never activated) · new conversations use `a1`")
    split = ChatHandlers(settings, store, ChatService(store, None, ab_candidate="b1", ab_share=0.25))
    assert split.answering(ChatSession()) == (
        f"Answering: adapter `a1` (activated {activated}) · A/B on: `b1` answers 25% of new conversations")
    # A session whose conversation is not in this log: what a new conversation uses.
    assert h.answering(ChatSession(conversation_id="gone")) == f"Answering: adapter `a1` (activated {activated})"


# -- sending (real model) -----------------------------------------------------

@pytest.mark.slow
def test_send_streams_the_reply_and_logs_both_turns(handlers, store):
    yields = run_send(handlers, "  How much is an espresso?  ")
    box, button, chat, session, status = yields[0]
    assert box["value"] == "" and box["interactive"] is False and button["interactive"] is False
    partials = [y[2][-1]["content"] for y in yields[1:-1]]
    assert len(partials) >= 2, "the reply should stream in several pieces"
    assert all(b.startswith(a) for a, b in zip(partials, partials[1:])), "each piece extends the text"

    box, button, chat, session, status = yields[-1]
    assert box["interactive"] is True and button["interactive"] is True
    assert "Rate this reply" in status
    (conv,) = store.execute("SELECT id, source, context, context_key FROM conversations").fetchall()
    # keyed by the notes and the opening question: the learner groups the same question on the same notes
    key = conversation_key(DEFAULT_NOTES, "how much is an espresso")
    assert conv == (session.conversation_id, "ui", DEFAULT_NOTES, key)
    turns = store.list_turns(session.conversation_id)
    assert [(t.role, t.kind, t.status) for t in turns] == [("user", "user", "ok"),
                                                          ("assistant", classify_agent_turn(turns[1].text), "ok")]
    assert turns[0].text == "How much is an espresso?"  # cleaned (stripped) before logging
    assert turns[1].text and chat == [{"role": "user", "content": turns[0].text},
                                      {"role": "assistant", "content": turns[1].text}]
    assert session.turns == {1: turns[1].id} and session.last_turn_id == turns[1].id
    assert handlers.answering(session) == "Answering: base model"  # what the app shows after the reply
    # ...and the reply is rateable through the mapping.
    assert "Thumbs up recorded" in handlers.like(session, like(1, True, [[{"type": "text", "text": turns[1].text}]]))


@pytest.mark.slow
def test_empty_and_too_long_messages_send_and_log_nothing(handlers, store, settings):
    for message in ("", "   \n\t ", "\x00\x01"):
        (box, button, chat, session, status), = run_send(handlers, message)
        assert "The message is empty." in status and chat == [] and session.conversation_id is None
        assert box == gr.skip()  # nothing is cleared: nothing was sent
    too_long = "a" * (settings.max_message_chars + 1)
    (box, _, chat, session, status), = run_send(handlers, too_long)
    assert f"The message is {len(too_long)} characters; the limit is {settings.max_message_chars}." in status
    assert "Nothing was sent." in status and box == gr.skip()
    assert count(store, "conversations") == count(store, "turns") == 0


@pytest.mark.slow
def test_empty_notes_are_refused(handlers, store):
    (_, _, _, session, status), = run_send(handlers, "Hello?", notes="  ")
    assert "The reference notes are empty" in status and session.conversation_id is None
    assert count(store, "conversations") == 0


@pytest.mark.slow
def test_editing_the_notes_starts_a_new_conversation(handlers, store):
    session = run_send(handlers, "When does Harbor open?")[-1][3]
    first = session.conversation_id
    session = run_send(handlers, "And Station?", session=session)[-1][3]
    assert session.conversation_id == first and len(session.messages) == 4
    assert session.turns.keys() == {1, 3}

    edited = DEFAULT_NOTES + " The Harbor branch is closed on Mondays."
    *_, (_, _, chat, session, status) = run_send(handlers, "Is Harbor open on Monday?", notes=edited,
                                                 session=session)
    assert session.conversation_id != first and "new conversation started" in status
    assert len(chat) == 2 and chat[0]["content"] == "Is Harbor open on Monday?" and session.turns.keys() == {1}
    rows = store.execute("SELECT id, context FROM conversations ORDER BY created_at").fetchall()
    assert rows == [(first, DEFAULT_NOTES), (session.conversation_id, edited)]
    assert [len(store.list_turns(cid)) for cid, _ in rows] == [4, 2]


@pytest.mark.slow
def test_engine_failure_is_shown_and_logged_as_failed(handlers, store, tmp_path):
    # A real failure: the conversation runs through an adapter whose folder is not a PEFT adapter.
    (tmp_path / "broken-adapter").mkdir()
    store.register_adapter(adapter_id="broken", method="refit", path=str(tmp_path / "broken-adapter"))
    cid = handlers.service.start(DEFAULT_NOTES, adapter_id="broken")
    session = ChatSession(conversation_id=cid, notes=clean_text(DEFAULT_NOTES))
    *_, (box, button, chat, session, status) = run_send(handlers, "How much is a latte?", session=session)
    assert "The agent failed:" in status and "is not a PEFT adapter" in status
    assert box["interactive"] is True and button["interactive"] is True  # the user can go on
    assert chat[-1]["role"] == "assistant" and "No reply" in chat[-1]["content"]
    turns = store.list_turns(cid)
    assert [(t.role, t.status) for t in turns] == [("user", "ok"), ("assistant", "failed")]
    assert "is not a PEFT adapter" in turns[1].error
    assert session.turns == {} and session.last_turn_id is None
    assert NOT_RATABLE in handlers.like(session, like(1, True, [chat[-1]["content"]]))
    assert EMPTY_RATING_TARGET in handlers.rate_last(session, 4, "")[0]
    assert count(store, "ratings") == 0


@pytest.mark.slow
def test_a_reply_interrupted_mid_stream_is_logged_as_failed(handlers, store):
    stream = handlers.send("How much is an espresso?", DEFAULT_NOTES, None)
    next(stream)                      # the user turn is logged, the box disabled
    session = next(stream)[3]         # first piece of the reply
    stream.close()                    # the browser went away
    turns = store.list_turns(session.conversation_id)
    assert [(t.role, t.status) for t in turns] == [("user", "ok"), ("assistant", "failed")]
    assert turns[1].error == "The reply was interrupted before it finished." and turns[1].text
    # The engine finishes the abandoned generation in its own thread; queue behind it (public API) so no
    # generation thread is still inside torch when the test session ends.
    handlers.service.engine.generate_batch([[{"role": "user", "content": "hi"}]], GenerationParams(max_new_tokens=1))


# -- clarify serve refusals ---------------------------------------------------

def invoke(*args: str):
    from clarify.cli import app

    return CliRunner().invoke(app, ["serve", *args])


def test_parse_auth_and_loopback():
    assert parse_auth("alice:pw1, bob:p:w2") == [("alice", "pw1"), ("bob", "p:w2")]
    assert parse_auth(None) == parse_auth(" ") == []
    for bad in ("alice", "alice:", ":pw", "alice:pw,"):
        with pytest.raises(ValueError):
            parse_auth(bad)
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.5", "example.com", ""]))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.com"])
def test_serve_refuses_a_public_host_without_auth(tmp_path, host):
    result = invoke("--host", host, "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 2
    assert f"refusing to serve on {host} without authentication" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()  # refused before anything was created


def test_serve_rejects_malformed_auth(tmp_path):
    result = invoke("--host", "0.0.0.0", "--auth", "alice", "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 2 and "user:password pairs" in result.output


def test_serve_reports_a_locked_database(tmp_path):
    db = tmp_path / "data" / "clarify.duckdb"
    db.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(db)!r})
            print("locked", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = invoke("--data-dir", str(tmp_path / "data"))
    finally:
        holder.communicate("", timeout=30)
    assert result.exit_code == 2
    assert "is open in another clarify process" in result.output and "Traceback" not in result.output


def test_serve_reports_a_missing_model(tmp_path):
    result = invoke("--data-dir", str(tmp_path / "data"), "--model", str(tmp_path / "no-model"),
                    "--engine", "transformers")
    assert result.exit_code == 2
    assert "is not a Hugging Face model folder" in result.output and "Traceback" not in result.output


def test_serve_reports_an_unwritable_data_dir(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    result = invoke("--data-dir", str(tmp_path / "a-file" / "data"))
    assert result.exit_code == 2
    assert "is not writable" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (("--engine", "warp-drive"), "--engine: Input should be 'auto', 'transformers' or 'vllm'"),
    (("--port", "99999"), "--port: Input should be less than or equal to 65535"),
    (("--threads", "0"), "--threads: Input should be greater than or equal to 1"),
])
def test_serve_rejects_invalid_options(tmp_path, args, message):
    result = invoke("--data-dir", str(tmp_path / "data"), *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "data").exists()
