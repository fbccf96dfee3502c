"""How the vLLM engine starts its server and how long it waits on one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VllmOptions:
    """The engine's settings; a remote server (``--vllm-url``) uses only those marked "any server"."""
    dtype: str = "bfloat16"
    max_lora_rank: int = 16             # any server: larger adapters are refused before they are sent
    max_loras: int = 4                  # adapters the server holds at once
    max_model_len: int = 2048           # the context window, in tokens
    kv_cache_gb: int = 2                # vLLM-CPU's KV cache (VLLM_CPU_KVCACHE_SPACE, unless set already)
    host: str = "127.0.0.1"
    port: int | None = None             # None: a free port, a new one at each start
    startup_timeout: float = 600.0      # seconds until /health answers
    request_timeout: float = 600.0      # any server: seconds one request may take
    concurrency: int = 8                # any server: requests of a batch sent at once
    extra_args: tuple[str, ...] = ()    # more arguments for vLLM's API server
