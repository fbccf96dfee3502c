"""What the calibrated ask decision costs: time to the first streamed text of an opening turn, per engine.

The decision reads P(ask) at the first token of a turn that may ask (agent/decision.py). For each engine (run
one after the other, never both at once) the same train-free rank-16 LoRA is loaded under each variant's
metadata:

* ``no decision``: no threshold, plain greedy decoding (the obvious alternative);
* ``decision``: a threshold on P(ask).

Each round times one opening turn per dev prompt for every variant, in a rotated order (these machines are
noisy; a variant is never always first). The table gives the median and the ratio to ``no decision``.

Usage: .venv/bin/python bench/decision.py [--engines transformers,vllm] [--prompts 6] [--rounds 3]
       [--vllm-url URL]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.adapter_metadata import AdapterMetadata, write_metadata  # noqa: E402
from agent.engine import GenerationParams  # noqa: E402
from agent.items import DEV_ITEMS, load_items  # noqa: E402
from agent.policy import Message, build_prompt  # noqa: E402
from bench.serving import open_engine  # noqa: E402
from clarify.model_store import resolve_model  # noqa: E402
from clarify.settings import Settings  # noqa: E402
from learner.random_adapter import random_lora_adapter  # noqa: E402

# name -> adapter metadata
VARIANTS = {"no decision": AdapterMetadata(), "decision": AdapterMetadata(ask_threshold=0.5)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engines", default="transformers,vllm", help="comma-separated: transformers, vllm")
    p.add_argument("--prompts", type=int, default=6, help="dev prompts per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the transformers engine")
    p.add_argument("--dtype", default=Settings().dtype, choices=["bfloat16", "float32"])
    p.add_argument("--vllm-url", default=None, help="benchmark a running vLLM server instead of starting one")
    return p.parse_args(argv)


def prompts(n: int) -> list[list[dict]]:
    return [build_prompt(it.context, [Message("user", it.question, "user")], horizon=1)
            for it in load_items(DEV_ITEMS, limit=n)]


def first_text_seconds(engine, messages, adapter: str) -> float:
    start = time.perf_counter()
    for piece in engine.stream(messages, GenerationParams(max_new_tokens=4, temperature=0.0), adapter=adapter):
        if piece:
            break
    return time.perf_counter() - start


def variant_folders(model_path: Path, tmp: Path) -> dict[str, Path]:
    """One adapter's weights under each variant's metadata (the metadata is what the engines read)."""
    weights = random_lora_adapter(model_path, tmp / "weights", rank=16)
    folders = {}
    for i, (name, meta) in enumerate(VARIANTS.items()):
        folder = tmp / f"variant{i}"
        shutil.copytree(weights, folder)
        write_metadata(folder, meta)
        folders[name] = folder
    return folders


def measure(engine, folders: dict[str, Path], ps, rounds: int, log) -> dict[str, list[float]]:
    names = list(VARIANTS)
    for i, name in enumerate(names):
        engine.load_adapter(f"v{i}", folders[name])
    first_text_seconds(engine, ps[0], "v0")  # warm-up
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            adapter = f"v{names.index(name)}"
            times[name] += [first_text_seconds(engine, p, adapter) for p in ps]
            log(f"  {engine.name:12s} round {r} {name:28s} median {statistics.median(times[name]):.3f} s")
    return times


def table(results: dict[str, dict[str, list[float]]]) -> str:
    rows = ["| engine | decision | first text s (median) | / no decision |", "|---|---|---:|---:|"]
    for engine, times in results.items():
        med = {n: statistics.median(t) for n, t in times.items()}
        for name, m in med.items():
            rows.append(f"| {engine} | {name} | {m:.3f} | {m / med['no decision']:.2f}x |")
    return "\n".join(rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    model_path = resolve_model(None, Settings().models_dir)
    ps = prompts(args.prompts)
    load_avg = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory(prefix="clarify-bench-") as tmp:
        folders = variant_folders(model_path, Path(tmp))
        for name in [e for e in args.engines.split(",") if e]:
            engine = open_engine(name, model_path, args, Path(tmp), log)
            try:
                results[name] = measure(engine, folders, ps, args.rounds, log)
            finally:
                engine.close()
    print(f"clarify decision bench: SmolLM2-135M-Instruct {args.dtype}, a rank-16 LoRA, greedy, time to the first "
          f"streamed text of an opening turn; {args.prompts} dev prompts x {args.rounds} rounds per variant, "
          f"transformers threads={args.threads}; load average {load_avg:.2f} at start on {os.cpu_count()} cores")
    print()
    print(table(results))


if __name__ == "__main__":
    main()
