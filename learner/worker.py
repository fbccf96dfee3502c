"""Trainer process entry point: `python -m learner.worker --snapshot S --out DIR --config JSON`.

Runs apart from the server because DuckDB allows one writer process and
training must not stall serving; it reads only the Parquet snapshot. Progress
goes to stdout as one JSON object per line (prefix ``@progress ``) for the
parent to render; the exit code says how it ended (0 ok, 3 refused, 1 crashed).
On a GPU machine the same module can be started under `accelerate launch`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

PROGRESS_PREFIX = "@progress "
EXIT_REFUSED = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", required=True, help="TrainConfig as JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from .train_adapter import TrainConfig, TrainingError, train

    def report(event: dict) -> None:
        print(PROGRESS_PREFIX + json.dumps(event, default=str), flush=True)

    try:
        train(TrainConfig(**json.loads(args.config)), args.snapshot, args.out, report)
    except TrainingError as exc:
        report({"event": "error", "message": str(exc)})
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
