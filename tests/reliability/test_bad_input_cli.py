"""Bad input to the CLI, the Adapters tab and the trainer, one test per case: each gets a clear answer and
changes nothing it should not.

Adapter ids through the CLI and the Adapters tab; corrupt adapters through the real PEFT engine; broken
benchmark files through `clarify eval`; tiny training sets through the real training path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.chat_service import DEFAULT_NOTES
from agent.engine import GenerationParams
from clarify.cli import app as cli
from ui.access import Access
from ui.adapters_tab import AdaptersHandlers

pytestmark = pytest.mark.slow  # the real model, or the real CLI and trainer


def cli_error(*args: str) -> str:
    """Run the real `clarify` CLI; it must exit 2 with one line on stderr and no traceback. Returns the line."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]



# -- adapter ids and adapter folders ------------------------------------------------------------------------------

@pytest.fixture
def decoy(tmp_path, lora_template) -> Path:
    """A valid LoRA folder outside the registry: a path-shaped id must never reach it."""
    path = tmp_path / "data" / "adapters" / "decoy"
    shutil.copytree(lora_template, path)
    return path


def adapter_ids(decoy: Path) -> dict[str, str]:
    return {"dot-dot": "..", "relative path": "../adapters/decoy", "absolute path": str(decoy),
            "nested path": "adapters/decoy"}


@pytest.mark.parametrize("case", ["dot-dot", "relative path", "absolute path", "nested path"])
def test_adapter_id_shaped_like_a_path(settings, store, engine, rows, decoy, case):
    """Adapter id: {case}.

    Done: use it with `clarify adapters show`, `clarify adapters activate`, `clarify eval --adapter`, and in the
    Adapters tab's Promote, Run promotion gate and A/B split (as an admin).
    Checked: the CLI exits 2 with one line "No adapter with id ..." and no traceback; the tab answers with an
    error; nothing is activated, no gate runs, the A/B split stays off, and the decoy folder the id points
    at is never loaded into the engine. Ids are only ever looked up in the registry (bound SQL parameters).
    """
    from agent.chat_service import ChatService

    adapter_id = adapter_ids(decoy)[case]
    data = str(settings.data_dir)
    for args in (("adapters", "show", adapter_id), ("adapters", "activate", adapter_id),
                 ("eval", "--adapter", adapter_id, "--limit", "1")):
        assert f"No adapter with id {adapter_id!r}" in cli_error(*args, "--data-dir", data)
    from learner.training_service import TrainingManager

    before = rows(store)
    manager = TrainingManager(settings, store, engine)
    h = AdaptersHandlers(settings, store, ChatService(store, engine), manager, Access())
    assert "No adapter with id" in h.promote(adapter_id)[0]
    assert "No adapter with id" in h.gate(adapter_id) and not manager.busy
    assert "No adapter with id" in h.set_ab(adapter_id, 0.5)[0] and h.service.ab_state() == (None, 0.0)
    assert rows(store) == before and store.active_adapter() is None
    assert not any(Path(p).resolve() == decoy.resolve() for p in engine.adapters.values())


