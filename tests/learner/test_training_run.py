"""Real (short) training runs on the bundled model: produce, register, reload; failures register nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from safetensors.torch import load_file

from learner.jobs import TrainingFailed, run_training

pytestmark = pytest.mark.slow

NOTES = "Georgia is a country in the Caucasus; its capital is Tbilisi. Georgia is also a US state; its capital is Atlanta."


def _log_conversations(store, n: int) -> None:
    for i in range(n):
        cid = store.new_conversation(source="simulated", context=NOTES, context_key=f"georgia-{i // 2}")
        store.add_turn(cid, role="user", kind="user", text="What is the capital of Georgia?")
        if i % 2 == 0:
            store.add_turn(cid, role="assistant", kind="ask", text="Do you mean the country or the US state?")
            store.add_turn(cid, role="user", kind="user", text="The country.")
            store.add_turn(cid, role="assistant", kind="answer", text="The capital of Georgia is Tbilisi.")
            store.set_conversation_reward(cid, 0.9)
        else:
            store.add_turn(cid, role="assistant", kind="answer", text="The capital of Georgia is Atlanta.")
            store.set_conversation_reward(cid, 0.0)


def test_short_run_produces_registers_and_reloads_an_adapter(settings, store, engine):
    _log_conversations(store, 8)
    events = []
    outcome = run_training(settings, store, method="swift", overrides={"max_steps": 2, "batch_size": 4},
                           on_progress=events.append)
    assert any(e.get("event") == "progress" for e in events)
    record = store.get_adapter(outcome.adapter_id)
    assert record.status == "candidate" and record.method == "swift" and record.snapshot_hash
    assert record.train_metrics["steps"] == 2
    assert store.list_training_runs()[0]["status"] == "succeeded"
    weights = load_file(Path(record.path) / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())  # it trained (B starts at 0)
    engine.load_adapter(outcome.adapter_id, Path(record.path))
    reply = "".join(engine.stream([{"role": "user", "content": "Hi"}],
                                  __import__("agent.engine", fromlist=["GenerationParams"]).GenerationParams(max_new_tokens=8),
                                  adapter=outcome.adapter_id))
    assert reply.strip()
    engine.unload_adapter(outcome.adapter_id)


def test_too_little_data_is_refused_and_registers_nothing(settings, store):
    _log_conversations(store, 2)
    with pytest.raises(TrainingFailed, match="at least"):
        run_training(settings, store, method="refit")
    assert store.list_adapters() == []
    assert store.list_training_runs()[0]["status"] == "failed"


def test_cancelled_run_leaves_no_adapter_and_no_files(settings, store):
    _log_conversations(store, 8)
    cancel = threading.Event()

    def on_progress(event):
        if event.get("event") == "progress":
            cancel.set()

    with pytest.raises(TrainingFailed, match="cancelled"):
        run_training(settings, store, method="refit", overrides={"max_steps": 50, "batch_size": 2},
                     on_progress=on_progress, cancel=cancel)
    assert store.list_adapters() == []
    assert store.list_training_runs()[0]["status"] == "cancelled"
    assert not any(settings.adapters_dir.iterdir()) if settings.adapters_dir.exists() else True


@pytest.mark.parametrize("method", ["swift", "dpo"])  # weighted SFT and a TRL baseline share the callbacks
def test_epoch_checkpoints_are_loadable_adapters_and_not_registered(settings, store, engine, tmp_path, method):
    _log_conversations(store, 8)
    folder = tmp_path / "checkpoints"
    outcome = run_training(settings, store, method=method,
                           overrides={"epochs": 2, "batch_size": 8, "epoch_checkpoints": str(folder)})
    assert sorted(p.name for p in folder.iterdir()) == ["epoch1", "epoch2"]
    assert [a.id for a in store.list_adapters()] == [outcome.adapter_id]  # checkpoints are for probing only
    engine.load_adapter("epoch1", folder / "epoch1")  # a standard PEFT folder the engines accept
    engine.unload_adapter("epoch1")
