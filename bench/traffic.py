"""Traffic through the product path: simulated users chat and rate through the code the Chat and Training tabs run,
round after round, and the table says what the product learned from them.

Each round:
1. The policy that serves (the active adapter, or the base model) is evaluated greedily, never exploring, on the
   dev split and on the frozen test split (agent/evaluate.py, as `clarify eval` and bench/learning.py do).
2. Every train item (agent/data/train.jsonl, shuffled with --seed, the first --conversations of them) is asked once
   by one user with a hidden intent (agent.simulator.draw_intent, the round as the conversation index), through
   agent.chat_service.ChatService in process, --concurrency conversations at once: logged as a Chat tab
   conversation (source "ui"), exploring at Settings.explore, every agent word written by the served model. The
   user answers a clarifying question as the benchmark's user does (agent/user_reply.py: only a question that
   names the options gets the clarification), and the grader's verdict (agent/grader.py) becomes a thumbs rating
   of the final answer through the Chat tab's store call (LogStore.add_rating, up = 1, down = 0) for
   --rating-share of the conversations, --flip-share of those ratings flipped (seeded by the seed and the round).
3. The Training tab's run starts (learner.training_service.TrainingManager.start_training with the tab's
   defaults: swift on every rated conversation so far, the gate on), then the promotion gate
   (learner/promotion.py run_gate) promotes the candidate or not; the next round is served by whatever is active.

Every other setting is the product's (clarify/settings.py: defaults < CLARIFY_* variables). --eval-limit also caps
the gate's dev items (Settings.gate_items). The log and the adapters go to --data-dir (default: a new folder under
the temp folder), never to an existing log.

Usage: .venv/bin/python bench/traffic.py [--rounds 3] [--conversations 500] [--eval-limit N] [--max-steps N] [--write]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shlex
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.chat_service import ChatService  # noqa: E402
from agent.engine_factory import make_engine  # noqa: E402
from agent.evaluate import compute_metrics, evaluate  # noqa: E402
from agent.items import DEV_ITEMS, TEST_ITEMS, TRAIN_ITEMS, Item, file_sha256, load_items  # noqa: E402
from agent.seeding import stable_int  # noqa: E402
from agent.sim_summary import mean_or_none  # noqa: E402
from agent.simulator import SimTurn, SimulatedConversation, add_agent_turn, draw_intent  # noqa: E402
from agent.transformers_engine import BATCH_SIZE  # noqa: E402
from bench.common import describe, write_section  # noqa: E402
from bench.learning_table import fmt, fmt_duration  # noqa: E402
from clarify.model_store import resolve_model  # noqa: E402
from clarify.settings import Settings  # noqa: E402
from learner.training_service import JobStatus, TrainingManager  # noqa: E402
from logs_db.store import LogStore  # noqa: E402

SECTION = "traffic"   # its section of docs/RESULTS.md (bench.common.write_section)
COLUMNS = ("round", "served by", "conversations", "rated", "traffic: mean reward ± stderr", "traffic: mean rating",
           "traffic: asks ambiguous", "traffic: asks clear", "traffic: explored", "dev: mean reward ± stderr",
           "test: mean reward ± stderr", "train time", "gate")


def share(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"is a share from 0 to 1, not {value}")
    return number


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"is a whole number of 1 or more, not {value}")
    return number


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=positive, default=3, help="rounds of traffic, each followed by training and the "
                                                               "gate (default 3)")
    p.add_argument("--conversations", type=positive, default=500,
                   help="conversations per round, one per train item (at most the number of train items; "
                        "default 500)")
    p.add_argument("--rating-share", type=share, default=0.6, help="share of the conversations rated (default 0.6)")
    p.add_argument("--flip-share", type=share, default=0.1,
                   help="share of the ratings flipped against the grader's verdict (default 0.1)")
    p.add_argument("--engine", choices=["transformers", "vllm"], default="transformers",
                   help="the serving engine (default transformers: in process, quick to start)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="the benchmark's own DuckDB file and adapters (default: a new folder under the temp folder); "
                        "refused when it already holds a log")
    p.add_argument("--eval-limit", type=positive, default=None,
                   help="the first N dev and N test items evaluated each round, also the most the gate evaluates "
                        "(default: all; the gate its Settings.gate_items)")
    p.add_argument("--concurrency", type=positive, default=BATCH_SIZE,
                   help=f"conversations in flight at once (default {BATCH_SIZE}: the transformers engine's batch)")
    p.add_argument("--max-steps", type=positive, default=None,
                   help="cap on the training steps of each run (default: the product's, Settings.train_max_steps)")
    p.add_argument("--seed", type=int, default=None,
                   help="shuffles the train items; the seed of the users, ratings, exploration, evaluation and "
                        "training (default Settings.seed)")
    p.add_argument("--write", action="store_true", help="write the table into docs/RESULTS.md (its traffic section)")
    return p.parse_args(argv)


def traffic_settings(args) -> Settings:
    """The product's settings (defaults < CLARIFY_* variables) with the benchmark's data folder, engine and seed; the
    model is the configured one or the bundled one in the checkout's .clarify/models (read only)."""
    base = Settings()
    changes = {"data_dir": args.data_dir, "db_path": None, "engine": args.engine,
               "seed": base.seed if args.seed is None else args.seed,
               "model": str(resolve_model(base.model, REPO / ".clarify" / "models"))}
    if args.max_steps is not None:
        changes["train_max_steps"] = args.max_steps
    if args.eval_limit is not None:
        changes["gate_items"] = min(base.gate_items, args.eval_limit)
    return Settings(**{**base.model_dump(), **changes})


