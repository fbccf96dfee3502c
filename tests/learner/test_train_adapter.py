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


def test_folded_clarifications_add_a_direct_answer_for_each_good_answer_after_asking(tokenizer):
    convs = [_conv("ask", "georgia", 0.9, True), _conv("guess", "georgia", 0.0, False),
             _conv("lucky", "georgia", 1.0, False), _conv("ask-wrong", "georgia-2", 0.0, True),
             _conv("other", "georgia-2", 1.0, False)]
    plain, plain_stats = build_weighted_dataset(convs, tokenizer, TrainConfig(method="swift", notes_views=1))
    rows, stats = build_weighted_dataset(convs, tokenizer, TrainConfig(method="swift", notes_views=1,
                                                                     fold_clarifications=True))
    # Only the good answer after asking folds: a negative weight on an answer's first token would push
    # clear questions toward asking.
    assert (plain_stats["folded_conversations"], stats["folded_conversations"]) == (0, 1)
    assert len(rows) == len(plain) + 1
    folded = [r for r in rows if r["conversation_id"] == "ask~folded"]
    assert len(folded) == 1
    answer_after_asking = [r for r in rows if r["conversation_id"] == "ask"][1]
    # The same answer, weighted as the answer after the clarification, but now the decision: a first turn.
    assert folded[0]["weight"] == answer_after_asking["weight"] > 0
    assert folded[0]["first_token_weight"] == TrainConfig().decision_weight
    labelled = lambda row: [t for t in row["labels"] if t != -100]  # noqa: E731
    assert labelled(folded[0]) == labelled(answer_after_asking)
    prompt = tokenizer.decode([t for t, lab in zip(folded[0]["input_ids"], folded[0]["labels"]) if lab == -100])
    assert "What is the capital of Georgia? The country." in prompt and "Do you mean" not in prompt


def test_narrowed_notes_add_a_direct_answer_to_the_same_question_with_one_matching_fact(tokenizer):
    convs = [_conv("ask", "georgia", 0.9, True), _conv("guess", "georgia", 0.0, False),
             _conv("lucky", "georgia", 1.0, False), _conv("ask-wrong", "georgia-2", 0.0, True),
             _conv("other", "georgia-2", 1.0, False)]
    plain, plain_stats = build_weighted_dataset(convs, tokenizer, TrainConfig(method="swift", notes_views=1))
    rows, stats = build_weighted_dataset(convs, tokenizer, TrainConfig(method="swift", notes_views=1, narrow_notes=True))
    assert (plain_stats["narrowed_conversations"], stats["narrowed_conversations"]) == (0, 1)  # the good answer only
    assert len(rows) == len(plain) + 1
    narrowed = [r for r in rows if r["conversation_id"] == "ask~narrowed"]
    answer_after_asking = [r for r in rows if r["conversation_id"] == "ask"][1]
    assert narrowed[0]["weight"] == answer_after_asking["weight"] > 0
    assert narrowed[0]["first_token_weight"] == TrainConfig().decision_weight  # it is the decision now
    labelled = lambda row: [t for t in row["labels"] if t != -100]  # noqa: E731
    assert labelled(narrowed[0]) == labelled(answer_after_asking)
    prompt = tokenizer.decode([t for t, lab in zip(narrowed[0]["input_ids"], narrowed[0]["labels"]) if lab == -100])
    assert "capital Tbilisi" in prompt and "Atlanta" not in prompt  # the other reading is gone from the notes
    assert "What is the capital of Georgia?" in prompt and "The country." not in prompt and "Do you mean" not in prompt


@pytest.mark.parametrize("views", [0, -2])
def test_train_refuses_fewer_than_one_notes_order_before_it_loads_anything(model_path, tmp_path, views):
    """Zero orders would train on nothing; a bench `--set notes_views=0` must fail, not silently mean 1."""
    with pytest.raises(TrainingError, match=fr"notes_views \(--notes-views\) must be 1 or more .*not {views}"):
        train(TrainConfig(method="swift", base_model=model_path, notes_views=views),
              tmp_path / "missing.parquet", tmp_path / "adapter")
    assert list(tmp_path.iterdir()) == []


def test_train_refuses_an_unknown_method_before_it_loads_anything(model_path, tmp_path):
    with pytest.raises(TrainingError, match="Unknown method 'ppo'; use one of refit, swift"):
        train(TrainConfig(method="ppo", base_model=model_path), tmp_path / "missing.parquet", tmp_path / "adapter")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_train_refuses_a_rename_share_outside_zero_to_one_before_it_loads_anything(model_path, tmp_path, fraction):
    with pytest.raises(TrainingError, match=fr"rename_fraction \(--rename-words\) is a share .*not {fraction}"):
        train(TrainConfig(method="swift", base_model=model_path, rename_fraction=fraction),
              tmp_path / "missing.parquet", tmp_path / "adapter")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("count", [-1, 5])
def test_train_refuses_a_distractor_count_outside_zero_to_four_before_it_loads_anything(model_path, tmp_path, count):
    with pytest.raises(TrainingError, match=fr"distractors \(--distractors\) is a number of sentences .*not {count}"):
        train(TrainConfig(method="swift", base_model=model_path, distractors=count),
              tmp_path / "missing.parquet", tmp_path / "adapter")
    assert list(tmp_path.iterdir()) == []


def test_distractors_add_another_contexts_sentence_to_the_copies_only_and_keep_the_weights(tokenizer):
    convs = _georgia_and("bakery", "The bakery sells rye bread. Croissants cost $3.")
    cfg = dict(method="swift", notes_views=3, rename_fraction=0.0)
    plain, _ = build_weighted_dataset(convs, tokenizer, TrainConfig(**cfg))
    added, _ = build_weighted_dataset(convs, tokenizer, TrainConfig(**cfg, distractors=1))
    assert [(r["conversation_id"], r["weight"]) for r in added] == [(r["conversation_id"], r["weight"]) for r in plain]
    prompts = {r["conversation_id"]: [] for r in added}
    for row in added:
        prompts[row["conversation_id"]].append(tokenizer.decode(row["input_ids"]))
    for cid, texts in prompts.items():
        logged, copies = texts[: len(texts) // 3], texts[len(texts) // 3:]
        if "bakery" in cid:  # its turns ask about Georgia: the Georgia notes are related, never a distractor
            assert not any("(US state)" in t or "(country)" in t for t in texts)
            continue
        assert not any("bakery" in t or "Croissants" in t for t in logged)  # the conversation as logged is unchanged
        assert all("bakery" in t or "Croissants" in t for t in copies)  # each copy holds a sentence of the bakery notes


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
