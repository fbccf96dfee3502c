"""Preference baselines through TRL, on the same snapshot as Refit/Swift.

- dpo: for each context with trajectories of different reward, the first agent
  turn of the best trajectory is `chosen` and that of the worst is `rejected`
  (the ask-or-answer decision lives in that turn; a StepDPO-style first step).
- kto: every agent turn is an unpaired example labelled desirable when its
  conversation's reward is >= 0.5: the natural objective for thumbs-only data.

Both get the model already wrapped with the LoRA config, so TRL uses the
adapter-disabled model as the frozen reference.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .examples import Conversation, turn_examples


def dpo_pairs(convs: list[Conversation], horizon: int) -> list[dict]:
    groups: dict[str, list[Conversation]] = defaultdict(list)
    for c in convs:
        groups[c.context_key].append(c)
    pairs = []
    for group in groups.values():
        best = max(group, key=lambda c: c.reward)
        worst = min(group, key=lambda c: c.reward)
        if best.reward <= worst.reward:
            continue
        chosen, rejected = turn_examples(best, horizon), turn_examples(worst, horizon)
        if not chosen or not rejected or chosen[0].completion == rejected[0].completion:
            continue
        pairs.append({"prompt": chosen[0].prompt,
                      "chosen": [{"role": "assistant", "content": chosen[0].completion}],
                      "rejected": [{"role": "assistant", "content": rejected[0].completion}]})
    return pairs


def kto_examples(convs: list[Conversation], horizon: int) -> list[dict]:
    return [
        {"prompt": ex.prompt, "completion": [{"role": "assistant", "content": ex.completion}],
         "label": conv.reward >= 0.5}
        for conv in convs for ex in turn_examples(conv, horizon)
    ]


def train_preference(cfg, model, tokenizer, convs: list[Conversation], tmp: Path, report) -> dict:
    from datasets import Dataset

    from .train_adapter import TrainingError, trainer_callbacks

    common = dict(output_dir=str(tmp / "trainer"), per_device_train_batch_size=cfg.batch_size,
                  num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
                  lr_scheduler_type="cosine", logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
                  bf16=cfg.bf16, seed=cfg.seed, max_length=cfg.max_length, beta=0.1)
    if cfg.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        rows = dpo_pairs(convs, cfg.horizon)
        if not rows:
            raise TrainingError("DPO needs at least one context with two trajectories of different reward.")
        trainer = DPOTrainer(model=model, args=DPOConfig(**common), train_dataset=Dataset.from_list(rows),
                             processing_class=tokenizer, callbacks=trainer_callbacks(cfg, report))
    else:
        from trl import KTOConfig, KTOTrainer

        rows = kto_examples(convs, cfg.horizon)
        labels = {r["label"] for r in rows}
        if labels != {True, False}:
            raise TrainingError("KTO needs both desirable (reward >= 0.5) and undesirable conversations.")
        trainer = KTOTrainer(model=model, args=KTOConfig(**common), train_dataset=Dataset.from_list(rows),
                             processing_class=tokenizer, callbacks=trainer_callbacks(cfg, report))
    result = trainer.train()
    import shutil

    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    return {"examples": len(rows), "train_loss": round(float(result.training_loss), 5), "steps": result.global_step}
