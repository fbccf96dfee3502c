"""Synthetic conversations in the simulator's format, without running a model (bench/training.py, bench/loop.py).

Each conversation is a `SimulatedConversation` over a train-split item, graded
by the real grader: on an ambiguous item the agent either asks ("Do you mean
...?"), gets the user's clarification and answers, or answers at once with
one interpretation's answer (right or wrong for the user's hidden intent).
Logged through `agent.simulator.log_conversations`, they are what a
simulation run would leave in the database, only in seconds instead of hours.
"""

from __future__ import annotations

import random

from agent.items import TRAIN_ITEMS, load_items
from agent.simulator import SimTurn, SimulatedConversation, _finish, draw_intent


def _answer(answer: str) -> str:
    return f"It is {answer}."


def conversations(n: int, *, seed: int = 0, question_cost: float = 0.1) -> list[SimulatedConversation]:
    """`n` finished, graded conversations, cycling over the train items (deterministic for a seed)."""
    rng = random.Random(seed)
    items = load_items(TRAIN_ITEMS)
    out = []
    for k in range(n):
        item = items[k % len(items)]
        index = k // len(items)
        intent = draw_intent(item, index, seed)
        conv = SimulatedConversation(item, index, intent, temperature=0.0, forced_prefix=None, adapter=None,
                                     engine="synthetic", seed=seed)
        conv.turns.append(SimTurn("user", "user", item.question))
        interps = item.interpretations
        if item.ambiguous and rng.random() < 0.5:
            options = " or ".join(i.clarification.rstrip(".").lower() for i in interps)
            conv.turns.append(SimTurn("assistant", "ask", f"Do you mean {options}?", latency_ms=800.0,
                                      prompt_tokens=150, completion_tokens=12))
            conv.turns.append(SimTurn("user", "user", interps[intent].clarification))
            said = intent
        else:
            said = rng.randrange(len(interps))
        conv.turns.append(SimTurn("assistant", "answer", _answer(interps[said].answer), latency_ms=600.0,
                                  prompt_tokens=150, completion_tokens=8))
        _finish(conv, question_cost)
        out.append(conv)
    return out
