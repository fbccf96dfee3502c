"""Calibrate the ask decision of a trained adapter: a threshold on P(ask), set without the dev items.

Why: a trained adapter *ranks* questions well (ambiguous above clear: dev AUC 0.90-0.93,
docs/RESULTS.md), but its greedy decision is conservative: unseen ambiguous questions get a lower
P(ask) than the trained ones, so greedy decoding asks on too few of them. The fix is a decision
threshold: ask when P(reply starts a clarifying question) > t. Reading P(ask) on the training questions
as logged would read the adapter's over-confidence on them, and reading it on the dev items would tune to
the evaluation. So the learner reads it on renamed copies of the training questions, and picks t from the
rewards the logs show for asking and for answering on each question, asking needlessly on at most a set
share of them (`max_needless_asks`).

The threshold is written into the adapter's metadata (``ask_threshold``); every engine applies it at the
first token of a turn that may ask (agent/decision.py). No threshold: the plain greedy decision.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from agent.adapter_metadata import AdapterMetadata, read_metadata, write_metadata
from agent.decision import log_odds
from agent.seeding import stable_int

from .examples import Conversation

MIN_QUESTIONS = 8               # a threshold picked from fewer questions is mostly noise
THRESHOLD_RANGE = (0.02, 0.98)  # never force an ask the adapter gives under 2%, nor refuse one above 98%


def question_key(conv: Conversation) -> str:
    """Notes + the opening question: two conversations that share both are the same decision problem (the
    simulator's M conversations of one item; one user asking twice)."""
    return f"{conv.context_key}\x1f{(_opening(conv) or '').strip()}"


def _opening(conv: Conversation) -> str | None:
    """The user's opening question (None: the conversation has no user turn)."""
    return next((m.content for m in conv.messages if m.role == "user"), None)


def first_action(conv: Conversation) -> str | None:
    """'ask' or 'answer': the kind of the conversation's first agent turn (None: it has none)."""
    return next((m.kind for m in conv.messages if m.role == "assistant"), None)


@dataclass(frozen=True)
class DecisionProblem:
    """One opening question: the adapter's P(ask) there and what each action earned on it in the logs."""
    key: str
    p_ask: float
    ask_value: float
    answer_value: float


def action_values(convs: list[Conversation]) -> dict[str, tuple[float, float]]:
    """Per decision problem: (mean reward when the logged agent asked first, ... answered first).

    A problem logged with one action only borrows the other action's mean over all `convs`: a real user's
    conversation is usually the only one with its question, and the global mean is the baseline that knows
    least about it.
    """
    by_key: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"ask": [], "answer": []})
    overall: dict[str, list[float]] = {"ask": [], "answer": []}
    for conv in convs:
        action = first_action(conv)
        if action in overall:
            by_key[question_key(conv)][action].append(conv.reward)
            overall[action].append(conv.reward)
    fallback = {a: (sum(v) / len(v) if v else math.nan) for a, v in overall.items()}
    out = {}
    for key, rewards in by_key.items():
        ask, answer = (sum(rewards[a]) / len(rewards[a]) if rewards[a] else fallback[a] for a in ("ask", "answer"))
        if not (math.isnan(ask) or math.isnan(answer)):
            out[key] = (ask, answer)
    return out


def _needless(problem: DecisionProblem) -> bool:
    """Asking here would be a needless question: answering earned more in the logs."""
    return problem.ask_value < problem.answer_value


def auc(positives: list[float], negatives: list[float]) -> float:
    """Discrimination regardless of calibration: 1.0 = every positive above every negative, 0.5 = chance."""
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    return sum(pairs) / len(pairs) if pairs else float("nan")


def ranking_auc(problems: list[DecisionProblem]) -> float | None:
    """How well P(ask) ranks the questions where asking paid in the logs above those where answering paid
    (ties in value count for neither). A threshold can only move along this ranking: two training seeds of
    the same recipe ended at very different rankings (docs/RESULTS.md), and this is the
    training-data-only reading of it that the calibration records. None without both kinds."""
    paid = [p.p_ask for p in problems if p.ask_value > p.answer_value]
    needless = [p.p_ask for p in problems if _needless(p)]
    return round(auc(paid, needless), 4) if paid and needless else None


