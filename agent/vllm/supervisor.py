"""The vLLM server clarify starts itself: a child process started, watched, restarted and stopped here.

vLLM pins its own transformers version, so it never runs inside clarify's environment: the server is started
with the python of its own virtual environment (``make vllm`` builds ``.venv-vllm``; env
``CLARIFY_VLLM_PYTHON`` points elsewhere) on a free loopback port. It stops with the engine, at exit, and, on
Linux, when this process dies. A server that died or hangs is restarted at once, and the next request waits
for it (its adapters are loaded again: the ``on_start`` hook).

Access: every start gets a fresh random API key (``secrets.token_urlsafe``), passed in the server's environment
(``VLLM_API_KEY``: ``ps`` shows the command line, never the key); the server loads
``agent/vllm_server/clarify_vllm_guard.py``, which asks for the key on every route but ``GET /health`` (vLLM's
own check leaves ``/invocations``, the SageMaker ``/adapters`` routes and more open).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from ..engine import EngineError
from .client import ServerClient
from .options import VllmOptions

log = logging.getLogger(__name__)

DEFAULT_VENV = Path(__file__).resolve().parents[2] / ".venv-vllm"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
GUARD_DIR = Path(__file__).resolve().parents[1] / "vllm_server"   # put on the server's PYTHONPATH
GUARD_MIDDLEWARE = "clarify_vllm_guard.RequireKey"

_server_python_cache: dict[str, bool] = {}


def server_python() -> Path | None:
    """The python of the environment vLLM is installed in, or None when there is none.

    ``CLARIFY_VLLM_PYTHON`` overrides the default ``<repo>/.venv-vllm/bin/python``.
    The check (vllm importable there, without importing it) runs once per path.
    """
    override = os.environ.get("CLARIFY_VLLM_PYTHON", "").strip()
    python = Path(override).expanduser() if override else DEFAULT_VENV / "bin" / "python"
    if not (python.is_file() and os.access(python, os.X_OK)):
        return None
    key = str(python)
    if key not in _server_python_cache:
        try:
            probe = subprocess.run(
                [key, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
            )
            _server_python_cache[key] = probe.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _server_python_cache[key] = False
    return python if _server_python_cache[key] else None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Child side of fork: ask Linux to SIGTERM the server when the thread that started it dies.

    Servers are always started from one long-lived thread (the supervisor's spawner), so that is when this
    process dies, even by SIGKILL.
    """
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


try:  # resolved before any fork: only the call runs in the child
    import ctypes

    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None


