"""Reward-weighted SFT as a thin subclass of the Hugging Face Trainer.

TRL has no per-example loss weight (see docs/LEARNING.md), so this is the
~one-method subclass: the loss of a batch is

    sum_i w_i * mean_{tokens of agent turn i} (-log pi(token))  /  batch size

with the ask-or-answer decision (the first agent turn's first token) scored as a choice between two
actions (per_example_parts),

and logits are computed only at the positions that carry loss: with a 49k
vocabulary the LM head over every prompt token is most of the compute at this
model size, and the prompt tokens never need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import Trainer


@dataclass
class WeightedCollator:
    pad_token_id: int

    def __call__(self, features: list[dict]) -> dict:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
        weights = torch.tensor([float(f["weight"]) for f in features], dtype=torch.float32)
        first = torch.tensor([float(f.get("first_token_weight", 1.0)) for f in features], dtype=torch.float32)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": weights,
                "first_token_weights": first}


def _causal_lm_parts(model):
    """(decoder body, lm head) of a causal LM, through a PEFT wrapper if there is one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


def per_example_parts(model, input_ids, attention_mask, labels, *, head_only_on_targets: bool = True,
                      first_token_weights: torch.Tensor | None = None, ask_ids: torch.Tensor | None = None,
                      flip_decision: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(decision part, rest part) of each example's mean negative log-likelihood, shape (batch,) each.

    ``first_token_weights[i]`` counts example i's first labelled token that many times in its mean
    (1 = plain mean): the ask-or-answer decision is that one token, and in a plain mean it is a
    fifteenth of a turn whose other tokens the model learns anyway (docs/LEARNING.md).

    With ``ask_ids``, a decision token (first token weight other than 1) is scored as the choice between two
    actions, not one word among 49k: -log P(ask) = -log sum P(ask ids) for an ask, -log (1 - P(ask)) for an
    answer. ``flip_decision[i]`` scores the other action instead: a turn with a negative weight teaches "the
    other action here" with a positive one, so its push fades once that action is likely (cross-entropy),
    where "less of this word" keeps pushing an unlikely ask further down and spreads the mass anywhere.
    """
    targets = labels[:, 1:]
    keep = targets != -100
    if head_only_on_targets:
        body, head = _causal_lm_parts(model)
        hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, :-1]
        logits = head(hidden[keep]).float()
    else:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][keep].float()
    flat_targets = targets[keep]
    token_nll = F.cross_entropy(logits, flat_targets, reduction="none")
    rows = keep.nonzero()[:, 0]
    token_w = torch.ones_like(token_nll)
    is_decision = torch.zeros_like(token_nll, dtype=torch.bool)
    if first_token_weights is not None:
        is_first = torch.ones_like(rows, dtype=torch.bool)
        is_first[1:] = rows[1:] != rows[:-1]
        row_w = first_token_weights.to(token_nll)[rows]
        token_w = torch.where(is_first, row_w, token_w)
        is_decision = is_first & (row_w != 1.0)
    if ask_ids is not None and bool(is_decision.any()):
        at = is_decision.nonzero()[:, 0]
        log_probs = logits[at].log_softmax(-1)
        log_ask = log_probs[:, ask_ids.to(logits.device)].logsumexp(-1).clamp(max=-1e-6)
        log_answer = torch.log(-torch.expm1(log_ask))
        asked = torch.isin(flat_targets[at], ask_ids.to(flat_targets.device))
        if flip_decision is not None:
            asked = asked ^ flip_decision.to(asked.device)[rows[at]]
        token_nll = token_nll.index_put((at,), torch.where(asked, -log_ask, -log_answer))
    zeros = torch.zeros(labels.shape[0], dtype=token_nll.dtype, device=token_nll.device)
    counts = zeros.index_add(0, rows, token_w).clamp(min=1e-6)
    weighted = token_nll * token_w
    decision = zeros.index_add(0, rows, torch.where(is_decision, weighted, torch.zeros_like(weighted)))
    rest = zeros.index_add(0, rows, torch.where(is_decision, torch.zeros_like(weighted), weighted))
    return decision / counts, rest / counts


def per_example_nll(model, input_ids, attention_mask, labels, **kwargs) -> torch.Tensor:
    """Mean negative log-likelihood of each example's labelled tokens, shape (batch,) (see per_example_parts)."""
    decision, rest = per_example_parts(model, input_ids, attention_mask, labels, **kwargs)
    return decision + rest


def weighted_loss(nll: torch.Tensor, weights: torch.Tensor, negative_nll_cap: float | None = None,
                  decision: torch.Tensor | None = None, has_decision: torch.Tensor | None = None) -> torch.Tensor:
    """sum_i w_i * nll_i / batch (+ |w_i| * decision_i for the examples `has_decision` marks). With a cap, a negative-weight turn
    stops pushing once its NLL passes it.

    Minimizing w * nll with w < 0 is unbounded: the model can always make a bad turn less likely by
    wrecking everything else. Clamping its NLL (zero gradient above the cap) keeps "less likely"
    from becoming "destroyed" (docs/LEARNING.md).

    With a decision part (per_example_parts, already scored as the other action where the weight is negative),
    a negative weight teaches only the decision: the words of a turn whose action was wrong are the model's
    usual words for that action (a note sentence, a question), and pushing them down taught it to write
    nothing well (dev reward 0.10, accuracy 0.10).
    """
    weights = weights.to(nll.dtype)
    nll_w = weights
    if decision is not None:
        has_decision = decision != 0 if has_decision is None else has_decision.to(decision.device)
        nll_w = torch.where(has_decision, weights.clamp(min=0), weights)
    if negative_nll_cap is not None:
        nll = torch.where(nll_w < 0, nll.clamp(max=negative_nll_cap), nll)
    loss = nll_w * nll
    if decision is not None:
        loss = loss + weights.abs() * decision.to(nll.dtype)
    return loss.sum() / nll.shape[0]


class RewardWeightedTrainer(Trainer):
    """HF Trainer whose loss weights each agent turn by its conversation's (transformed) reward; with
    ``ask_ids``, the ask-or-answer decision is learned as a two-action choice (per_example_parts)."""

    def __init__(self, *args, negative_nll_cap: float | None = None, ask_ids: list[int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.negative_nll_cap = negative_nll_cap
        self.ask_ids = torch.tensor(ask_ids, dtype=torch.long) if ask_ids else None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weights = inputs["weights"]
        decision, rest = per_example_parts(
            model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"],
            first_token_weights=inputs.get("first_token_weights"), ask_ids=self.ask_ids,
            flip_decision=(weights < 0) if self.ask_ids is not None else None)
        if self.ask_ids is None:
            loss = weighted_loss(decision + rest, weights, self.negative_nll_cap)
        else:
            first = inputs.get("first_token_weights")
            loss = weighted_loss(rest, weights, self.negative_nll_cap, decision=decision,
                                 has_decision=None if first is None else first != 1.0)
        return (loss, {"nll": decision + rest}) if return_outputs else loss
