"""Real (short) training runs on the bundled model: produce, register, reload; failures register nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from safetensors.torch import load_file

from learner.jobs import TrainingFailed, run_training

pytestmark = pytest.mark.slow

def test_short_run_produces_registers_and_reloads_an_adapter(settings, store, log_georgia, engine):
    log_georgia(8)
    events = []
    outcome = run_training(settings, store, method="swift", overrides={"max_steps": 2, "batch_size": 4},
                           on_progress=events.append)
    assert any(e.get("event") == "progress" for e in events)
    record = store.get_adapter(outcome.adapter_id)
    assert record.status == "candidate" and record.method == "swift" and record.snapshot_hash
    assert record.train_metrics["steps"] == 2
    assert store.list_training_runs()[0].status == "succeeded"
    weights = load_file(Path(record.path) / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())  # it trained (B starts at 0)
    engine.load_adapter(outcome.adapter_id, Path(record.path))
    reply = "".join(engine.stream([{"role": "user", "content": "Hi"}],
                                  __import__("agent.engine", fromlist=["GenerationParams"]).GenerationParams(max_new_tokens=8),
                                  adapter=outcome.adapter_id))
    assert reply.strip()
    engine.unload_adapter(outcome.adapter_id)


def test_a_run_calibrates_the_ask_threshold_on_renamed_copies_of_its_questions(settings, store, log_georgia, engine):
    import json

    from agent.decision import AskDecision
    from learner.calibration import THRESHOLD_RANGE

    log_georgia(48)  # 24 questions, each logged once asking (reward 0.9) and once guessing (0)
    outcome = run_training(settings, store, method="swift", overrides={"max_steps": 1, "batch_size": 4})
    meta = json.loads((outcome.path / "clarify_adapter.json").read_text())
    assert meta["n_conversations"] == 48
    assert meta["calibration"]["questions"] == "renamed copies of the trained questions"
    assert meta["calibration"]["n_questions"] == 24
    # Asking paid on every question: the threshold moves down from greedy's 0.5 (as far as the clip allows,
    # for an adapter trained one step) and never earns less than greedy on them.
    assert THRESHOLD_RANGE[0] <= meta["ask_threshold"] < 0.5
    assert meta["calibration"]["at_threshold"]["logged_value"] >= meta["calibration"]["at_0.5"]["logged_value"]
    engine.load_adapter(outcome.adapter_id, outcome.path)
    try:
        assert "ask_views" not in meta  # P(ask) is read once, on the prompt as given
        assert engine.ask_decisions[outcome.adapter_id] == AskDecision(meta["ask_threshold"])
    finally:
        engine.unload_adapter(outcome.adapter_id)


def test_too_little_data_is_refused_and_registers_nothing(settings, store, log_georgia):
    log_georgia(2)
    with pytest.raises(TrainingFailed, match="at least"):
        run_training(settings, store, method="refit")
    assert store.list_adapters() == []
    assert store.list_training_runs()[0].status == "failed"


def test_cancelled_run_leaves_no_adapter_and_no_files(settings, store, log_georgia):
    log_georgia(8)
    cancel = threading.Event()

    def on_progress(event):
        if event.get("event") == "progress":
            cancel.set()

    with pytest.raises(TrainingFailed, match="cancelled"):
        run_training(settings, store, method="refit", overrides={"max_steps": 50, "batch_size": 2},
                     on_progress=on_progress, cancel=cancel)
    assert store.list_adapters() == []
    assert store.list_training_runs()[0].status == "cancelled"
    assert not any(settings.adapters_dir.iterdir()) if settings.adapters_dir.exists() else True


@pytest.mark.parametrize("method", ["swift", "dpo"])  # weighted SFT and a TRL baseline share the callbacks
def test_epoch_checkpoints_are_loadable_adapters_and_not_registered(settings, store, log_georgia, engine, tmp_path, method):
    log_georgia(8)
    folder = tmp_path / "checkpoints"
    outcome = run_training(settings, store, method=method,
                           overrides={"epochs": 2, "batch_size": 8, "epoch_checkpoints": str(folder)})
    assert sorted(p.name for p in folder.iterdir()) == ["epoch1", "epoch2"]
    assert [a.id for a in store.list_adapters()] == [outcome.adapter_id]  # checkpoints are for probing only
    engine.load_adapter("epoch1", folder / "epoch1")  # a standard PEFT folder the engines accept
    engine.unload_adapter("epoch1")


def test_continuing_a_registered_adapter_starts_from_its_weights_and_records_the_parent(settings, store, log_georgia):
    log_georgia(8)
    parent = run_training(settings, store, method="swift", overrides={"max_steps": 2, "batch_size": 4, "lora_r": 4})
    parent_weights = load_file(parent.path / "adapter_model.safetensors")
    child = run_training(settings, store, method="swift", overrides={"max_steps": 2, "batch_size": 4},
                         parent_id=parent.adapter_id)
    record = store.get_adapter(child.adapter_id)
    assert record.parent_id == parent.adapter_id
    assert record.hyperparams["init_adapter"] == str(parent.path.resolve())
    # The parent's rank 4 is kept (a fresh LoRA would have the default rank 16), and training went on from its weights.
    child_weights = load_file(child.path / "adapter_model.safetensors")
    assert parent_weights.keys() == child_weights.keys()
    assert all(child_weights[k].shape == v.shape and v.shape[0 if "lora_A" in k else 1] == 4
               for k, v in parent_weights.items())
    assert any(not child_weights[k].equal(v) for k, v in parent_weights.items() if "lora_B" in k)
    after = load_file(parent.path / "adapter_model.safetensors")  # the parent's folder is left as it was
    assert all(after[k].equal(v) for k, v in parent_weights.items())
    assert record.hyperparams["seed"] == settings.seed
    # Continuing the same parent again is another draw (the next seed), so the two can be averaged.
    again = run_training(settings, store, method="swift", overrides={"max_steps": 2, "batch_size": 4},
                         parent_id=parent.adapter_id)
    assert store.get_adapter(again.adapter_id).hyperparams["seed"] == settings.seed + 1
    again_weights = load_file(again.path / "adapter_model.safetensors")
    assert any(not again_weights[k].equal(v) for k, v in child_weights.items() if "lora_B" in k)


def test_continuing_an_unknown_or_broken_adapter_is_refused_before_training(settings, store, log_georgia, tmp_path):
    log_georgia(8)
    with pytest.raises(TrainingFailed, match="Cannot continue from adapter 'nope'"):
        run_training(settings, store, method="swift", parent_id="nope")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    (broken / "adapter_model.safetensors").write_bytes(b"garbage")
    store.register_adapter(adapter_id="broken", method="swift", path=str(broken))
    with pytest.raises(TrainingFailed, match="not valid JSON"):
        run_training(settings, store, method="swift", parent_id="broken")
    assert [a.id for a in store.list_adapters()] == ["broken"]  # nothing new registered
    assert store.list_training_runs() == []  # refused before a run started


@pytest.mark.parametrize("overrides, message", [
    ({"seed": 1}, "'seed' is set by the training run itself"),
    ({"method": "sft"}, "'method' is set by the training run itself"),
    ({"lora_rank": 4}, "Unknown training option 'lora_rank'.*lora_r"),
    ({"distractors": 1}, "Unknown training option 'distractors'"),  # an option since removed
    ({"notes_views": 0}, r"notes_views must be 1 or more.*not 0"),
    ({"rename_fraction": 1.5}, r"rename_fraction is a share of the notes' words, from 0 to 1.*not 1.5"),
    ({"ask_views": 1}, "Unknown training option 'ask_views'"),  # removed: P(ask) is read once
    ({"epochs": -1.0}, r"epochs \(passes over the logged data\) must be above 0, not -1.0"),
])
def test_overrides_that_clash_name_no_option_or_hold_a_bad_value_are_refused_before_any_work(
        settings, store, log_georgia, overrides, message):
    log_georgia(8)
    with pytest.raises(TrainingFailed, match=message):
        run_training(settings, store, method="swift", overrides=overrides)
    assert store.list_adapters() == []
    assert store.list_training_runs() == []  # refused before a snapshot or a run row
    assert not settings.snapshots_dir.exists() or list(settings.snapshots_dir.iterdir()) == []


def test_an_unknown_method_is_refused_before_any_work(settings, store, log_georgia):
    log_georgia(8)
    with pytest.raises(TrainingFailed, match="Unknown method 'ppo'; use one of refit, swift, sft, dpo, kto."):
        run_training(settings, store, method="ppo")
    assert store.list_adapters() == [] and store.list_training_runs() == []
    assert not settings.snapshots_dir.exists() or list(settings.snapshots_dir.iterdir()) == []


def test_cli_train_records_its_rename_share_and_zero_turns_renames_off(settings, store, log_georgia, tmp_path):
    """`clarify train --set rename_fraction=0`: recorded with the adapter; without it, TrainConfig's default."""
    from typer.testing import CliRunner

    from clarify.cli import app as cli

    from logs_db.store import LogStore

    log_georgia(8)
    store.close()  # the CLI opens the file itself, as it would from a shell
    for args in (["--set", "rename_fraction=0"], []):
        result = CliRunner().invoke(cli, ["train", *args, "--max-steps", "1", "--set", "batch_size=4",
                                          "--set", "notes_views=2", "--data-dir", str(tmp_path), "--model", settings.model, "--threads", "1"])
        assert result.exit_code == 0, result.output
    with LogStore(tmp_path / "clarify.duckdb") as reopened:
        shares = sorted(a.hyperparams["rename_fraction"] for a in reopened.list_adapters())
    from learner.train_adapter import TrainConfig

    assert shares == [0.0, TrainConfig().rename_fraction] and TrainConfig().rename_fraction > 0
