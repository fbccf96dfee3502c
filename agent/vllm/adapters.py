"""The LoRA adapters loaded on a vLLM server, by clarify's adapter id.

Adapters are loaded at run time through ``/v1/load_lora_adapter`` (the server needs
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) under a fresh, versioned name per load: vLLM keeps prefix-cache blocks
keyed by adapter name, so reloading changed weights under the same name could serve stale results
(vllm-project/vllm#42125). A server clarify restarted gets every adapter back under the same names; a remote
server that forgot one (it restarted) gets it back under a new name at the first request that misses it.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ..decision import AskDecision, read_ask_decision
from ..engine import EngineError, validate_adapter_folder
from .client import ServerClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedAdapter:
    path: Path
    served_name: str
    ask_decision: AskDecision | None = None   # the calibrated ask decision (agent/decision.py)


def new_served_name(adapter_id: str) -> str:
    """A fresh name for the server: a new version of an id never reuses the old one's name."""
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '-', adapter_id)[:64]}-v{uuid.uuid4().hex[:8]}"


class AdapterRegistry:
    """Which adapter serves under which name. `lock` is the engine's (a restart and a load never interleave);
    `ensure_server` runs before a load reaches the server."""

    def __init__(self, client: ServerClient, *, lock: threading.RLock, max_rank: int,
                 ensure_server: Callable[[], None]):
        self._client, self._lock, self._max_rank, self._ensure_server = client, lock, max_rank, ensure_server
        self._entries: dict[str, ServedAdapter] = {}
        self._reload_lock = threading.Lock()

    @property
    def paths(self) -> dict[str, Path]:
        return {k: v.path for k, v in self._entries.items()}

    def served_name(self, adapter: str | None) -> str:
        """The model name a request uses: the base model, or the adapter's current versioned name."""
        if adapter is None:
            return self._client.base_model
        entry = self._entries.get(adapter)
        if entry is None:
            raise EngineError(f"Adapter {adapter!r} is not loaded in this engine.")
        return entry.served_name

    def decision(self, adapter: str | None) -> AskDecision | None:
        entry = self._entries.get(adapter) if adapter is not None else None
        return entry.ask_decision if entry is not None else None

    def load(self, adapter_id: str, path: Path) -> None:
        """Load (or replace) an adapter; the same id and folder again only rereads its ask decision."""
        path = Path(path).expanduser()
        validate_adapter_folder(path, max_rank=self._max_rank)
        decision = read_ask_decision(path)
        path = path.resolve()
        with self._lock:
            current = self._entries.get(adapter_id)
            if current is not None and current.path == path:
                if current.ask_decision != decision:  # recalibrated: applies from the next reply
                    self._entries[adapter_id] = replace(current, ask_decision=decision)
                return
            self._ensure_server()
            served = new_served_name(adapter_id)
            self._client.load_adapter(adapter_id, served, path)
            self._entries[adapter_id] = ServedAdapter(path, served, decision)
            if current is not None:  # a new version of the id: retire the old name
                self._client.unload_adapter(current.served_name)

    def unload(self, adapter_id: str) -> None:
        with self._lock:
            adapter = self._entries.pop(adapter_id, None)
            if adapter is not None:
                self._client.unload_adapter(adapter.served_name)

    def reload_all(self) -> None:
        """After a restart (lock held): load every adapter the old server had, under the same served names."""
        for adapter_id, adapter in list(self._entries.items()):
            try:
                self._client.load_adapter(adapter_id, adapter.served_name, adapter.path)
            except EngineError as exc:
                log.warning("Adapter %s could not be reloaded after a restart: %s", adapter_id, exc)
                self._entries.pop(adapter_id, None)

    def complete(self, kwargs: dict, adapter: str | None):
        """One chat completion; if a remote server forgot the adapter (it restarted), load it again once.

        The entry stays in place while it is reloaded (requests built meanwhile still find it), and only a
        request whose name is still the current one reloads: requests that failed together reload it once."""
        import openai

        try:
            return self._client.complete(kwargs)
        except openai.NotFoundError:
            if adapter is None or not self._client.remote:
                raise
            with self._reload_lock:
                with self._lock:
                    current = self._entries.get(adapter)
                if current is None:
                    raise
                if current.served_name == kwargs.get("model"):  # (else another request reloaded it already)
                    self._load_again(adapter, current)
            return self._client.complete(dict(kwargs, model=self.served_name(adapter)))

    def _load_again(self, adapter_id: str, current: ServedAdapter) -> None:
        """Load a forgotten adapter under a new name and swap the entry to it in one step."""
        served = new_served_name(adapter_id)
        self._client.load_adapter(adapter_id, served, current.path)
        with self._lock:
            if self._entries.get(adapter_id) is current:
                self._entries[adapter_id] = replace(current, served_name=served)

    def clear(self, *, unload: bool) -> None:
        """Forget every adapter; `unload`: also unload them (a shared server is left as it was found)."""
        with self._lock:
            if unload:
                for adapter in self._entries.values():
                    self._client.unload_adapter(adapter.served_name)
            self._entries.clear()
