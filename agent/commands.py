"""`clarify simulate` and `clarify eval`: the measurement environment from the command line.

Both are thin wrappers over agent.simulator / agent.evaluate (plain functions a
script can call directly). Errors a user can fix (bad items file, unknown
adapter, locked database, missing model, an engine that cannot start) print one
line and exit with code 2.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Optional

import typer

from clarify.cli_options import (DataDir, EngineOpt, ModelPath, Threads, VllmUrl, fail, make_settings, open_engine,
                                 open_store)

from .evaluate import DEFAULT_MAX_NEW_TOKENS, METRIC_KEYS
from .items import DEV_ITEMS, TRAIN_ITEMS

ItemsOpt = Annotated[Optional[Path], typer.Option("--items", help="Items file (JSON Lines). Default: the bundled split.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="Use only the first N items.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Seed of the users' hidden intents and sampling. Default: settings.seed.")]
MaxTokensOpt = Annotated[int, typer.Option("--max-new-tokens", min=1, max=2048, help="Cap on each agent reply (answers here are short).")]


def _open_store(settings, stack: ExitStack):
    return stack.enter_context(open_store(settings))


def _resolve_adapter(store, adapter: str) -> tuple[str | None, str | None]:
    """'base' -> (None, None); 'active' -> the registry's active adapter or base; else the id. Returns (id, path)."""
    from logs_db.store import UnknownId

    name = (adapter or "").strip()
    if name in ("", "base", "none"):
        return None, None
    if name == "active":
        record = store.active_adapter()
        return (record.id, record.path) if record else (None, None)
    try:
        record = store.get_adapter(name)
    except UnknownId:
        fail(f"No adapter with id {name!r}: see `clarify adapters list` (or use 'base' / 'active').")
    return record.id, record.path


def _start_engine(settings, stack: ExitStack, adapter_id: str | None, adapter_path: str | None):
    from .engine import AdapterLoadError

    engine = open_engine(settings)
    stack.callback(engine.close)
    if adapter_id is not None:
        try:
            engine.load_adapter(adapter_id, Path(adapter_path))
        except AdapterLoadError as exc:
            fail(str(exc))
    return engine


def _load(path: Path, limit: int | None):
    from .items import ItemError, load_items

    try:
        return load_items(path, limit=limit)
    except ItemError as exc:
        fail(str(exc))


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def simulate_command(
    items: ItemsOpt = None,
    per_item: Annotated[int, typer.Option("--per-item", min=1, help="Conversations per item (M).")] = 3,
    temperature: Annotated[Optional[list[float]], typer.Option(
        "--temperature", min=0.0, max=2.0,
        help="Sampling temperature; repeat it to cycle temperatures over each item's conversations.")] = None,
    adapter: Annotated[str, typer.Option("--adapter", help="Adapter id, 'base' or 'active'.")] = "base",
    ask_first: Annotated[int, typer.Option("--ask-first", min=0,
                                           help="Conversations per item (K of M) forced to ask first.")] = 0,
    hint_answers: Annotated[bool, typer.Option(
        "--hint-answers", help="Behaviour policy: answer a clarification from the question restated with it.")] = False,
    extractive_answers: Annotated[bool, typer.Option(
        "--extractive-answers", help="Behaviour policy, scripted: answers are the note sentence closest to the user's words, and a "
             "forced question names the note facts that match the question (--ask-first).")] = False,
    answer_tries: Annotated[int, typer.Option(
        "--answer-tries", min=1, help="Behaviour policy: resample a wrong final answer up to this many times.")] = 1,
    explore: Annotated[Optional[float], typer.Option(
        "--explore", min=0.0, max=0.5,
        help="Serving exploration: on a turn that may ask and is not forced, take the other action with this "
             "probability, as the Chat tab does. Default: settings.explore (CLARIFY_EXPLORE); 0 = off.")] = None,
    transcripts: Annotated[bool, typer.Option("--transcripts", help="Also print every conversation (to stderr).")] = False,
    limit: LimitOpt = None,
    seed: SeedOpt = None,
    max_new_tokens: MaxTokensOpt = DEFAULT_MAX_NEW_TOKENS,
    data_dir: DataDir = None,
    model: ModelPath = None,
    engine: EngineOpt = None,
    vllm_url: VllmUrl = None,
    threads: Threads = None,
) -> None:
    """Run M simulated conversations per item and log them, graded, to the database (source 'simulated')."""
    from .engine import EngineError, GenerationParams
    from .simulator import log_conversations, run_conversations, summarize

    settings = make_settings(data_dir=data_dir, model=model, engine=engine, vllm_url=vllm_url, threads=threads,
                             explore=explore)
    if ask_first > per_item:
        fail(f"--ask-first ({ask_first}) cannot exceed --per-item ({per_item}).")
    path = items or TRAIN_ITEMS
    loaded = _load(path, limit)
    seed = settings.seed if seed is None else seed
    temps = temperature or [0.7]
    started = time.perf_counter()
    with ExitStack() as stack:
        store = _open_store(settings, stack)
        adapter_id, adapter_path = _resolve_adapter(store, adapter)
        eng = _start_engine(settings, stack, adapter_id, adapter_path)
        try:
            convs = run_conversations(
                eng, loaded, per_item=per_item, params=GenerationParams(max_new_tokens=max_new_tokens),
                temperatures=temps, adapter=adapter_id, horizon=settings.max_clarifying_questions,
                question_cost=settings.question_cost, seed=seed, ask_first=ask_first, hint_answers=hint_answers,
                extractive_answers=extractive_answers, answer_tries=answer_tries, explore=settings.explore,
            )
        except EngineError as exc:
            fail(str(exc), code=1)
        log_conversations(store, convs, progress=True)
    if transcripts:
        print_transcripts(convs, file=sys.stderr)
    s = summarize(convs)
    typer.echo(
        f"{s['conversations']} conversations over {s['items']} items logged to {settings.database} "
        f"(adapter {adapter_id or 'base'}, {time.perf_counter() - started:.0f} s)"
    )
    typer.echo(
        f"mean reward {s['mean_reward']:.3f} ± {s['stderr']:.3f}, accuracy {s['accuracy']:.3f}, "
        f"ask rate {s['ask_rate']:.3f} (unforced {_fmt(s['ask_rate_unforced'])}, {s['forced']} forced to ask), "
        f"questions naming the options {_fmt(s['asks_named_options'])}"
    )


