"""Serving speed: the in-process transformers engine vs the vLLM engine, base model and with a LoRA adapter.

For each engine (run one after the other, never both at once) and each of
base / adapter, three workloads on the clarify prompts of the dev split:

* ``1 chat``: one streamed reply at a time (3 replies, one after another);
* ``8 chats``: 8 streamed replies requested at the same moment from 8 threads
  (what 8 users chatting at once see; the transformers engine batches them into
  one generate call (agent/batching.py), ``transformers-serial`` is the same
  engine with ``max_batch=1``, one reply after another as before; vLLM batches
  them server-side);
* ``batch 8``: one ``generate_batch`` of 8 prompts (simulation / evaluation;
  the transformers engine pads them into one ``generate`` call).

Aggregate tokens/s = reply tokens (re-tokenized, so both engines count the
same way) / wall time; TTFT = time from the request to its first streamed text.
The adapter is a train-free rank-16 LoRA on all projections (PEFT's init with
seeded noise in lora_B): its speed, not its quality, is what is measured.

Usage: .venv/bin/python bench/serving.py [--engines transformers-serial,transformers,vllm] [--max-new-tokens 64]
       [--dtype float32|bfloat16] [--vllm-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.engine import GenerationParams  # noqa: E402
from bench.common import at_once  # noqa: E402
from agent.items import DEV_ITEMS, load_items  # noqa: E402
from agent.policy import Message, build_prompt  # noqa: E402
from clarify.model_store import resolve_model  # noqa: E402
from clarify.settings import Settings  # noqa: E402
from learner.random_adapter import random_lora_adapter  # noqa: E402

CHATS = 8
SINGLE_RUNS = 3


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--dtype", default=Settings().dtype, choices=["bfloat16", "float32"],
                   help="both engines (default: the app's dtype setting, what `clarify serve` uses)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the transformers engine")
    p.add_argument("--vllm-url", default=None, help="benchmark a running vLLM server instead of starting one")
    p.add_argument("--data-dir", type=Path, default=REPO / ".clarify")
    p.add_argument("--batching-rounds", type=int, default=0,
                   help="also compare the transformers engine batched vs one after another on 8 chats, alternating")
    p.add_argument("--engines", default="transformers,vllm",
                   help="comma-separated, run in this order; ratios are against the first: "
                        "transformers, transformers-serial (max_batch=1: concurrent chats one after another), vllm")
    return p.parse_args(argv)


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

    def worker(i, gate):
        gate.wait()
        results[i] = timed_stream(engine, ps[i], params, adapter)

    released = at_once(worker, CHATS)
    wall = time.perf_counter() - released
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

    engines = [e for e in args.engines.split(",") if e]
    results, setup = {}, {}
    with tempfile.TemporaryDirectory(prefix="clarify-bench-") as tmp:
        adapter_path = random_lora_adapter(model_path, Path(tmp) / "adapter", rank=16)
        for name in engines:
            t = time.perf_counter()
            eng = open_engine(name, model_path, args, Path(tmp), log)
            setup[name] = time.perf_counter() - t
            log(f"{name} engine ready in {setup[name]:.1f} s")
            try:
                results[name] = measure(eng, ps, params, adapter_path, count, log)
            finally:
                eng.close()
                del eng

    if engines:
        pair_index = [(i, j) for j in range(len(engines)) for i in range(j)]
        pairs = [(engines[i], engines[j]) for i, j in pair_index]
        header = (["workload", "adapter"] + [f"{e} tok/s" for e in engines] + [f"{b}/{a}" for a, b in pairs]
                  + [f"{e} TTFT s (median / max)" for e in engines] + ["tokens per reply"])
        rows = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
        for adapter in ("base", "bench"):
            for label, _ in WORKLOADS:
                r = [results[e][(adapter, label)] for e in engines]
                cells = ([label, "LoRA r16" if adapter == "bench" else "base"] + [f"{x['tok_s']:.1f}" for x in r]
                         + [ratio(r[j]["tok_s"], r[i]["tok_s"]) for i, j in pair_index]
                         + [fmt_ttft(x["ttft"]) for x in r] + [" / ".join(f"{x['tokens']:.0f}" for x in r)])
                rows.append("| " + " | ".join(cells) + " |")
        print(f"clarify serving bench: SmolLM2-135M-Instruct {args.dtype}, greedy, max_new_tokens={args.max_new_tokens}, "
              f"dev-split clarify prompts; transformers threads={args.threads}; engines {', '.join(engines)}"
              + (f" (vLLM at {args.vllm_url})" if args.vllm_url and "vllm" in engines else ""))
        print(f"load average at start {load_avg[0]:.2f} on {os.cpu_count()} cores; set-up "
              + ", ".join(f"{e} {setup[e]:.0f} s" for e in engines)
              + f"; whole run {time.perf_counter() - bench_start:.0f} s")
        print()
        print("\n".join(rows))
    if args.batching_rounds:
        print()
        print(batching_table(model_path, ps, params, count, args, log))


def batching_table(model_path: Path, ps, params, count, args, log) -> str:
    """The transformers engine with concurrent chats batched vs one after another (max_batch 8 vs 1): the same
    engine object, alternating every round, so both see the same load on a shared machine."""
    from agent.transformers_engine import TransformersEngine

    load_avg = os.getloadavg()[0]
    eng = TransformersEngine(model_path, threads=args.threads, dtype=args.dtype)
    runs: dict = {}
    with tempfile.TemporaryDirectory(prefix="clarify-bench-") as tmp:
        eng.load_adapter("bench", random_lora_adapter(model_path, Path(tmp) / "adapter", rank=16))  # loaded: the folder can go
    try:
        for adapter in (None, "bench"):
            timed_stream(eng, ps[-1], GenerationParams(max_new_tokens=8), adapter)  # warm-up
            for r in range(args.batching_rounds):
                for max_batch in ((1, CHATS) if r % 2 == 0 else (CHATS, 1)):
                    eng._batcher.max_batch = max_batch
                    res = concurrent_chats(eng, ps, params, adapter, count)
                    runs.setdefault((adapter, max_batch), []).append(res)
                    log(f"  round {r} {adapter or 'base':5s} max_batch={max_batch}: {res['tok_s']:.1f} tok/s")
    finally:
        eng.close()
    out = [f"transformers engine ({args.dtype}, threads={args.threads}), {CHATS} chats at once, batched "
           f"(max_batch={CHATS}) vs one after another (max_batch=1), alternating on one engine, "
           f"{args.batching_rounds} rounds each (TTFTs of all rounds pooled); load average {load_avg:.2f} at start", "",
           "| adapter | one after another tok/s | batched tok/s | batched / one after another | "
           "TTFT one after another s (median / max) | TTFT batched s (median / max) |",
           "|---|---:|---:|---:|---:|---:|"]
    for adapter in (None, "bench"):
        serial, batched = runs[(adapter, 1)], runs[(adapter, CHATS)]
        s_tok = statistics.mean(x["tok_s"] for x in serial)
        b_tok = statistics.mean(x["tok_s"] for x in batched)
        out.append(f"| {'LoRA r16' if adapter else 'base'} | {s_tok:.1f} | {b_tok:.1f} | {ratio(b_tok, s_tok)} | "
                   f"{fmt_ttft([t for x in serial for t in x['ttft']])} | "
                   f"{fmt_ttft([t for x in batched for t in x['ttft']])} |")
    return "\n".join(out)


def open_engine(name: str, model_path: Path, args, tmp: Path, log):
    if name.startswith("transformers"):
        from agent.transformers_engine import TransformersEngine

        return TransformersEngine(model_path, threads=args.threads, dtype=args.dtype,
                                  **({"max_batch": 1} if name == "transformers-serial" else {}))
    from agent.vllm_engine import VllmEngine

    if args.vllm_url:
        return VllmEngine(url=args.vllm_url, progress=log)
    return VllmEngine(model_path, dtype=args.dtype, progress=log, log_path=tmp / "vllm-server.log")


if __name__ == "__main__":
    main()
