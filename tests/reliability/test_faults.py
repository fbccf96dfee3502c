"""Faults: the trainer, the engine (both engines) and the serving process killed mid-work; a full or unwritable
disk at start. Real processes, real signals, the real model, real DuckDB files.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from agent.chat_service import DEFAULT_NOTES, ChatService
from agent.engine import GenerationParams, validate_adapter_folder
from agent.vllm_engine import server_python
from clarify.cli import app as cli
from logs_db.store import INTERRUPTED_BY_RESTART, LogStore

CLARIFY = Path(sys.executable).with_name("clarify")
ITEMS = Path(__file__).resolve().parents[1] / "agent" / "fixtures" / "items.jsonl"


def children(pattern: str) -> list[int]:
    """PIDs of this process's children whose command line contains `pattern` (read from /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and pattern in cmdline:
            found.append(int(proc.name))
    return found


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in stderr, stderr
    return lines[0]


# -- the trainer ----------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_trainer_killed_mid_run(settings, store, engine, log_rated):
    """Trainer process killed (SIGKILL) mid-run.

    Done: log 8 rated conversations, start a 200-step training run from the server's training job service
    (learner/training_service.py's TrainingManager, what the Training tab calls), chat while it trains, SIGKILL
    the trainer process once it reports training steps, chat again, then start a 1-step run.
    Checked: the job ends "failed" with "exited with code -9"; the run is recorded as failed; no adapter is
    registered and the adapters folder is empty (the half-written .tmp- folder is removed), so nothing
    partial can be served; both chat turns are answered and logged while/after the trainer dies; the next run
    succeeds and its adapter validates and loads.
    """
    from learner.training_service import TrainingManager

    log_rated(store, 8)
    service = ChatService(store, engine, params=GenerationParams(max_new_tokens=4))
    manager = TrainingManager(settings, store, engine)
    try:
        manager.start_training(method="refit", overrides={"max_steps": 200, "batch_size": 2}, gate=False)
        wait_for(lambda: (manager.status().step or 0) >= 1, 300, "the first training step")
        cid = service.start(DEFAULT_NOTES)
        assert "".join(service.reply(cid, "How much is an espresso?"))  # serving while the trainer runs
        [pid] = children("learner.worker")
        partial = list(settings.adapters_dir.glob(".tmp-*"))
        os.kill(pid, signal.SIGKILL)
        assert manager.join(120)
        job = manager.status()
        assert job.status == "failed" and "exited with code -9" in job.error
        assert store.list_adapters() == [] and store.list_training_runs()[0].status == "failed"
        assert list(settings.adapters_dir.iterdir()) == [], f"left behind: {partial}"
        assert "".join(service.reply(cid, "And a latte?"))  # serving after the trainer died
        assert [(t.role, t.status) for t in store.list_turns(cid)] == [("user", "ok"), ("assistant", "ok")] * 2

        manager.start_training(method="refit", overrides={"max_steps": 1, "batch_size": 2}, gate=False)
        assert manager.join(600)
        job = manager.status()
        assert job.status == "succeeded", job.log
        record = store.get_adapter(job.adapter_id)
        validate_adapter_folder(Path(record.path))
        engine.load_adapter(job.adapter_id, Path(record.path))
        engine.unload_adapter(job.adapter_id)
    finally:
        manager.shutdown()


