"""Reward-weighted SFT as a thin subclass of the Hugging Face Trainer.

TRL has no per-example loss weight (see docs/LEARNING.md), so this is the
~one-method subclass: the loss of a batch is

    sum_i w_i * mean_{tokens of agent turn i} (-log pi(token))  /  batch size

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


def per_example_nll(model, input_ids, attention_mask, labels, *, head_only_on_targets: bool = True,
                    first_token_weights: torch.Tensor | None = None):
    """Mean negative log-likelihood of each example's labelled tokens, shape (batch,).

    ``first_token_weights[i]`` counts example i's first labelled token that many times in its mean
    (1 = plain mean): the ask-or-answer decision is that one token, and in a plain mean it is a
    fifteenth of a turn whose other tokens the model learns anyway (docs/LEARNING.md).
    """
    targets = labels[:, 1:]
    keep = targets != -100
    if head_only_on_targets:
        body, head = _causal_lm_parts(model)
        hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, :-1]
        logits = head(hidden[keep]).float()
    else:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][keep].float()
    token_nll = F.cross_entropy(logits, targets[keep], reduction="none")
    rows = keep.nonzero()[:, 0]
    token_w = torch.ones_like(token_nll)
    if first_token_weights is not None:
        is_first = torch.ones_like(rows, dtype=torch.bool)
        is_first[1:] = rows[1:] != rows[:-1]
        token_w = torch.where(is_first, first_token_weights.to(token_nll)[rows], token_w)
    zeros = torch.zeros(labels.shape[0], dtype=token_nll.dtype, device=token_nll.device)
    sums = zeros.index_add(0, rows, token_nll * token_w)
    counts = zeros.index_add(0, rows, token_w).clamp(min=1e-6)
    return sums / counts


def weighted_loss(nll: torch.Tensor, weights: torch.Tensor, negative_nll_cap: float | None = None) -> torch.Tensor:
    """sum_i w_i * nll_i / batch. With a cap, a negative-weight turn stops pushing once its NLL passes it.

    Minimizing w * nll with w < 0 is unbounded: the model can always make a bad turn less likely by
    wrecking everything else. Clamping its NLL (zero gradient above the cap) keeps "less likely"
    from becoming "destroyed" (docs/LEARNING.md).
    """
    weights = weights.to(nll.dtype)
    if negative_nll_cap is not None:
        nll = torch.where(weights < 0, nll.clamp(max=negative_nll_cap), nll)
    return (weights * nll).sum() / nll.shape[0]


class RewardWeightedTrainer(Trainer):
    """HF Trainer whose loss weights each agent turn by its conversation's (transformed) reward."""

    def __init__(self, *args, negative_nll_cap: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.negative_nll_cap = negative_nll_cap

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        nll = per_example_nll(model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"],
                              first_token_weights=inputs.get("first_token_weights"))
        loss = weighted_loss(nll, inputs["weights"], self.negative_nll_cap)
        return (loss, {"nll": nll}) if return_outputs else loss