class ServerSupervisor:
    """One server process at a time for `model_path`; `client` is pointed at each new one, with its new key."""

    def __init__(self, model_path: Path, python: Path, log_path: Path, options: VllmOptions, client: ServerClient,
                 *, lock: threading.RLock, on_start: Callable[[], None], progress: Callable[[str], None]):
        self.model_path, self.python, self.log_path, self.options = model_path, python, log_path, options
        self._client, self._lock, self._on_start, self._progress = client, lock, on_start, progress
        self.starts = 0                 # how many servers were started (restarts = starts - 1)
        self.last_startup_seconds: float | None = None
        self.restart_pending = False    # the server stopped answering: restart it before the next request
        self.closed = False
        self._proc: subprocess.Popen | None = None
        # One long-lived thread starts every server, so PR_SET_PDEATHSIG fires only when this process dies.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vllm-spawner")
        client.diagnose = self.diagnose

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        with self._lock:
            self._start_locked()

    def ensure(self) -> None:
        """Before each request: a dead (or unhealthy) server is restarted once, transparently."""
        if self._alive() and not self.restart_pending:
            return
        with self._lock:
            if self.closed:
                raise EngineError("The vLLM engine is closed.")
            if self._alive() and not self.restart_pending:
                return  # another thread restarted it while we waited
            code = self._proc.poll() if self._proc is not None else None
            self._progress(f"The vLLM server stopped (exit code {code}); restarting it." if code is not None
                           else "Restarting the vLLM server.")
            try:
                self._start_locked()
            except EngineError as exc:
                raise EngineError(f"The vLLM server crashed and could not be restarted: {exc}") from exc

    def diagnose(self, during: str) -> EngineError | None:
        """After a request failed in transport: if the server died or stopped answering, an EngineError that
        says so (a restart begins at once); None when the server looks fine."""
        if self.closed:
            return None
        proc, code = self._proc, None
        if proc is not None:
            try:
                code = proc.wait(timeout=2.0)  # a killed server may need a moment to be reaped
            except subprocess.TimeoutExpired:
                code = None
        if code is not None or proc is None:
            self._restart_in_background()
            return EngineError(f"The vLLM server stopped unexpectedly (exit code {code}) while {during}. "
                               "It is being restarted; please try again in a minute.")
        if not self._client.healthy():
            self.restart_pending = True
            self._restart_in_background()
            return EngineError(f"The vLLM server stopped responding while {during}. "
                               "It is being restarted; please try again in a minute.")
        return None

    def close(self) -> None:
        self.closed = True  # first: a start in progress gives up
        with self._lock:
            self._stop_locked()
        self._spawner.shutdown(wait=False)

    # -- the process ----------------------------------------------------------------------------------------------
    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _start_locked(self) -> None:
        """Start a server and wait until it serves (lock held). Raises EngineError with the log's tail."""
        self._stop_locked()
        opts = self.options
        for attempt in range(2):
            port = opts.port or _free_port(opts.host)
            started = time.monotonic()
            self._client.use_key(secrets.token_urlsafe(32))   # a new server, a new key: an old one opens nothing
            self._progress(f"Starting the vLLM server ({opts.dtype}) for {self.model_path.name} on "
                           f"{opts.host}:{port}; this takes 30-90 s. Log: {self.log_path}")
            self._proc = self._spawner.submit(self._popen, self._command(port), self._server_env()).result()
            self._client.root = f"http://{opts.host}:{port}"
            try:
                self._wait_ready(started)
                break
            except EngineError as exc:
                tail = self._log_tail()
                self._stop_locked()
                if attempt == 0 and opts.port is None and "address already in use" in tail.lower():
                    continue  # another process took the free port in between: try a new one
                raise EngineError(f"{exc}\nLast lines of {self.log_path}:\n{tail}") from None
        self._client.connect()
        self.starts += 1
        self.last_startup_seconds = time.monotonic() - started
        self.restart_pending = False
        self._progress(f"vLLM server ready in {self.last_startup_seconds:.0f} s (pid {self._proc.pid}).")
        self._on_start()

    def _wait_ready(self, started: float) -> None:
        next_note = started + 15
        while True:
            if self.closed:
                raise EngineError("The vLLM engine was closed while its server was starting.")
            code = self._proc.poll()
            if code is not None:
                raise EngineError(f"The vLLM server exited during start-up (exit code {code}).")
            if self._client.healthy(timeout=2.0):
                return
            now = time.monotonic()
            if now - started > self.options.startup_timeout:
                raise EngineError(f"The vLLM server did not become ready within {self.options.startup_timeout:.0f} s.")
            if now >= next_note:
                self._progress(f"Still starting the vLLM server ({now - started:.0f} s)…")
                next_note = now + 15
            time.sleep(0.5)

    def _restart_in_background(self) -> None:
        def run():
            try:
                self.ensure()
            except EngineError as exc:
                log.warning("%s", exc)

        threading.Thread(target=run, name="vllm-restart", daemon=True).start()

    def _stop_locked(self, grace: float = 20.0) -> None:
        """Stop the server's whole process group (the API server and its engine-core child)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the server leads its own process group

        def group_gone() -> bool:
            proc.poll()  # reap the leader, or it lingers as a zombie in the group
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
            return False

        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if group_gone():
                break
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not group_gone():
                time.sleep(0.2)
        proc.poll()

    def _server_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)
        env["PYTHONPATH"] = str(GUARD_DIR)   # clarify's own paths stay out; the guard middleware is importable
        env["VLLM_API_KEY"] = self._client.key  # read by vLLM (/v1/*) and by the guard (every route but /health)
        env["PATH"] = f"{self.python.parent}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.options.kv_cache_gb))
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("VLLM_DO_NOT_TRACK", "1")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _command(self, port: int) -> list[str]:
        opts = self.options
        return [
            str(self.python), "-m", SERVER_MODULE,
            "--model", str(self.model_path),
            "--dtype", opts.dtype,
            "--host", opts.host, "--port", str(port),
            "--enable-lora", "--max-lora-rank", str(opts.max_lora_rank), "--max-loras", str(opts.max_loras),
            "--max-model-len", str(opts.max_model_len),
            "--uvicorn-log-level", "warning",
            "--middleware", GUARD_MIDDLEWARE,
            *opts.extra_args,
        ]

    def _popen(self, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        try:  # keep one previous log, so a long-lived data folder does not grow without bound
            if self.log_path.stat().st_size > 20_000_000:
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".old"))
        except OSError:
            pass
        with open(self.log_path, "ab") as logfile:
            logfile.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            logfile.flush()
            return subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT, env=env,
                cwd=str(self.log_path.parent), start_new_session=True, preexec_fn=_die_with_parent,
            )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 64_000))
                tail = deque(fh.read().decode("utf-8", "replace").splitlines(), maxlen=lines)
            return "\n".join(tail)
        except OSError:
            return ""
