"""Snapshot conversations -> weighted training rows: which turns get which weight."""

from __future__ import annotations

from collections import Counter

import pytest

from agent.policy import Message
from learner.examples import Conversation
from learner.train_adapter import TrainConfig, TrainingError, build_weighted_dataset, train


def _conv(cid: str, key: str, reward: float, asked: bool) -> Conversation:
    user = Message("user", "What is the capital of Georgia?", "user")
    if asked:
        msgs = [user, Message("assistant", "Do you mean the country or the US state?", "ask"),
                Message("user", "The country.", "user"), Message("assistant", "Tbilisi.", "answer")]
    else:
        msgs = [user, Message("assistant", "Atlanta.", "answer")]
    return Conversation(cid, key, "Georgia (country): capital Tbilisi. Georgia (US state): capital Atlanta.", reward, msgs)


def _georgia_and(key: str, notes: str) -> list[Conversation]:
    """Three logged conversations of the Georgia question, and the same three under another context's notes."""
    from dataclasses import replace

    georgia = [_conv("ask", "georgia", 0.9, True), _conv("guess", "georgia", 0.0, False),
               _conv("lucky", "georgia", 1.0, False)]
    return georgia + [replace(c, conversation_id=f"{c.conversation_id}-{key}", context_key=key, context=notes)
                      for c in georgia]


