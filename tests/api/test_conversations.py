"""Which logged conversation an OpenAI messages list continues (a real DuckDB file, no model)."""

from __future__ import annotations

import pytest

from api.conversations import find_continuation, parse_messages
from api.errors import ApiError
from logs_db.store import context_hash, conversation_key

NOTES = "The museum opens at 9 am. The library opens at 8 am."


def logged(store, user="alice", notes=NOTES, turns=(("user", "When does it open?"), ("ask", "Do you mean the museum?")),
           source="api", adapter=None, key=None) -> str:
    """A conversation as ChatService.start logs it: keyed by its notes and opening question (or by `key`)."""
    key = key or conversation_key(notes, turns[0][1])
    cid = store.new_conversation(source=source, context=notes, context_key=key, user_id=user, adapter_id=adapter)
    for kind, text in turns:
        store.add_turn(cid, role="user" if kind == "user" else "assistant", kind=kind, text=text)
    return cid


def request(*turns, notes=NOTES):
    """messages: the notes as system message, then (role, text) pairs."""
    return parse_messages(([{"role": "system", "content": notes}] if notes is not None else [])
                          + [{"role": role, "content": text} for role, text in turns])


def find(store, chat, client="alice", model="clarify", conversation_id=None):
    return find_continuation(store, chat, client=client, model=model, conversation_id=conversation_id)


def refused(store, chat, **kw) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        find(store, chat, **kw)
    return caught.value.status, caught.value.code


SO_FAR = (("user", "When does it open?"), ("assistant", "Do you mean the museum?"))


def test_messages_become_notes_turns_so_far_and_the_new_question():
    chat = parse_messages([{"role": "system", "content": "A.\x00"}, {"role": "developer", "content": "B."},
                           {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
                           {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Q?"}])
    assert chat.notes == "A.\n\nB." and chat.so_far == [("user", "Hi\nthere"), ("assistant", "Hello.")]
    assert chat.question == "Q?"
    assert parse_messages([{"role": "user", "content": "Q?"}]).notes is None


@pytest.mark.parametrize("messages", [
    [], "hi", [{"role": "system", "content": "notes"}], [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
    [{"role": "tool", "content": "x"}, {"role": "user", "content": "Q"}], [{"role": "user", "content": None}],
    [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}],
    [{"role": "user", "content": "Q"}, {"role": "system", "content": "late notes"}, {"role": "user", "content": "Q"}],
    [{"role": "assistant", "content": "", "tool_calls": [{"id": "1"}]}, {"role": "user", "content": "Q"}], ["user: Q"],
])
def test_malformed_messages_are_400(messages):
    with pytest.raises(ApiError) as caught:
        parse_messages(messages)
    assert caught.value.status == 400


def test_a_single_question_starts_a_new_conversation(store):
    logged(store)
    assert find(store, request(("user", "When does it open?"))) is None


def test_resent_messages_continue_the_newest_matching_conversation_of_the_same_client_and_notes(store):
    logged(store)
    newer = logged(store)
    bobs = logged(store, user="bob")
    logged(store, notes="Other notes.")
    logged(store, source="ui", user="alice")
    chat = request(*SO_FAR, ("user", "Yes, the museum."))
    assert find(store, chat).id == newer
    # whitespace may differ; the text may not
    assert find(store, request(("user", " When  does it open? "), ("assistant", "Do you mean the museum?"),
                               ("user", "Yes."))).id == newer
    assert refused(store, request(("user", "When does it open?"), ("assistant", "Do you mean the library?"),
                                  ("user", "Yes."))) == (409, "conversation_mismatch")
    # each client continues its own: the same messages from bob continue bob's conversation, never alice's
    assert find(store, chat, client="bob").id == bobs
    assert refused(store, chat, client="carol") == (409, "conversation_mismatch")
    assert refused(store, request(*SO_FAR, ("user", "Yes."), notes="Changed notes.")) == (409, "conversation_mismatch")


def test_a_conversation_keyed_by_its_notes_alone_is_still_continued(store):
    """Conversations logged before the key held the opening question carry the notes-only key."""
    cid = logged(store, key=context_hash(NOTES))
    assert store.get_conversation(cid).context_key == context_hash(NOTES)
    assert find(store, request(*SO_FAR, ("user", "Yes, the museum."))).id == cid


def test_a_conversation_that_moved_on_or_was_never_answered_is_not_continued(store):
    cid = logged(store)
    store.add_turn(cid, role="user", kind="user", text="The museum.")
    store.add_turn(cid, role="assistant", kind="answer", text="It opens at 9 am.")
    assert refused(store, request(*SO_FAR, ("user", "The library."))) == (409, "conversation_mismatch")
    assert refused(store, request(("user", "When does it open?"), ("user", "Hello?"))) == (409, "conversation_mismatch")


def test_a_retry_after_a_failed_reply_continues_without_the_unanswered_question(store):
    cid = logged(store)
    store.add_turn(cid, role="user", kind="user", text="The museum.")
    store.add_turn(cid, role="assistant", kind="answer", text="It op", status="failed", error="engine down")
    assert find(store, request(*SO_FAR, ("user", "The museum."))).id == cid


def test_an_explicit_id_must_be_the_clients_own_api_conversation_with_the_same_log(store):
    mine = logged(store)
    bobs = logged(store, user="bob")
    from_ui = logged(store, source="ui", user="alice")
    chat = request(*SO_FAR, ("user", "Yes."))
    assert find(store, chat, conversation_id=mine).id == mine
    assert find(store, request(*SO_FAR, ("user", "Yes."), notes=None), conversation_id=mine).id == mine  # notes kept
    assert refused(store, chat, conversation_id=bobs) == (403, "not_your_conversation")
    assert refused(store, chat, conversation_id=from_ui) == (403, "not_your_conversation")
    assert refused(store, chat, conversation_id="0" * 32) == (404, "conversation_not_found")
    assert refused(store, request(("user", "Yes.")), conversation_id=mine) == (409, "conversation_mismatch")
    assert refused(store, request(*SO_FAR, ("user", "Yes."), notes="Other."), conversation_id=mine) == \
        (409, "conversation_mismatch")


def test_the_model_must_fit_the_conversations_adapter(store):
    cid = logged(store, adapter="swift-1")
    chat = request(*SO_FAR, ("user", "Yes."))
    assert find(store, chat, model="clarify").id == cid
    assert find(store, chat, model="swift-1").id == cid
    assert refused(store, chat, model="swift-2") == (409, "conversation_mismatch")
    assert refused(store, chat, model="swift-2", conversation_id=cid) == (409, "conversation_mismatch")


def test_a_server_crash_mid_reply_is_repaired_for_api_conversations_too(store):
    cid = logged(store, turns=(("user", "When does it open?"),))
    assert store.fail_unanswered_turns() == 1
    assert [(t.role, t.status) for t in store.list_turns(cid)] == [("user", "ok"), ("assistant", "failed")]
