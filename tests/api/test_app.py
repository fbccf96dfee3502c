"""The API end to end: the official `openai` client and raw HTTP against a real `clarify serve` subprocess
(transformers engine, the bundled model, a temp data dir), then the DuckDB file once the server has stopped.
"""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from agent.chat_service import DEFAULT_NOTES
from logs_db.insights import reward_per_day
from logs_db.snapshot import snapshot_table
from logs_db.store import LogStore

pytestmark = pytest.mark.slow  # a real server with the real model

KEYS = {"alice": "alice-key-0001", "bob": "bob-key-0002"}
API_KEYS = ",".join(f"{name}:{key}" for name, key in KEYS.items())


def client(srv, who: str = "alice", key: str | None = None) -> OpenAI:
    return OpenAI(base_url=srv.url + "v1", api_key=key or KEYS[who], max_retries=0, timeout=300)


def bearer(who: str) -> dict:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def counts(db) -> dict:
    with LogStore(db) as store:
        return {t: store.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("conversations", "turns", "ratings")}


def test_openai_client_continues_one_logged_conversation_and_its_feedback_becomes_a_reward(serve):
    srv = serve(env={"CLARIFY_API_KEYS": API_KEYS, "CLARIFY_MAX_NEW_TOKENS": "24"})
    alice = client(srv)
    assert [m.id for m in alice.models.list()] == ["clarify"]

    # Turn 1, not streamed. The model may ask or answer; either way the user then clarifies.
    messages = [{"role": "system", "content": DEFAULT_NOTES}, {"role": "user", "content": "How much is an espresso?"}]
    first = alice.chat.completions.create(model="clarify", messages=messages)
    c1, text1 = first.model_extra["clarify"], first.choices[0].message.content
    assert text1 and first.choices[0].finish_reason == "stop" and first.object == "chat.completion"
    assert c1["kind"] in ("ask", "answer") and c1["adapter"] is None and len(c1["turn_id"]) == 32

    # Turn 2, streamed, by resending the conversation: the same logged conversation continues.
    messages += [{"role": "assistant", "content": text1}, {"role": "user", "content": "At the Harbor branch."}]
    chunks = list(alice.chat.completions.create(model="clarify", messages=messages, stream=True))
    text2 = "".join(c.choices[0].delta.content or "" for c in chunks)
    c2 = chunks[-1].model_extra["clarify"]
    assert text2 and chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
    assert all("clarify" not in (c.model_extra or {}) for c in chunks[:-1])
    assert c2["conversation_id"] == c1["conversation_id"] and c2["turn_id"] != c1["turn_id"]

    # Turn 3 names the conversation explicitly (the documented extra body field).
    messages += [{"role": "assistant", "content": text2}, {"role": "user", "content": "And a large latte?"}]
    third = alice.chat.completions.create(model="clarify", messages=messages,
                                          extra_body={"clarify": {"conversation_id": c1["conversation_id"]}})
    c3 = third.model_extra["clarify"]
    assert c3["conversation_id"] == c1["conversation_id"]

    # Feedback: stars on the final answer with the openai client's own post(), a thumb on the first reply over HTTP.
    stars = alice.post("/feedback", cast_to=dict, body={"turn_id": c3["turn_id"], "kind": "stars", "value": 5,
                                                        "comment": "Right\x00 price"})
    assert stars["reward"] == 1.0 and stars["conversation_id"] == c1["conversation_id"]
    thumb = httpx.post(srv.url + "v1/feedback", headers=bearer("alice"),
                       json={"turn_id": c1["turn_id"], "kind": "thumbs", "value": 0})
    assert thumb.status_code == 200 and thumb.json()["reward"] == 0.0
    assert srv.stop() == 0

    with LogStore(srv.db) as store:
        [conv] = store.execute("SELECT id, source, user_id, rated_reward FROM conversations").fetchall()
        assert conv == (c1["conversation_id"], "api", "alice", 1.0)
        turns = store.list_turns(conv[0])
        assert [(t.role, t.kind, t.status) for t in turns] == [
            ("user", "user", "ok"), ("assistant", c1["kind"], "ok"), ("user", "user", "ok"),
            ("assistant", c2["kind"], "ok"), ("user", "user", "ok"), ("assistant", c3["kind"], "ok")]
        assert [t.id for t in turns[1::2]] == [c1["turn_id"], c2["turn_id"], c3["turn_id"]]
        assert [t.text for t in turns[1::2]] == [text1, text2, third.choices[0].message.content]  # what the client got
        assert turns[2].text == "At the Harbor branch."
        ratings = store.list_ratings(conv[0])
        assert sorted((r.turn_id, r.kind, r.value, r.comment, r.user_id) for r in ratings) == sorted([
            (c3["turn_id"], "stars", 5.0, "Right price", "alice"), (c1["turn_id"], "thumbs", 0.0, None, "alice")])
        # Rewards like the UI's: in the next training snapshot and in Insights.
        snap = snapshot_table(store).to_pylist()
        assert [(r["conversation_id"], r["source"], r["reward"], len(r["messages"])) for r in snap] == \
            [(conv[0], "api", 1.0, 6)]
        for source in (None, "api"):
            per_day = reward_per_day(store, source)
            assert per_day["source"].tolist() == ["api"] and per_day["mean_reward"].tolist() == [1.0]
        assert reward_per_day(store, "ui").empty


