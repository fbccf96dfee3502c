"""Train one LoRA adapter from a Parquet snapshot. Runs in its own process (see learner/worker.py).

The adapter is written to a hidden temporary folder and renamed into place only
after every file (weights, config, metadata) is on disk: a crashed or killed run
leaves nothing that looks like a servable adapter.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from agent.decision import MAX_VIEWS, METADATA_FILE

from .calibration import calibrate, split_for_calibration
from .examples import (Conversation, DistractorPool, content_words, fold_clarification, notes_views, read_snapshot,
                       narrow_to_clarified, tokenize_example, turn_examples, view_keys)
from .weights import MIN_STD, WEIGHTED_METHODS, Trajectory, compute_turn_weights

METHODS = ("refit", "swift", "sft", "dpo", "kto")
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # LoRA on every projection


MAX_DISTRACTORS = 4  # unrelated sentences per view: more would drown short notes


class TrainingError(RuntimeError):
    """Training cannot proceed (e.g. too little data); the message is for the person who asked."""


@dataclass
class TrainConfig:
    method: str = "swift"
    base_model: str = ""
    epochs: float = 5.0                    # 5 beat 3 on dev (0.666 vs 0.641, docs/RESULTS.md); gains level off after ~5
    learning_rate: float = 4e-4            # with decision_weight 12: the best of the runs in docs/RESULTS.md
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    batch_size: int = 8
    max_length: int = 512
    seed: int = 0
    threads: int = 1
    horizon: int = 1
    bf16: bool = False                     # autocast; 2.5-3x SLOWER on CPUs without avx512_bf16/AMX (measured)
    sft_threshold: float = 0.5
    swift_min_std: float = MIN_STD
    negative_nll_cap: float = 3.0          # a negative-weight turn stops pushing once its mean NLL is above this
    decision_weight: float = 12.0          # the first agent turn's first token (ask or answer) counts this many times
    min_conversations: int = 4
    max_steps: int = -1                    # > 0 caps the run (tests, smoke runs)
    epoch_checkpoints: str = ""            # a folder: also save the adapter after every epoch (epoch1, epoch2, ...)
    init_adapter: str = ""                 # a LoRA folder to continue training (its rank and modules win over lora_*)
    notes_views: int = 5                   # each epoch sees the notes' sentences in another order (1: only as logged);
                                           # 0.692 vs 0.666 on dev at the same cost, fewer needless questions (docs/RESULTS.md)
    rename_fraction: float = 0.5           # the reordered views also rename this share of the notes' word families
                                           # and numbers, consistently in every turn (learner.examples.rename_words;
                                           # 0: off); dev ask-probe AUC 0.72 -> 0.90 with 0.5 (docs/RESULTS.md)
    distractors: int = 0                   # each reordered view also gets this many sentences from unrelated notes
                                           # of the snapshot (learner.examples.DistractorPool): "several facts" stops
                                           # meaning "ask"; 0: off
    calibration_share: float = 0.0         # share of the logged opening questions held out of training to set the
                                           # adapter's ask threshold on (learner.calibration); 0: train on all and
                                           # set it on renamed copies of them (holding out 15% cost more reward than
                                           # the threshold earned, docs/LEARNING.md)
    max_needless_asks: float = 0.2         # the threshold may ask on at most this share of the held-out questions
                                           # where answering paid (the product's "<= 20% needless questions")
    ask_views: int = 3                     # orders of the notes the ask decision pools P(ask) over (1: as given);
                                           # each costs one prefill per decision (agent/decision.py)
    ask_renamed_views: int = 0             # renamed copies (half the notes' words renamed, agent/renaming.py) the
                                           # ask decision also pools P(ask) over; each one more prefill
    fold_clarifications: bool = False      # also train "question + its clarification -> the answer", for the
                                           # conversations whose answer after asking was good (hindsight relabeling)
    narrow_notes: bool = False             # also train "question -> the answer" on the notes cut down to the fact the
                                           # clarification picked (learner.examples.narrow_to_clarified): one
                                           # matching fact, no question
    target_modules: list[str] = field(default_factory=lambda: list(ALL_LINEAR))

    def check_values(self) -> None:
        """Refuse values that would train on nothing or on garbage. The one check behind the CLI, the UI, the
        bench (via learner.jobs.check_overrides, before any snapshot) and train() itself."""
        if self.method not in METHODS:
            raise TrainingError(f"Unknown method {self.method!r}; use one of {', '.join(METHODS)}.")
        if self.notes_views < 1:
            raise TrainingError(f"notes_views (--notes-views) must be 1 or more (1 trains on the notes as logged), "
                                f"not {self.notes_views}.")
        if not 0.0 <= self.rename_fraction <= 1.0:
            raise TrainingError(f"rename_fraction (--rename-words) is a share of the notes' words, from 0 to 1, "
                                f"not {self.rename_fraction}.")
        if not 0 <= self.distractors <= MAX_DISTRACTORS:
            raise TrainingError(f"distractors (--distractors) is a number of sentences added to each reordered view "
                                f"of the notes, from 0 to {MAX_DISTRACTORS}, not {self.distractors}.")
        if not 0.0 <= self.max_needless_asks <= 1.0:
            raise TrainingError(f"max_needless_asks (--max-needless-asks) is a share of questions, from 0 to 1, "
                                f"not {self.max_needless_asks}.")
        if not 1 <= self.ask_views <= MAX_VIEWS:
            raise TrainingError(f"ask_views (--ask-views) is a number of orders of the notes, from 1 to {MAX_VIEWS}, "
                                f"not {self.ask_views}.")
        if not 0 <= self.ask_renamed_views <= MAX_VIEWS:
            raise TrainingError(f"ask_renamed_views (--ask-renamed-views) is a number of renamed copies, from 0 to "
                                f"{MAX_VIEWS}, not {self.ask_renamed_views}.")
        if not 0.0 <= self.calibration_share <= 0.5:
            raise TrainingError(f"calibration_share (--calibration-share) is the share of the logged questions held "
                                f"out to calibrate the ask decision, from 0 to 0.5, not {self.calibration_share}.")


ProgressFn = Callable[[dict], None]


def _trajectories(convs: list[Conversation]) -> list[Trajectory]:
    return [Trajectory(c.conversation_id, c.context_key, c.reward) for c in convs]


def _derived(convs: list[Conversation], weights: dict, derive) -> tuple[list[Conversation], dict]:
    """The copies `derive` makes (fold_clarification, narrow_to_clarified) of the conversations whose answer
    after the clarification has a positive weight, and the (first, later) weights of those copies.

    A copy is a direct answer and keeps that answer's weight. Only successes count: a negative weight on the
    first token of an answer would push the decision toward asking, on questions that are already clear.
    """
    out, out_weights = [], {}
    for conv in convs:
        if weights[conv.conversation_id][1] <= 0:
            continue
        copy = derive(conv)
        if copy is not None:
            out_weights[copy.conversation_id] = (weights[conv.conversation_id][1],) * 2
            out.append(copy)
    return out, out_weights


def build_weighted_dataset(convs: list[Conversation], tokenizer, cfg: TrainConfig) -> tuple[list[dict], dict]:
    extra = {"sft": {"threshold": cfg.sft_threshold}, "swift": {"min_std": cfg.swift_min_std}}.get(cfg.method, {})
    weights = compute_turn_weights(cfg.method, _trajectories(convs), **extra)
    folded, folded_weights = _derived(convs, weights, fold_clarification) if cfg.fold_clarifications else ([], {})
    narrowed, narrowed_weights = _derived(convs, weights, narrow_to_clarified) if cfg.narrow_notes else ([], {})
    convs, weights = convs + folded + narrowed, {**weights, **folded_weights, **narrowed_weights}
    rows, dropped = [], 0
    vocabulary = content_words(c.context for c in convs) if cfg.rename_fraction > 0 else None
    pool = DistractorPool(c.context for c in convs) if cfg.distractors > 0 else None
    for conv in (view for c, key in zip(convs, view_keys(convs))
                 for view in notes_views(c, cfg.notes_views, cfg.seed, cfg.rename_fraction, vocabulary,
                                         pool, cfg.distractors, key)):
        first, later = weights[conv.conversation_id]
        for t, ex in enumerate(turn_examples(conv, cfg.horizon)):
            w = first if t == 0 else later
            if w == 0.0:
                continue  # contributes nothing to the loss; skip the compute
            row = tokenize_example(tokenizer, ex, cfg.max_length)
            if row is None:
                dropped += 1
                continue
            row["weight"] = w
            if t == 0:
                row["first_token_weight"] = cfg.decision_weight
            rows.append(row)
    stats = {"examples": len(rows), "dropped_too_long": dropped, "folded_conversations": len(folded),
             "narrowed_conversations": len(narrowed),
             "weight_min": min((r["weight"] for r in rows), default=0.0),
             "weight_max": max((r["weight"] for r in rows), default=0.0)}
    return rows, stats


def _progress_callback(report: ProgressFn):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.start = time.time()
            report({"event": "start", "step": 0, "max_steps": state.max_steps})

        def on_log(self, args, state, control, logs=None, **kw):
            elapsed = time.time() - self.start
            eta = elapsed / max(state.global_step, 1) * (state.max_steps - state.global_step)
            report({"event": "progress", "step": state.global_step, "max_steps": state.max_steps,
                    "loss": (logs or {}).get("loss"), "elapsed": round(elapsed, 1), "eta": round(eta, 1)})

    return Progress()


def _epoch_checkpoint_callback(folder: Path, steps_per_epoch: float | None):
    """Save the LoRA weights at each epoch end, to pick the epoch with a cheap probe (bench/ask_probe.py).

    With notes views one pass over the dataset is several epochs of the logged data, so the caller gives
    the steps of one logged-data epoch and epoch k ends at step k * steps_per_epoch; None: at each pass.
    """
    from transformers import TrainerCallback

    class EpochCheckpoints(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.ends = {}
            k = 1
            while steps_per_epoch and round(k * steps_per_epoch) <= state.max_steps:
                self.ends[max(1, round(k * steps_per_epoch))] = k
                k += 1

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step in self.ends:
                model.save_pretrained(folder / f"epoch{self.ends[state.global_step]}")

        def on_epoch_end(self, args, state, control, model=None, **kw):
            if not steps_per_epoch:
                model.save_pretrained(folder / f"epoch{round(state.epoch)}")

    return EpochCheckpoints()


def trainer_callbacks(cfg: TrainConfig, report: ProgressFn, steps_per_epoch: float | None = None) -> list:
    """The callbacks every method's trainer gets (weighted SFT and the TRL baselines alike)."""
    callbacks = [_progress_callback(report)]
    if cfg.epoch_checkpoints:
        callbacks.append(_epoch_checkpoint_callback(Path(cfg.epoch_checkpoints), steps_per_epoch))
    return callbacks


