"""The calibrated ask decision: on a turn that may ask, ask when P(the reply starts a clarifying question)
is above the adapter's threshold.

Why a threshold and not greedy decoding: a trained adapter ranks unseen questions well (ambiguous above
clear) but is less sure of them than of the ones it trained on, so greedy decoding asks too rarely. The
learner picks the threshold on renamed copies of the training questions (learner/calibration.py) and writes
it into the adapter's metadata; both engines read it when they load the adapter and apply it at the
reply's first token only, so the rest of the reply is the model's own. P is P(the first reply token is the ask
word) on the prompt as given: the probability the model's own forward pass gives that token, no extra pass.
Greedy: ask iff P > t. Sampling: the decision is drawn with the log-odds of P shifted by -logit(t) (t maps to a
coin flip). The learner reads P the same way when it sets the threshold (agent/adapter_metadata.py holds it).

(P used to be pooled over three orders of the notes, ``ask_views``: one reading gives the same decision on
188 and 182 of the 192 dev items for two trained seeds, at 2.3x less time to first text on transformers and
1.8-3.8x less on vLLM; docs/LEARNING.md, "What was tried". Adapters whose metadata still carries the key load.)

A decided ask is then written as one question: the whole ask prefix, no sentence end but "?", and the turn ends
at the "?" (QUESTION_REGEX; `QuestionForm` per token in the transformers engine, structured outputs in vLLM).
Forcing only the first word let the model finish "Do you mean" as a statement or "Do" as "Doors": 3-7% of the
ambiguous dev items the decision asked on were logged as answers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from .adapter_metadata import read_metadata
from .policy import ASK_PREFIXES, MUST_ANSWER_SUFFIX, Message, build_prompt


@dataclass(frozen=True)
class AskDecision:
    """An adapter's calibrated decision: ask iff P(ask) > threshold."""
    threshold: float


def ask_start_words() -> set[str]:
    """How an ask starts as text: the first word of each ask prefix ("Do"), one token in the served models."""
    return {prefix.split()[0] for prefix in ASK_PREFIXES}


# A decided ask, after its prefix, is one question: QUESTION_REGEX. QuestionForm is the same rule per token for
# the transformers engine; vLLM applies the regex itself (structured outputs), so both engines write the same reply.
QUESTION_REGEX = r"[^.!?\n]*\?"
_SENTENCE_END = re.compile(r"[.!?\n]")


@dataclass(frozen=True)
class QuestionForm:
    """What keeps a decided ask a question (the decision forces only where the reply starts; the model then
    sometimes finished "Do you mean" as a statement, e.g. "Do you mean kitchen notes: Deep-dish pizza: oven at
    425°F.", or took the ask word into "Doors open at 8"): the rest of each ask prefix, the tokens that would end
    the sentence other than with "?", the tokens that hold a "?", and the end-of-turn tokens."""
    prefix_rest: dict[int, tuple[int, ...]]
    sentence_ends: tuple[int, ...]
    question_marks: frozenset[int]
    end_of_turn: tuple[int, ...]


def question_form(tokenizer) -> QuestionForm:
    """Read once per tokenizer (one pass over the vocabulary)."""
    rest = {}
    for prefix in ASK_PREFIXES:
        ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        rest[ids[0]] = tuple(ids[1:])
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    marks = frozenset(i for i, text in enumerate(texts) if text.endswith("?") and not _SENTENCE_END.search(text[:-1]))
    ends = tuple(i for i, text in enumerate(texts) if i not in marks and _SENTENCE_END.search(text))
    eot = tuple(sorted({i for i in (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>"))
                        if isinstance(i, int) and i != tokenizer.unk_token_id}))
    return QuestionForm(rest, ends, marks, eot)


def ask_token_ids(tokenizer) -> list[int]:
    """The first token of each ask prefix: the token that commits a reply to asking."""
    return sorted({tokenizer(prefix, add_special_tokens=False)["input_ids"][0] for prefix in ASK_PREFIXES})


def prompt_ids(tokenizer, prompt: list[dict]):
    """Token ids of a serving prompt, up to where the reply starts."""
    text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]


def opening_ids(tokenizer, context: str, question: str, horizon: int = 1):
    """Token ids of the serving prompt for an opening question, up to where the reply starts."""
    return prompt_ids(tokenizer, build_prompt(context, [Message("user", question, "user")], horizon))


