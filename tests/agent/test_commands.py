"""`clarify simulate` / `clarify eval` through the real CLI: errors (fast), and the real bundled model (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.evaluate import METRIC_KEYS
from agent.items import DEV_ITEMS, file_sha256, load_items
from clarify.cli import app
from logs_db.store import LogStore

FIXTURE = Path(__file__).parent / "fixtures" / "items.jsonl"


def dev_items() -> Path:
    return DEV_ITEMS if DEV_ITEMS.exists() else FIXTURE


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def fast_engine(monkeypatch):
    """fp32 on one thread: 2-4x faster than bf16 on two threads on a shared 2-core CPU (measured)."""
    import torch

    monkeypatch.setenv("CLARIFY_DTYPE", "float32")
    threads = torch.get_num_threads()
    yield ("--threads", "1", "--engine", "transformers", "--max-new-tokens", "48")
    torch.set_num_threads(threads)   # the engine sets it process-wide


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["eval", "simulate"])
def test_bad_items_file_one_line_exit_2(tmp_path, command):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(FIXTURE.read_text().splitlines()[0] + '\n{"id": "x", "context": "c"}\n')
    result = run(command, "--items", str(bad), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    line = error_line(result)
    assert f"{bad}:2" in line and "missing field 'question'" in line


def test_unknown_adapter_exit_2(tmp_path):
    result = run("eval", "--items", str(FIXTURE), "--adapter", "nope", "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2 and "No adapter with id 'nope'" in error_line(result)


def test_ask_first_cannot_exceed_per_item(tmp_path):
    result = run("simulate", "--items", str(FIXTURE), "--per-item", "2", "--ask-first", "3",
                 "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2 and "--ask-first" in error_line(result)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("engine, flags, message", [
    ("vllm", ("--vllm-url", "http://127.0.0.1:{port}"), "could not start the vllm engine: Could not reach the vLLM "
                                                        "server at http://127.0.0.1:{port}"),
    ("transformers", ("--model", "/nonexistent/model"), "/nonexistent/model"),
])
def test_an_engine_that_cannot_start_is_one_line_exit_2(tmp_path, engine, flags, message):
    """Every command opens its engine through clarify.cli_options.open_engine: the same lines, the same code."""
    port = _closed_port()
    result = run("eval", "--items", str(FIXTURE), "--adapter", "base", "--engine", engine,
                 *(flag.format(port=port) for flag in flags), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: ") and message.format(port=port) in line, line


def test_auto_warns_and_uses_transformers_when_the_local_vllm_server_cannot_start(settings, monkeypatch, capsys):
    from agent import engine_factory
    from agent.engine import EngineError
    from agent.vllm_engine import VllmEngine
    from clarify.cli_options import open_engine

    def cannot_start(cls, settings):
        raise EngineError("The vLLM server exited during start-up (exit code 1).")

    monkeypatch.setattr(engine_factory, "vllm_available", lambda: True)
    monkeypatch.setattr(VllmEngine, "from_settings", classmethod(cannot_start))
    monkeypatch.setattr(engine_factory, "_transformers", lambda settings: "the transformers engine")
    assert open_engine(settings.with_overrides(engine="auto")) == "the transformers engine"
    assert capsys.readouterr().err.split() == (
        "Warning: could not start the vLLM server, using the in-process transformers engine instead. "
        "Reason: The vLLM server exited during start-up (exit code 1).").split()


def test_transcripts_show_the_kind_of_each_user_reply():
    """`--transcripts`: a user's reply to a question shows whether the question named the options."""
    import io

    from agent.commands import print_transcripts
    from agent.engine import Generation
    from agent.simulator import run_conversations

    class Vague:
        name = "fake"

        def generate_batch(self, prompts, params, adapter=None, prefixes=None):
            return [Generation("Do you mean the espresso?" if len(p) == 2 else "It is $3.", 5, 5) for p in prompts]

    cafe = next(i for i in load_items(FIXTURE) if i.id == "cafe-espresso")
    out = io.StringIO()
    print_transcripts(run_conversations(Vague(), [cafe], progress=False), file=out)
    lines = out.getvalue().splitlines()
    assert lines[1] == "  user : How much is an espresso?" and lines[2] == "  agent/ask: Do you mean the espresso?"
    assert lines[3].startswith("  user/unhelpful: ") and "Harbor" not in lines[3] and "Station" not in lines[3]


@pytest.mark.slow
def test_eval_json_real_model(tmp_path, model_path, fast_engine):
    items = dev_items()
    data = tmp_path / "d"
    result = run("eval", "--items", str(items), "--limit", "5", "--json", "--adapter", "base",
                 "--data-dir", str(data), "--model", str(model_path), *fast_engine)
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)          # exactly one JSON object on stdout
    assert tuple(sorted(metrics)) == tuple(sorted(METRIC_KEYS))
    assert metrics["n"] == 5
    for key in ("mean_reward", "accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert 0.0 <= metrics["stderr"] <= 0.5
    for key in ("ask_rate_ambiguous", "ask_rate_unambiguous"):
        assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0
    assert 1.0 <= metrics["mean_turns"] <= 2.0
    with LogStore(data / "clarify.duckdb") as store:
        rows = store.execute("SELECT adapter_id, items_path, items_hash, n, metrics FROM eval_runs").fetchall()
    assert len(rows) == 1
    adapter_id, items_path, items_hash, n, stored = rows[0]
    assert adapter_id is None and n == 5 and items_hash == file_sha256(items)
    assert Path(items_path) == items.resolve()
    assert {k: json.loads(stored)[k] for k in METRIC_KEYS} == metrics


@pytest.mark.slow
def test_simulate_real_model_logs_forced_asks(tmp_path, model_path, fast_engine):
    items = dev_items()
    data = tmp_path / "d"
    result = run("simulate", "--items", str(items), "--limit", "2", "--per-item", "2", "--ask-first", "1",
                 "--temperature", "0", "--data-dir", str(data), "--model", str(model_path), *fast_engine)
    assert result.exit_code == 0, result.stderr
    assert "4 conversations" in result.stdout and "mean reward" in result.stdout
    ids = [i.id for i in load_items(items, limit=2)]
    with LogStore(data / "clarify.duckdb") as store:
        rows = store.execute("SELECT id FROM conversations ORDER BY created_at").fetchall()
        convs = [store.get_conversation(r[0]) for r in rows]
        turns = {c.id: store.list_turns(c.id) for c in convs}
    assert len(convs) == 4
    assert sorted(c.context_key for c in convs) == sorted(ids * 2)
    forced = [c for c in convs if c.meta["forced_prefix"]]
    assert len(forced) == 2
    for conv in convs:
        assert conv.source == "simulated" and conv.reward is not None and 0.0 <= conv.reward <= 1.0
        assert conv.engine == "transformers" and conv.adapter_id is None
        assert set(conv.meta) >= {"temperature", "forced_prefix", "intent"}
        ts = turns[conv.id]
        assert ts[0].role == "user" and ts[-1].role == "assistant"
        assert [t.role for t in ts] == ["user", "assistant"] * (len(ts) // 2)
        assert all(t.latency_ms > 0 and t.completion_tokens > 0 for t in ts if t.role == "assistant")
    for conv in forced:
        first = turns[conv.id][1]
        assert first.kind == "ask" and first.text.startswith(conv.meta["forced_prefix"])
        assert len(turns[conv.id]) == 4   # asked, got the clarification, answered (horizon 1)
