"""Serving speed: the in-process transformers engine vs the vLLM engine, base model and with a LoRA adapter.

For each engine (run one after the other, never both at once) and each of
base / adapter, three workloads on the clarify prompts of the dev split:

* ``1 chat``: one streamed reply at a time (3 replies, one after another);
* ``8 chats``: 8 streamed replies requested at the same moment from 8 threads
  (what 8 users chatting at once see; the transformers engine serializes them
  behind its lock, vLLM batches them server-side);
* ``batch 8``: one ``generate_batch`` of 8 prompts (simulation / evaluation;
  the transformers engine pads them into one ``generate`` call).

Aggregate tokens/s = reply tokens (re-tokenized, so both engines count the
same way) / wall time; TTFT = time from the request to its first streamed text.
The adapter is a train-free rank-16 LoRA on all projections (PEFT's init with
seeded noise in lora_B): its speed, not its quality, is what is measured.

Usage: .venv/bin/python bench/serving.py [--max-new-tokens 64] [--dtype float32|bfloat16] [--vllm-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.engine import GenerationParams  # noqa: E402
from agent.items import DEV_ITEMS, load_items  # noqa: E402
from agent.policy import Message, build_prompt  # noqa: E402
from clarify.model_store import resolve_model  # noqa: E402
from clarify.settings import Settings  # noqa: E402

CHATS = 8
SINGLE_RUNS = 3
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--dtype", default=Settings().dtype, choices=["bfloat16", "float32"],
                   help="both engines (default: the app's dtype setting, what `clarify serve` uses)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the transformers engine")
    p.add_argument("--vllm-url", default=None, help="benchmark a running vLLM server instead of starting one")
    p.add_argument("--data-dir", type=Path, default=REPO / ".clarify")
    return p.parse_args(argv)


def make_adapter(model_path: Path, out: Path, rank: int = 16, seed: int = 0) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                                                  target_modules=TARGETS, task_type="CAUSAL_LM"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.01)
    peft_model.save_pretrained(out)
    return out


def prompts() -> list[list[dict]]:
    items = load_items(DEV_ITEMS, limit=CHATS + SINGLE_RUNS)
    return [build_prompt(it.context, [Message("user", it.question, "user")], horizon=1) for it in items]


class Counter:
    def __init__(self, model_path: Path):
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(model_path)

    def __call__(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])


def timed_stream(engine, messages, params, adapter) -> tuple[float, float, str]:
    start = time.perf_counter()
    first = None
    text = ""
    for piece in engine.stream(messages, params, adapter=adapter):
        if first is None:
            first = time.perf_counter() - start
        text += piece
    total = time.perf_counter() - start
    return (first if first is not None else total), total, text


def single_chats(engine, ps, params, adapter, count) -> dict:
    runs = [timed_stream(engine, p, params, adapter) for p in ps[:SINGLE_RUNS]]
    tokens = sum(count(r[2]) for r in runs)
    return dict(tok_s=tokens / sum(r[1] for r in runs), ttft=[r[0] for r in runs], tokens=tokens / len(runs))


def concurrent_chats(engine, ps, params, adapter, count) -> dict:
    results: list = [None] * CHATS
    gate = threading.Barrier(CHATS + 1)

    def worker(i):
        gate.wait()
        results[i] = timed_stream(engine, ps[i], params, adapter)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CHATS)]
    for t in threads:
        t.start()
    gate.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    tokens = sum(count(r[2]) for r in results)
    return dict(tok_s=tokens / wall, ttft=[r[0] for r in results], tokens=tokens / CHATS)


def batch(engine, ps, params, adapter, count) -> dict:
    start = time.perf_counter()
    gens = engine.generate_batch(ps[:CHATS], params, adapter=adapter)
    wall = time.perf_counter() - start
    tokens = sum(count(g.text) for g in gens)
    return dict(tok_s=tokens / wall, ttft=None, tokens=tokens / CHATS)


WORKLOADS = [("1 chat", single_chats), (f"{CHATS} chats", concurrent_chats), (f"batch {CHATS}", batch)]


def measure(engine, ps, params, adapter_path, count, log) -> dict:
    results = {}
    for adapter in (None, "bench"):
        if adapter is not None:
            t = time.perf_counter()
            engine.load_adapter(adapter, adapter_path)
            log(f"  adapter loaded in {time.perf_counter() - t:.2f} s")
        timed_stream(engine, ps[-1], GenerationParams(max_new_tokens=8), adapter)  # warm-up
        for label, fn in WORKLOADS:
            t = time.perf_counter()
            results[(adapter or "base", label)] = fn(engine, ps, params, adapter, count)
            r = results[(adapter or "base", label)]
            log(f"  {engine.name:12s} {adapter or 'base':7s} {label:8s} {r['tok_s']:6.1f} tok/s "
                f"({time.perf_counter() - t:.0f} s)")
    return results


def fmt_ttft(ttft) -> str:
    if ttft is None:
        return "-"
    return f"{statistics.median(ttft):.2f} / {max(ttft):.2f}"


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def main(argv=None) -> None:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    bench_start = time.perf_counter()
    settings = Settings(data_dir=args.data_dir)
    model_path = resolve_model(None, settings.models_dir)
    params = GenerationParams(max_new_tokens=args.max_new_tokens, temperature=0.0)
    ps = prompts()
    count = Counter(model_path)
    load_avg = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="clarify-bench-") as tmp:
        adapter_path = make_adapter(model_path, Path(tmp) / "adapter")

        from agent.transformers_engine import TransformersEngine

        t = time.perf_counter()
        eng = TransformersEngine(model_path, threads=args.threads, dtype=args.dtype)
        tf_load = time.perf_counter() - t
        log(f"transformers engine loaded in {tf_load:.1f} s")
        try:
            tf = measure(eng, ps, params, adapter_path, count, log)
        finally:
            eng.close()
            del eng

        from agent.vllm_engine import VllmEngine

        t = time.perf_counter()
        if args.vllm_url:
            vl_eng = VllmEngine(url=args.vllm_url, progress=log)
        else:
            vl_eng = VllmEngine(model_path, dtype=args.dtype, progress=log,
                                log_path=Path(tmp) / "vllm-server.log")
        vl_start = time.perf_counter() - t
        try:
            vl = measure(vl_eng, ps, params, adapter_path, count, log)
        finally:
            vl_eng.close()

    rows = [
        "| workload | adapter | transformers tok/s | vLLM tok/s | vLLM/transformers | "
        "transformers TTFT s (median / max) | vLLM TTFT s (median / max) | tokens per reply (tf / vLLM) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for adapter in ("base", "bench"):
        for label, _ in WORKLOADS:
            a, b = tf[(adapter, label)], vl[(adapter, label)]
            rows.append(
                f"| {label} | {'LoRA r16' if adapter == 'bench' else 'base'} | {a['tok_s']:.1f} | {b['tok_s']:.1f} | "
                f"{ratio(b['tok_s'], a['tok_s'])} | {fmt_ttft(a['ttft'])} | {fmt_ttft(b['ttft'])} | "
                f"{a['tokens']:.0f} / {b['tokens']:.0f} |"
            )
    print(f"clarify serving bench: SmolLM2-135M-Instruct {args.dtype}, greedy, max_new_tokens={args.max_new_tokens}, "
          f"dev-split clarify prompts; transformers threads={args.threads}; "
          f"vLLM {'at ' + args.vllm_url if args.vllm_url else 'supervised child server'}")
    print(f"load average at start {load_avg[0]:.2f} on {os.cpu_count()} cores; transformers load {tf_load:.1f} s, "
          f"vLLM {'connect' if args.vllm_url else 'server start'} {vl_start:.0f} s; "
          f"whole run {time.perf_counter() - bench_start:.0f} s")
    print()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
