"""The training speed levers (bench/training.py, docs/BENCHMARKS.md) leave the loss and its gradient as they were.

On the real bundled model with the learner's LoRA config and real agent-turn examples (train-split items as
asked-then-answered conversations, through learner.examples, the trainer's own tokenization and collator):

- the LM head only at agent-turn positions (RewardWeightedTrainer's default) gives the same per-example NLL
  and the same LoRA gradients as full logits over the 49k vocabulary at every position;
- batching is invisible to an example's loss: its NLL alone equals its NLL in a padded batch with longer
  and shorter neighbours, so length-grouped batches (less padding) change speed, not the objective;
- bf16 autocast (TrainConfig.bf16) stays within 2% of the fp32 loss: a precision trade, measured here.
"""

from __future__ import annotations

import pytest
import torch

from agent.items import TRAIN_ITEMS, load_items
from agent.policy import Message
from learner.examples import Conversation, tokenize_example, turn_examples
from learner.train_adapter import TrainConfig
from learner.trainer import WeightedCollator, per_example_nll, weighted_loss


@pytest.fixture(scope="module")
def lora_model(model_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)  # as the trainer runs (TrainConfig.threads); two threads fight on a shared box
    torch.manual_seed(0)
    cfg = TrainConfig()
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32),
                           LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                      target_modules=cfg.target_modules, task_type="CAUSAL_LM"))
    with torch.no_grad():  # a trained-looking adapter: B != 0, so its gradients flow through both A and B
        gen = torch.Generator().manual_seed(0)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.01)
    return model.train()


@pytest.fixture(scope="module")
def rows(model_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    out = []
    for item in load_items(TRAIN_ITEMS, limit=2):
        first = item.interpretations[0]
        messages = [Message("user", item.question, "user"), Message("assistant", "Which one do you mean?", "ask"),
                    Message("user", first.clarification, "user"), Message("assistant", f"It is {first.answer}.", "answer")]
        conv = Conversation(item.id, item.id, item.context, 1.0, messages)
        for ex in turn_examples(conv, horizon=1):
            row = tokenize_example(tokenizer, ex, 512)
            row["weight"] = 0.5 + len(out) * 0.25
            out.append(row)
    assert len({len(r["input_ids"]) for r in out}) == len(out) == 4, "examples of different lengths"
    return out, tokenizer.pad_token_id


def _loss_and_grads(model, batch, head_only: bool):
    model.zero_grad()
    nll = per_example_nll(model, batch["input_ids"], batch["attention_mask"], batch["labels"],
                          head_only_on_targets=head_only)
    loss = weighted_loss(nll, batch["weights"])
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return nll.detach(), grads


def test_head_only_on_agent_turns_gives_the_full_logits_loss_and_gradients(lora_model, rows):
    examples, pad = rows
    batch = WeightedCollator(pad)(examples[:2])
    fast_nll, fast_grads = _loss_and_grads(lora_model, batch, head_only=True)
    full_nll, full_grads = _loss_and_grads(lora_model, batch, head_only=False)
    assert torch.allclose(fast_nll, full_nll, rtol=1e-5, atol=1e-5)
    assert fast_grads.keys() == full_grads.keys() and len(fast_grads) > 0
    for name, g in fast_grads.items():
        assert torch.allclose(g, full_grads[name], rtol=1e-4, atol=1e-7), name


def test_an_examples_loss_does_not_depend_on_its_batch(lora_model, rows):
    examples, pad = rows
    with torch.no_grad():
        alone = [per_example_nll(lora_model, **_inputs(WeightedCollator(pad)([ex]))).item() for ex in examples]
        mixed = per_example_nll(lora_model, **_inputs(WeightedCollator(pad)(examples))).tolist()
        by_length = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
        grouped = per_example_nll(lora_model, **_inputs(WeightedCollator(pad)([examples[i] for i in by_length])))
    assert mixed == pytest.approx(alone, rel=1e-4)
    assert [grouped[j].item() for j in range(len(examples))] == pytest.approx([alone[i] for i in by_length], rel=1e-4)


def test_bf16_autocast_stays_within_two_percent_of_fp32(lora_model, rows):
    examples, pad = rows
    batch = _inputs(WeightedCollator(pad)(examples))
    with torch.no_grad():
        fp32 = per_example_nll(lora_model, **batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = per_example_nll(lora_model, **batch)
    assert bf16.float().tolist() == pytest.approx(fp32.tolist(), rel=2e-2)


def _inputs(batch: dict) -> dict:
    return {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