# -- the engine -----------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_transformers_engine_crashes_mid_stream(chat, store, engine, monkeypatch):
    """Transformers engine crashes mid-stream (in process).

    Done: make the model's generate() raise after 6 tokens of a reply (an error inside the generation
    thread, after part of the reply was streamed to the user), then send the next message normally.
    Checked: the user saw part of the reply, then "The agent failed: Generation failed: ..." with "The failed
    turn was logged; there is nothing to rate"; the turn is logged as failed with the partial text and the
    error; the message box is usable again; the next turn in the same conversation is answered and logged ok,
    and can be rated.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    chat.service.params = GenerationParams(max_new_tokens=24)
    model, real_generate = engine.model, engine.model.generate

    class Crash(StoppingCriteria):
        calls = 0

        def __call__(self, input_ids, scores, **kwargs):
            Crash.calls += 1
            if Crash.calls > 6:
                raise RuntimeError("the engine died (fault injected)")
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    def crashing_generate(*args, stopping_criteria=None, **kwargs):
        return real_generate(*args, stopping_criteria=StoppingCriteriaList([*(stopping_criteria or []), Crash()]),
                             **kwargs)

    monkeypatch.setattr(model, "generate", crashing_generate)
    yields = list(chat.send("How much is an espresso at the Harbor branch?", DEFAULT_NOTES, None))
    monkeypatch.undo()
    shown = [y[2][-1]["content"] for y in yields[1:-1]]
    box, button, chatbot, session, status = yields[-1]
    assert any(shown), "part of the reply reached the user before the crash"
    assert "The agent failed: Generation failed: the engine died (fault injected)" in status
    assert "The failed turn was logged; there is nothing to rate." in status
    assert box["interactive"] is True and button["interactive"] is True
    user, failed = store.list_turns(session.conversation_id)
    assert failed.status == "failed" and "the engine died" in failed.error and failed.text
    assert session.last_turn_id is None

    *_, (_, _, chatbot, session, status) = chat.send("And at Station?", DEFAULT_NOTES, session)
    assert "Rate this reply" in status
    turns = store.list_turns(session.conversation_id)
    assert [(t.idx, t.role, t.status) for t in turns] == [(0, "user", "ok"), (1, "assistant", "failed"),
                                                          (2, "user", "ok"), (3, "assistant", "ok")]
    assert "4 ★ recorded" in chat.rate_last(session, 4, "")[0]


@pytest.mark.slow
def test_serving_process_killed_mid_reply(serve, http, tmp_path):
    """Serving process (in-process transformers engine) killed with SIGKILL mid-reply.

    Done: `clarify serve` streams a reply to a raw-HTTP client; after the first piece arrives the server
    process is SIGKILLed; then it is started again on the same data folder and the client sends a new message.
    Checked: the client's stream breaks (the browser shows Gradio's connection error); at restart the server
    says on stderr that a reply was cut off and logs that turn as failed ("The server stopped before this reply
    finished."), so no question is left without its reply; the DuckDB file opens cleanly; the next turn is
    answered and logged ok.
    """
    data = tmp_path / "data"
    server = serve(data, env={"CLARIFY_MAX_NEW_TOKENS": "200"})
    client = http(server.url)
    event_id = client.submit("send", ["Describe both branches of the café in detail.", DEFAULT_NOTES, None])
    with pytest.raises((httpx.HTTPError, AssertionError)):  # the stream breaks, or ends without a result
        for message in client.messages(event_id):
            # After the first full update, each streamed piece is an "append" diff of the chatbot.
            if message.get("msg") == "process_generating" and '"append"' in json.dumps(message["output"]["data"][2]):
                server.kill()
    assert server.proc.returncode == -signal.SIGKILL

    server = serve(data, env={"CLARIFY_MAX_NEW_TOKENS": "8"})
    assert "1 reply(ies) were cut off" in server.stderr.read_text()
    again = http(server.url)
    *_, status = again.call("send", ["How much is an espresso?", DEFAULT_NOTES, None])
    assert "Rate this reply" in status
    assert server.stop() == 0
    with duckdb.connect(str(data / "clarify.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT c.created_at, t.idx, t.role, t.status, t.error FROM turns t JOIN conversations c"
                           " ON c.id = t.conversation_id ORDER BY c.created_at, t.idx").fetchall()
    assert [r[1:] for r in rows] == [(0, "user", "ok", None), (1, "assistant", "failed", INTERRUPTED_BY_RESTART),
                                     (0, "user", "ok", None), (1, "assistant", "ok", None)]


needs_vllm = pytest.mark.skipif(server_python() is None, reason="the vLLM environment is not installed (make vllm)")


@pytest.mark.slow
@needs_vllm
def test_vllm_server_killed_mid_request(settings, store, model_path, tmp_path):
    """vLLM engine: its server process killed (SIGKILL) while it holds the reply's request.

    Done: the Chat tab's handler sends a message to a real vLLM server (the bundled model); once the user's message
    is on screen the server is frozen (SIGSTOP, so the reply cannot finish first, however short it is) and
    SIGKILLed 3 s later, while the handler waits on it; then the user sends the next message in the same
    conversation.
    Checked: the user sees "The agent failed: The vLLM server stopped unexpectedly (exit code -9) ... It is
    being restarted; please try again in a minute." and that the failed turn was logged; the turn is logged as
    failed with that error; the engine restarts its server by itself; the next turn is answered by the new
    server and logged ok.
    """
    from agent.vllm_engine import VllmEngine
    from ui.app import ChatHandlers

    engine = VllmEngine(model_path, dtype="float32", log_path=tmp_path / "vllm.log", max_loras=1)
    try:
        service = ChatService(store, engine, params=GenerationParams(max_new_tokens=200))
        chat = ChatHandlers(settings, store, service)
        stream = chat.send("Describe both branches of the café in detail.", DEFAULT_NOTES, None)
        next(stream)                       # the user's message is on screen; the request is not sent yet
        old_pid = engine.pid
        os.kill(old_pid, signal.SIGSTOP)
        killer = threading.Timer(3.0, os.kill, (old_pid, signal.SIGKILL))
        killer.start()
        *_, (box, _, chatbot, session, status) = stream
        killer.join()
        assert "The agent failed: The vLLM server stopped unexpectedly (exit code -9)" in status
        assert "please try again in a minute" in status and "The failed turn was logged" in status
        assert box["interactive"] is True
        failed = store.list_turns(session.conversation_id)[-1]
        assert failed.status == "failed" and failed.engine == "vllm" and "exit code -9" in failed.error

        service.params = GenerationParams(max_new_tokens=8)
        *_, (_, _, chatbot, session, status) = chat.send("How much is an espresso?", DEFAULT_NOTES, session)
        assert "Rate this reply" in status
        assert engine.pid != old_pid and engine.starts == 2
        assert [(t.role, t.status) for t in store.list_turns(session.conversation_id)] == [
            ("user", "ok"), ("assistant", "failed"), ("user", "ok"), ("assistant", "ok")]
    finally:
        engine.close()


# -- the log database -----------------------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from logs_db.store import LogStore

    store = LogStore(sys.argv[1])
    i = int(sys.argv[2])
    while True:
        cid = store.new_conversation(source="ui", context="notes", user_id="load")
        user = store.add_turn(cid, role="user", kind="user", text=f"question {i}")
        reply = store.add_turn(cid, role="assistant", kind="answer", text=f"answer {i}")
        rating = store.add_rating(reply, kind="stars", value=1 + i % 5)   # returns once committed
        print(cid, user, reply, rating, flush=True)
        i += 1
""")


