"""Loss and weight functions against hand-computed values on a tiny random model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from learner.trainer import WeightedCollator, per_example_nll, weighted_loss
from learner.weights import Trajectory, compute_turn_weights, compute_weights, filtered_sft_weights, swift_weights


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


def _batch():
    features = [
        {"input_ids": [1, 5, 6, 7, 8, 2], "labels": [-100, -100, -100, 7, 8, 2], "weight": 0.5},
        {"input_ids": [1, 9, 10, 2], "labels": [-100, -100, 10, 2], "weight": -1.0},
    ]
    return WeightedCollator(pad_token_id=0)(features)


def _hand_nll(model, ids, labels):
    """Mean -log p over labelled tokens, computed the slow obvious way."""
    logits = model(input_ids=torch.tensor([ids])).logits[0]
    total, n = 0.0, 0
    for pos in range(1, len(ids)):
        if labels[pos] != -100:
            total -= F.log_softmax(logits[pos - 1], -1)[labels[pos]].item()
            n += 1
    return total / n


def test_nll_only_counts_agent_tokens(tiny_model):
    b = _batch()
    nll = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], b["labels"])
    expected = [_hand_nll(tiny_model, [1, 5, 6, 7, 8, 2], [-100, -100, -100, 7, 8, 2]),
                _hand_nll(tiny_model, [1, 9, 10, 2], [-100, -100, 10, 2])]
    assert nll.tolist() == pytest.approx(expected, rel=1e-5)


def _hand_token_nlls(model, ids, labels):
    logits = model(input_ids=torch.tensor([ids])).logits[0]
    return [-F.log_softmax(logits[pos - 1], -1)[labels[pos]].item() for pos in range(1, len(ids)) if labels[pos] != -100]


def test_decision_token_weight_counts_the_first_agent_token_k_times(tiny_model):
    """first_token_weight k: the first agent token counts k times in that example's mean; 1 is the plain mean."""
    features = [
        {"input_ids": [1, 5, 6, 7, 8, 2], "labels": [-100, -100, -100, 7, 8, 2], "weight": 0.5, "first_token_weight": 4.0},
        {"input_ids": [1, 9, 10, 2], "labels": [-100, -100, 10, 2], "weight": -1.0},
    ]
    b = WeightedCollator(pad_token_id=0)(features)
    nll = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], b["labels"],
                          first_token_weights=b["first_token_weights"])
    first = _hand_token_nlls(tiny_model, [1, 5, 6, 7, 8, 2], [-100, -100, -100, 7, 8, 2])
    second = _hand_token_nlls(tiny_model, [1, 9, 10, 2], [-100, -100, 10, 2])
    assert nll[0].item() == pytest.approx((4 * first[0] + first[1] + first[2]) / 6, rel=1e-5)
    assert nll[1].item() == pytest.approx(sum(second) / len(second), rel=1e-5)
    plain = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], b["labels"])
    ones = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], b["labels"],
                           first_token_weights=torch.ones(2))
    assert torch.allclose(plain, ones, atol=1e-6)


def test_head_only_on_targets_equals_full_logits(tiny_model):
    b = _batch()
    fast = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], b["labels"])
    slow = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], b["labels"], head_only_on_targets=False)
    assert torch.allclose(fast, slow, atol=1e-6)


def test_user_tokens_do_not_change_the_loss(tiny_model):
    """Changing a masked (user/notes) token's *label* changes nothing; changing an agent token does."""
    b = _batch()
    base = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], b["labels"])
    labels = b["labels"].clone()
    labels[0, 3] = 11  # an agent token target
    changed = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], labels)
    assert changed[0] != base[0] and changed[1] == base[1]


def test_weighted_loss_hand_value(tiny_model):
    b = _batch()
    nll = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], b["labels"])
    loss = weighted_loss(nll, b["weights"])
    assert loss.item() == pytest.approx((0.5 * nll[0].item() - 1.0 * nll[1].item()) / 2, rel=1e-6)


def test_refit_equals_sft_when_all_rewards_are_one(tiny_model):
    b = _batch()
    nll = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], b["labels"])
    trajs = [Trajectory("a", "x", 1.0), Trajectory("b", "y", 1.0)]
    w = compute_weights("refit", trajs)
    refit = weighted_loss(nll, torch.tensor([w["a"], w["b"]]))
    assert refit.item() == pytest.approx(nll.mean().item(), rel=1e-6)