def _best_cut(problems: list[DecisionProblem], max_needless: float) -> float:
    """The log-odds cut on P(ask) that earns the most logged reward on `problems`, among the cuts that ask on
    at most `max_needless` of the problems where answering paid.

    Asking on the problems above the cut earns their ask_value, the others their answer_value. Cuts lie
    halfway (in log-odds) between two distinct P(ask) values, or 2 past the extremes; ties go to the cut
    nearest the plain greedy decision (0 = P 0.5).
    """
    gain_at: dict[float, float] = defaultdict(float)       # P(ask) -> gain of asking on every problem at it
    needless_at: dict[float, int] = defaultdict(int)
    for p in problems:
        gain_at[p.p_ask] += p.ask_value - p.answer_value
        needless_at[p.p_ask] += _needless(p)
    allowed = max_needless * sum(needless_at.values())
    levels = sorted(gain_at, reverse=True)
    logits = [log_odds(p) for p in levels]
    cuts = [logits[0] + 2.0] + [(a + b) / 2 for a, b in zip(logits, logits[1:])] + [logits[-1] - 2.0]
    candidates, gain, needless = [(cuts[0], 0.0)], 0.0, 0
    for cut, p in zip(cuts[1:], levels):
        gain, needless = gain + gain_at[p], needless + needless_at[p]
        if needless > allowed + 1e-9:
            break
        candidates.append((cut, gain))
    best = max(g for _, g in candidates)
    return min((c for c, g in candidates if g >= best - 1e-9), key=abs)


def choose_threshold(problems: list[DecisionProblem], max_needless: float = 1.0,
                     resamples: int = 200) -> float | None:
    """The threshold on P(ask) that earns the most logged reward on the calibration `problems` while asking on
    at most `max_needless` of those where answering paid; None with fewer than MIN_QUESTIONS problems.

    A few dozen questions make the single best cut jumpy (one question moves it across a gap), so
    the threshold is the median best cut over bootstrap resamples of them (seeded: the same data gives the
    same threshold), clipped to THRESHOLD_RANGE.
    """
    if len(problems) < MIN_QUESTIONS:
        return None
    rng = random.Random(0)
    samples = [problems] + [rng.choices(problems, k=len(problems)) for _ in range(resamples)]
    cuts = sorted(_best_cut(sample, max_needless) for sample in samples)
    threshold = 1 / (1 + math.exp(-statistics.median(cuts)))
    return min(max(threshold, THRESHOLD_RANGE[0]), THRESHOLD_RANGE[1])


RENAME_FOR_CALIBRATION = 1.0   # renamed copies: every word family and number of the notes renamed
CALIBRATION_COPIES = 1         # renamed copies per question, P(ask) averaged (the measured setting; more copies
                               # should steady the threshold, which one copy's draw moves: not measured yet)
MAX_CALIBRATION_QUESTIONS = 500  # CALIBRATION_COPIES forward passes each at the end of a run: minutes, not hours


def calibration_questions(trained: list[Conversation], seed: int = 0) -> tuple[str, dict[str, list[Conversation]]]:
    """(what they are, {decision problem key: the conversations whose opening question to read P(ask) on}).

    CALIBRATION_COPIES renamed copies of each trained question: the notes reordered and every word family and
    number renamed (learner.examples.rename_words), with seeds no training view used. The adapter is far less
    sure of those than of the questions as logged, as it is of unseen ones: a threshold set on the questions as
    logged asked on 30-32% of the clear dev items, one set on renamed copies on 16-23% (docs/LEARNING.md).
    """
    from .examples import content_words, rename_words, reorder_notes

    vocabulary = content_words(c.context for c in trained)
    out: dict[str, list[Conversation]] = {}
    for key, conv in _at_most(MAX_CALIBRATION_QUESTIONS, {question_key(c): c for c in reversed(trained)}).items():
        out[key] = []
        for copy in range(CALIBRATION_COPIES):
            parts = (seed, key) if copy == 0 else (seed, key, copy)  # copy 0: the draw of the first measurements
            view = replace(conv, context=reorder_notes(conv.context, stable_int("calibration-order", *parts)))
            out[key].append(rename_words(view, RENAME_FOR_CALIBRATION, vocabulary, stable_int("calibration", *parts)))
    return "renamed copies of the trained questions", out