# -- who rates, and how ------------------------------------------------------------------------------------------

def count_of(n: int, fraction: float) -> int:
    """`fraction` of n, rounded half up (0.6 of 5 is 3, 0.1 of 5 is 1)."""
    return math.floor(n * fraction + 0.5)


def plan_ratings(n: int, rating_share: float, flip_share: float, seed: int, round_no: int) -> dict[int, bool]:
    """Which of a round's n conversations are rated (the keys) and which of those ratings are flipped (True):
    count_of(n, rating_share) conversations drawn by a generator seeded by the seed and the round, then
    count_of(rated, flip_share) of them."""
    rng = random.Random(stable_int("traffic-ratings", seed, round_no))
    rated = sorted(rng.sample(range(n), count_of(n, rating_share)))
    flipped = set(rng.sample(rated, count_of(len(rated), flip_share)))
    return {i: i in flipped for i in rated}


def thumbs(correct: bool, flipped: bool) -> int:
    """The user's thumbs from the grader's verdict: up (1) for a right final answer, down (0) otherwise; a flipped
    rating says the opposite."""
    return int(correct != flipped)


# -- one conversation ------------------------------------------------------------------------------------------------

@dataclass
class Traffic:
    conv: SimulatedConversation    # the user's intent, the turns as logged, the grader's verdict and reward
    conversation_id: str
    final_turn_id: str
    rating: int | None             # the thumbs given (1 up, 0 down), None: not rated


def converse(service: ChatService, item: Item, round_no: int, settings: Settings, flipped: bool | None) -> Traffic:
    """One user's conversation through the Chat tab's service; `flipped` None: not rated, else whether the thumbs
    contradict the grader."""
    store = service.store
    conv = SimulatedConversation(
        item=item, index=round_no, intent=draw_intent(item, round_no, settings.seed), temperature=settings.temperature,
        forced_prefix=None, adapter=None, engine=service.engine.name, seed=settings.seed, explore=settings.explore)
    conv.turns.append(SimTurn("user", "user", item.question))
    cid = service.start(item.context, opening=item.question)
    conv.adapter = store.get_conversation(cid).adapter_id
    while True:
        reply = service.reply(cid, conv.turns[-1].text)
        for _ in reply:
            pass
        logged = store.get_turn(reply.turn_id)
        turn = SimTurn("assistant", reply.kind, reply.text, latency_ms=logged.latency_ms,
                       completion_tokens=logged.completion_tokens, p_ask=logged.p_ask, action=logged.action,
                       propensity=logged.propensity, explored=logged.explored)
        if add_agent_turn(conv, turn, settings.max_clarifying_questions, settings.question_cost):
            break
    rating = None
    if flipped is not None:
        rating = thumbs(conv.correct, flipped)
        store.add_rating(reply.turn_id, kind="thumbs", value=rating)   # what the Chat tab's thumbs call
    return Traffic(conv, cid, reply.turn_id, rating)


