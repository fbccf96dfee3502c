"""HTTP access to one vLLM OpenAI server: its own routes (httpx) and chat completions (the ``openai`` client).

Every request carries the server's API key (``Authorization: Bearer <key>``) when there is one; with none, no
Authorization header at all. A request that fails becomes an EngineError a user can read (`failure`); for a
server clarify supervises, the supervisor says first whether the server died or hung (`diagnose`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable, Iterator

from ..decision import QUESTION_REGEX
from ..engine import AdapterLoadError, EngineError, GenerationParams

log = logging.getLogger(__name__)


def normalize_url(url: str) -> str:
    """The server's root, http://host:port without /v1, from a URL as a user writes it."""
    root = url.strip().rstrip("/")
    if not re.match(r"^https?://", root):
        root = "http://" + root
    return root[: -len("/v1")] if root.endswith("/v1") else root


def chat_request(model: str, messages: list[dict], params: GenerationParams, *, prefix: str = "",
                 stream: bool = False, seed_offset: int = 0, question: bool = False) -> dict:
    """The arguments of one chat completion. `prefix` forces the start of the reply: the final assistant message
    is continued, not closed; with `question` (a decided ask) the rest of the reply is one question."""
    kwargs: dict = dict(model=model, messages=list(messages), max_tokens=params.max_new_tokens,
                        temperature=float(params.temperature), stream=stream)
    if params.temperature > 0:
        kwargs["top_p"] = params.top_p
        if params.seed is not None:
            kwargs["seed"] = params.seed + seed_offset
    if prefix:
        kwargs["messages"].append({"role": "assistant", "content": prefix})
        kwargs["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        if question:  # agent/decision.py
            kwargs["extra_body"]["structured_outputs"] = {"regex": QUESTION_REGEX}
    return kwargs


def stream_text(chunks, usage: dict | None = None) -> Iterator[str]:
    """The text pieces of a streamed chat completion's chunks (`usage`: see count_usage)."""
    for chunk in chunks:
        count_usage(chunk, usage)
        if chunk.choices:
            piece = chunk.choices[0].delta.content
            if piece:
                yield piece


def count_usage(chunk, usage: dict | None) -> None:
    """Copy a chunk's token counts into `usage` (a request with stream_options include_usage gets them in its
    last chunk); nothing when `usage` is None."""
    if usage is not None and getattr(chunk, "usage", None):
        usage.update(prompt_tokens=chunk.usage.prompt_tokens, completion_tokens=chunk.usage.completion_tokens)


class ServerClient:
    """One server's clients, bound to `root` (set before `connect`), and the base model it serves."""

    def __init__(self, *, remote: bool, request_timeout: float, context_tokens: int):
        import httpx

        self.remote = remote
        self.request_timeout = request_timeout
        self.context_tokens = context_tokens  # the server's context window, for the message that names it
        self.root = ""                        # http://host:port (no /v1)
        self.base_model = ""
        # A supervised server's own account of a failed request (the server died or hangs), asked first.
        self.diagnose: Callable[[str], EngineError | None] = lambda during: None
        self._key: str | None = None          # kept out of repr, messages and logs
        self._http = httpx.Client(timeout=httpx.Timeout(request_timeout, connect=10.0))
        self._openai = None

    @property
    def key(self) -> str | None:
        return self._key

    def use_key(self, key: str | None) -> None:
        """Send `key` from now on: the httpx client at once, the openai client at the next `connect`."""
        self._key = key
        if key:
            self._http.headers["Authorization"] = f"Bearer {key}"
        else:
            self._http.headers.pop("Authorization", None)

    @property
    def url(self) -> str:
        """The server's OpenAI base URL (…/v1)."""
        return self.root + "/v1"

    def connect(self) -> None:
        """Bind an openai client to the server and find the base model's name."""
        import openai

        try:
            response = self._http.get(self.root + "/v1/models", timeout=10.0)
            if response.status_code == 401:
                raise EngineError(f"The vLLM server at {self.root} asks for an API key and refused "
                                  + ("clarify's: set VLLM_API_KEY to the server's key (HTTP 401)." if self.remote
                                     else "the one clarify started it with (HTTP 401)."))
            response.raise_for_status()
            cards = response.json().get("data", [])
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"Could not reach the vLLM server at {self.root}: {exc}") from exc
        roots = [c["id"] for c in cards if not c.get("parent")]
        if not roots:
            raise EngineError(f"The vLLM server at {self.root} serves no base model.")
        self.base_model = roots[0]
        if self._openai is not None:
            self._openai.close()
        # openai's own Timeout: openai 3 moved to httpx2, which refuses an httpx.Timeout.
        self._openai = openai.OpenAI(base_url=self.url, max_retries=0, api_key=self._key or "EMPTY",
                                     timeout=openai.Timeout(self.request_timeout, connect=10.0))

    def healthy(self, timeout: float = 5.0) -> bool:
        """Whether GET /health answers 200 (the one route open without the key)."""
        try:
            return self._http.get(self.root + "/health", timeout=timeout).status_code == 200
        except Exception:
            return False

    def complete(self, kwargs: dict):
        """One chat completion (a stream when kwargs ask for one). Raises the openai client's errors."""
        return self._openai.chat.completions.create(**self._without_key(kwargs))

    def _without_key(self, kwargs: dict) -> dict:
        """A request's arguments, with no Authorization header when there is no key (the openai client needs
        a key: it gets a placeholder, left out of each request here)."""
        import openai

        if self._key or not hasattr(openai, "Omit"):
            return kwargs
        return dict(kwargs, extra_headers={**kwargs.get("extra_headers", {}), "Authorization": openai.Omit()})

    def load_adapter(self, adapter_id: str, served: str, path: Path) -> None:
        """Load the LoRA in `path` under the name `served` (/v1/load_lora_adapter)."""
        try:
            response = self._http.post(self.root + "/v1/load_lora_adapter",
                                       json={"lora_name": served, "lora_path": str(path)}, timeout=300.0)
        except Exception as exc:
            raise self.failure(exc, during=f"loading adapter {adapter_id!r}") from exc
        if response.status_code == 404 and not error_message(response):
            raise AdapterLoadError("The vLLM server does not allow loading adapters at run time: start it with "
                                   "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora.")
        if response.status_code != 200:
            raise AdapterLoadError(f"vLLM could not load adapter {adapter_id!r} from {path}: "
                                   f"{error_message(response) or response.text[:500]}")

    def unload_adapter(self, served: str) -> None:
        try:
            self._http.post(self.root + "/v1/unload_lora_adapter", json={"lora_name": served}, timeout=60.0)
        except Exception as exc:  # the server is gone: nothing left to unload
            log.info("unload of %s skipped: %s", served, exc)

    def first_token_id(self, text: str) -> int:
        """The served tokenizer's first token id of `text` (/tokenize)."""
        try:
            response = self._http.post(self.root + "/tokenize", json={
                "model": self.base_model, "prompt": text, "add_special_tokens": False}, timeout=60.0)
            response.raise_for_status()
            return int(response.json()["tokens"][0])
        except Exception as exc:
            raise self.failure(exc, during=f"tokenizing {text!r}") from exc

    def failure(self, exc: BaseException, *, during: str = "generating a reply") -> EngineError:
        """Turn a client/transport exception into an EngineError a user can read."""
        import openai

        if isinstance(exc, EngineError):
            return exc
        if isinstance(exc, openai.APIStatusError):
            message = error_message(exc.response) or str(exc)
            if exc.status_code == 400 and "context length" in message.lower():
                return EngineError(f"The conversation is too long for the model's context window "
                                   f"({self.context_tokens} tokens on this server): {message}")
            return EngineError(f"The vLLM server refused the request (HTTP {exc.status_code}): {message}")
        stopped = self.diagnose(during)
        if stopped is not None:
            return stopped
        if isinstance(exc, openai.APITimeoutError):
            return EngineError(f"The vLLM server at {self.root} took longer than {self.request_timeout:.0f} s "
                               f"while {during}.")
        return EngineError(f"Lost the connection to the vLLM server at {self.root} while {during}: "
                           f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        if self._openai is not None:
            self._openai.close()
        self._http.close()


def error_message(response) -> str:
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