def test_serving_process_killed_while_writing(tmp_path):
    """Process killed (SIGKILL) while writing to the log, three times.

    Done: a child process writes conversations, turns and ratings through LogStore in a tight loop and prints
    each id once its rating call returned (everything before it is committed); it is SIGKILLed after 30, 60
    and 90 reported writes (mid-write: it never stops writing); after each kill the file is reopened.
    Checked: the DuckDB file opens cleanly each time (read-only and through LogStore with its migrations);
    every reported conversation, turn and rating is there exactly once; a half-written conversation (question
    without reply) is closed by the start-up recovery as a failed turn; the store accepts new writes.
    """
    db = tmp_path / "log.duckdb"
    reported: list[list[str]] = []
    for kill_after in (30, 60, 90):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(len(reported))],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(kill_after):
                line = child.stdout.readline()
                assert line, child.stderr.read()
                reported.append(line.split())
        finally:
            child.kill()
            child.wait()
        with duckdb.connect(str(db), read_only=True) as con:
            ids = {table: {r[0] for r in con.execute(f"SELECT id FROM {table}").fetchall()}
                   for table in ("conversations", "turns", "ratings")}
            dupes = con.execute("SELECT count(*) - count(DISTINCT id) FROM turns").fetchone()[0]
        assert dupes == 0
        for cid, user, reply, rating in reported:
            assert cid in ids["conversations"] and {user, reply} <= ids["turns"] and rating in ids["ratings"]
        with LogStore(db) as store:
            store.fail_unanswered_turns()
            unanswered = store.execute(
                "SELECT count(*) FROM conversations c WHERE EXISTS (SELECT 1 FROM turns t WHERE"
                " t.conversation_id = c.id) AND (SELECT role FROM turns t WHERE t.conversation_id = c.id"
                " ORDER BY idx DESC LIMIT 1) = 'user'").fetchone()[0]
            assert unanswered == 0
            cid = store.new_conversation(source="ui", context="after the crash")
            store.add_turn(cid, role="user", kind="user", text="still writable?")
            assert store.list_turns(cid)[0].text == "still writable?"
    assert len(reported) == 180


