"""bench/decision.py: the table's ratios, and one real (tiny) run on the transformers engine."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from decision import main, table  # noqa: E402


def test_the_table_gives_each_variant_against_no_decision():
    times = {"no decision": [1.0, 2.0, 3.0], "decision": [2.0, 4.0, 7.0]}
    rows = table({"vllm": times}).splitlines()
    assert rows[2] == "| vllm | no decision | 2.000 | 1.00x |"
    assert rows[3] == "| vllm | decision | 4.000 | 2.00x |"


def test_a_real_run_times_every_variant_of_the_transformers_engine(model_path, capsys):
    main(["--engines", "transformers", "--prompts", "1", "--rounds", "1"])
    out = capsys.readouterr().out
    for name in ("no decision", "decision"):
        assert f"| transformers | {name} |" in out
    assert "view" not in out  # the notes' orders are no longer pooled