@pytest.fixture(scope="module")
def tokenizer(model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


def test_decision_weight_lands_on_first_agent_turns_only(tokenizer):
    convs = [_conv("ask", "georgia", 0.9, True), _conv("guess", "georgia", 0.0, False),
             _conv("lucky", "georgia", 1.0, False)]
    rows, stats = build_weighted_dataset(convs, tokenizer, TrainConfig(method="swift", decision_weight=6.0, notes_views=1))
    assert stats["examples"] == 4  # two turns of the asking conversation, one of each guess
    by_conv: dict[str, list[dict]] = {}
    for row in rows:
        by_conv.setdefault(row["conversation_id"], []).append(row)
    first_turns = [turns[0] for turns in by_conv.values()]
    assert all(r["first_token_weight"] == 6.0 for r in first_turns)
    assert "first_token_weight" not in by_conv["ask"][1]  # the answer after the clarification
    # Per-context Swift on the first turn: the three weights sum to zero, asking is above the wrong guess.
    assert sum(r["weight"] for r in first_turns) == pytest.approx(0.0, abs=1e-9)
    assert by_conv["ask"][0]["weight"] > 0 > by_conv["guess"][0]["weight"]


def test_notes_views_repeat_every_turn_with_reordered_notes_and_the_same_weight(tokenizer):
    convs = [_conv("ask", "georgia", 0.9, True), _conv("guess", "georgia", 0.0, False),
             _conv("lucky", "georgia", 1.0, False)]
    plain, _ = build_weighted_dataset(convs, tokenizer, TrainConfig(method="swift", notes_views=1))
    views, stats = build_weighted_dataset(convs, tokenizer, TrainConfig(method="swift", notes_views=2, rename_fraction=0.0))
    assert stats["examples"] == 2 * len(plain)
    weights = lambda rows: sorted((r["conversation_id"], r["weight"]) for r in rows)  # noqa: E731
    assert weights(views) == sorted(weights(plain) * 2)
    # Same tokens in another order: the prompts differ, the completions (the labelled tokens) do not.
    assert {tuple(r["input_ids"]) for r in views} > {tuple(r["input_ids"]) for r in plain}
    labelled = lambda rows: Counter(tuple(t for t in r["labels"] if t != -100) for r in rows)  # noqa: E731
    assert labelled(views) == labelled(plain) + labelled(plain)


@pytest.mark.parametrize("views", [0, -2])
def test_train_refuses_fewer_than_one_notes_order_before_it_loads_anything(model_path, tmp_path, views):
    """Zero orders would train on nothing; a bench `--set notes_views=0` must fail, not silently mean 1."""
    with pytest.raises(TrainingError, match=fr"notes_views must be 1 or more .*not {views}"):
        train(TrainConfig(method="swift", base_model=model_path, notes_views=views),
              tmp_path / "missing.parquet", tmp_path / "adapter")
    assert list(tmp_path.iterdir()) == []


def test_train_refuses_an_unknown_method_before_it_loads_anything(model_path, tmp_path):
    with pytest.raises(TrainingError, match="Unknown method 'ppo'; use one of refit, swift"):
        train(TrainConfig(method="ppo", base_model=model_path), tmp_path / "missing.parquet", tmp_path / "adapter")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_train_refuses_a_rename_share_outside_zero_to_one_before_it_loads_anything(model_path, tmp_path, fraction):
    with pytest.raises(TrainingError, match=fr"rename_fraction is a share .*not {fraction}"):
        train(TrainConfig(method="swift", base_model=model_path, rename_fraction=fraction),
              tmp_path / "missing.parquet", tmp_path / "adapter")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("values, message", [
    ({"epochs": 0.0}, r"epochs \(passes over the logged data\) must be above 0, not 0.0"),
    ({"learning_rate": float("nan")}, "learning_rate must be a finite number, not nan"),
    ({"lora_dropout": 1.0}, "lora_dropout is a share, from 0 to below 1, not 1.0"),
    ({"batch_size": 0}, "batch_size, max_length and min_conversations must be 1 or more, not 0, 512 and 4"),
    ({"max_steps": 0}, "max_steps is -1 .* or a cap of 1 or more steps, not 0"),
    ({"target_modules": ["q_proj", "lm_head"]}, "target_modules must be one or more of q_proj, k_proj"),
    ({"target_modules": []}, "target_modules must be one or more of"),
    ({"lora_layers": -1}, r"lora_layers is a number of decoder layers \(0: all\), not -1"),
])
def test_check_values_refuses_values_that_would_train_on_garbage(values, message):
    with pytest.raises(TrainingError, match=message):
        TrainConfig(**values).check_values()


def test_check_values_refuses_a_file_for_the_epoch_folder_and_a_missing_folder_to_continue(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    with pytest.raises(TrainingError, match="epoch_checkpoints must be a folder"):
        TrainConfig(epoch_checkpoints=str(a_file)).check_values()
    with pytest.raises(TrainingError, match="epoch_checkpoints must be a folder"):
        TrainConfig(epoch_checkpoints="ck\x00").check_values()
    with pytest.raises(TrainingError, match="init_adapter must be the folder of a LoRA adapter"):
        TrainConfig(init_adapter=str(tmp_path / "missing")).check_values()
    TrainConfig(epoch_checkpoints=str(tmp_path / "new"), init_adapter=str(tmp_path)).check_values()  # fine


def test_a_saved_config_with_options_since_removed_still_reads():
    saved = {"method": "refit", "epochs": 2.0, "distractors": 1, "calibration_share": 0.15, "ask_renamed_views": 4,
             "fold_clarifications": True, "narrow_notes": False, "ask_views": 3}
    cfg = TrainConfig.from_dict(saved)
    assert (cfg.method, cfg.epochs, cfg.notes_views) == ("refit", 2.0, TrainConfig().notes_views)


def test_renamed_views_keep_each_turns_weight_and_rename_only_the_copies(tokenizer):
    convs = _georgia_and("paris", "Paris (France): museums everywhere. Paris (Texas): small friendly town.")
    plain, _ = build_weighted_dataset(convs, tokenizer, TrainConfig(method="swift", notes_views=3, rename_fraction=0.0))
    renamed, _ = build_weighted_dataset(convs, tokenizer, TrainConfig(method="swift", notes_views=3, rename_fraction=0.5))
    assert [(r["conversation_id"], r["weight"]) for r in renamed] == [(r["conversation_id"], r["weight"]) for r in plain]
    by_conv = lambda rows: {c.conversation_id: [r for r in rows if r["conversation_id"] == c.conversation_id]  # noqa: E731
                            for c in convs}
    for cid, rows in by_conv(renamed).items():
        logged = len(rows) // 3  # the first of the three views is the conversation as logged
        plain_rows = by_conv(plain)[cid]
        assert [r["input_ids"] for r in rows[:logged]] == [r["input_ids"] for r in plain_rows[:logged]]
        assert all(a["input_ids"] != b["input_ids"] for a, b in zip(rows[logged:], plain_rows[logged:]))


def test_epoch_checkpoints_follow_logged_data_epochs_with_views_and_a_step_cap(tmp_path):
    from types import SimpleNamespace

    from learner.train_adapter import _epoch_checkpoint_callback

    saved: list[str] = []
    model = SimpleNamespace(save_pretrained=lambda folder: saved.append(folder.name))

    def run(steps_per_epoch, max_steps):
        saved.clear()
        callback = _epoch_checkpoint_callback(tmp_path, steps_per_epoch)
        state = SimpleNamespace(max_steps=max_steps, global_step=0, epoch=0.0)
        callback.on_train_begin(None, state, None)
        for step in range(1, max_steps + 1):
            state.global_step, state.epoch = step, step / max_steps
            callback.on_step_end(None, state, None, model=model)
        callback.on_epoch_end(None, state, None, model=model)
        return list(saved)

    # 5 views of 3 logged epochs' data: one dataset pass of 12.6 steps per logged epoch -> ends at 13, 25, 38.
    assert run(63 / 5, 38) == ["epoch1", "epoch2", "epoch3"]
    assert run(63 / 5, 30) == ["epoch1", "epoch2"]       # capped by max_steps: no checkpoint is mislabelled
    assert run(None, 10) == ["epoch1"]                   # no views: once per dataset pass, as before


@pytest.mark.parametrize("layers", [0, 10])
def test_lora_layers_puts_the_adapter_on_the_last_layers_only(model_path, layers):
    """The trainable weights sit in the last `lora_layers` decoder layers (0: all), so backward stops below them."""
    import re

    import torch
    from transformers import AutoModelForCausalLM

    from learner.train_adapter import _with_lora

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    n = model.config.num_hidden_layers
    peft_model = _with_lora(model, TrainConfig(lora_layers=layers))
    trained = {int(re.search(r"layers\.(\d+)\.", name).group(1))
               for name, p in peft_model.named_parameters() if p.requires_grad}
    assert trained == set(range(n - layers if layers else 0, n))
