"""The chat-messages export of the rated conversations (and `clarify export`), on real DuckDB files."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from agent.policy import build_prompt
from learner.chat_export import export_chat
from logs_db.snapshot import SnapshotFilter


@pytest.fixture
def rated(store, log_georgia) -> dict:
    """4 rated UI conversations (the even ones ask first), 2 simulated ones and an unrated UI one."""
    log_georgia(4, source="ui")
    log_georgia(2, source="simulated")
    unrated = store.new_conversation(source="ui", context="Georgia is a country; its capital is Tbilisi.")
    store.add_turn(unrated, role="user", kind="user", text="What is the capital of Georgia?")
    store.add_turn(unrated, role="assistant", kind="answer", text="Tbilisi.")
    return {"unrated": unrated}


def test_export_jsonl_and_parquet_in_chat_form(store, rated, tmp_path):
    out = tmp_path / "rated.jsonl"
    assert export_chat(store, out, "jsonl", SnapshotFilter(source="ui"), horizon=1) == 4
    records = [json.loads(line) for line in out.read_text().splitlines()]
    first = records[0]
    assert set(first) == {"messages", "reward", "conversation_id", "context_key", "source"}
    assert first["reward"] == 1.0 and first["source"] == "ui"       # 5 stars
    notes = store.get_conversation(first["conversation_id"]).context
    assert first["messages"][0] == {"role": "system", "content": build_prompt(notes, [], 1)[0]["content"]}
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert first["messages"][2]["content"] == "Do you mean the country or the US state?"
    assert records[1]["reward"] == 0.0                              # thumbs down
    assert rated["unrated"] not in {r["conversation_id"] for r in records}

    pq_out = tmp_path / "all.parquet"
    assert export_chat(store, pq_out, "parquet") == 6
    table = pq.read_table(pq_out)
    assert table.column_names == ["messages", "reward", "conversation_id", "context_key", "source"]
    sim = next(r for r in table.to_pylist() if r["source"] == "simulated")
    assert sim["reward"] == 0.9 and sim["context_key"] == "georgia-0"

    # TRL's own check for the conversational format, and `datasets` reading the files as they are.
    from datasets import Dataset
    from trl.data_utils import is_conversational

    assert all(is_conversational(r) for r in records)
    assert Dataset.from_json(str(out)).num_rows == 4
    assert Dataset.from_parquet(str(pq_out))[0]["messages"][0]["role"] == "system"

    empty = tmp_path / "empty.parquet"
    assert export_chat(store, empty, "parquet", SnapshotFilter(source="ui", adapter_id="x", by_adapter=True)) == 0
    assert pq.read_table(empty).num_rows == 0
    with pytest.raises(ValueError, match="Unknown format"):
        export_chat(store, tmp_path / "x.csv", "csv")


def test_export_applies_the_chat_template(store, rated, tmp_path, model_path):
    from transformers import AutoTokenizer

    out = tmp_path / "rated.jsonl"
    export_chat(store, out, "jsonl")
    record = json.loads(out.read_text().splitlines()[0])
    text = AutoTokenizer.from_pretrained(model_path).apply_chat_template(record["messages"], tokenize=False)
    assert "Reference notes:" in text and "<|im_start|>assistant" in text


def test_export_command(store, log_georgia, tmp_path):
    log_georgia(2, source="ui")
    log_georgia(1, source="simulated")
    store.close()   # the command opens the same file
    from clarify.cli import app

    out = tmp_path / "out" / "x.jsonl"
    result = CliRunner().invoke(app, ["export", "--format", "jsonl", "--out", str(out), "--source", "simulated",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 rated conversation(s) written" in result.output
    assert json.loads(out.read_text())["source"] == "simulated"
    bad = CliRunner().invoke(app, ["export", "--format", "csv", "--out", str(out), "--data-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "--format must be one of jsonl, parquet" in bad.output
