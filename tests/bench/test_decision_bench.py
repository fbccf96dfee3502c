"""bench/decision.py: the table's ratios and counts, and one real (tiny) run on the transformers engine."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from decision import main, table  # noqa: E402


def test_the_table_gives_each_variant_against_the_base_model_and_the_one_token_requests_decisions():
    vllm = {"times": {"base": [1.0, 2.0, 3.0], "adapter, no decision": [2.2], "adapter": [2.0, 2.4, 7.0]},
            "actions": [(0, "answer"), (1, "ask"), (0, "answer")], "one_token": ["answer", "answer"],
            "requests": {"base": [1, 1, 1], "adapter, no decision": [1], "adapter": [1, 2, 1]}}
    transformers = {"times": {"base": [0.5], "adapter, no decision": [0.5], "adapter": [0.6]},
                    "actions": [(0, "answer")], "requests": {}}
    rows = table({"vllm": vllm, "transformers": transformers}).splitlines()
    assert rows[2] == "| vllm | base | 2.000 | 1.00x | - | - | 1.00 |"
    assert rows[3] == "| vllm | adapter, no decision | 2.200 | 1.10x | - | - | 1.00 |"
    assert rows[4] == "| vllm | adapter | 2.400 | 1.20x | 1 / 3 | 2 / 3 | 1.33 |"
    assert rows[7] == "| transformers | adapter | 0.600 | 1.20x | 0 / 1 | - | - |"


def test_a_real_run_times_every_variant_of_the_transformers_engine(model_path, capsys):
    main(["--engines", "transformers", "--prompts", "1", "--rounds", "1"])
    out = capsys.readouterr().out
    assert "a train-free rank-16 LoRA with ask threshold 0.02" in out
    for name in ("base", "adapter, no decision", "adapter"):
        assert f"| transformers | {name} |" in out
