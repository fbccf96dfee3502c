"""The whole offline learning loop from scratch, and the table that says whether it learned.

1. Simulate with the base model on the train split: M sampled conversations per
   item (one of them with a forced clarifying question, so the behaviour data
   contains asking), graded, logged to a fresh DuckDB file.
2. Train each method (swift, refit, sft, dpo, kto) on the same snapshot, once per training seed (--seeds).
3. Evaluate base and every adapter greedily on the dev split (for choosing) and on the frozen test split
   (for reporting only, docs/TEST_SPLIT.md); neither is ever trained on.
4. Print one table, dev and test side by side; with --write, also docs/RESULTS.md (the current results only).

Usage: .venv/bin/python bench/learning.py [--methods swift,refit,sft,dpo] [--seeds 0,1] [--dev-limit N] [--write]
(the defaults are the measured recipe: extractive behaviour answers, and the reward-weighted methods refined
five times in a chain, 2 epochs at lr 2e-4 each; the baselines are trained once)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.evaluate import evaluate  # noqa: E402
from agent.item_budget import minimal_pairs_first  # noqa: E402
from agent.items import file_sha256, load_items  # noqa: E402
from agent.simulator import log_conversations, run_conversations, summarize  # noqa: E402
from agent.engine import GenerationParams  # noqa: E402
from agent.transformers_engine import TransformersEngine  # noqa: E402
from bench.common import describe, with_sections  # noqa: E402
from clarify.model_store import resolve_model  # noqa: E402
from clarify.settings import Settings  # noqa: E402
from learner.average import average_registered  # noqa: E402
from learner.jobs import run_training  # noqa: E402
from logs_db.snapshot import SnapshotFilter  # noqa: E402
from logs_db.store import LogStore  # noqa: E402

# The run plan and the results table live beside this script; their names stay importable from here.
from bench.learning_plan import parse_train_overrides, plan_from_args, plan_trainings, run_rows  # noqa: E402,F401
from bench.learning_table import fmt_duration, render  # noqa: E402,F401


def parse_seeds(text: str) -> list[int]:
    """--seeds: training seeds, comma-separated whole numbers >= 0, each once."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("takes one or more training seeds separated by commas, e.g. 0,1")
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes whole numbers separated by commas, e.g. 0,1; not {text!r}") from None
    if negative := [s for s in seeds if s < 0]:
        raise argparse.ArgumentTypeError(f"seeds are 0 or more, not {negative[0]}")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"names a seed twice: {text!r}")
    return seeds


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=REPO / ".clarify" / "bench-learning")
    p.add_argument("--train-items", type=Path, default=REPO / "agent" / "data" / "train.jsonl")
    p.add_argument("--dev-items", type=Path, default=REPO / "agent" / "data" / "dev.jsonl")
    p.add_argument("--test-items", type=Path, default=REPO / "agent" / "data" / "test.jsonl",
                   help="the frozen test split: evaluated and reported, never used to choose (docs/TEST_SPLIT.md)")
    p.add_argument("--per-item", type=int, default=3)
    p.add_argument("--ask-first", type=int, default=1, help="conversations per item forced to ask first")
    p.add_argument("--temperatures", default="0.3", help="conversation j of an item samples at the j-th")
    p.add_argument("--no-hint-answers", dest="hint_answers", action="store_false",
                   help="answer clarifications from the multi-turn prompt instead of the restated question")
    p.add_argument("--max-conversations", type=int, default=500)
    p.add_argument("--items-first", choices=["families", "file"], default="families",
                   help="which train items the conversation cap keeps: whole families (an ambiguous question with "
                        "its clear counterparts, agent/item_budget.py) first, or the first ones in file order")
    p.add_argument("--extractive-answers", action=argparse.BooleanOptionalAction, default=True,
                   help="behaviour policy: answers are the note sentence closest to the user's words (default on)")
    p.add_argument("--answer-tries", type=int, default=1,
                   help="behaviour policy: resample a wrong final answer up to this many times (1 = off)")
    p.add_argument("--methods", default="swift,sft,refit,dpo")
    p.add_argument("--dev-limit", type=int, default=None)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--set", dest="train_set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a TrainConfig field for every method, e.g. --set bf16=false --set lora_r=8 "
                        "--set target_modules=q_proj,v_proj")
    p.add_argument("--refine-epochs", type=float, default=2.0,
                   help="then continue each adapter for this many epochs at --refine-lr, as `clarify train "
                        "--from-adapter ID` does, and evaluate both (0: off; default 2, the recipe)")
    p.add_argument("--refine-methods", default=None, metavar="M1,M2",
                   help="refine only these of --methods (default: the reward-weighted ones, swift and refit; the "
                        "baselines sft, dpo and kto are trained once, as `clarify train --method M` trains them)")
    p.add_argument("--refine-lr", type=float, default=2e-4)
    p.add_argument("--refine-seeds", type=int, default=1,
                   help="refine each adapter this many times (the k-th continuation of an adapter trains with "
                        "its training seed (--seeds) + k) and also evaluate the average of the refinements, as `clarify adapters "
                        "average` makes it")
    p.add_argument("--refine-rounds", type=int, default=None,
                   help="repeat the refinement this many times, each round continuing the last one's result (the "
                        "average of its --refine-seeds refinements, or its one refinement); default 5 (the recipe "
                        "`clarify train --refine-rounds 5` runs), 1 with --refine-epochs 0")
    p.add_argument("--average-last", type=int, default=Settings().refine_average_last,
                   help="with a chain of at least this many rounds (one refinement each), also evaluate the average "
                        "of its last this many rounds: the chain's result, as `clarify train --refine-rounds R` "
                        "serves it (0 or 1: off)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0,
                   help="the simulation's seed, and the evaluations' (which intent each item's user has)")
    p.add_argument("--seeds", type=parse_seeds, default=None, metavar="S1,S2",
                   help="training seeds: every method is trained once per seed on the same simulated data, and the "
                        "table gets a mean-over-seeds row per method (default: --seed, one run per method)")
    p.add_argument("--reuse", action="store_true", help="keep an existing simulation in --data-dir")
    p.add_argument("--write", action="store_true", help="write docs/RESULTS.md (the current results only)")
    args = p.parse_args(argv)
    if args.seeds is None:
        args.seeds = [args.seed]
    return args