def log_odds(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def ask_probability(model, tokenizer, context: str, question: str, ask_ids: list[int], horizon: int = 1) -> float:
    """P(the reply to an opening question starts with an ask token): one forward pass, no generation. What the
    threshold is compared with, read by the learner (learner/calibration.py) and bench/ask_probe.py alike."""
    import torch

    prompt = build_prompt(context, [Message("user", question, "user")], horizon)
    with torch.no_grad():
        probs = model(input_ids=prompt_ids(tokenizer, prompt)).logits[0, -1].float().softmax(-1)
    return float(probs[ask_ids].sum())


def may_ask(prompt: list[dict]) -> bool:
    """False for a turn the policy must answer (agent.policy.build_prompt adds MUST_ANSWER_SUFFIX)."""
    return not (prompt and prompt[0].get("role") == "system"
                and str(prompt[0].get("content", "")).endswith(MUST_ANSWER_SUFFIX))


def read_ask_decision(folder: Path) -> AskDecision | None:
    """The adapter's calibrated decision; None if it has none (no metadata, or too few questions to set one).
    AdapterLoadError when the metadata is broken."""
    meta = read_metadata(folder)
    if meta.ask_threshold is None:
        return None
    return AskDecision(float(meta.ask_threshold))


def ask_odds(p_ask: float, threshold: float) -> float:
    """The probability of asking after the shift: 0.5 exactly at the threshold."""
    return 1 / (1 + math.exp(log_odds(threshold) - log_odds(p_ask)))


def decide(p_ask: float, threshold: float, draw: float | None = None) -> bool:
    """Ask? `draw` is None for greedy decoding, else a uniform number in [0, 1) when sampling."""
    if draw is None:
        return p_ask > threshold
    return draw < ask_odds(p_ask, threshold)


@dataclass
class Exploration:
    """One agent turn's exploration (issue 33): the serving policy takes the action its decision did not choose
    with probability `rate`. `draw` is the caller's uniform number in [0, 1) (a seeded rng; the turn explores iff
    draw < rate). The engine fills the rest where it applies the decision (`settle`), before the reply's first
    token: the decision's P(ask), the chance that the decision asks (0 or 1 when greedy), the action taken.
    rate 0 only records: the engine then decides exactly as without it (and records nothing for a model with
    no calibrated threshold, whose decision is then its own first token)."""
    rate: float
    draw: float = 1.0
    p_ask: float | None = None
    ask_chance: float | None = None
    action: str | None = None           # "ask" | "answer"; None: no decision was applied
    explored: bool = False

    @property
    def active(self) -> bool:
        return self.rate > 0

    def settle(self, p_ask: float, ask_chance: float, decided_ask: bool) -> bool:
        """Record the decision and return whether the reply asks (the decided action, or the other one)."""
        self.p_ask, self.ask_chance = float(p_ask), float(ask_chance)
        self.explored = self.draw < self.rate
        asked = decided_ask != self.explored
        self.action = "ask" if asked else "answer"
        return asked

    @property
    def propensity(self) -> float | None:
        """The probability the serving policy had of taking the action it took: the decision's chance of it
        mixed with the exploration rate (1 - rate or rate when the decision is greedy)."""
        if self.action is None or self.ask_chance is None:
            return None
        p = (1 - self.rate) * self.ask_chance + self.rate * (1 - self.ask_chance)
        return p if self.action == "ask" else 1 - p

    def columns(self) -> dict:
        """What a logged agent turn records of it (logs_db ConversationStore.add_turn); {} when nothing was decided."""
        if self.action is None:
            return {}
        return dict(p_ask=self.p_ask, action=self.action, propensity=self.propensity, explored=self.explored)


def decision_chance(p_ask: float, threshold: float | None, draw: float | None,
                    greedy_asks: bool) -> tuple[bool, float]:
    """(asks?, the chance it had of asking) of one turn's decision. With a calibrated `threshold` it is `decide`;
    without one (the base model), the model's own first token: greedy asks iff the ask word is the likeliest
    (`greedy_asks`), sampling asks with probability P(ask). `draw`: None when greedy, else uniform in [0, 1)."""
    if threshold is not None:
        return decide(p_ask, threshold, draw), (float(p_ask > threshold) if draw is None
                                                else ask_odds(p_ask, threshold))
    if draw is None:
        return greedy_asks, float(greedy_asks)
    return draw < p_ask, p_ask


def first_token_processor(ask_ids: list[int], thresholds: list[float | None], prompt_width: int, sampling: bool,
                          form: QuestionForm | None = None, explorations: list[Exploration | None] | None = None):
    """A transformers LogitsProcessor that applies the decision to each row at the first generated token
    (rows with threshold None are left alone unless they explore), reading P(ask) from the logits the model
    computes there anyway. `decisions` records (P(ask), asked) per row. `explorations[row]` (an Exploration or None) may take the other action and records the decision.
    With `form`, a row that decided to ask then writes the whole ask prefix and one question: no sentence end
    but "?", and the turn ends at the "?" (the words in between are the model's own)."""
    import torch
    from transformers import LogitsProcessor

    ids = torch.tensor(ask_ids)

    def force(scores, row: int, token: int) -> None:
        scores[row, :] = -math.inf
        scores[row, token] = 0.0

    banned = torch.tensor(form.sentence_ends + form.end_of_turn) if form is not None else None

    class FirstTokenDecision(LogitsProcessor):
        def __init__(self):
            self.decisions: dict[int, tuple[float, bool]] = {}

        def __call__(self, input_ids, scores):
            if input_ids.shape[1] != prompt_width:
                return self.keep_asking(input_ids, scores, input_ids.shape[1] - prompt_width)
            probs = scores.float().softmax(-1)
            explores = explorations or [None] * len(thresholds)
            rows = [row for row, threshold in enumerate(thresholds)
                    if threshold is not None or (explores[row] is not None and explores[row].active)]
            for row in rows:
                threshold, exploration = thresholds[row], explores[row]
                p_ask = float(probs[row, ids].sum())
                greedy_asks = bool(scores[row, ids].max() >= scores[row].max())
                asked, chance = decision_chance(p_ask, threshold, float(torch.rand(())) if sampling else None,
                                                greedy_asks)
                if exploration is not None:
                    asked = exploration.settle(p_ask, chance, asked)
                self.decisions[row] = (p_ask, asked)
                if asked:
                    keep = scores[row, ids].clone()
                    scores[row, :] = -math.inf
                    scores[row, ids] = torch.where(torch.isinf(keep), torch.zeros_like(keep), keep)
                else:
                    scores[row, ids] = -math.inf
            return scores

        def keep_asking(self, input_ids, scores, step: int):
            if form is None:
                return scores
            for row, (_, asked) in self.decisions.items():
                if not asked:
                    continue
                rest = form.prefix_rest.get(int(input_ids[row, prompt_width]), ())
                if step <= len(rest):
                    force(scores, row, rest[step - 1])
                elif int(input_ids[row, -1]) in form.question_marks and form.end_of_turn:
                    force(scores, row, form.end_of_turn[0])
                else:
                    scores[row, banned] = -math.inf
            return scores

    return FirstTokenDecision()
