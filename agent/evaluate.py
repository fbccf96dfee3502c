"""Evaluation: one greedy simulated conversation per item, summarized into the benchmark's metrics.

The intent of each item's user is seeded (conversation index 0), so two runs
with the same seed grade the same intents; only the policy (model + adapter)
changes between runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from .engine import Engine, GenerationParams
from .items import Item
from .sim_summary import mean_or_none
from .simulator import SimulatedConversation, asks_named_options, run_conversations

METRIC_KEYS = ("n", "mean_reward", "stderr", "accuracy", "ask_rate_ambiguous", "ask_rate_unambiguous", "mean_turns")
DEFAULT_MAX_NEW_TOKENS = 64


@dataclass
class EvalResult:
    metrics: dict                  # exactly METRIC_KEYS (rates are None when no item of that kind)
    conversations: list[SimulatedConversation]
    details: dict = field(default_factory=dict)   # per-kind breakdown, settings of the run


def compute_metrics(convs: Sequence[SimulatedConversation]) -> tuple[dict, dict]:
    """The headline metrics (METRIC_KEYS) and a per-kind breakdown."""
    n = len(convs)
    rewards = [c.reward for c in convs]
    mean = mean_or_none(rewards) or 0.0
    var = sum((r - mean) ** 2 for r in rewards) / (n - 1) if n > 1 else 0.0
    amb = [c for c in convs if c.item.ambiguous]
    clear = [c for c in convs if not c.item.ambiguous]
    metrics = {
        "n": n,
        "mean_reward": mean,
        "stderr": math.sqrt(var / n) if n else 0.0,
        "accuracy": mean_or_none([float(c.correct) for c in convs]) or 0.0,
        "ask_rate_ambiguous": mean_or_none([float(c.asked) for c in amb]),
        "ask_rate_unambiguous": mean_or_none([float(c.asked) for c in clear]),
        "mean_turns": mean_or_none([float(len(c.agent_turns)) for c in convs]) or 0.0,
    }
    details = {
        "n_ambiguous": len(amb),
        "n_unambiguous": len(clear),
        "mean_reward_ambiguous": mean_or_none([c.reward for c in amb]),
        "mean_reward_unambiguous": mean_or_none([c.reward for c in clear]),
        "accuracy_ambiguous": mean_or_none([float(c.correct) for c in amb]),
        "accuracy_unambiguous": mean_or_none([float(c.correct) for c in clear]),
        # The second skill: answering from the user's clarification (the decision is only worth what follows it).
        "accuracy_after_asking": mean_or_none([float(c.correct) for c in convs if c.asked]),
        "accuracy_without_asking": mean_or_none([float(c.correct) for c in convs if not c.asked]),
        # A question that names no option gets an unhelpful reply (agent/user_reply.py).
        "asks_named_options": asks_named_options(convs),
    }
    return metrics, details


def evaluate(
    engine: Engine,
    items: Sequence[Item],
    *,
    adapter: str | None = None,
    horizon: int = 1,
    question_cost: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    progress: bool = True,
    calibrated_ask: bool = True,
) -> EvalResult:
    """Greedy conversations, one per item (the first `limit` items), graded. `adapter` must be loaded already.
    `calibrated_ask`: apply the adapter's calibrated ask threshold, if it has one (agent/decision.py)."""
    items = list(items)[:limit] if limit is not None else list(items)
    if not items:
        raise ValueError("no items to evaluate")
    convs = run_conversations(
        engine, items, per_item=1,
        params=GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, calibrated_ask=calibrated_ask),
        adapter=adapter, horizon=horizon, question_cost=question_cost, seed=seed, ask_first=0,
        explore=0.0,  # the benchmark and the gate measure the policy itself: never its serving exploration
        progress=progress, desc="eval",
    )
    metrics, details = compute_metrics(convs)
    details.update(seed=seed, horizon=horizon, question_cost=question_cost, max_new_tokens=max_new_tokens,
                   engine=getattr(engine, "name", None), adapter=adapter,
                   calibrated_ask=calibrated_ask)
    return EvalResult(metrics=metrics, conversations=convs, details=details)