def train(cfg: TrainConfig, snapshot: Path, out_dir: Path, report: ProgressFn = lambda _: None) -> dict:
    """Train and save atomically to `out_dir`; returns the metadata written beside the weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg.check_values()
    torch.set_num_threads(cfg.threads)
    logged = read_snapshot(snapshot)
    if len(logged) < cfg.min_conversations:
        raise TrainingError(
            f"Only {len(logged)} rated conversation(s) in the snapshot; at least {cfg.min_conversations} are needed."
        )
    convs, held_out = split_for_calibration(logged, cfg.calibration_share)
    tokenizer = AutoTokenizer.from_pretrained(cfg.base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(cfg.base_model, dtype=torch.float32)
    model = _with_lora(model, cfg)

    tmp = out_dir.parent / f".tmp-{out_dir.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    started = time.time()
    try:
        if cfg.method in WEIGHTED_METHODS:
            metrics = _train_weighted(cfg, model, tokenizer, convs, tmp, report)
        else:
            from .baselines import train_preference

            metrics = train_preference(cfg, model, tokenizer, convs, tmp, report)
        model.save_pretrained(tmp)
        metrics["train_seconds"] = round(time.time() - started, 1)
        calibration = calibrate(model, tokenizer, convs, held_out, logged, cfg.horizon, cfg.max_needless_asks,
                                cfg.ask_views, cfg.ask_renamed_views)
        metrics["ask_threshold"] = calibration["ask_threshold"]
        meta = {"method": cfg.method, "config": asdict(cfg), "snapshot": str(snapshot),
                "n_conversations": len(convs), "n_held_out": len(held_out), "metrics": metrics, **calibration}
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2))
        if out_dir.exists():
            raise TrainingError(f"{out_dir} already exists; refusing to overwrite an adapter.")
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    report({"event": "done", "metrics": metrics})
    return meta


def _with_lora(model, cfg: TrainConfig):
    """A fresh LoRA, or the weights of `init_adapter` to train further (more epochs on a saved adapter:
    docs/LEARNING.md, "Fifth session")."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if not cfg.init_adapter:
        return get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                                target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    try:
        return PeftModel.from_pretrained(model, cfg.init_adapter, is_trainable=True)
    except Exception as exc:  # noqa: BLE001 - peft raises many kinds (missing file, shape mismatch, bad JSON)
        raise TrainingError(f"Cannot continue from the adapter in {cfg.init_adapter}: {exc}") from exc


