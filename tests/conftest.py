"""Shared fixtures: the real bundled model (converted once), a real DuckDB file per test, `clarify serve` subprocesses."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
# Converted once per checkout and shared by every test (the same folder `make serve` uses).
MODELS_DIR = Path(os.environ.get("CLARIFY_TEST_MODELS_DIR", REPO / ".clarify" / "models"))


@pytest.fixture(scope="session")
def model_path() -> Path:
    from clarify.model_store import resolve_model

    return resolve_model(None, MODELS_DIR)


@pytest.fixture(scope="session")
def engine(model_path):
    """One real in-process engine for the whole session (loading takes seconds)."""
    from agent.transformers_engine import TransformersEngine

    eng = TransformersEngine(model_path, threads=1, dtype="float32")
    yield eng
    eng.close()


@pytest.fixture
def store(tmp_path):
    from logs_db.store import LogStore

    with LogStore(tmp_path / "clarify.duckdb") as s:
        yield s


@pytest.fixture
def settings(tmp_path, model_path):
    from clarify.settings import Settings

    return Settings(data_dir=tmp_path / "data", model=str(model_path), engine="transformers", threads=1)

# Untrained LoRA adapter folders (B = 0, so they answer exactly like the base): learner and UI tests.


@pytest.fixture(scope="session")
def lora_template(model_path, tmp_path_factory) -> Path:
    """One real PEFT LoRA folder for the bundled model, saved once per session."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dest = tmp_path_factory.mktemp("lora-template") / "adapter"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                     task_type="CAUSAL_LM")).save_pretrained(dest)
    return dest


@pytest.fixture
def make_adapter(lora_template, store, tmp_path):
    """Register a copy of the template under a fresh id (unique per test: the engine is shared by the session)."""

    def make(prefix: str = "lora", status: str = "candidate", **kw) -> str:
        adapter_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        path = tmp_path / "adapters" / adapter_id
        shutil.copytree(lora_template, path)
        store.register_adapter(adapter_id=adapter_id, method=kw.pop("method", "swift"), path=str(path),
                               status=status, train_metrics=kw.pop("train_metrics", {"steps": 2, "train_loss": 1.5}),
                               **kw)
        return adapter_id

    return make


# Logged training data: learner and UI tests.

GEORGIA_NOTES = ("Georgia is a country in the Caucasus; its capital is Tbilisi. "
                 "Georgia is also a US state; its capital is Atlanta.")


@pytest.fixture
def log_georgia(store):
    """log(n, source): n conversations, two per context; one asks and answers right, one guesses wrong.

    source "simulated" carries grader rewards (0.9 / 0); "ui" carries user ratings instead (5 stars /
    thumbs down), from which the snapshot derives the same rewards.
    """

    def log(n: int, source: str = "simulated") -> None:
        for i in range(n):
            cid = store.new_conversation(source=source, context=GEORGIA_NOTES, context_key=f"georgia-{i // 2}")
            store.add_turn(cid, role="user", kind="user", text="What is the capital of Georgia?")
            if i % 2 == 0:
                store.add_turn(cid, role="assistant", kind="ask", text="Do you mean the country or the US state?")
                store.add_turn(cid, role="user", kind="user", text="The country.")
                tid = store.add_turn(cid, role="assistant", kind="answer", text="The capital of Georgia is Tbilisi.")
                reward, rating = 0.9, ("stars", 5)
            else:
                tid = store.add_turn(cid, role="assistant", kind="answer", text="The capital of Georgia is Atlanta.")
                reward, rating = 0.0, ("thumbs", 0)
            if source == "ui":
                store.add_rating(tid, kind=rating[0], value=rating[1])
            else:
                store.set_conversation_reward(cid, reward)

    return log


# `clarify serve` as a subprocess (browser, load and fault tests).

CLARIFY = Path(sys.executable).with_name("clarify")
SERVE_START_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    db: Path
    stdout: Path
    stderr: Path

    def logs(self) -> str:
        return f"--- stdout\n{self.stdout.read_text()}\n--- stderr\n{self.stderr.read_text()[-4000:]}"

    def stop(self) -> int:
        """SIGTERM, like a service manager: the server must close cleanly and release the DuckDB file."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("clarify serve did not stop within 60 s of SIGTERM\n" + self.logs())
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no clean-up at all (a crash, the OOM killer, a power cut of the process)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def serve(tmp_path, model_path):
    """Start `clarify serve` (transformers engine, 1 thread, the bundled model) and wait until it answers.

    ``serve(data_dir=None, env={...}, args=[...], engine="transformers", timeout=120)`` -> Server. engine=None
    passes no engine option, so the server uses the engine its factory picks by default (vLLM when `make vllm`
    was run), and `timeout` must cover that engine's start. Each call gets a free port and its own log files;
    every server still running is stopped (SIGTERM) at teardown.
    """
    if not CLARIFY.exists():
        pytest.fail(f"{CLARIFY} is missing: run `make install`")
    started: list[Server] = []

    def start(data_dir: Path | None = None, *, env: dict | None = None, args: tuple = (),
              engine: str | None = "transformers", timeout: float = SERVE_START_TIMEOUT) -> Server:
        data = data_dir or tmp_path / "data"
        port = free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CLARIFY_")}
        environ.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                       **(env or {}))
        n = len(started)
        out, err = tmp_path / f"serve-{n}.out", tmp_path / f"serve-{n}.err"
        with open(out, "w") as out_f, open(err, "w") as err_f:
            proc = subprocess.Popen(
                [str(CLARIFY), "serve", "--port", str(port), "--data-dir", str(data), "--model", str(model_path),
                 *(("--engine", engine, "--threads", "1") if engine else ()), *args],
                stdout=out_f, stderr=err_f, env=environ, cwd=tmp_path)
        srv = Server(proc, f"http://127.0.0.1:{port}/", data / "clarify.duckdb", out, err)
        started.append(srv)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"clarify serve exited with {proc.returncode}\n" + srv.logs())
            try:
                with urllib.request.urlopen(srv.url, timeout=5) as resp:
                    if resp.status == 200:
                        return srv
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"clarify serve did not answer on {srv.url} within {timeout} s\n" + srv.logs())
            time.sleep(0.5)

    yield start
    for srv in started:
        srv.stop()
