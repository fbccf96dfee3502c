"""Train one LoRA adapter from a Parquet snapshot. Runs in its own process (see learner/worker.py).

The adapter is written to a hidden temporary folder and renamed into place only
after every file (weights, config, metadata) is on disk: a crashed or killed run
leaves nothing that looks like a servable adapter.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

from agent.adapter_metadata import AdapterMetadata, write_metadata

from .calibration import calibrate
from .examples import Conversation, content_words, notes_views, read_snapshot, tokenize_example, turn_examples, view_keys
from .weights import MIN_STD, WEIGHTED_METHODS, Trajectory, compute_turn_weights

METHODS = ("refit", "swift", "sft", "dpo", "kto")
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # LoRA on every projection


class TrainingError(RuntimeError):
    """Training cannot proceed (e.g. too little data); the message is for the person who asked."""


@dataclass
class TrainConfig:
    method: str = "swift"
    base_model: str = ""
    epochs: float = 3.0                    # with lora_layers 10: 500 conversations train in ~17 min on 2 CPU cores
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
    max_needless_asks: float = 0.2         # the ask threshold may ask on at most this share of the calibration
                                           # questions where answering paid (the product's "<= 20% needless
                                           # questions"; learner.calibration)
    target_modules: list[str] = field(default_factory=lambda: list(ALL_LINEAR))
    lora_layers: int = 10                  # LoRA on the last this many decoder layers only (0: all): the backward
                                           # pass stops below them, which is most of a step's time (3-4 s vs 6-12 s)

    def check_values(self) -> None:
        """Refuse values that would train on nothing or on garbage. The one check behind the CLI (`--set`), the
        UI, the bench (via learner.jobs.check_overrides, before any snapshot) and train() itself."""
        if self.method not in METHODS:
            raise TrainingError(f"Unknown method {self.method!r}; use one of {', '.join(METHODS)}.")
        for f in fields(self):
            value = getattr(self, f.name)
            _require(not isinstance(value, float) or math.isfinite(value), f"{f.name} must be a finite number, not {value}.")
        _require(self.epochs > 0, f"epochs (passes over the logged data) must be above 0, not {self.epochs}.")
        _require(self.learning_rate > 0, f"learning_rate must be above 0, not {self.learning_rate}.")
        _require(self.lora_r >= 1 and self.lora_alpha > 0, f"lora_r must be 1 or more and lora_alpha above 0, "
                                                            f"not {self.lora_r} and {self.lora_alpha}.")
        _require(0.0 <= self.lora_dropout < 1.0, f"lora_dropout is a share, from 0 to below 1, not {self.lora_dropout}.")
        _require(self.batch_size >= 1 and self.max_length >= 1 and self.min_conversations >= 1,
                 f"batch_size, max_length and min_conversations must be 1 or more, not {self.batch_size}, "
                 f"{self.max_length} and {self.min_conversations}.")
        _require(self.max_steps == -1 or self.max_steps >= 1,
                 f"max_steps is -1 (the whole run) or a cap of 1 or more steps, not {self.max_steps}.")
        _require(self.decision_weight >= 0 and self.negative_nll_cap >= 0 and self.swift_min_std > 0,
                 f"decision_weight and negative_nll_cap (0: no cap) must be 0 or more and swift_min_std above 0, "
                 f"not {self.decision_weight}, {self.negative_nll_cap} and {self.swift_min_std}.")
        _require(self.notes_views >= 1, f"notes_views must be 1 or more (1 trains on the notes as logged), "
                                        f"not {self.notes_views}.")
        _require(0.0 <= self.rename_fraction <= 1.0, f"rename_fraction is a share of the notes' words, from 0 to 1, "
                                                     f"not {self.rename_fraction}.")
        _require(0.0 <= self.max_needless_asks <= 1.0, f"max_needless_asks is a share of questions, from 0 to 1, "
                                                       f"not {self.max_needless_asks}.")
        _require(self.lora_layers >= 0, f"lora_layers is a number of decoder layers (0: all), not {self.lora_layers}.")
        _require(bool(self.target_modules) and set(self.target_modules) <= set(ALL_LINEAR),
                 f"target_modules must be one or more of {', '.join(ALL_LINEAR)}, not {self.target_modules}.")
        _require("\x00" not in self.epoch_checkpoints and not Path(self.epoch_checkpoints or ".").is_file(),
                 f"epoch_checkpoints must be a folder to save the epochs' adapters in, not {self.epoch_checkpoints!r}.")
        _require(not self.init_adapter or Path(self.init_adapter).is_dir(),
                 f"init_adapter must be the folder of a LoRA adapter to continue, not {self.init_adapter!r}.")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A config from a saved one (an adapter's metadata, a training run's row): fields it no longer has are
        ignored, so adapters trained with options since removed still read."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise TrainingError(message)


ProgressFn = Callable[[dict], None]


def _trajectories(convs: list[Conversation]) -> list[Trajectory]:
    return [Trajectory(c.conversation_id, c.context_key, c.reward) for c in convs]


def build_weighted_dataset(convs: list[Conversation], tokenizer, cfg: TrainConfig) -> tuple[list[dict], dict]:
    extra = {"sft": {"threshold": cfg.sft_threshold}, "swift": {"min_std": cfg.swift_min_std}}.get(cfg.method, {})
    weights = compute_turn_weights(cfg.method, _trajectories(convs), **extra)
    rows, dropped = [], 0
    vocabulary = content_words(c.context for c in convs) if cfg.rename_fraction > 0 else None
    for conv in (view for c, key in zip(convs, view_keys(convs))
                 for view in notes_views(c, cfg.notes_views, cfg.seed, cfg.rename_fraction, vocabulary, key)):
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
    stats = {"examples": len(rows), "dropped_too_long": dropped,
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


def train(cfg: TrainConfig, snapshot: Path, out_dir: Path, report: ProgressFn = lambda _: None) -> AdapterMetadata:
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
            metrics = _train_weighted(cfg, model, tokenizer, logged, tmp, report)
        else:
            from .baselines import train_preference

            metrics = train_preference(cfg, model, tokenizer, logged, tmp, report)
        model.save_pretrained(tmp)
        metrics["train_seconds"] = round(time.time() - started, 1)
        calibration = calibrate(model, tokenizer, logged, cfg.horizon, cfg.max_needless_asks)
        metrics["ask_threshold"] = calibration["ask_threshold"]
        meta = AdapterMetadata(method=cfg.method, config=asdict(cfg), snapshot=str(snapshot),
                               n_conversations=len(logged), metrics=metrics, **calibration)
        write_metadata(tmp, meta)
        if out_dir.exists():
            raise TrainingError(f"{out_dir} already exists; refusing to overwrite an adapter.")
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    report({"event": "done", "metrics": metrics})
    return meta


def _with_lora(model, cfg: TrainConfig):
    """A fresh LoRA, or the weights of `init_adapter` to train further (more epochs on a saved adapter)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if not cfg.init_adapter:
        n_layers = model.config.num_hidden_layers
        layers = list(range(max(0, n_layers - cfg.lora_layers), n_layers)) if cfg.lora_layers else None
        return get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                                target_modules=cfg.target_modules, layers_to_transform=layers,
                                                task_type="CAUSAL_LM"))
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
