"""The calibrated ask decision: on a turn that may ask, ask when P(the reply starts a clarifying question)
is above the adapter's threshold.

Why a threshold and not greedy decoding: a trained adapter ranks unseen questions well (ambiguous above
clear) but is less sure of them than of the ones it trained on, so greedy decoding asks too rarely. The
learner picks the threshold on logged questions held out of training (learner/calibration.py) and writes
it into the adapter's metadata; both engines read it when they load the adapter and apply it at the
reply's first token only, so the rest of the reply is the model's own. Greedy: ask iff P > t. Sampling:
the decision is drawn with the log-odds of P shifted by -logit(t) (t maps to a coin flip).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .engine import AdapterLoadError
from .policy import ASK_PREFIXES, MUST_ANSWER_SUFFIX, Message, build_prompt

METADATA_FILE = "clarify_adapter.json"   # written by the learner beside the adapter weights
THRESHOLD_KEY = "ask_threshold"


def ask_start_words() -> set[str]:
    """How an ask starts as text: the first word of each ask prefix ("Do"), one token in the served models."""
    return {prefix.split()[0] for prefix in ASK_PREFIXES}


def ask_token_ids(tokenizer) -> list[int]:
    """The first token of each ask prefix: the token that commits a reply to asking."""
    return sorted({tokenizer(prefix, add_special_tokens=False)["input_ids"][0] for prefix in ASK_PREFIXES})


def opening_ids(tokenizer, context: str, question: str, horizon: int = 1):
    """Token ids of the serving prompt for an opening question, up to where the reply starts."""
    prompt = build_prompt(context, [Message("user", question, "user")], horizon)
    text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]


def ask_probability(model, tokenizer, context: str, question: str, ask_ids: list[int], horizon: int = 1) -> float:
    """P(the reply to an opening question starts with an ask token): one forward pass, no generation. What the
    threshold is compared with, read by the learner (learner/calibration.py) and bench/ask_probe.py alike."""
    import torch

    with torch.no_grad():
        probs = model(input_ids=opening_ids(tokenizer, context, question, horizon)).logits[0, -1].float().softmax(-1)
    return float(probs[ask_ids].sum())


def may_ask(prompt: list[dict]) -> bool:
    """False for a turn the policy must answer (agent.policy.build_prompt adds MUST_ANSWER_SUFFIX)."""
    return not (prompt and prompt[0].get("role") == "system"
                and str(prompt[0].get("content", "")).endswith(MUST_ANSWER_SUFFIX))


def read_ask_threshold(folder: Path) -> float | None:
    """The adapter's calibrated threshold; None if it has none (no metadata, or trained without a hold-out)."""
    meta_file = Path(folder) / METADATA_FILE
    if not meta_file.is_file():
        return None
    try:
        value = json.loads(meta_file.read_text()).get(THRESHOLD_KEY)
    except (OSError, ValueError, AttributeError) as exc:
        raise AdapterLoadError(f"{meta_file} is not valid JSON metadata: {exc}") from exc
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise AdapterLoadError(f"{meta_file}: {THRESHOLD_KEY} must be a probability between 0 and 1, not {value!r}.")
    return float(value)


def ask_odds(p_ask: float, threshold: float) -> float:
    """The probability of asking after the shift: 0.5 exactly at the threshold."""
    p = min(max(p_ask, 1e-9), 1 - 1e-9)
    shift = math.log(p / (1 - p)) - math.log(threshold / (1 - threshold))
    return 1 / (1 + math.exp(-shift))


def decide(p_ask: float, threshold: float, draw: float | None = None) -> bool:
    """Ask? `draw` is None for greedy decoding, else a uniform number in [0, 1) when sampling."""
    if draw is None:
        return p_ask > threshold
    return draw < ask_odds(p_ask, threshold)


def first_token_processor(ask_ids: list[int], thresholds: list[float | None], prompt_width: int, sampling: bool):
    """A transformers LogitsProcessor that applies the decision to each row at the first generated token
    (rows with threshold None are left alone). `decisions` records (P(ask), asked) per decided row."""
    import torch
    from transformers import LogitsProcessor

    ids = torch.tensor(ask_ids)

    class FirstTokenDecision(LogitsProcessor):
        def __init__(self):
            self.decisions: dict[int, tuple[float, bool]] = {}

        def __call__(self, input_ids, scores):
            if input_ids.shape[1] != prompt_width:
                return scores
            probs = scores.float().softmax(-1)
            for row, threshold in enumerate(thresholds):
                if threshold is None:
                    continue
                p_ask = float(probs[row, ids].sum())
                asked = decide(p_ask, threshold, float(torch.rand(())) if sampling else None)
                self.decisions[row] = (p_ask, asked)
                if asked:
                    keep = scores[row, ids].clone()
                    scores[row, :] = -math.inf
                    scores[row, ids] = torch.where(torch.isinf(keep), torch.zeros_like(keep), keep)
                else:
                    scores[row, ids] = -math.inf
            return scores

    return FirstTokenDecision()
