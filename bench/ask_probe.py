"""How likely is the agent to open with a clarifying question, on ambiguous vs clear items?

A cheap probe of the learned *decision* (one forward pass per item, no generation): the probability
that the first token of the agent's reply starts one of the simulator's question prefixes
("Do you mean", ...). A policy that knows *when* to ask separates the two rows; a policy that only
learned *whether* to ask moves both rows together (docs/LEARNING.md). Use it to compare adapters or
checkpoints before paying for a full `clarify eval`.

Usage: .venv/bin/python bench/ask_probe.py [--adapter PATH] [--items agent/data/dev.jsonl] [--limit 30]
       [--per-item FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.items import load_items  # noqa: E402
from agent.decision import ask_probability, ask_token_ids, opening_ids, read_ask_decision  # noqa: E402
from learner.calibration import auc  # noqa: E402
from clarify.model_store import resolve_model  # noqa: E402


def load_model(model: str | None, threads: int):
    """(tokenizer, fp32 model in eval mode) of the given model folder, default the bundled model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    model_dir = resolve_model(model, REPO / ".clarify" / "models")
    return (AutoTokenizer.from_pretrained(model_dir),
            AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval())


def first_turn_ids(tokenizer, item):
    """Token ids of the serving prompt for the item's opening question, up to where the reply starts."""
    return opening_ids(tokenizer, item.context, item.question)


def ask_start_probability(model, tokenizer, item, ask_token_ids: list[int]) -> float:
    return ask_probability(model, tokenizer, item.context, item.question, ask_token_ids)


def ask_rate_at_budget(positives: list[float], negatives: list[float], budget: float = 0.2) -> float:
    """The share of ambiguous items a threshold on P(ask) asks on, at the lowest threshold that asks on at most
    `budget` of the clear items: the best any recalibration of this adapter's decision could reach."""
    allowed = int(budget * len(negatives))  # how many clear items may be above the threshold
    ranked = sorted(negatives, reverse=True)
    threshold = ranked[allowed] if allowed < len(ranked) else float("-inf")
    return sum(p > threshold for p in positives) / len(positives) if positives else float("nan")


def within_group_auc(positives: list[tuple[str, float]], negatives: list[tuple[str, float]]) -> float:
    """AUC over (ambiguous, clear) pairs of the same group only, e.g. the same domain: how well the adapter
    ranks items it cannot tell apart by their topic."""
    pairs = [(p > n) + 0.5 * (p == n) for gp, p in positives for gn, n in negatives if gp == gn]
    return sum(pairs) / len(pairs) if pairs else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adapter", type=Path, default=None, help="a PEFT adapter folder (default: the base model)")
    p.add_argument("--items", type=Path, default=REPO / "agent" / "data" / "dev.jsonl")
    p.add_argument("--limit", type=int, default=30, help="items of each kind")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--per-item", type=Path, default=None,
                   help="also write each item's P(ask) here (JSON lines: id, ambiguous, p_ask), to see which "
                        "questions a decision gets wrong or to compare two adapters item by item")
    args = p.parse_args(argv)
    decision = read_ask_decision(args.adapter) if args.adapter else None

    tokenizer, model = load_model(None, args.threads)
    if args.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(args.adapter)).eval()
    ask_ids = ask_token_ids(tokenizer)
    items = load_items(args.items)
    rows, probs_by_kind = [], {}
    groups = {"ambiguous": [i for i in items if i.ambiguous][: args.limit],
              "clear": [i for i in items if not i.ambiguous][: args.limit]}
    for name, group in groups.items():
        probs = [ask_start_probability(model, tokenizer, item, ask_ids) for item in group]
        probs_by_kind[name] = probs
        rows.append((name, len(probs), sum(probs) / len(probs), sum(x > 0.5 for x in probs) / len(probs)))
    if args.per_item:
        args.per_item.write_text("".join(json.dumps({"id": item.id, "ambiguous": item.ambiguous, "p_ask": prob}) + "\n"
                                         for name, group in groups.items()
                                         for item, prob in zip(group, probs_by_kind[name])))
    print(f"adapter: {args.adapter or 'base'}   items: {args.items.name}")
    print(f"| items | n | mean P(reply starts a question) | share with P > 0.5 |\n|---|---|---|---|")
    for name, n, mean, share in rows:
        print(f"| {name} | {n} | {mean:.3f} | {share:.2f} |")
    amb, clear = probs_by_kind["ambiguous"], probs_by_kind["clear"]
    print(f"separation (ambiguous - clear): {rows[0][2] - rows[1][2]:+.3f}   "
          f"AUC (P ranks an ambiguous item above a clear one): {auc(amb, clear):.3f}")
    domain = {name: [item.id.split("-")[0] for item in group] for name, group in groups.items()}
    print(f"AUC within a domain (item id prefix): "
          f"{within_group_auc(list(zip(domain['ambiguous'], amb)), list(zip(domain['clear'], clear))):.3f}   "
          f"ask rate on ambiguous items at the threshold that asks on <= 20% of clear ones: "
          f"{ask_rate_at_budget(amb, clear, 0.2):.2f}")
    if decision is not None:
        threshold = decision.threshold
        print(f"the adapter's calibrated ask threshold {threshold:.4f} (agent/decision.py) asks on "
              f"{sum(p > threshold for p in amb) / len(amb):.2f} of ambiguous and "
              f"{sum(p > threshold for p in clear) / len(clear):.2f} of clear items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