def serve_round(service: ChatService, items: list[Item], round_no: int, settings: Settings, args) -> list[Traffic]:
    from tqdm import tqdm

    plan = plan_ratings(len(items), args.rating_share, args.flip_share, settings.seed, round_no)
    with ThreadPoolExecutor(args.concurrency) as pool, \
            tqdm(total=len(items), desc=f"round {round_no + 1}: chat", unit="conv", file=sys.stderr) as bar:
        futures = [pool.submit(converse, service, item, round_no, settings, plan.get(i))
                   for i, item in enumerate(items)]
        for done in as_completed(futures):
            done.result()   # a failed conversation stops the benchmark here
            bar.update(1)
    return [f.result() for f in futures]


def traffic_numbers(traffic: list[Traffic]) -> dict:
    """A round's traffic: the grader's mean reward (every conversation), the mean thumbs given, the share of ambiguous
    / clear conversations whose first reply asked, and the share of the replies with an ask decision that explored."""
    convs = [t.conv for t in traffic]
    metrics, _ = compute_metrics(convs)
    ratings = [float(t.rating) for t in traffic if t.rating is not None]
    decided = [turn for c in convs for turn in c.agent_turns if turn.action is not None]
    return {"conversations": len(convs), "rated": len(ratings), "mean_reward": metrics["mean_reward"],
            "stderr": metrics["stderr"], "mean_rating": mean_or_none(ratings),
            "ask_rate_ambiguous": metrics["ask_rate_ambiguous"],
            "ask_rate_unambiguous": metrics["ask_rate_unambiguous"],
            "explored": mean_or_none([float(bool(turn.explored)) for turn in decided])}


# -- evaluation, training and the gate -------------------------------------------------------------------------------

def evaluate_split(engine, store: LogStore, settings: Settings, adapter: str | None, path: Path,
                   limit: int | None) -> dict:
    """The served policy on a split, greedy and never exploring (`adapter` is loaded already); stored in eval_runs."""
    result = evaluate(engine, load_items(path, limit=limit), adapter=adapter, horizon=settings.max_clarifying_questions,
                      question_cost=settings.question_cost, seed=settings.seed)
    store.add_eval_run(adapter_id=adapter, items_path=str(path), items_hash=file_sha256(path), n=result.metrics["n"],
                       metrics={**result.metrics, **result.details})
    return result.metrics


def train_and_gate(manager: TrainingManager, store: LogStore, settings: Settings,
                   round_no: int) -> tuple[JobStatus, float]:
    """Start training as the Training tab does with its defaults (swift, every rated conversation, no dates, its max
    steps from the settings, the gate on) and wait for the job; returns it and its training runs' wall clock."""
    from tqdm import tqdm

    before = {r.id for r in store.list_training_runs(1_000_000)}
    steps = settings.train_max_steps
    manager.start_training(method="swift", overrides={"max_steps": steps} if steps else None, gate=True)
    with tqdm(desc=f"round {round_no + 1}: train", unit="step", file=sys.stderr) as bar:
        while not manager.join(1.0):
            job = manager.status()
            if job.max_steps:
                bar.total, bar.n = job.max_steps, min(job.step, job.max_steps)
            bar.set_postfix_str(job.phase + (f", loss {job.loss:.4f}" if job.loss is not None else ""))
    runs = [r for r in store.list_training_runs(1_000_000) if r.id not in before and r.finished_at is not None]
    return manager.status(), sum((r.finished_at - r.started_at).total_seconds() for r in runs)


def gate_text(job: JobStatus) -> str:
    """The gate's decision on the round's candidate, or why there is none."""
    if job.gate is not None:
        g = job.gate
        verdict = "promoted" if g["promoted"] else "passed, not promoted" if g["passed"] else "rejected"
        return (f"{g['candidate_id']} {verdict}: {g['candidate_reward']:.3f} vs {g['baseline_reward']:.3f} "
                f"on {g['n_items']} dev items")
    reason = (job.error or "no decision").splitlines()[0][:160].replace("|", "/")   # a table cell
    return f"{'gate' if job.adapter_id else 'training'} {job.status}: {reason}"


# -- the table -------------------------------------------------------------------------------------------------------

def row_cells(row: dict) -> list[str]:
    t, dev, test = row["traffic"], row["dev"], row["test"]
    return [str(row["round"]), row["served_by"] or "base", str(t["conversations"]), str(t["rated"]),
            f"{fmt(t['mean_reward'])} ± {fmt(t['stderr'])}", fmt(t["mean_rating"]), fmt(t["ask_rate_ambiguous"], 2),
            fmt(t["ask_rate_unambiguous"], 2), fmt(t["explored"], 2),
            f"{fmt(dev['mean_reward'])} ± {fmt(dev['stderr'])}",
            f"{fmt(test['mean_reward'])} ± {fmt(test['stderr'])}",
            fmt_duration(row["train_s"]), row["gate"]]


