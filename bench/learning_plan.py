"""bench/learning.py's run plan: which trainings, refinements and averages run in which order
(plan_from_args, plan_trainings), the --set overrides they all take, and the runner that trains and evaluates
them once per training seed (run_rows). Training and evaluation are passed in as callables."""

from __future__ import annotations

import time

from bench.learning_table import SPLITS
from learner.rounds import averaged_rounds


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
