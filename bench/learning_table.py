"""bench/learning.py's results document: the dev and test table, a mean-over-seeds row per method, and the
lines above it (command, machine, seeds, behaviour data)."""

from __future__ import annotations

import math

SPLITS = ("dev", "test")  # the table's column groups, in order: dev chooses, test reports


def fmt(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


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