def _at_most(n: int, questions: dict[str, Conversation]) -> dict[str, Conversation]:
    """A seeded sample of n questions (by a hash of their key: the same ones every time), in key order."""
    keys = sorted(questions, key=lambda k: stable_int("calibration-sample", k))[:n]
    return {k: questions[k] for k in sorted(keys)}


def ask_probabilities(model, tokenizer, questions: dict[str, list[Conversation]], horizon: int) -> dict[str, float]:
    """P(the reply starts a clarifying question) at each key's opening questions (the mean over its
    conversations), from `model` as it stands, read as the engines read it (one forward pass of the serving
    prompt)."""
    from agent.decision import ask_probability, ask_token_ids

    ask_ids = ask_token_ids(tokenizer)
    was_training = model.training
    model.eval()
    out = {}
    try:
        for key, convs in questions.items():
            readings = [ask_probability(model, tokenizer, conv.context, _opening(conv), ask_ids, horizon)
                        for conv in convs if _opening(conv) is not None]
            if readings:
                out[key] = sum(readings) / len(readings)
    finally:
        model.train(was_training)
    return out


def calibrate(model, tokenizer, logged: list[Conversation], horizon: int, max_needless: float = 1.0) -> dict:
    """The adapter metadata that records the calibration: ``ask_threshold`` (None: too few questions with
    rewards for both actions) and what the threshold was chosen on."""
    values = action_values(logged)
    source, questions = calibration_questions(logged)
    questions = {k: c for k, c in questions.items() if k in values}
    probs = ask_probabilities(model, tokenizer, questions, horizon)
    problems = [DecisionProblem(k, probs[k], *values[k]) for k in sorted(probs)]
    threshold = choose_threshold(problems, max_needless)

    def summary(t: float | None) -> dict:
        asks = [p for p in problems if t is not None and p.p_ask > t]
        earned = [p.ask_value if p in asks else p.answer_value for p in problems]
        return {"asked": len(asks), "needless": sum(map(_needless, asks)),
                "logged_value": round(sum(earned) / len(earned), 4) if earned else None}

    return {"ask_threshold": None if threshold is None else round(threshold, 4),
            "calibration": {"questions": source, "n_questions": len(problems),
                            "answering_paid": sum(map(_needless, problems)), "max_needless_asks": max_needless,
                            "ranking_auc": ranking_auc(problems),
                            "at_threshold": summary(threshold), "at_0.5": summary(0.5)}}


def calibrate_folder(base_model: str, folder: Path, snapshot: Path | None = None, *,
                     max_needless: float | None = None, model=None) -> dict:
    """Calibrate a saved adapter (an average, or one trained before calibration existed) on renamed copies of
    the questions of the snapshot it was trained on, and record the result in its metadata (atomically; keys of
    options since removed are dropped). The training settings are read with TrainConfig.from_dict: an adapter
    trained with an option since removed still calibrates.

    `model`: the adapter already loaded (skips loading it again). Returns the calibration metadata.
    """
    from dataclasses import replace

    import torch
    from transformers import AutoTokenizer

    from .examples import read_snapshot
    from .train_adapter import TrainConfig  # (imported here: train_adapter imports this module)

    meta = read_metadata(folder)
    training = training_meta(meta)
    snapshot = snapshot or training.snapshot
    if not snapshot:
        raise CalibrationError(f"{folder} records no training snapshot; give one (--snapshot).")
    snapshot = Path(snapshot)
    if not snapshot.is_file():
        raise CalibrationError(f"The snapshot {snapshot} is gone; give another one (--snapshot).")
    trained_with = TrainConfig.from_dict(training.config)
    max_needless = trained_with.max_needless_asks if max_needless is None else max_needless
    logged = read_snapshot(snapshot)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if model is None:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32),
                                          str(folder))
    result = calibrate(model, tokenizer, logged, trained_with.horizon, max_needless)
    write_metadata(folder, replace(meta, **result, calibrated_on=str(snapshot)))
    return result


def training_meta(meta: AdapterMetadata) -> AdapterMetadata:
    """The metadata of the training run behind an adapter (snapshot and config): its own, or for an average
    its first member's that has a snapshot (the members of an average share their snapshot)."""
    if meta.snapshot:
        return meta
    for member in meta.members:
        member_meta = read_metadata(Path(member))
        if member_meta.snapshot:
            return member_meta
    return AdapterMetadata()


class CalibrationError(ValueError):
    pass
