"""Concurrent streamed replies batched into one generate call (agent/batching.py) give the same replies.

The real bundled model in fp32, greedy: 8 chats started at once are generated together (checked through the
batcher's record of batch sizes) and each reader gets exactly the text it gets when the requests run one at
a time; a reader that stops early stops only its own row; requests for another adapter are never mixed into
a batch; a failure reaches every reader of the batch.
"""

from __future__ import annotations

import threading

import pytest
import torch

from agent.engine import EngineError, GenerationParams
from agent.items import DEV_ITEMS, load_items
from agent.policy import Message, build_prompt

PARAMS = GenerationParams(max_new_tokens=24, temperature=0.0)


@pytest.fixture(scope="module")
def prompts():
    items = load_items(DEV_ITEMS, limit=8)
    return [build_prompt(it.context, [Message("user", it.question, "user")], horizon=1) for it in items]


@pytest.fixture(scope="module")
def noisy_adapter(model_path, tmp_path_factory):
    """A LoRA adapter that changes the replies (PEFT's random, non-zero B init, seeded), so mixing it up would show."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dest = tmp_path_factory.mktemp("noisy") / "adapter"
    torch.manual_seed(0)
    get_peft_model(AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32),
                   LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                              task_type="CAUSAL_LM")).save_pretrained(dest)
    return dest


def _at_once(engine, jobs):
    """Run `jobs` (prompt, adapter) from one thread each, released together; returns texts or exceptions."""
    out: list = [None] * len(jobs)
    gate = threading.Barrier(len(jobs))

    def run(i, prompt, adapter):
        gate.wait()
        try:
            out[i] = "".join(engine.stream(prompt, PARAMS, adapter=adapter))
        except EngineError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, p, a)) for i, (p, a) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _one_at_a_time(engine, jobs):
    return ["".join(engine.stream(p, PARAMS, adapter=a)) for p, a in jobs]


def test_concurrent_replies_are_batched_and_equal_the_sequential_ones(engine, prompts):
    jobs = [(p, None) for p in prompts]
    sequential = _one_at_a_time(engine, jobs)
    engine._batcher.batch_sizes.clear()
    concurrent = _at_once(engine, jobs)
    assert concurrent == sequential
    assert max(engine._batcher.batch_sizes) > 1 and sum(engine._batcher.batch_sizes) == len(jobs)
    assert all(text.strip() for text in sequential)


def test_a_reader_that_stops_early_stops_only_its_row(engine, prompts):
    sequential = _one_at_a_time(engine, [(p, None) for p in prompts[:3]])
    out: list = [None] * 3
    gate = threading.Barrier(3)

    def full(i):
        gate.wait()
        out[i] = "".join(engine.stream(prompts[i], PARAMS))

    def abandon():
        gate.wait()
        stream = engine.stream(prompts[0], PARAMS)
        out[0] = next(stream)
        stream.close()  # the browser went away after the first piece

    threads = [threading.Thread(target=abandon)] + [threading.Thread(target=full, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out[1:] == sequential[1:]
    assert sequential[0].startswith(out[0])


def test_other_adapters_are_never_mixed_into_a_batch(engine, prompts, noisy_adapter):
    engine.load_adapter("noisy-batching", noisy_adapter)
    try:
        jobs = [(p, "noisy-batching" if i % 2 else None) for i, p in enumerate(prompts[:6])]
        sequential = _one_at_a_time(engine, jobs)
        assert sequential[1] != _one_at_a_time(engine, [(prompts[1], None)])[0], "the adapter changes replies"
        assert _at_once(engine, jobs) == sequential
    finally:
        engine.unload_adapter("noisy-batching")


def test_a_failure_reaches_every_reader_of_the_batch(engine, prompts, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom (fault injected)")

    monkeypatch.setattr(engine.model, "generate", broken)
    out = _at_once(engine, [(p, None) for p in prompts[:4]])
    assert all(isinstance(o, EngineError) and "boom" in str(o) for o in out)
