"""The numbers of a batch of simulated conversations: what `clarify simulate`, `clarify eval` and the bench print."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .simulator import SimulatedConversation


def summarize(convs: Sequence[SimulatedConversation]) -> dict:
    """Mean reward, accuracy, ask rates and the share of questions that named the options, of a batch of
    simulated conversations."""
    n = len(convs)
    if n == 0:
        return {"conversations": 0}
    free = [c for c in convs if c.forced_prefix is None]
    rewards = [c.reward for c in convs]
    mean = sum(rewards) / n
    var = sum((r - mean) ** 2 for r in rewards) / (n - 1) if n > 1 else 0.0
    return {
        "conversations": n,
        "items": len({c.item.id for c in convs}),
        "mean_reward": mean,
        "stderr": math.sqrt(var / n),
        "accuracy": sum(c.correct for c in convs) / n,
        "ask_rate": sum(c.asked for c in convs) / n,
        "forced": n - len(free),
        "ask_rate_unforced": (sum(c.asked for c in free) / len(free)) if free else None,
        "mean_reward_asked": mean_or_none([c.reward for c in convs if c.asked]),
        "mean_reward_answered": mean_or_none([c.reward for c in convs if not c.asked]),
        "asks_named_options": asks_named_options(convs),
    }


def asks_named_options(convs: Sequence[SimulatedConversation]) -> float | None:
    """The share of the clarifying questions the users replied to that named the options (None: no question)."""
    named = [n for c in convs for n in c.named_options]
    return mean_or_none([float(n) for n in named])


def mean_or_none(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
