"""The learning loop's wall time, from "start training" to "the new adapter answers", phase by phase.

500 synthetic conversations in the simulator's format (bench/synthetic.py: graded, varied rewards) are
logged to a fresh DuckDB file, then the same functions the Training tab and the promotion gate call run in
order, each timed:

* snapshot: ``learner.jobs.run_training`` exports the rated conversations to Parquet;
* trainer start-up: the child process (``learner.worker``) imports, loads the model, tokenizes;
* train steps: Swift (the default method and TrainConfig) for ``--max-steps`` optimizer steps;
* save + register: the adapter written atomically, validated and registered;
* eval (gate): ``learner.promotion.evaluate_adapter`` on the first ``--gate-items`` dev items, greedy, for
  the candidate; the baseline (base model) once, as the first gate of a server does (later gates reuse it);
* load: ``learner.promotion.activate`` hot-loads the adapter into the serving engine and makes it active;
* first reply: a chat's first streamed text from the new adapter.

A full run is longer than is worth waiting for on this CPU, so steps and gate items are capped and the
table also shows the projection to a full run: steps scale linearly (steps per epoch x TrainConfig.epochs),
eval linearly in items (batches of 8 through ``generate_batch``).

Usage: .venv/bin/python bench/loop.py [--conversations 500] [--max-steps 8] [--gate-items 16]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.engine import GenerationParams  # noqa: E402
from agent.policy import Message, build_prompt  # noqa: E402
from agent.simulator import log_conversations  # noqa: E402
from agent.transformers_engine import TransformersEngine  # noqa: E402
from bench.common import describe  # noqa: E402
from bench.synthetic import conversations  # noqa: E402
from clarify.model_store import resolve_model  # noqa: E402
from clarify.settings import Settings  # noqa: E402
from learner.jobs import run_training  # noqa: E402
from learner.promotion import activate, evaluate_adapter, gate_items  # noqa: E402
from learner.train_adapter import TrainConfig  # noqa: E402
from logs_db.store import LogStore  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--conversations", type=int, default=500)
    p.add_argument("--max-steps", type=int, default=8, help="optimizer steps of the measured run")
    p.add_argument("--gate-items", type=int, default=16, help="dev items of the measured gate evaluation")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=REPO / ".clarify", help="where the converted model is")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    machine = describe()
    model = resolve_model(None, Settings(data_dir=args.data_dir).models_dir)
    phases: dict[str, float] = {}
    marks: dict[str, float] = {}

    def on_progress(event: dict) -> None:
        name = event.get("event")
        if name in ("snapshot", "start"):
            marks[name] = time.perf_counter()
        elif name == "progress":
            marks["last_step"] = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="clarify-bench-loop-") as tmp:
        settings = Settings(data_dir=Path(tmp), model=str(model), engine="transformers", threads=args.threads,
                            gate_items=args.gate_items)
        engine = TransformersEngine(model, threads=args.threads, dtype=settings.dtype)
        with LogStore(settings.database) as store:
            t = time.perf_counter()
            log_conversations(store, conversations(args.conversations, seed=0))
            logged = time.perf_counter() - t
            log(f"logged {args.conversations} conversations in {logged:.1f} s")

            start = time.perf_counter()  # "start training"
            outcome = run_training(settings, store, method="swift", overrides={"max_steps": args.max_steps},
                                   on_progress=on_progress)
            done = time.perf_counter()
            phases["snapshot"] = marks["snapshot"] - start
            phases["trainer start-up"] = marks["start"] - marks["snapshot"]
            phases[f"train steps ({outcome.metrics['steps']})"] = marks["last_step"] - marks["start"]
            phases["save + register"] = done - marks["last_step"]
            log(f"trained {outcome.adapter_id}: {outcome.metrics}")

            items = gate_items(settings)
            t = time.perf_counter()
            evaluate_adapter(settings, store, engine, None, items)
            baseline_eval = time.perf_counter() - t
            t = time.perf_counter()
            engine.load_adapter(outcome.adapter_id, outcome.path)
            load = time.perf_counter() - t
            t = time.perf_counter()
            evaluate_adapter(settings, store, engine, outcome.adapter_id, items)
            phases[f"eval (gate, {len(items)} items)"] = time.perf_counter() - t
            t = time.perf_counter()
            activate(store, engine, outcome.adapter_id, kind="gate")
            phases["load (activate)"] = load + time.perf_counter() - t
            item = items[0]
            prompt = build_prompt(item.context, [Message("user", item.question, "user")], horizon=1)
            t = time.perf_counter()
            stream = engine.stream(prompt, GenerationParams(max_new_tokens=settings.max_new_tokens),
                                   adapter=outcome.adapter_id)
            next(stream)
            phases["first reply (time to first text)"] = time.perf_counter() - t
            stream.close()
        engine.close()

    total = sum(phases.values())
    examples = outcome.metrics["examples"]
    full_steps = math.ceil(examples / TrainConfig.batch_size) * TrainConfig.epochs
    step_s = phases[f"train steps ({outcome.metrics['steps']})"] / outcome.metrics["steps"]
    full_gate = Settings.model_fields["gate_items"].default
    projected = dict(phases)
    projected[f"train steps ({outcome.metrics['steps']})"] = step_s * full_steps
    projected[f"eval (gate, {len(items)} items)"] *= full_gate / len(items)

    print(f"clarify loop bench: {args.conversations} synthetic conversations ({examples} agent-turn examples), "
          f"method swift, TrainConfig defaults, transformers engine (threads={args.threads}, {settings.dtype})")
    print(f"machine: {machine}")
    print()
    print(f"| phase | measured (max_steps={args.max_steps}, {len(items)} gate items) | "
          f"projected full run ({full_steps:.0f} steps = {TrainConfig.epochs:g} epochs, {full_gate} gate items) |")
    print("|---|---:|---:|")
    for name, seconds in phases.items():
        print(f"| {name} | {seconds:.2f} s | {projected[name]:.1f} s |")
    print(f"| **total: start training -> new adapter answering** | **{total:.0f} s** | "
          f"**{sum(projected.values()) / 60:.0f} min** |")
    print()
    print(f"Not in the total: the base model's gate evaluation on the same items, {baseline_eval:.1f} s "
          f"({baseline_eval * full_gate / len(items):.0f} s for {full_gate} items), run once per server (later "
          f"gates reuse it); logging the {args.conversations} conversations took {logged:.1f} s.")


if __name__ == "__main__":
    main()
