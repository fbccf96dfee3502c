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
import math
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
from bench.common import describe  # noqa: E402
from clarify.model_store import resolve_model  # noqa: E402
from clarify.settings import Settings  # noqa: E402
from learner.average import average_registered  # noqa: E402
from learner.jobs import run_training  # noqa: E402
from learner.rounds import averaged_rounds  # noqa: E402
from logs_db.snapshot import SnapshotFilter  # noqa: E402
from logs_db.store import LogStore  # noqa: E402

SPLITS = ("dev", "test")  # the table's column groups, in order: dev chooses, test reports


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


def fmt(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


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
            (REPO / "docs" / "RESULTS.md").write_text(table(rows))

    rows = run_rows(plan, args.seeds, evaluate_on=evaluate_on, train=train, average=average, on_row=on_row)
    print(table(rows))
    store.close()
    return 0


def run_rows(plan: list[dict], seeds: list[int], *, evaluate_on, train, average, on_row=lambda rows: None) -> list[dict]:
    """Evaluate base once on each split, then run the whole plan once per training seed, evaluating every
    adapter on each split. The callables do the expensive parts:
    evaluate_on(adapter id or None, split) -> metrics; train(step, seed, parent id or None) -> adapter id (the
    k-th continuation of a parent adds k to the seed, learner/jobs.py); average(member ids, parent id) -> adapter id.
    Rows: {"method", "seed" (None for base), "train_s", "dev": metrics, "test": metrics}; on_row(rows) after each."""
    rows = [{"method": "base", "seed": None, "train_s": None, **{split: evaluate_on(None, split) for split in SPLITS}}]
    on_row(rows)
    for seed in seeds:
        trained, spent = {}, {}  # plan name -> adapter id / seconds, including the runs it builds on
        for step in plan:
            t = time.time()
            if step["averages"]:
                members = [trained[name] for name in step["averages"]]
                if step.get("chain"):  # rounds of one chain: each member's time already includes the ones before
                    adapter_id = average(members, trained[step["after"]])
                    spent[step["name"]] = spent[step["averages"][-1]]
                else:  # refinements of one adapter side by side
                    adapter_id = average(members, None)
                    spent[step["name"]] = spent[step["after"]] + sum(
                        spent[n] - spent[step["after"]] for n in step["averages"])
            else:
                adapter_id = train(step, seed + step.get("seed_offset", 0),
                                   trained[step["after"]] if step["after"] else None)
                spent[step["name"]] = spent.get(step["after"], 0.0)  # a refined row counts both runs
            spent[step["name"]] += time.time() - t
            trained[step["name"]] = adapter_id  # what later steps continue or average
            rows.append({"method": step["name"], "seed": seed, "train_s": spent[step["name"]],
                         **{split: evaluate_on(adapter_id, split) for split in SPLITS}})
            on_row(rows)
    return rows


def bench_command(argv: list[str]) -> str:
    """The command line that reproduces a table."""
    return " ".join([".venv/bin/python bench/learning.py", *map(shlex.quote, argv)])


def names_in(csv: str) -> list[str]:
    """The names of a comma-separated option (--methods, --refine-methods), blanks dropped."""
    return [m.strip() for m in csv.split(",") if m.strip()]


def plan_from_args(args, overrides: dict) -> list[dict]:
    """The plan the options ask for. Unset, --refine-rounds is the recipe's 5 when refining at all, and
    --refine-methods the methods of the paper's objective (swift, refit): the rounds are their recipe."""
    rounds = args.refine_rounds if args.refine_rounds is not None else (5 if args.refine_epochs > 0 else 1)
    refined = args.refine_methods
    if refined is None:
        refined = ",".join(m for m in names_in(args.methods) if m in ("swift", "refit"))
    return plan_trainings(args.methods, overrides, args.refine_epochs, args.refine_lr, args.refine_seeds,
                          rounds, refined, args.average_last)


def plan_trainings(methods: str, overrides: dict, refine_epochs: float, refine_lr: float,
                   refine_seeds: int = 1, refine_rounds: int = 1,
                   refine_methods: str | None = None, average_last: int = 0) -> list[dict]:
    """The runs in order. A refine run continues the adapter named by its "after"; an average step
    ("averages" non-empty) averages the refinements of one method, as `clarify adapters average` does.
    With several rounds, each round's refinements continue the previous round's average (or refinement),
    with seeds of their own (a chain of single refinements trains with seed, seed + 1, ...: new notes orders
    and renames every round). A chain of single refinements with at
    least `average_last` (>= 2) rounds ends with the average of its last that many rounds, the chain's result
    in the product (learner/rounds.py).

    Refining is the measured best recipe (docs/RESULTS.md): a second, gentler cosine schedule from the
    trained adapter, the same thing a user gets from `clarify train --from-adapter ID --set epochs=E --set
    learning_rate=LR`.
    """
    if refine_seeds < 1:
        raise SystemExit(f"--refine-seeds must be 1 or more, not {refine_seeds}")
    if refine_rounds < 1:
        raise SystemExit(f"--refine-rounds must be 1 or more, not {refine_rounds}")
    if (refine_seeds > 1 or refine_rounds > 1) and refine_epochs <= 0:
        raise SystemExit(f"{'--refine-seeds' if refine_seeds > 1 else '--refine-rounds'} needs --refine-epochs "
                         f"(the refinements it repeats)")
    method_list = names_in(methods)
    refined_methods = method_list if refine_methods is None else names_in(refine_methods)
    if unknown := [m for m in refined_methods if m not in method_list]:
        raise SystemExit(f"--refine-methods {','.join(unknown)} is not among --methods {','.join(method_list)}")
    plan = []
    for method in method_list:
        plan.append({"name": method, "method": method, "overrides": dict(overrides), "after": None, "averages": []})
        if refine_epochs <= 0 or method not in refined_methods:
            continue
        after = method
        for round_ in range(1, refine_rounds + 1):
            refined = f"{method} + {refine_epochs:g} epochs at lr {refine_lr:g}" + (f", round {round_}" if round_ > 1 else "")
            names = [refined if k == 0 else f"{refined}, seed +{k}" for k in range(refine_seeds)]
            for name in names:  # run_training gives the k-th continuation of an adapter seed + k
                plan.append({"name": name, "method": method, "after": after, "averages": [],
                             "overrides": {**overrides, "epochs": refine_epochs, "learning_rate": refine_lr},
                             # each round draws new views: round r's refinements start at seed + (r-1) * K
                             "seed_offset": (round_ - 1) * refine_seeds})
            if refine_seeds > 1:
                plan.append({"name": f"{refined}, average of {refine_seeds} seeds", "method": method, "overrides": {},
                             "after": after, "averages": names})
            after = plan[-1]["name"]
        if refine_seeds == 1 and averaged_rounds(refine_rounds, average_last):
            members = [s["name"] for s in plan if s["method"] == method and s["after"] is not None][-average_last:]
            plan.append({"name": f"{method}, average of the last {average_last} rounds", "method": method,
                         "overrides": {}, "after": members[-1], "averages": members, "chain": True})
    return plan


# The bench option to use instead of --set for each field learner.jobs.SET_BY_RUN_TRAINING names.
USE_INSTEAD = {"method": "--methods", "base_model": "the bundled model", "threads": "--threads",
               "seed": "--seeds (training seeds; --seed draws the simulation)", "horizon": "the settings' horizon"}


def parse_train_overrides(pairs: list[str]) -> dict:
    """FIELD=VALUE strings -> TrainConfig overrides, each value parsed to the field's type and checked as
    training would check it an hour later, after the simulation and the base eval (learner.jobs.parse_overrides)."""
    from learner.jobs import TrainingFailed, parse_overrides

    try:
        return parse_overrides(pairs, USE_INSTEAD, "the bench's own options")
    except TrainingFailed as exc:
        raise SystemExit(str(exc)) from exc


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


def render(rows: list[dict], args, *, command: str, machine: str, behaviour: dict | None = None) -> str:
    """The results document: what the table is, the command, the machine, the seeds, the behaviour data, the
    table (dev and test side by side; a mean-over-seeds row after each method's seed rows when there are several)."""
    seeds = ", ".join(map(str, args.seeds))
    lines = [
        "# Learning results: dev and test", "",
        f"Base and every adapter, evaluated greedily on the dev split (`{args.dev_items.name}`{split_size(rows, 'dev')}) "
        f"and on the frozen test split (`{args.test_items.name}`{split_size(rows, 'test')}); neither is ever trained "
        "on. Dev is for choosing (defaults, recipes, which adapter to promote); test is for reporting only, nothing "
        "is chosen by looking at it ([docs/TEST_SPLIT.md](TEST_SPLIT.md)). Earlier runs and what they decided: "
        "[docs/LEARNING.md](LEARNING.md).", "",
        f"Reproduce: `{command}`", "",
        f"Machine: {machine}.", "",
        f"Training seeds: {seeds} (each method trained once per seed on the same behaviour data; simulation and "
        f"evaluation seed {args.seed}).", "",
        behaviour_line(args, behaviour), "",
        "| method | training seed | train time | dev: mean reward ± stderr | dev: asks ambiguous | dev: asks clear "
        "| dev: asks naming the options | test: mean reward ± stderr | test: asks ambiguous | test: asks clear "
        "| test: asks naming the options |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in with_means(rows):
        seed = "-" if r["seed"] is None else str(r["seed"])
        cells = [r["method"], seed, fmt_duration(r["train_s"])]
        for split in SPLITS:
            m = r.get(split) or {}
            cells += [f"{fmt(m.get('mean_reward'))} ± {fmt(m.get('stderr'))}", fmt(m.get("ask_rate_ambiguous"), 2),
                      fmt(m.get("ask_rate_unambiguous"), 2), fmt(m.get("asks_named_options"), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    notes = ("Train time: the run's wall clock plus that of the runs it continues (a refinement counts its parent, "
             "an average its members). Asks: the share of the split's ambiguous / clear items the model asked on; "
             "asks naming the options: the share of its clarifying questions that named the options.")
    if len(args.seeds) > 1:
        notes += " Mean rows: the average over the seeds; ± is the standard error across seeds."
    lines += ["", notes]
    return "\n".join(lines) + "\n"


def with_means(rows: list[dict]) -> list[dict]:
    """The rows grouped by method in first-appearance order, each method's seed rows followed by a
    "mean over seeds" row when it has more than one."""
    by_method: dict[str, list[dict]] = {}
    for r in rows:
        by_method.setdefault(r["method"], []).append(r)
    out = []
    for method, group in by_method.items():
        out += group
        if len(group) > 1:
            out.append({"method": method, "seed": f"mean over {len(group)} seeds",
                        "train_s": mean_of([r["train_s"] for r in group]),
                        **{split: mean_metrics([r.get(split) or {} for r in group]) for split in SPLITS}})
    return out


def mean_metrics(runs: list[dict]) -> dict:
    """The average of the seeds' values; stderr: the standard error of the mean reward across seeds."""
    rewards = [m["mean_reward"] for m in runs if m.get("mean_reward") is not None]
    mean = mean_of(rewards)
    spread = (math.sqrt(sum((x - mean) ** 2 for x in rewards) / (len(rewards) - 1) / len(rewards))
              if len(rewards) > 1 else None)
    return {"mean_reward": mean, "stderr": spread,
            **{key: mean_of([m.get(key) for m in runs])
               for key in ("ask_rate_ambiguous", "ask_rate_unambiguous", "asks_named_options")}}


def mean_of(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def split_size(rows: list[dict], split: str) -> str:
    """", N items, A ambiguous" from the base row's evaluation, when it has the counts."""
    m = rows[0].get(split, {}) if rows else {}
    if m.get("n") is None:
        return ""
    return f", {m['n']} items" + (f", {m['n_ambiguous']} ambiguous" if m.get("n_ambiguous") is not None else "")


def behaviour_line(args, behaviour: dict | None) -> str:
    measured = ""
    if behaviour and behaviour.get("conversations"):
        measured = f" {behaviour['conversations']} conversations"
        if behaviour.get("items"):
            measured += f" on {behaviour['items']} items"
        if behaviour.get("mean_reward") is not None:
            measured += f", mean reward {fmt(behaviour['mean_reward'])}"
        if behaviour.get("asks_named_options") is not None:
            measured += f", {fmt(behaviour['asks_named_options'], 2)} of the asks naming the options"
        measured += "."
    return (
        f"Behaviour data: base model on {args.train_items.name}, {args.per_item} conversations per item "
        f"({args.ask_first} forced to ask first), temperatures {args.temperatures}, "
        f"answers to clarifications {'from the restated question' if args.hint_answers else 'multi-turn'}, "
        f"final answers resampled when wrong up to {args.answer_tries} tries, "
        f"{'extractive (note sentence closest to the user) behaviour answers, ' if args.extractive_answers else ''}"
        f"at most {args.max_conversations} conversations"
        f"{', whole families first' if args.items_first == 'families' else ', first items in file order'}."
        + measured)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"

if __name__ == "__main__":
    sys.exit(main())
