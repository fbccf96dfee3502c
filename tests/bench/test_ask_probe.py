"""bench/ask_probe.py: the ranking measures the docs quote (AUC, within-domain AUC, the ask rate a
recalibrated threshold could reach), and one real probe of the bundled model."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from ask_probe import ask_rate_at_budget, auc, main, within_group_auc  # noqa: E402


def test_the_ask_rate_at_a_budget_uses_the_lowest_threshold_that_keeps_clear_items_within_it():
    clear = [0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02]  # 20% of 10: two may be above the threshold
    ambiguous = [0.95, 0.6, 0.45, 0.41, 0.1]
    assert ask_rate_at_budget(ambiguous, clear, 0.2) == 0.8  # threshold 0.4: 0.95, 0.6, 0.45, 0.41
    assert ask_rate_at_budget(ambiguous, clear, 0.0) == 0.2  # nothing clear may be asked on: above 0.9 only
    assert ask_rate_at_budget(ambiguous, clear, 1.0) == 1.0


def test_within_domain_auc_ignores_pairs_across_domains():
    # Perfect inside each domain, but "orders" sits above "world" for both kinds: the overall AUC is not perfect.
    ambiguous = [("orders", 0.9), ("world", 0.3)]
    clear = [("orders", 0.6), ("world", 0.1)]
    assert within_group_auc(ambiguous, clear) == 1.0
    assert auc([p for _, p in ambiguous], [p for _, p in clear]) == 0.75
    assert within_group_auc([("a", 0.5)], [("b", 0.1)]) != within_group_auc([("a", 0.5)], [("b", 0.1)])  # nan: no pairs


def test_the_probe_of_the_bundled_model_prints_its_measures(capsys, model_path):
    assert main(["--limit", "3", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\| ambiguous \| 3 \| [01]\.\d{3} \|", out) and re.search(r"\| clear \| 3 \| [01]\.\d{3} \|", out)
    measures = re.search(r"AUC within a domain \(item id prefix\): (\S+) .* clear ones: ([01]\.\d\d)", out)
    assert measures, out
    assert 0.0 <= float(measures.group(2)) <= 1.0
    assert "adapter: base   items: dev.jsonl" in out
    with pytest.raises(SystemExit):   # the notes' orders are no longer pooled (agent/decision.py)
        main(["--limit", "2", "--views", "3"])


def test_the_probe_writes_each_items_p_ask_as_the_table_counts_it(capsys, model_path, tmp_path):
    """`--per-item FILE`: one line per probed item, and the table's means are the means of those lines."""
    import json

    out_file = tmp_path / "per_item.jsonl"
    assert main(["--limit", "2", "--threads", "1", "--per-item", str(out_file)]) == 0
    table = capsys.readouterr().out
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    dev_ids = {json.loads(line)["id"] for line in (REPO / "agent" / "data" / "dev.jsonl").read_text().splitlines()}
    assert len(rows) == 4 and {r["id"] for r in rows} <= dev_ids
    for kind, ambiguous in (("ambiguous", True), ("clear", False)):
        probs = [r["p_ask"] for r in rows if r["ambiguous"] is ambiguous]
        assert len(probs) == 2 and all(0.0 <= p <= 1.0 for p in probs)
        assert f"| {kind} | 2 | {sum(probs) / 2:.3f} |" in table