def corrupt(path: Path, case: str) -> None:
    if case == "garbage weights":
        (path / "adapter_model.safetensors").write_bytes(b"\x00garbage" * 64)
    elif case == "truncated weights":
        data = (path / "adapter_model.safetensors").read_bytes()
        (path / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    elif case == "truncated config":
        text = (path / "adapter_config.json").read_text()
        (path / "adapter_config.json").write_text(text[: len(text) // 2])
    elif case == "not a LoRA adapter":
        config = json.loads((path / "adapter_config.json").read_text())
        (path / "adapter_config.json").write_text(json.dumps({**config, "peft_type": "PREFIX_TUNING"}))
    elif case == "empty folder":
        shutil.rmtree(path)
        path.mkdir()


CORRUPTIONS = {"garbage weights": "cannot be read", "truncated weights": "cannot be read",
               "truncated config": "is not valid JSON", "not a LoRA adapter": "only LoRA is served",
               "empty folder": "is not a PEFT adapter"}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_adapter_folder(settings, store, engine, make_adapter, case):
    """Corrupt adapter folder: {case}.

    Done: register an adapter, corrupt its folder, then Promote it in the Adapters tab and chat.
    Checked: Promote answers "Cannot activate ...: <why>"; the base model stays active; PEFT never touched
    the shared model (no LoRA layer named after it); a new conversation is answered by the base model.
    """
    from agent.chat_service import ChatService

    adapter_id = make_adapter("corrupt")
    corrupt(Path(store.get_adapter(adapter_id).path), case)
    service = ChatService(store, engine, params=GenerationParams(max_new_tokens=4))
    message = AdaptersHandlers(settings, store, service, None, Access()).promote(adapter_id)[0]
    assert f"Cannot activate {adapter_id}" in message and CORRUPTIONS[case] in message
    assert store.active_adapter() is None and adapter_id not in engine.adapters
    assert adapter_id not in getattr(engine.model, "peft_config", {})
    reply = service.reply(service.start(DEFAULT_NOTES), "How much is an espresso?")
    assert "".join(reply) and store.get_turn(reply.turn_id).adapter_id is None


def test_active_adapter_corrupted_on_disk_later(settings, store, engine, make_adapter):
    """Corrupt adapter folder: the active adapter's weights are damaged after it was promoted.

    Done: promote a good adapter, then damage its weights on disk and drop it from the engine (as after a
    restart); start a new conversation.
    Checked: the new conversation is answered by the base model (adapter none) instead of failing; the
    registry still names the adapter as active so an admin can see and replace it.
    """
    from agent.chat_service import ChatService

    adapter_id = make_adapter("later")
    service = ChatService(store, engine, params=GenerationParams(max_new_tokens=4))
    assert "is now active" in AdaptersHandlers(settings, store, service, None, Access()).promote(adapter_id)[0]
    engine.unload_adapter(adapter_id)
    corrupt(Path(store.get_adapter(adapter_id).path), "garbage weights")
    cid = service.start(DEFAULT_NOTES)
    reply = service.reply(cid, "How much is an espresso?")
    assert "".join(reply) and store.get_conversation(cid).adapter_id is None
    assert store.active_adapter().id == adapter_id


# -- benchmark files, training sets -------------------------------------------------------------------------------

GOOD_ITEM = json.dumps({"id": "a", "context": "Espresso costs $3.", "question": "How much is an espresso?",
                        "interpretations": [{"clarification": "Espresso.", "answer": "$3"}]})
BROKEN_LINES = {"truncated JSON line": GOOD_ITEM[:40], "NUL bytes": "\x00\x00\x00",
                "a JSON array": "[1, 2, 3]", "UTF-8 byte order mark": "\ufeff" + GOOD_ITEM}


@pytest.mark.parametrize("case", list(BROKEN_LINES))
def test_benchmark_file_with_a_broken_line(settings, case):
    """Benchmark file with a broken line: {case}.

    Done: run `clarify eval --items FILE` on a file whose first line is good and whose second line is broken
    (for the byte order mark: the first line starts with it).
    Checked: exit code 2, one line naming the file and line number, no traceback; nothing is evaluated and no
    database is created.
    """
    items = settings.data_dir.parent / "items.jsonl"
    lines = [BROKEN_LINES[case]] if case == "UTF-8 byte order mark" else [GOOD_ITEM, BROKEN_LINES[case]]
    items.write_text("\n".join(lines) + "\n")
    line = cli_error("eval", "--items", str(items), "--data-dir", str(settings.data_dir))
    assert f"{items}:{len(lines)}" in line
    assert not settings.database.exists()


@pytest.mark.parametrize("n", [0, 1], ids=["zero conversations", "one conversation"])
def test_training_with_too_little_data(settings, store, log_rated, n):
    """Training with {case}.

    Done: start a training run (the path the Training tab and the scheduler use) with that many rated
    conversations logged.
    Checked: refused with "at least 4" before any trainer process starts; the run is recorded as failed; no
    adapter is registered and no adapter folder exists.
    """
    from learner.jobs import TrainingFailed, run_training

    log_rated(store, n)
    with pytest.raises(TrainingFailed, match=f"Only {n} rated conversation\\(s\\) match; at least 4"):
        run_training(settings, store, method="swift")
    assert store.list_adapters() == [] and store.list_training_runs()[0].status == "failed"
    assert not settings.adapters_dir.exists() or not any(settings.adapters_dir.iterdir())


def test_cli_training_with_one_conversation(settings, log_rated):
    """Training with one conversation from the command line.

    Done: log one rated conversation, run `clarify train`.
    Checked: exit code 2 with one line "Only 1 rated conversation(s) match; at least 4 are needed", no
    traceback, no adapter registered.
    """
    from logs_db.store import LogStore

    with LogStore(settings.database) as store:
        log_rated(store, 1)
    assert "at least 4 are needed" in cli_error("train", "--data-dir", str(settings.data_dir), "--model", settings.model)
    with LogStore(settings.database) as store:
        assert store.list_adapters() == []


def test_cli_training_from_an_unknown_adapter(settings, log_rated):
    """Continuing an adapter id that is not registered.

    Done: log enough rated conversations, run `clarify train --from-adapter "x'; DROP TABLE adapters; --"`.
    Checked: exit code 2 with one line naming the id, no traceback, no training run and no adapter; the
    id reached the database only as a bound parameter (the adapters table is still there).
    """
    from logs_db.store import LogStore

    with LogStore(settings.database) as store:
        log_rated(store, 6)
    bad_id = "x'; DROP TABLE adapters; --"
    line = cli_error("train", "--from-adapter", bad_id, "--data-dir", str(settings.data_dir), "--model", settings.model)
    assert "Cannot continue from adapter" in line and "No adapter with id" in line
    with LogStore(settings.database) as store:
        assert store.list_adapters() == [] and store.list_training_runs() == []


def test_cli_training_with_no_notes_order(settings, log_rated):
    """`clarify train --set notes_views=0`: zero orders of the notes would train on nothing.

    Done: log enough rated conversations, run it. Checked: exit code 2 with one line that says what is
    allowed, and no training run or adapter is registered.
    """
    from logs_db.store import LogStore

    with LogStore(settings.database) as store:
        log_rated(store, 6)
    line = cli_error("train", "--set", "notes_views=0", "--data-dir", str(settings.data_dir), "--model", settings.model)
    assert "--set notes_views=0: notes_views must be 1 or more" in line and "not 0" in line
    with LogStore(settings.database) as store:
        assert store.list_adapters() == [] and store.list_training_runs() == []


@pytest.mark.parametrize("share", ["1.5", "-0.2"])
def test_cli_training_with_a_rename_share_outside_zero_to_one(settings, log_rated, share):
    """`clarify train --set rename_fraction=1.5`: a share of words must lie in [0, 1].

    Checked: exit code 2 with one line that says what is allowed, and nothing is registered.
    """
    from logs_db.store import LogStore

    with LogStore(settings.database) as store:
        log_rated(store, 6)
    line = cli_error("train", "--set", f"rename_fraction={share}", "--data-dir", str(settings.data_dir),
                     "--model", settings.model)
    assert "rename_fraction is a share of the notes' words, from 0 to 1" in line and f"not {float(share)}" in line
    with LogStore(settings.database) as store:
        assert store.list_adapters() == [] and store.list_training_runs() == []
