"""vLLM engine: an OpenAI-compatible vLLM server, supervised as a child process or reached at a URL.

Two modes:

* **supervised** (``VllmEngine(model_path)``): starts the server on a free loopback port, waits for
  ``/health``, and stops it on ``close()`` / at exit (and, on Linux, when this process dies). If the server
  dies, the request in flight fails with an ``EngineError`` saying so, a restart begins at once, and the next
  request waits for it (adapters are loaded again). The server gets a fresh private API key at every start.
* **remote** (``VllmEngine(url=...)``): uses a server someone else runs; it never starts or stops anything.
  Adapter folders must then be readable by the server at the same path. Its key is the ``api_key`` argument
  or the clarify process's ``VLLM_API_KEY``; with none, requests carry no key.

The parts (agent/vllm/): the supervisor of the child process (supervisor.py), the HTTP client with its key and
its errors (client.py), the adapters loaded on the server under versioned names (adapters.py), and the
calibrated ask decision, read from the reply's own request (decision_requests.py). This class puts them together
behind the Engine interface.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

from .decision import Exploration
from .engine import EngineError, Generation, GenerationParams
from .vllm.adapters import AdapterRegistry
from .vllm.client import ServerClient, chat_request, normalize_url, stream_text
from .vllm.decision_requests import DecisionRequests
from .vllm.options import VllmOptions
from .vllm.supervisor import ServerSupervisor, server_python

log = logging.getLogger(__name__)


def _stderr_progress(message: str) -> None:
    print(f"[vllm] {message}", file=sys.stderr, flush=True)


class VllmEngine:
    """The Engine interface over a vLLM OpenAI server (see the module docstring).

    Settings are a VllmOptions, or any of its fields by name (``VllmEngine(path, dtype="float32")``).
    """

    name = "vllm"

    def __init__(self, model_path: Path | str | None = None, *, url: str | None = None,
                 python: Path | str | None = None, log_path: Path | str | None = None,
                 progress: Callable[[str], None] | None = None, api_key: str | None = None,
                 options: VllmOptions | None = None, **option_values):
        if api_key is not None and url is None:
            raise ValueError("api_key is a remote server's key (url=...); a supervised server gets a fresh one.")
        self.options = replace(options or VllmOptions(), **option_values)
        self.remote = url is not None
        self.progress = progress or log.info
        self.model_path: Path | None = None
        self.python: Path | None = None
        self.log_path: Path | None = None
        self._closed = False
        self._lock = threading.RLock()  # server lifecycle and the adapter map
        self._client = ServerClient(remote=self.remote, request_timeout=self.options.request_timeout,
                                    context_tokens=self.options.max_model_len)
        # Remote: the given key, else the clarify process's VLLM_API_KEY, else none. Supervised: the supervisor's.
        self._client.use_key((api_key or os.environ.get("VLLM_API_KEY") or None) if self.remote else None)
        self._registry = AdapterRegistry(self._client, lock=self._lock, max_rank=self.options.max_lora_rank,
                                         ensure_server=self._ensure_server)
        self._decision = DecisionRequests(self._client, self._registry)
        self._server: ServerSupervisor | None = None
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.options.concurrency), thread_name_prefix="vllm-request")
        try:
            self._setup(model_path, url, python, log_path)
        except BaseException:
            self.close()  # never leave a half-started server or open clients behind
            raise

    def _setup(self, model_path, url, python, log_path) -> None:
        if self.remote:
            self._client.root = normalize_url(url)
            self._client.connect()
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
        self._server = ServerSupervisor(self.model_path, self.python, self.log_path, self.options, self._client,
                                        lock=self._lock, on_start=self._registry.reload_all, progress=self.progress)
        atexit.register(self.close)
        self._server.start()

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

    # -- the server -----------------------------------------------------------
    @property
    def api_key(self) -> str | None:
        """The key this engine sends (None: none). Supervised: the current server's, new at every start."""
        return self._client.key

    @property
    def url(self) -> str:
        """The server's OpenAI base URL (…/v1)."""
        return self._client.url

    @property
    def base_model(self) -> str:
        """The served base model's name."""
        return self._client.base_model

    @property
    def pid(self) -> int | None:
        """PID of the supervised server process (None in remote mode)."""
        return self._server.pid if self._server is not None else None

    @property
    def starts(self) -> int:
        """How many servers this engine has started (restarts = starts - 1)."""
        return self._server.starts if self._server is not None else 0

    @property
    def last_startup_seconds(self) -> float | None:
        return self._server.last_startup_seconds if self._server is not None else None

    def _ensure_server(self) -> None:
        """Before each request: a dead (or unhealthy) supervised server is restarted once, transparently."""
        if self._closed:
            raise EngineError("The vLLM engine is closed.")
        if self._server is not None:
            self._server.ensure()

    # -- adapters -------------------------------------------------------------
    def load_adapter(self, adapter_id: str, path: Path) -> None:
        self._registry.load(adapter_id, path)

    def unload_adapter(self, adapter_id: str) -> None:
        self._registry.unload(adapter_id)

    @property
    def adapters(self) -> dict[str, Path]:
        return self._registry.paths

    def served_name(self, adapter: str | None) -> str:
        """The model name a request uses: the base model, or the adapter's current versioned name."""
        return self._registry.served_name(adapter)

    # -- generation -----------------------------------------------------------
    def decided_prefix(self, messages: list[dict], params: GenerationParams, adapter: str | None,
                       seed_offset: int = 0, exploration: Exploration | None = None) -> str:
        """The decision read by a 1-token request alone: the forced start of the reply ("" = none needed), the turn's
        exploration settled. Replies read it from their own request (agent/vllm/decision_requests.py);
        bench/decision.py and the tests compare the two."""
        self._ensure_server()
        return self._decision.decided_prefix(messages, params, adapter, seed_offset, exploration=exploration)

    def _complete(self, messages: list[dict], params: GenerationParams, adapter: str | None, *, prefix: str = "",
                  stream: bool = False, seed_offset: int = 0):
        kwargs = chat_request(self.served_name(adapter), messages, params, prefix=prefix, stream=stream,
                              seed_offset=seed_offset)
        return self._registry.complete(kwargs, adapter)

    def stream(self, messages: list[dict], params: GenerationParams, adapter: str | None = None,
               explore: Exploration | None = None) -> Iterator[str]:
        """A turn the calibrated decision or an exploration applies to reads the decision from its own streamed
        request (decision_requests.py); any other reply is one plain request."""
        self._ensure_server()
        try:
            if self._decision.applies(messages, params, adapter, explore):
                yield from self._decision.reply(messages, params, adapter, exploration=explore)
                return
            with self._complete(messages, params, adapter, stream=True) as response:
                yield from stream_text(response)
        except Exception as exc:  # (GeneratorExit is not an Exception: `with` closes the HTTP stream)
            raise self._client.failure(exc) from exc

    def generate_batch(
        self, prompts: list[list[dict]], params: GenerationParams, adapter: str | None = None,
        prefixes: list[str] | None = None, explorations: list[Exploration | None] | None = None,
    ) -> list[Generation]:
        if prefixes is not None and len(prefixes) != len(prompts):
            raise ValueError(f"{len(prefixes)} prefixes for {len(prompts)} prompts")
        if explorations is not None and len(explorations) != len(prompts):
            raise ValueError(f"{len(explorations)} explorations for {len(prompts)} prompts")
        if not prompts:
            return []
        self._ensure_server()
        self.served_name(adapter)  # unknown adapter: fail before sending anything

        def one(i: int) -> Generation:
            given = prefixes[i] if prefixes is not None else ""
            exploration = None if explorations is None else explorations[i]
            if not given and self._decision.applies(prompts[i], params, adapter, exploration):
                counts: dict = {}
                text = "".join(self._decision.reply(prompts[i], params, adapter, i, exploration, counts))
                return Generation(text.strip(), counts.get("prompt_tokens", 0), counts.get("completion_tokens", 0))
            response = self._complete(prompts[i], params, adapter, prefix=given, seed_offset=i)
            text = response.choices[0].message.content or ""
            usage = response.usage
            return Generation((given + text).strip(), usage.prompt_tokens if usage else 0,
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
            raise self._client.failure(error, during="generating a batch of replies") from error
        return results

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._server is not None:
            self._server.close()
        self._registry.clear(unload=self.remote)  # leave a shared server as we found it
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def __enter__(self) -> "VllmEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