def test_swift_weights_sum_to_zero_per_context_and_hand_values():
    trajs = [Trajectory("a1", "A", 0.9), Trajectory("a2", "A", 0.0), Trajectory("a3", "A", 0.3),
             Trajectory("b1", "B", 1.0), Trajectory("b2", "B", 1.0)]
    w = swift_weights(trajs)
    assert sum(w[k] for k in ("a1", "a2", "a3")) == pytest.approx(0.0, abs=1e-9)
    mean, std = 0.4, math.sqrt(((0.5) ** 2 + 0.4 ** 2 + 0.1 ** 2) / 3)
    assert w["a1"] == pytest.approx((0.9 - mean) / std)
    assert w["b1"] == w["b2"] == 0.0  # no preference within B


def test_swift_singletons_use_the_global_baseline():
    trajs = [Trajectory("s1", "P", 1.0), Trajectory("s2", "Q", 0.0), Trajectory("s3", "R", 0.5)]
    w = swift_weights(trajs)
    assert w["s1"] > 0 > w["s2"] and w["s3"] == pytest.approx(0.0)
    assert sum(w.values()) == pytest.approx(0.0, abs=1e-9)


def test_swift_default_floor_is_one_question_cost():
    w = swift_weights([Trajectory("ask", "A", 0.9), Trajectory("answer", "A", 1.0)])
    assert w["answer"] == pytest.approx(0.05 / 0.1) and w["ask"] == pytest.approx(-0.5)


def test_filtered_sft_keeps_the_best_per_context_above_threshold():
    trajs = [Trajectory("a1", "A", 0.9), Trajectory("a2", "A", 0.3), Trajectory("b1", "B", 0.2)]
    assert filtered_sft_weights(trajs, threshold=0.5) == {"a1": 1.0, "a2": 0.0, "b1": 0.0}


def test_swift_plain_standardization_weighs_every_context_preference_equally():
    """The paper's plain standardization: an unneeded question (0.9 vs 1.0) counts as much as a wrong guess."""
    w = swift_weights([Trajectory("ask", "A", 0.9), Trajectory("answer", "A", 1.0),
                       Trajectory("ask2", "B", 0.9), Trajectory("wrong", "B", 0.0)], min_std=0.0)
    assert w["answer"] == pytest.approx(1.0) and w["ask"] == pytest.approx(-1.0)
    assert w["ask2"] == pytest.approx(1.0) and w["wrong"] == pytest.approx(-1.0)


def test_swift_std_floor_keeps_small_differences_small():
    """With a floor, 0.9 vs 1.0 (only the question cost apart) weighs less than right vs wrong."""
    w = swift_weights([Trajectory("ask", "A", 0.9), Trajectory("answer", "A", 1.0),
                       Trajectory("ask2", "B", 0.9), Trajectory("wrong", "B", 0.0)], min_std=0.25)
    assert w["answer"] == pytest.approx(0.05 / 0.25) and w["ask"] == pytest.approx(-0.2)
    assert w["ask2"] == pytest.approx(1.0) and w["wrong"] == pytest.approx(-1.0)


def test_swift_later_turns_are_scored_against_the_global_baseline():
    """An unneeded question on a clear item is penalized on the question, not on the right answer after it."""
    trajs = [Trajectory("ask", "A", 0.9), Trajectory("answer", "A", 1.0),
             Trajectory("ask2", "B", 0.9), Trajectory("wrong", "B", 0.0)]
    w = compute_turn_weights("swift", trajs, min_std=0.0)
    rewards = [0.9, 1.0, 0.9, 0.0]
    mean, std = sum(rewards) / 4, math.sqrt(sum((r - sum(rewards) / 4) ** 2 for r in rewards) / 4)
    assert w["ask"][0] == pytest.approx(-1.0)                      # the decision: asking was worse here
    assert w["ask"][1] == pytest.approx((0.9 - mean) / std)       # the answer after it was good
    assert w["ask"][1] > 0 > w["wrong"][1]
    refit = compute_turn_weights("refit", trajs)
    assert refit["ask"] == (0.9, 0.9)


def test_negative_weight_nll_cap_bounds_the_push(tiny_model):
    b = _batch()
    nll = per_example_nll(tiny_model, b["input_ids"], b["attention_mask"], b["labels"])
    cap = nll[1].item() / 2  # below the negative example's NLL: it must stop contributing gradient
    loss = weighted_loss(nll, b["weights"], negative_nll_cap=cap)
    assert loss.item() == pytest.approx((0.5 * nll[0].item() - 1.0 * cap) / 2, rel=1e-6)
    x = torch.tensor([5.0, 1.0], requires_grad=True)
    weighted_loss(x, torch.tensor([-1.0, -1.0]), negative_nll_cap=2.0).backward()
    assert x.grad.tolist() == [0.0, -0.5]  # capped: no push; under the cap: the usual gradient
    assert weighted_loss(nll, b["weights"], negative_nll_cap=None).item() == pytest.approx(
        weighted_loss(nll, b["weights"]).item())
