"""Per-conversation training weights for each objective (arXiv 2506.06964 and its baselines).

Every method here is weighted SFT on the agent's turns; only the weight differs:

- refit: w = r (r in [0, 1]): maximizes E[r * sum_t log pi(a_t | x, tau_<t)].
- swift: w = (r - mean_x) / std_x over the trajectories of the same context x.
  Contexts seen once (real users rarely repeat a question) are standardized
  against the mean and std of *all* singleton rewards: a global baseline is
  the value estimate we can afford without a critic, and it keeps the weights
  of singletons on the same scale as the grouped ones.
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
# Floor on the per-context reward std. Rewards are in [0, 1] and a question costs 0.1, so two
# trajectories that differ only by that cost (0.9 vs 1.0) would otherwise get the same +-1 weights as
# a right vs a wrong answer (0.9 vs 0.0): with few trajectories per context, plain standardization keeps
# only the sign. With the floor, small differences give proportionally small weights (docs/LEARNING.md).
MIN_STD = 0.25


@dataclass(frozen=True)
class Trajectory:
    conversation_id: str
    context_key: str
    reward: float


def refit_weights(trajs: list[Trajectory]) -> dict[str, float]:
    return {t.conversation_id: float(t.reward) for t in trajs}


def swift_weights(trajs: list[Trajectory], min_std: float = MIN_STD) -> dict[str, float]:
    groups: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajs:
        groups[t.context_key].append(t)
    singletons = [g[0] for g in groups.values() if len(g) == 1]
    out: dict[str, float] = {}
    if singletons:
        r = np.array([t.reward for t in singletons], dtype=float)
        mean, std = r.mean(), max(r.std(), min_std)
        for t in singletons:
            out[t.conversation_id] = float((t.reward - mean) / std) if len(singletons) > 1 else 0.0
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


def compute_weights(method: str, trajs: list[Trajectory], **kwargs) -> dict[str, float]:
    if method == "refit":
        return refit_weights(trajs)
    if method == "swift":
        return swift_weights(trajs, **kwargs)
    if method == "sft":
        return filtered_sft_weights(trajs, **kwargs)
    raise ValueError(f"Unknown weighted method {method!r}; use one of {WEIGHTED_METHODS}.")