def render(rows: list[dict], args, settings: Settings, *, command: str, machine: str) -> str:
    """The traffic section of docs/RESULTS.md: what a row is, the command, the machine, the table."""
    n_dev = rows[0]["dev"]["n"] if rows else "-"
    n_test = rows[0]["test"]["n"] if rows else "-"
    lines = [
        "## Traffic through the product path", "",
        "Simulated users chat through the Chat tab's service and rate with its thumbs; after each round the Training "
        "tab's run (its defaults: swift on every rated conversation so far, the promotion gate on) trains and the "
        "gate decides, and the next round is served by whatever is active (`bench/traffic.py`, "
        "[LEARNING.md](LEARNING.md#measuring)).", "",
        f"Reproduce: `{command}`", "",
        f"Machine: {machine}.", "",
        f"Traffic: {rows[0]['traffic']['conversations'] if rows else '-'} train items per round (shuffled with seed "
        f"{settings.seed}), each asked once by one user; serving exploration {settings.explore:g}; "
        f"{args.rating_share:g} of the conversations rated with thumbs from the grader's verdict, "
        f"{args.flip_share:g} of the ratings flipped; engine {settings.engine}, "
        + (f"at most {settings.train_max_steps} training steps" if settings.train_max_steps else "full training runs")
        + f", gate on the first {settings.gate_items} dev items.", "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in rows]
    lines += ["", "Served by: the policy active during the round's traffic and evaluations. Traffic mean reward: the "
              f"grader's reward of every conversation, correct x (1 - {settings.question_cost:g} x questions asked); "
              "mean rating: the thumbs "
              "given (1 up, 0 down, flips included). Asks: the share of the ambiguous / clear conversations whose "
              "first reply asked; explored: the share of the replies with an ask decision that took the other action. "
              f"Dev and test: the served policy, greedy and never exploring, on {n_dev} dev and {n_test} test items. "
              "Train time: the training runs' wall clock after the round. Gate: the round's candidate against the "
              "served policy; a promoted candidate serves the next round."]
    return "\n".join(lines) + "\n"


def bench_command(argv: list[str]) -> str:
    return " ".join([".venv/bin/python bench/traffic.py", *map(shlex.quote, argv)])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.data_dir is None:
        args.data_dir = Path(tempfile.mkdtemp(prefix="clarify-traffic-"))
    settings = traffic_settings(args)
    if settings.database.exists():
        print(f"Error: {settings.database} already holds a log; the benchmark starts from an empty one: give a new "
              "--data-dir.", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"traffic benchmark: log and adapters in {settings.data_dir}", file=sys.stderr)
    items = load_items(TRAIN_ITEMS)
    random.Random(settings.seed).shuffle(items)
    items = items[:args.conversations]
    machine = describe()
    rows: list[dict] = []
    with ExitStack() as cleanup:
        store = LogStore(settings.database)
        cleanup.callback(store.close)
        engine = make_engine(settings)
        cleanup.callback(engine.close)
        service = ChatService.from_settings(store, engine, settings, rng=random.Random(settings.seed))
        manager = TrainingManager(settings, store, engine)
        cleanup.callback(manager.shutdown)
        for round_no in range(args.rounds):
            started = time.time()
            served = service.active_adapter()   # what new conversations get; loaded into the engine
            dev = evaluate_split(engine, store, settings, served, DEV_ITEMS, args.eval_limit)
            test = evaluate_split(engine, store, settings, served, TEST_ITEMS, args.eval_limit)
            traffic = traffic_numbers(serve_round(service, items, round_no, settings, args))
            job, train_s = train_and_gate(manager, store, settings, round_no)
            rows.append({"round": round_no + 1, "served_by": served, "traffic": traffic, "dev": dev, "test": test,
                         "train_s": train_s, "gate": gate_text(job)})
            print(f"round {round_no + 1} done in {fmt_duration(time.time() - started)}: "
                  + " | ".join(row_cells(rows[-1])), file=sys.stderr, flush=True)
            if args.write:   # after every round, so a long run that is stopped still leaves its table
                write_section(REPO / "docs" / "RESULTS.md", SECTION,
                              render(rows, args, settings, command=bench_command(argv), machine=machine))
    print(render(rows, args, settings, command=bench_command(argv), machine=machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