# -- the disk ------------------------------------------------------------------------------------------------------

COMMANDS = {
    "serve": ["serve", "--port", "0"],
    "eval": ["eval", "--items", str(ITEMS), "--limit", "1"],
    "simulate": ["simulate", "--items", str(ITEMS), "--limit", "1"],
    "train": ["train"],
    "export": ["export", "--out", "rated.jsonl"],
    "adapters list": ["adapters", "list"],
}


def no_file_writes() -> None:
    """In the child: any write to a regular file fails (EFBIG), as on a full disk (Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_disk_full_at_start(tmp_path, model_path):
    """Disk full at start.

    Done: run each command (serve, eval, simulate, train, export, adapters list) in a child process whose
    file writes all fail (RLIMIT_FSIZE = 0: every write to a file fails with "File too large", as on a full
    disk; a tmpfs of a few KB would need root to mount).
    Checked: each exits with code 2 and one line "Error: cannot open the log database ...: ... File too large"
    on stderr, no traceback; once the disk has room again, the next command on the same folder works (the
    empty database file the first failed start left behind does not block it).
    """
    data = tmp_path / "data"
    for command, args in COMMANDS.items():
        model = ["--model", str(model_path)] if command in ("serve", "train") else []
        result = subprocess.run([str(CLARIFY), *args, "--data-dir", str(data), *model],
                                capture_output=True, text=True, cwd=tmp_path, preexec_fn=no_file_writes, timeout=120)
        assert result.returncode == 2, (command, result.stderr)
        line = one_line_error(result.stderr)
        assert "cannot open the log database" in line and "File too large" in line, (command, line)
    result = CliRunner().invoke(cli, ["adapters", "list", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("kind", ["a regular file", "under a regular file", "read-only folder"])
def test_unwritable_data_dir_at_start(tmp_path, model_path, kind):
    """Unwritable data folder at start: {case}.

    Done: point each command (serve, eval, simulate, train, export, adapters list) at a data folder that is a
    regular file, lies under a regular file, or is a read-only (0500) folder; the last one only as a non-root
    user, since root ignores permission bits.
    Checked: each exits with code 2 and one line "Error: ..." naming the folder or the database file and the
    reason (Not a directory / File exists / Permission denied), no traceback; the file in the way is untouched.
    """
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    if kind == "read-only folder":
        if os.geteuid() == 0:
            pytest.skip("root ignores permission bits; a folder that is a file, or under a file, fails for root too")
        data = tmp_path / "readonly"
        data.mkdir(mode=0o500)
    else:
        data = blocker if kind == "a regular file" else blocker / "data"
    for command, args in COMMANDS.items():
        model = ["--model", str(model_path)] if command in ("serve", "train") else []
        result = CliRunner().invoke(cli, [*args, "--data-dir", str(data), *model])
        assert result.exit_code == 2, (command, result.output)
        line = one_line_error(result.stderr)
        assert str(data) in line and any(reason in line for reason in ("Not a directory", "File exists",
                                                                       "Permission denied")), (command, line)
    assert blocker.read_text() == "a file, not a folder"