def test_refusals_and_bad_input_over_raw_http_write_nothing(serve):
    srv = serve(env={"CLARIFY_API_KEYS": API_KEYS, "CLARIFY_MAX_NEW_TOKENS": "8",
                     "CLARIFY_MAX_MESSAGE_CHARS": "200", "CLARIFY_MAX_CONTEXT_CHARS": "500"})
    api = srv.url + "v1"
    notes = {"role": "system", "content": DEFAULT_NOTES}

    def post(path: str, body, who: str | None = "alice", **kw) -> httpx.Response:
        headers = bearer(who) if who else {}
        if isinstance(body, (bytes, str)):
            return httpx.post(api + path, headers={**headers, "Content-Type": "application/json"}, content=body,
                              timeout=300, **kw)
        return httpx.post(api + path, headers=headers, json=body, timeout=300, **kw)

    def chat(*messages, **extra) -> dict:
        return {"model": "clarify", "messages": [notes, *messages], **extra}

    # The one conversation this test makes: control characters are removed before logging.
    ok = post("/chat/completions", chat({"role": "user", "content": "How much\x00 is an espresso?\x07"}))
    assert ok.status_code == 200, ok.text
    reply = ok.json()
    turn_id, cid = reply["clarify"]["turn_id"], reply["clarify"]["conversation_id"]
    so_far = [{"role": "user", "content": "How much is an espresso?"},
              {"role": "assistant", "content": reply["choices"][0]["message"]["content"]}]
    first_rating = post("/feedback", {"turn_id": turn_id, "kind": "stars", "value": 4})
    assert first_rating.status_code == 200

    cases = {
        # auth
        "no key": (post("/chat/completions", chat({"role": "user", "content": "Hi"}), who=None), 401),
        "no key, models": (httpx.get(api + "/models"), 401),
        "no key, feedback": (post("/feedback", {"turn_id": turn_id, "kind": "thumbs", "value": 1}, who=None), 401),
        "wrong key": (httpx.get(api + "/models", headers={"Authorization": "Bearer alice-key-0002"}), 401),
        "basic auth": (httpx.get(api + "/models", auth=("alice", KEYS["alice"])), 401),
        "bob rates alice's turn": (post("/feedback", {"turn_id": turn_id, "kind": "thumbs", "value": 1}, "bob"), 403),
        "bob continues alice's conversation by id": (post("/chat/completions", chat(
            *so_far, {"role": "user", "content": "Harbor."}, clarify={"conversation_id": cid}), "bob"), 403),
        "bob resends alice's messages": (post("/chat/completions", chat(
            *so_far, {"role": "user", "content": "Harbor."}), "bob"), 409),
        # messages
        "empty message": (post("/chat/completions", chat({"role": "user", "content": "  "})), 400),
        "empty message, streamed": (post("/chat/completions", chat({"role": "user", "content": ""}, stream=True)), 400),
        "only control characters": (post("/chat/completions", chat({"role": "user", "content": "\x00\x01\x1b"})), 400),
        "too long": (post("/chat/completions", chat({"role": "user", "content": "x" * 201})), 400),
        "notes too long": (post("/chat/completions", {"model": "clarify", "messages": [
            {"role": "system", "content": "n" * 501}, {"role": "user", "content": "Hi"}]}), 400),
        "no notes": (post("/chat/completions", {"model": "clarify", "messages": [{"role": "user", "content": "Hi"}]}), 400),
        "made-up assistant turn": (post("/chat/completions", chat(
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "I said this"},
            {"role": "user", "content": "Hi again"})), 409),
        "last message not the user's": (post("/chat/completions", chat(*so_far)), 400),
        "unknown conversation id": (post("/chat/completions", chat(
            *so_far, {"role": "user", "content": "Harbor."}, clarify={"conversation_id": "f" * 32})), 404),
        "unknown model": (post("/chat/completions", {**chat({"role": "user", "content": "Hi"}), "model": "gpt-4o"}), 404),
        "unknown model, streamed": (post("/chat/completions", {**chat({"role": "user", "content": "Hi"}, stream=True),
                                                              "model": "../adapters"}), 404),
        "n=2": (post("/chat/completions", chat({"role": "user", "content": "Hi"}, n=2)), 400),
        "not JSON": (post("/chat/completions", b"{'model': 'clarify'"), 400),
        "a JSON list": (post("/chat/completions", b"[1, 2]"), 400),
        "body over 4 MiB": (post("/chat/completions", b"x" * (4 * 1024 * 1024 + 1)), 413),
        # ratings
        "unknown turn id": (post("/feedback", {"turn_id": "0" * 32, "kind": "thumbs", "value": 1}), 404),
        "stars out of range": (post("/feedback", {"turn_id": turn_id, "kind": "stars", "value": 6}), 400),
        "half a star": (post("/feedback", {"turn_id": turn_id, "kind": "stars", "value": 2.5}), 400),
        "thumbs 2": (post("/feedback", {"turn_id": turn_id, "kind": "thumbs", "value": 2}), 400),
        "thumbs true": (post("/feedback", {"turn_id": turn_id, "kind": "thumbs", "value": True}), 400),
        "stars as text": (post("/feedback", {"turn_id": turn_id, "kind": "stars", "value": "5"}), 400),
        "NaN stars": (post("/feedback", b'{"turn_id": "%s", "kind": "stars", "value": NaN}' % turn_id.encode()), 400),
        "unknown kind": (post("/feedback", {"turn_id": turn_id, "kind": "hearts", "value": 1}), 400),
        "unknown field": (post("/feedback", {"turn_id": turn_id, "kind": "thumbs", "value": 1, "user": "x"}), 400),
        "comment too long": (post("/feedback", {"turn_id": turn_id, "kind": "thumbs", "value": 1,
                                                "comment": "c" * 4001}), 400),
        "the same rating again": (post("/feedback", {"turn_id": turn_id, "kind": "stars", "value": 4}), 409),
        "no such route": (httpx.post(api + "/completions", headers=bearer("alice"), json={}), 404),
    }
    wrong = {name: (response.status_code, response.text[:200]) for name, (response, status) in cases.items()
             if response.status_code != status}
    assert not wrong, wrong
    for name, (response, _) in cases.items():
        error = response.json()["error"]
        assert error["message"] and error["type"] and error["code"], (name, error)
    assert cases["too long"][0].json()["error"]["message"].startswith("The message is 201 characters; the limit is 200")
    assert "already has exactly this rating" in cases["the same rating again"][0].json()["error"]["message"]

    # The official client raises its usual exception classes.
    with pytest.raises(openai.AuthenticationError):
        client(srv, key="nobody-0000").models.list()
    with pytest.raises(openai.BadRequestError, match="The message is empty"):
        client(srv).chat.completions.create(model="clarify", messages=[notes, {"role": "user", "content": ""}])
    with pytest.raises(openai.NotFoundError, match="model_not_found|does not exist"):
        client(srv).chat.completions.create(model="gpt-4o", messages=[notes, {"role": "user", "content": "Hi"}],
                                            stream=True)
    with pytest.raises(openai.PermissionDeniedError):
        client(srv, "bob").chat.completions.create(model="clarify", messages=[notes, *so_far, {"role": "user", "content": "Harbor."}],
                                                   extra_body={"clarify": {"conversation_id": cid}})
    assert srv.stop() == 0
    # Nothing but the one exchange and its one rating was written.
    assert counts(srv.db) == {"conversations": 1, "turns": 2, "ratings": 1}
    with LogStore(srv.db) as store:
        assert store.list_turns(cid)[0].text == "How much is an espresso?"
        assert store.get_conversation(cid).user_id == "alice"


def test_without_keys_the_api_answers_on_loopback_and_the_ui_still_serves(serve):
    srv = serve(env={"CLARIFY_MAX_NEW_TOKENS": "8"})
    anyone = OpenAI(base_url=srv.url + "v1", api_key="unused", max_retries=0, timeout=300)
    reply = anyone.chat.completions.create(model="clarify", messages=[
        {"role": "system", "content": DEFAULT_NOTES}, {"role": "user", "content": "When does the Harbor branch open?"}])
    assert reply.model_extra["clarify"]["turn_id"]
    assert httpx.get(srv.url).status_code == 200 and httpx.get(srv.url + "config").status_code == 200
    assert "OpenAI-compatible API: " in srv.stdout.read_text() and "no keys: loopback only" in srv.stdout.read_text()
    assert srv.stop() == 0
    with LogStore(srv.db) as store:
        assert store.execute("SELECT source, user_id FROM conversations").fetchall() == [("api", None)]