def eval_command(
    items: ItemsOpt = None,
    adapter: Annotated[str, typer.Option("--adapter", help="Adapter id, 'base' or 'active' (the registry's active adapter, else base).")] = "active",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object with the metrics, nothing else on stdout.")] = False,
    transcripts: Annotated[bool, typer.Option("--transcripts", help="Also print every conversation (to stderr).")] = False,
    plain_decision: Annotated[bool, typer.Option(
        "--plain-decision",
        help="Ignore the adapter's calibrated ask threshold: decide by greedy decoding alone (what the threshold adds).",
    )] = False,
    limit: LimitOpt = None,
    seed: SeedOpt = None,
    max_new_tokens: MaxTokensOpt = DEFAULT_MAX_NEW_TOKENS,
    data_dir: DataDir = None,
    model: ModelPath = None,
    engine: EngineOpt = None,
    vllm_url: VllmUrl = None,
    threads: Threads = None,
) -> None:
    """Greedy conversations with simulated users, one per item: reward, accuracy and ask rates."""
    from .engine import EngineError
    from .evaluate import evaluate
    from .items import file_sha256

    settings = make_settings(data_dir=data_dir, model=model, engine=engine, vllm_url=vllm_url, threads=threads)
    path = items or DEV_ITEMS
    loaded = _load(path, limit)
    seed = settings.seed if seed is None else seed
    started = time.perf_counter()
    with ExitStack() as stack:
        store = _open_store(settings, stack)
        adapter_id, adapter_path = _resolve_adapter(store, adapter)
        eng = _start_engine(settings, stack, adapter_id, adapter_path)
        try:
            result = evaluate(eng, loaded, adapter=adapter_id, horizon=settings.max_clarifying_questions,
                              question_cost=settings.question_cost, seed=seed, max_new_tokens=max_new_tokens,
                              calibrated_ask=not plain_decision)
        except EngineError as exc:
            fail(str(exc), code=1)
        wall = time.perf_counter() - started
        result.details["wall_seconds"] = round(wall, 1)
        run_id = store.add_eval_run(
            adapter_id=adapter_id, items_path=str(Path(path).resolve()), items_hash=file_sha256(path),
            n=result.metrics["n"], metrics={**result.metrics, **result.details, "limit": limit},
        )
    if transcripts:
        print_transcripts(result.conversations, file=sys.stderr)
    if json_out:
        typer.echo(json.dumps({k: result.metrics[k] for k in METRIC_KEYS}))
        return
    _print_table(result, adapter_id, path, wall, run_id)


def _print_table(result, adapter_id: str | None, path: Path, wall: float, run_id: str) -> None:
    from rich.console import Console
    from rich.table import Table

    m, d = result.metrics, result.details
    table = Table(title="clarify eval", caption=f"{path} · adapter {adapter_id or 'base'} · seed {d['seed']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("n", f"{m['n']} ({d['n_ambiguous']} ambiguous, {d['n_unambiguous']} unambiguous)")
    table.add_row("mean reward", f"{m['mean_reward']:.3f} ± {m['stderr']:.3f}")
    table.add_row("accuracy", _fmt(m["accuracy"]))
    table.add_row("ask rate, ambiguous", _fmt(m["ask_rate_ambiguous"]))
    table.add_row("ask rate, unambiguous", _fmt(m["ask_rate_unambiguous"]))
    table.add_row("mean agent turns", _fmt(m["mean_turns"], 2))
    table.add_row("mean reward, ambiguous", _fmt(d["mean_reward_ambiguous"]))
    table.add_row("mean reward, unambiguous", _fmt(d["mean_reward_unambiguous"]))
    table.add_row("accuracy after asking", _fmt(d["accuracy_after_asking"]))
    table.add_row("questions naming the options", _fmt(d["asks_named_options"]))
    console = Console()
    console.print(table)
    console.print(f"{wall:.0f} s wall; eval run {run_id} stored.")


def print_transcripts(convs, file=None) -> None:
    """A plain-text dump of conversations (intent, turns, grade) for reading by eye. A user's reply to a question
    shows its kind ("user/unhelpful": the question named no option, agent/user_reply.py)."""
    file = file or sys.stdout
    for conv in convs:
        intent = conv.item.interpretations[conv.intent]
        tag = "ambiguous" if conv.item.ambiguous else "clear"
        print(f"--- {conv.item.id} [{tag}] intent {conv.intent}: {intent.answer!r}"
              f"{' forced ' + repr(conv.forced_prefix) if conv.forced_prefix else ''}", file=file)
        for turn in conv.turns:
            if turn.role == "user":
                who = f"user/{turn.reply}" if turn.reply else "user "
            else:
                who = f"agent/{turn.kind}"
            print(f"  {who}: {turn.text}", file=file)
        print(f"  => correct={conv.correct} reward={conv.reward:.2f}", file=file)
