"""The chat service's conversation keys: the same question on the same notes is one group (a real DuckDB file,
no model)."""

from __future__ import annotations

from types import SimpleNamespace

from agent.chat_service import DEFAULT_NOTES, ChatService
from learner.examples import read_snapshot
from logs_db.snapshot import export_snapshot
from logs_db.store import context_hash, conversation_key


def test_the_same_question_on_the_same_notes_groups_together_and_different_questions_separate(store, tmp_path):
    service = ChatService(store, SimpleNamespace(name="fake"))
    openings = {
        "espresso": ["How much is an espresso?", "how much is an  espresso", "How much is an espresso ??",
                     "HOW MUCH IS AN ESPRESSO."],
        "hours": ["When does the Harbor branch open?"],
    }
    ids = {name: [service.start(DEFAULT_NOTES, opening=text) for text in texts] for name, texts in openings.items()}
    other_notes = service.start("The Harbor branch sells tea only.", opening="How much is an espresso?")
    key = {cid: store.get_conversation(cid).context_key for cids in ids.values() for cid in cids + [other_notes]}

    assert len({key[cid] for cid in ids["espresso"]}) == 1            # casefold, whitespace, trailing punctuation
    assert key[ids["hours"][0]] != key[ids["espresso"][0]]              # another question
    assert key[other_notes] != key[ids["espresso"][0]]                  # the same question on other notes
    assert key[ids["espresso"][0]] == conversation_key(DEFAULT_NOTES, "How much is an espresso?")
    assert store.get_conversation(service.start(DEFAULT_NOTES)).context_key == context_hash(DEFAULT_NOTES)

    # The learner reads the groups from the snapshot: one per question and notes.
    for cid, text in [(c, t) for name in openings for c, t in zip(ids[name], openings[name])] + [
            (other_notes, "How much is an espresso?")]:
        store.add_turn(cid, role="user", kind="user", text=text)
        reply = store.add_turn(cid, role="assistant", kind="answer", text="$3 at Harbor.")
        store.add_rating(reply, kind="thumbs", value=1)
    groups: dict[str, int] = {}
    for conv in read_snapshot(export_snapshot(store, tmp_path / "snapshot.parquet").path):
        groups[conv.context_key] = groups.get(conv.context_key, 0) + 1
    assert sorted(groups.values()) == [1, 1, 4]


def test_the_service_from_settings_is_the_one_clarify_serve_runs(store):
    from clarify.settings import Settings

    settings = Settings(max_new_tokens=40, temperature=0.3, max_clarifying_questions=2, max_message_chars=50,
                        max_context_chars=60, explore=0.2)
    service = ChatService.from_settings(store, SimpleNamespace(name="fake"), settings)
    assert (service.params.max_new_tokens, service.params.temperature, service.horizon, service.max_message_chars,
            service.max_context_chars, service.explore) == (40, 0.3, 2, 50, 60, 0.2)
