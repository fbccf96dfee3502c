"""What the calibrated ask decision costs: time to the first streamed text of an opening turn, per engine.

The decision reads P(ask) at the first token of a turn that may ask (agent/decision.py): the transformers engine
from the logits it computes anyway, the vLLM engine from the log-probabilities of the reply's own streamed
request (agent/vllm/decision_requests.py). For each engine (run one after the other, never both at once):

* ``base``: the base model, no adapter and no decision (one plain request on vLLM): what the goal compares with;
* ``adapter``: an adapter with a calibrated threshold, by default a train-free rank-16 LoRA with
  ``--threshold`` 0.02 (the lowest threshold the calibration gives, and the one the default recipe's adapters
  got), or a trained adapter folder (``--adapter``, its own threshold);
* ``adapter, no decision``: the same weights without a threshold (plain greedy decoding, one plain request on
  vLLM): what the adapter itself costs, apart from its decision.

Each round times one opening turn per dev prompt for both variants, in a rotated order (these machines are
noisy; a variant is never always first). The table gives the median, its ratio to ``base``, the adapter's asks,
and on vLLM the share of the adapter's replies that took the action the path before took (a 1-token request
before the reply, `VllmEngine.decided_prefix`, on the same prompts) and the chat requests per reply.

Usage: .venv/bin/python bench/decision.py [--engines transformers,vllm] [--prompts 6] [--rounds 3]
       [--adapter FOLDER | --threshold 0.02] [--vllm-url URL]
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

from agent.adapter_metadata import AdapterMetadata, read_metadata, write_metadata  # noqa: E402
from agent.decision import Exploration  # noqa: E402
from agent.engine import GenerationParams  # noqa: E402
from agent.items import DEV_ITEMS, load_items  # noqa: E402
from agent.policy import Message, build_prompt  # noqa: E402
from bench.serving import open_engine  # noqa: E402
from clarify.model_store import resolve_model  # noqa: E402
from clarify.settings import Settings  # noqa: E402
from learner.random_adapter import random_lora_adapter  # noqa: E402

VARIANTS = ("base", "adapter, no decision", "adapter")
PARAMS = GenerationParams(max_new_tokens=4, temperature=0.0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engines", default="transformers,vllm", help="comma-separated: transformers, vllm")
    p.add_argument("--prompts", type=int, default=6, help="dev prompts per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--adapter", type=Path, default=None,
                   help="a trained adapter folder with its calibrated threshold (default: a train-free LoRA)")
    p.add_argument("--threshold", type=float, default=0.02, help="the train-free LoRA's ask threshold")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the transformers engine")
    p.add_argument("--dtype", default=Settings().dtype, choices=["bfloat16", "float32"])
    p.add_argument("--vllm-url", default=None, help="benchmark a running vLLM server instead of starting one")
    return p.parse_args(argv)


def prompts(n: int) -> list[list[dict]]:
    return [build_prompt(it.context, [Message("user", it.question, "user")], horizon=1)
            for it in load_items(DEV_ITEMS, limit=n)]


def first_text_seconds(engine, messages, adapter: str | None, exploration: Exploration | None = None) -> float:
    """Seconds to the reply's first text; the rest of the (short) reply is read too, so every request it
    makes is sent (a decided ask yields its prefix before the request that writes the question)."""
    start, seconds = time.perf_counter(), None
    for piece in engine.stream(messages, PARAMS, adapter=adapter, explore=exploration):
        if piece and seconds is None:
            seconds = time.perf_counter() - start
    return seconds if seconds is not None else time.perf_counter() - start


def adapter_folders(model_path: Path, tmp: Path, args) -> dict[str, Path]:
    """The adapter each adapter variant serves: a copy of --adapter, or a train-free LoRA with --threshold; and
    the same weights without the threshold."""
    if args.adapter is not None:
        if read_metadata(args.adapter).ask_threshold is None:
            raise SystemExit(f"{args.adapter} has no calibrated ask threshold.")
        folder = Path(shutil.copytree(args.adapter, tmp / "adapter"))
    else:
        folder = random_lora_adapter(model_path, tmp / "adapter", rank=16)
        write_metadata(folder, AdapterMetadata(ask_threshold=args.threshold))
    plain = Path(shutil.copytree(folder, tmp / "plain"))
    write_metadata(plain, AdapterMetadata())
    return {"adapter": folder, "adapter, no decision": plain}


class RequestCounter:
    """Counts the chat requests a vLLM engine sends (0 calls for the transformers engine)."""

    def __init__(self, engine):
        self.calls, client = 0, getattr(engine, "_client", None)
        if client is not None:
            send = client.complete

            def counted(kwargs):
                self.calls += 1
                return send(kwargs)

            client.complete = counted


def measure(engine, folders: dict[str, Path], ps, rounds: int, log) -> dict:
    """{"times": {variant: [s]}, "actions": [(prompt index, the adapter's action) per timed reply],
    "requests": {variant: [chat requests per reply]} (vLLM)}."""
    adapters = {"base": None, "adapter, no decision": "plain", "adapter": "adapter"}
    for name, folder in folders.items():
        engine.load_adapter(adapters[name], folder)
    for name in VARIANTS:
        first_text_seconds(engine, ps[0], adapters[name])  # warm-up
    counter = RequestCounter(engine)
    times: dict[str, list[float]] = {n: [] for n in VARIANTS}
    actions, requests = [], {n: [] for n in VARIANTS}
    for r in range(rounds):
        for name in VARIANTS[r % len(VARIANTS):] + VARIANTS[: r % len(VARIANTS)]:
            for i, p in enumerate(ps):
                exploration = Exploration(0.0) if name == "adapter" else None   # rate 0: only records
                before = counter.calls
                times[name].append(first_text_seconds(engine, p, adapters[name], exploration))
                requests[name].append(counter.calls - before)
                if exploration is not None:
                    actions.append((i, exploration.action))
            log(f"  {engine.name:12s} round {r} {name:20s} median {statistics.median(times[name]):.3f} s")
    return {"times": times, "actions": actions, "requests": requests}


def one_token_actions(engine, ps) -> list[str | None]:
    """The adapter's action on each prompt by the path before: the 1-token request (vLLM only)."""
    out = []
    for p in ps:
        exploration = Exploration(0.0)
        engine.decided_prefix(p, PARAMS, "adapter", exploration=exploration)
        out.append(exploration.action)
    return out


def table(results: dict[str, dict]) -> str:
    rows = ["| engine | variant | first text s (median) | / base | adapter asks | same decision as the 1-token "
            "request | chat requests per reply |", "|---|---|---:|---:|---:|---:|---:|"]
    for engine, result in results.items():
        med = {n: statistics.median(t) for n, t in result["times"].items()}
        actions, old = result["actions"], result.get("one_token")
        asks = f"{sum(a == 'ask' for _, a in actions)} / {len(actions)}"
        same = f"{sum(a == old[i] for i, a in actions)} / {len(actions)}" if old is not None else "-"
        for name, m in med.items():
            per_reply = f"{statistics.mean(result['requests'][name]):.2f}" if old is not None else "-"
            extra = (asks, same, per_reply) if name == "adapter" else ("-", "-", per_reply)
            rows.append(f"| {engine} | {name} | {m:.3f} | {m / med['base']:.2f}x | " + " | ".join(extra) + " |")
    return "\n".join(rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    model_path = resolve_model(None, Settings().models_dir)
    ps = prompts(args.prompts)
    load_avg = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory(prefix="clarify-bench-") as tmp:
        folders = adapter_folders(model_path, Path(tmp), args)
        threshold = read_metadata(folders["adapter"]).ask_threshold
        for name in [e for e in args.engines.split(",") if e]:
            engine = open_engine(name, model_path, args, Path(tmp), log)
            try:
                results[name] = measure(engine, folders, ps, args.rounds, log)
                if name == "vllm":
                    results[name]["one_token"] = one_token_actions(engine, ps)
            finally:
                engine.close()
    adapter = f"adapter {args.adapter.name}" if args.adapter else "a train-free rank-16 LoRA"
    print(f"clarify decision bench: SmolLM2-135M-Instruct {args.dtype}, {adapter} with ask threshold {threshold}, "
          f"greedy, time to the first streamed text of an opening turn; {args.prompts} dev prompts x {args.rounds} "
          f"rounds per variant, transformers threads={args.threads}; load average {load_avg:.2f} at start on "
          f"{os.cpu_count()} cores")
    print()
    print(table(results))


if __name__ == "__main__":
    main()