def _train_weighted(cfg, model, tokenizer, convs, tmp: Path, report: ProgressFn) -> dict:
    from transformers import TrainingArguments

    from .trainer import RewardWeightedTrainer, WeightedCollator

    rows, stats = build_weighted_dataset(convs, tokenizer, cfg)
    if not rows:
        raise TrainingError(
            "No trainable examples: every conversation got weight 0 (e.g. all rewards equal within each context)."
        )
    # With notes views the dataset holds every view once; `epochs` still counts passes over the logged data,
    # so one pass over the dataset is `views` epochs.
    views = cfg.notes_views
    steps_per_epoch = math.ceil(len(rows) / cfg.batch_size) / views  # steps of one logged-data epoch
    args = TrainingArguments(
        output_dir=str(tmp / "trainer"), per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=cfg.epochs / views, max_steps=cfg.max_steps, learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=max(1, int(steps_per_epoch // 10)),
        logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, bf16=cfg.bf16, seed=cfg.seed,
        remove_unused_columns=False, train_sampling_strategy="group_by_length", disable_tqdm=False, dataloader_num_workers=0,
    )
    trainer = RewardWeightedTrainer(model=model, negative_nll_cap=cfg.negative_nll_cap or None, args=args, train_dataset=rows,
                                    data_collator=WeightedCollator(tokenizer.pad_token_id),
                                    callbacks=trainer_callbacks(cfg, report, steps_per_epoch if views > 1 else None))
    result = trainer.train()
    shutil.rmtree(tmp / "trainer", ignore_errors=True)
    return {**stats, "train_loss": round(float(result.training_loss), 5), "steps": result.global_step}
