"""Training speed: our reward-weighted trainer vs TRL's SFTTrainer, same conversations, model and LoRA config.

The conversations are synthetic ones in the simulator's format (bench/synthetic.py, train split, reward 1
so Refit's weights are all 1 and its objective is plain SFT, the same as TRL's), 500 of them as in a real
run (the size decides how well batches can be length-grouped), logged to a temporary DuckDB file and
exported to the Parquet snapshot the learner reads. Every run trains ``--steps`` optimizer steps on the
same agent-turn examples with the bundled SmolLM2-135M, LoRA r=16 on all projections (TrainConfig's
defaults), batch 8, one torch thread:

* ``ours``: the shipped path, ``learner.train_adapter.train`` (RewardWeightedTrainer: the LM head only at
  the agent-turn positions, length-grouped batches), in fp32 and with bf16 autocast (TrainConfig.bf16);
* ablations of ours, one lever each: LoRA on every decoder layer instead of the last ``lora_layers``
  (the backward pass then runs through the whole model), the full-logits loss (``head_only_on_targets=False``),
  and random batches (padding to the longest of a random 8 instead of length-grouped);
* ``TRL SFTTrainer``: prompt-completion conversational dataset of the same turns (completion-only loss),
  TRL's defaults (gradient checkpointing on, its chunked fused LM head, which on CPU scores every position)
  and with gradient checkpointing off, in fp32 and bf16.

Tokens/s counts the real (non-padding) tokens each trainer's collator produced, over the optimizer steps'
wall time (forward, backward, optimizer; data collation and set-up excluded). A warm-up run comes first.
Runs alternate ours/TRL so load changes on the shared box hit both.

Usage: .venv/bin/python bench/training.py [--conversations 500] [--steps 3] [--runs ours,trl,...] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from agent.simulator import log_conversations  # noqa: E402
from bench.common import describe  # noqa: E402
from bench.synthetic import conversations  # noqa: E402
from clarify.model_store import resolve_model  # noqa: E402
from clarify.settings import Settings  # noqa: E402
from learner import trainer as ours_trainer  # noqa: E402
from learner.examples import read_snapshot, turn_examples  # noqa: E402
from learner.train_adapter import TrainConfig, _progress_callback, train  # noqa: E402
from logs_db.snapshot import export_snapshot  # noqa: E402
from logs_db.store import LogStore  # noqa: E402

BATCH = 8


@dataclass
class Run:
    label: str
    trainer: str                 # ours | trl
    bf16: bool = False
    head_only: bool = True       # ours: LM head only at agent-turn positions
    grouped: bool = True         # ours: length-grouped batches
    checkpointing: bool = True   # trl: gradient checkpointing (TRL's default)
    all_layers: bool = False     # ours: LoRA on every decoder layer instead of TrainConfig.lora_layers


RUNS = {
    "ours": Run("ours (head only, length-grouped), fp32", "ours"),
    "ours-bf16": Run("ours, bf16 autocast", "ours", bf16=True),
    "ours-full-logits": Run("ours with full logits (ablation)", "ours", head_only=False),
    "ours-random-batches": Run("ours with random batches (ablation)", "ours", grouped=False),
    "ours-all-layers": Run("ours with LoRA on every layer (ablation of lora_layers)", "ours", all_layers=True),
    "trl": Run("TRL SFTTrainer (defaults: grad. checkpointing), fp32", "trl"),
    "trl-no-gc": Run("TRL SFTTrainer, no grad. checkpointing, fp32", "trl", checkpointing=False),
    "trl-bf16": Run("TRL SFTTrainer (defaults), bf16 autocast", "trl", bf16=True),
    "trl-no-gc-bf16": Run("TRL SFTTrainer, no grad. checkpointing, bf16", "trl", bf16=True, checkpointing=False),
}
# Alternating ours/TRL, so a change of load on the shared machine hits both sides.
DEFAULT_RUNS = "ours,trl,ours-all-layers,ours-full-logits,trl-no-gc,ours-random-batches,ours-bf16,trl-no-gc-bf16"


@dataclass
class Meter:
    """Real and padded tokens of every collated batch, and the wall time of every optimizer step."""

    tokens: list[int] = field(default_factory=list)
    padded: list[int] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)

    def wrap(self, collator):
        def collate(features):
            batch = collator(features)
            mask = batch["attention_mask"]
            self.tokens.append(int(mask.sum()))
            self.padded.append(int(mask.numel()))
            return batch

        return collate

    def callback(self):
        from transformers import TrainerCallback

        meter = self

        class StepTimer(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                self.t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                meter.steps.append(time.perf_counter() - self.t)

        return StepTimer()

    def result(self) -> dict:
        n = len(self.steps)  # the collator may have prefetched one batch more than the steps run
        tokens, padded, seconds = sum(self.tokens[:n]), sum(self.padded[:n]), sum(self.steps)
        return dict(steps=n, tokens=tokens, seconds=seconds, tok_s=tokens / seconds,
                    padding=1 - tokens / padded, step_s=seconds / n)


def metered(base, meter: Meter, **extra):
    """A subclass of trainer class `base` that reports to `meter` (and optionally changes one lever)."""

    class Metered(base):
        def __init__(self, *args, **kwargs):
            if not extra.get("grouped", True):
                kwargs["args"].train_sampling_strategy = "random"
            super().__init__(*args, **kwargs)
            self.data_collator = meter.wrap(self.data_collator)
            self.add_callback(meter.callback())

        if not extra.get("head_only", True):
            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                nll = ours_trainer.per_example_nll(model, inputs["input_ids"], inputs["attention_mask"],
                                                   inputs["labels"], head_only_on_targets=False)
                return ours_trainer.weighted_loss(nll, inputs["weights"])

    return Metered


def run_ours(run: Run, cfg: TrainConfig, snapshot: Path, out: Path) -> dict:
    meter = Meter()
    original = ours_trainer.RewardWeightedTrainer
    ours_trainer.RewardWeightedTrainer = metered(original, meter, head_only=run.head_only, grouped=run.grouped)
    try:
        meta = train(replace(cfg, bf16=run.bf16, lora_layers=0 if run.all_layers else cfg.lora_layers), snapshot, out)
    finally:
        ours_trainer.RewardWeightedTrainer = original
    return {**meter.result(), "loss": meta.metrics["train_loss"]}


def run_trl(run: Run, cfg: TrainConfig, snapshot: Path, out: Path) -> dict:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = [{"prompt": ex.prompt, "completion": [{"role": "assistant", "content": ex.completion}]}
            for conv in read_snapshot(snapshot) for ex in turn_examples(conv, cfg.horizon)]
    tokenizer = AutoTokenizer.from_pretrained(cfg.base_model)
    model = AutoModelForCausalLM.from_pretrained(cfg.base_model, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                             target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    steps = math.ceil(len(rows) / cfg.batch_size)
    args = SFTConfig(
        output_dir=str(out / "trainer"), per_device_train_batch_size=cfg.batch_size, num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps, learning_rate=cfg.learning_rate, lr_scheduler_type="cosine",
        warmup_steps=max(1, steps // 10), logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        bf16=run.bf16, seed=cfg.seed, max_length=cfg.max_length, gradient_checkpointing=run.checkpointing,
        dataloader_num_workers=0, disable_tqdm=True,
    )
    meter = Meter()
    trainer = metered(SFTTrainer, meter)(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                         processing_class=tokenizer, callbacks=[_progress_callback(lambda _: None)])
    result = trainer.train()
    return {**meter.result(), "loss": round(float(result.training_loss), 5)}


def make_snapshot(tmp: Path, n: int) -> Path:
    convs = conversations(n, seed=0)
    for conv in convs:
        conv.reward = 1.0  # Refit weight 1 for every turn: plain SFT, TRL's objective
    with LogStore(tmp / "bench.duckdb") as store:
        log_conversations(store, convs)
        return export_snapshot(store, tmp / "snapshot.parquet").path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--conversations", type=int, default=500, help="synthetic conversations (about 1.27 turns each)")
    p.add_argument("--steps", type=int, default=3, help="optimizer steps per run")
    p.add_argument("--runs", default=DEFAULT_RUNS, help=f"comma-separated, from {', '.join(RUNS)}")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=REPO / ".clarify")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model_path = resolve_model(None, Settings(data_dir=args.data_dir).models_dir)
    machine = describe()
    results = {}
    with tempfile.TemporaryDirectory(prefix="clarify-bench-train-") as tmp:
        tmp = Path(tmp)
        snapshot = make_snapshot(tmp, args.conversations)
        examples = sum(len(turn_examples(c, 1)) for c in read_snapshot(snapshot))
        steps = args.steps
        cfg = TrainConfig(method="refit", base_model=str(model_path.resolve()), epochs=1, max_steps=steps,
                          batch_size=BATCH, threads=args.threads, min_conversations=1)
        log(f"{examples} agent-turn examples from {args.conversations} conversations; {steps} steps per run")
        with contextlib.redirect_stdout(sys.stderr):  # the trainers print their logs; stdout is the table
            run_ours(Run("warm-up", "ours"), replace(cfg, max_steps=1), snapshot, tmp / "warm-up")
        for i, key in enumerate(args.runs.split(",")):
            run = RUNS[key]
            fn = run_ours if run.trainer == "ours" else run_trl
            with contextlib.redirect_stdout(sys.stderr):
                results[key] = fn(run, cfg, snapshot, tmp / f"run-{i}")
            r = results[key]
            log(f"  {run.label:55s} {r['tok_s']:7.1f} tok/s  {r['step_s']:5.2f} s/step  loss {r['loss']}")
    print_table(results, examples, steps, args, machine, time.perf_counter() - started)


def print_table(results: dict, examples: int, steps: int, args, machine: str, wall: float) -> None:
    print(f"clarify training bench: SmolLM2-135M-Instruct, LoRA r=16 on all projections, batch {BATCH}, "
          f"{examples} agent-turn examples from {args.conversations} synthetic conversations, {steps} steps "
          f"per run, torch threads={args.threads}")
    print(f"machine: {machine}; whole run {wall:.0f} s")
    print()
    ref = results.get("ours")
    print("| run | tokens/s | s/step | padding | train loss | ours fp32 / this |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, r in results.items():
        ratio = f"{ref['tok_s'] / r['tok_s']:.2f}x" if ref else "-"
        print(f"| {RUNS[key].label} | {r['tok_s']:.1f} | {r['step_s']:.2f} | {r['padding']:.0%} | {r['loss']} | {ratio} |")
    print()
    for ours, theirs in (("ours", "trl"), ("ours", "trl-no-gc"), ("ours-bf16", "trl-bf16"),
                         ("ours-bf16", "trl-no-gc-bf16")):
        if ours in results and theirs in results:
            print(f"- {RUNS[ours].label} vs {RUNS[theirs].label}: "
                  f"**{results[ours]['tok_s'] / results[theirs]['tok_s']:.2f}x** tokens/s")


if __name__ == "__main__":
    main()
