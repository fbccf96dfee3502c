"""Per-conversation training weights for each objective (arXiv 2506.06964 and its baselines).

Every method here is weighted SFT on the agent's turns; only the weight differs:

- refit: w = r (r in [0, 1]): maximizes E[r * sum_t log pi(a_t | x, tau_<t)].
- swift: w = (r - mean_x) / std_x over the trajectories of the same context x,
  for the agent's first turn (the ask-or-answer decision: every trajectory of
  x is in the same state there). Contexts seen once (real users rarely repeat
  a question) are standardized against the mean and std of *all* rewards: a
  global baseline is the value estimate we can afford without a critic, and it
  keeps singletons on the same scale as the grouped ones. Later agent turns
  (the answer after a user's clarification) are in states that never repeat,
  so they are singletons too and get the global baseline. Without this split,
  an unneeded question on a clear item (r = 0.9 vs 1.0) would also push down
  the correct answer that followed it, and the ambiguous items that teach
  "answer from the clarification" would be cancelled by the clear ones
  (docs/LEARNING.md).
- sft (STaR-GATE style filtered SFT): w = 1 for the best trajectory of each
  context when its reward clears a threshold, else 0.

DPO and KTO are preference objectives with their own TRL trainers
(learner/baselines.py); they do not go through these weights.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

WEIGHTED_METHODS = ("refit", "swift", "sft")
# Floor on the per-context reward std: the cost of one clarifying question (0.1). Plain standardization
# maps any difference to the same +-1 scale, so on a clear item "asked, then right" (0.9) vs "answered,
# right" (1.0) -- std 0.05 -- would weigh twice as much as a lucky vs a wrong guess on an ambiguous
# item (std 0.41), and "don't ask" would drown "ask here". A difference of one question's cost is
# the smallest the product cares about, so it sets the scale (measured in docs/LEARNING.md).
MIN_STD = 0.1


@dataclass(frozen=True)
class Trajectory:
    conversation_id: str
    context_key: str
    reward: float


def refit_weights(trajs: list[Trajectory]) -> dict[str, float]:
    return {t.conversation_id: float(t.reward) for t in trajs}


def _global_standardized(trajs: list[Trajectory], min_std: float) -> dict[str, float]:
    r = np.array([t.reward for t in trajs], dtype=float)
    std = max(r.std(), min_std) if len(r) else 0.0
    return {t.conversation_id: float((t.reward - r.mean()) / std) if std > 0 else 0.0 for t in trajs}


def swift_weights(trajs: list[Trajectory], min_std: float = MIN_STD) -> dict[str, float]:
    """Weights of the first agent turn: per-context standardized, singletons against all rewards."""
    groups: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajs:
        groups[t.context_key].append(t)
    baseline = _global_standardized(trajs, min_std)
    out: dict[str, float] = {}
    for group in groups.values():
        if len(group) == 1:
            out[group[0].conversation_id] = baseline[group[0].conversation_id]
    for group in groups.values():
        if len(group) < 2:
            continue
        r = np.array([t.reward for t in group], dtype=float)
        std = r.std()
        for t in group:
            # Identical rewards (std 0): no evidence either way, weight 0.
            out[t.conversation_id] = float((t.reward - r.mean()) / max(std, min_std)) if std > 0 else 0.0
    return out


def filtered_sft_weights(trajs: list[Trajectory], threshold: float = 0.5) -> dict[str, float]:
    best: dict[str, Trajectory] = {}
    for t in trajs:
        cur = best.get(t.context_key)
        if cur is None or t.reward > cur.reward:
            best[t.context_key] = t
    keep = {t.conversation_id for t in best.values() if t.reward >= threshold}
    return {t.conversation_id: 1.0 if t.conversation_id in keep else 0.0 for t in trajs}


def swift_later_turn_weights(trajs: list[Trajectory], min_std: float = MIN_STD) -> dict[str, float]:
    """Weights of agent turns after the first: their states never repeat, so the global baseline."""
    return _global_standardized(trajs, min_std)


def compute_turn_weights(method: str, trajs: list[Trajectory], **kwargs) -> dict[str, tuple[float, float]]:
    """conversation id -> (weight of its first agent turn, weight of its later agent turns)."""
    first = compute_weights(method, trajs, **kwargs)
    if method != "swift":
        return {cid: (w, w) for cid, w in first.items()}
    later = swift_later_turn_weights(trajs, **kwargs)
    return {cid: (w, later[cid]) for cid, w in first.items()}


def compute_weights(method: str, trajs: list[Trajectory], **kwargs) -> dict[str, float]:
    if method == "refit":
        return refit_weights(trajs)
    if method == "swift":
        return swift_weights(trajs, **kwargs)
    if method == "sft":
        return filtered_sft_weights(trajs, **kwargs)
    raise ValueError(f"Unknown weighted method {method!r}; use one of {WEIGHTED_METHODS}.")