def main(argv=None) -> int:
    command = bench_command(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    overrides = {k: v for k, v in {"epochs": args.epochs, "learning_rate": args.lr}.items() if v is not None}
    overrides.update(parse_train_overrides(args.train_set))  # a bad --set fails before an hour of work starts
    plan = plan_from_args(args, overrides)
    machine = describe()
    settings = Settings(data_dir=args.data_dir, threads=args.threads, seed=args.seed,
                        model=str(resolve_model(None, REPO / ".clarify" / "models")))
    if not args.reuse and settings.database.exists():
        settings.database.unlink()
    store = LogStore(settings.database)
    engine = TransformersEngine(Path(settings.model), threads=args.threads, dtype=settings.dtype)
    horizon, cost = settings.max_clarifying_questions, settings.question_cost

    n_sim = store.execute("SELECT count(*) FROM conversations WHERE source = 'simulated'").fetchone()[0]
    behaviour = {"conversations": n_sim}
    if n_sim == 0:
        budget = args.max_conversations // args.per_item
        items = load_items(args.train_items)
        items = minimal_pairs_first(items, budget) if args.items_first == "families" else items[:budget]
        t = time.time()
        convs = run_conversations(
            engine, items, per_item=args.per_item, params=GenerationParams(max_new_tokens=64),
            temperatures=[float(x) for x in args.temperatures.split(",")], horizon=horizon,
            question_cost=cost, seed=args.seed, ask_first=args.ask_first, hint_answers=args.hint_answers,
            answer_tries=args.answer_tries, extractive_answers=args.extractive_answers, desc="simulate (base, train split)")
        log_conversations(store, convs)
        behaviour = {**summarize(convs), "simulate_s": time.time() - t}
        print("behaviour data:", json.dumps(behaviour, default=float))

    splits = {"dev": (args.dev_items, load_items(args.dev_items, limit=args.dev_limit)),
              "test": (args.test_items, load_items(args.test_items, limit=args.test_limit))}
    loaded = []  # the adapter on the engine now, if any

    def evaluate_on(adapter: str | None, split: str) -> dict:
        path, items = splits[split]
        if adapter is None and args.reuse:  # greedy and seeded: the base model's eval on the same items is the same
            for (prior,) in store.execute(
                    "SELECT metrics FROM eval_runs WHERE adapter_id IS NULL AND items_hash = ? AND n = ?"
                    " ORDER BY created_at DESC", [file_sha256(path), len(items)]).fetchall():
                if json.loads(prior).get("seed", args.seed) == args.seed:
                    return {**json.loads(prior), "eval_s": None}
        if adapter not in loaded:
            while loaded:
                engine.unload_adapter(loaded.pop())
            if adapter is not None:
                engine.load_adapter(adapter, Path(store.get_adapter(adapter).path))
                loaded.append(adapter)
        t = time.time()
        result = evaluate(engine, items, adapter=adapter, horizon=horizon, question_cost=cost, seed=args.seed)
        store.add_eval_run(adapter_id=adapter, items_path=str(path), items_hash=file_sha256(path),
                           n=result.metrics["n"], metrics={**result.metrics, **result.details})
        if adapter and split == "dev":  # the adapter's own record is what choices read: dev only
            store.set_adapter_eval(adapter, result.metrics)
        print(split, adapter or "base", json.dumps(result.metrics), flush=True)
        return {**result.metrics, **result.details, "eval_s": time.time() - t}

    def train(step: dict, seed: int, parent_id: str | None) -> str:
        return run_training(settings.with_overrides(seed=seed), store, method=step["method"],
                            overrides=step["overrides"], filters=SnapshotFilter(source="simulated"),
                            on_progress=training_progress(f"{step['name']} (seed {seed})"),
                            parent_id=parent_id).adapter_id

    def average(members: list[str], parent_id: str | None) -> str:
        return average_registered(settings, store, members, parent_id=parent_id)

    def table(rows: list[dict]) -> str:
        return render(rows, args, command=command, machine=machine, behaviour=behaviour)

    def on_row(rows: list[dict]) -> None:
        if args.write:  # after every row, so a long run that is stopped still leaves its table
            (REPO / "docs").mkdir(exist_ok=True)
            results = REPO / "docs" / "RESULTS.md"
            results.write_text(with_sections(results, table(rows)))  # bench/traffic.py's section stays

    rows = run_rows(plan, args.seeds, evaluate_on=evaluate_on, train=train, average=average, on_row=on_row)
    print(table(rows))
    store.close()
    return 0


def bench_command(argv: list[str]) -> str:
    """The command line that reproduces a table."""
    return " ".join([".venv/bin/python bench/learning.py", *map(shlex.quote, argv)])


def training_progress(method: str):
    """A tqdm bar fed by the trainer process's progress events."""
    from tqdm import tqdm

    bar = None

    def on_progress(event: dict) -> None:
        nonlocal bar
        if event.get("event") in ("start", "progress"):
            if bar is None:
                bar = tqdm(total=event["max_steps"], desc=f"train {method}", unit="step")
            bar.update(event["step"] - bar.n)
            if isinstance(event.get("loss"), (int, float)):
                bar.set_postfix(loss=f"{event['loss']:.4f}")
        elif event.get("event") == "done" and bar is not None:
            bar.close()

    return on_progress


if __name__ == "__main__":
    sys.exit(main())
