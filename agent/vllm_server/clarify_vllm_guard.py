"""An ASGI middleware for the vLLM server: the API key on every route but ``GET /health``.

Loaded by the server clarify supervises (``--middleware clarify_vllm_guard.RequireKey``, with this folder on
its PYTHONPATH); the key is the server's ``VLLM_API_KEY`` environment variable, never a command-line argument.
vLLM's own key check guards only paths under /v1, /v2, /inference and /cohere; vLLM 0.32 also serves, without
a key, ``/invocations`` (SageMaker: chat and completions for any served model, adapters included,
vllm-project/vllm#58144), ``POST /adapters`` and ``DELETE /adapters/{name}`` (SageMaker LoRA loading, on when
runtime LoRA updating is), ``/tokenize``, ``/metrics``, ``/openapi.json``... This middleware refuses all of
them without the key (HTTP 401), so the only open route is the health check clarify waits on at start-up.

Runs inside the vLLM server's environment: standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import os

OPEN_ROUTES = frozenset({("GET", "/health")})
UNAUTHORIZED = b'{"error": "Unauthorized"}'


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class RequireKey:
    """Pure ASGI middleware: ``Authorization: Bearer <VLLM_API_KEY>`` on every HTTP and websocket request
    except ``OPEN_ROUTES``. Refuses to start without a key, so a server asked to be private never runs open."""

    def __init__(self, app, key: str | None = None):
        key = key if key is not None else os.environ.get("VLLM_API_KEY", "")
        if not key:
            raise RuntimeError("clarify_vllm_guard: VLLM_API_KEY is not set; refusing to serve without a key.")
        self.app = app
        self._digest = _digest(key)

    def allowed(self, scope) -> bool:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if scope["type"] == "http" and (scope.get("method"), path) in OPEN_ROUTES:
            return True
        for name, value in scope.get("headers") or ():
            if name.lower() == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(_digest(token.strip()), self._digest)
        return False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allowed(scope):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: the client gets HTTP 403
        else:
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(UNAUTHORIZED)).encode()),
                (b"www-authenticate", b"Bearer")]})
            await send({"type": "http.response.body", "body": UNAUTHORIZED})
