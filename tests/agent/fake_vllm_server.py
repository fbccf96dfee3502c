"""A stand-in for vLLM's OpenAI server (tests only): the routes VllmEngine calls, each request written down.

Run as the vLLM "python" would be: ``fake_vllm_server.py -m <module> --host H --port P [--middleware M] ...``
(other arguments are ignored). ``--middleware`` import paths are applied as vLLM applies them. Every request
is appended to the JSON-lines file named by ``CLARIFY_FAKE_VLLM_RECORD`` (method, path, Authorization header),
after a first line with the server's argv and its ``VLLM_API_KEY``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time

RECORD = os.environ["CLARIFY_FAKE_VLLM_RECORD"]
MODEL = "fake-base"


def record(entry: dict) -> None:
    with open(RECORD, "a") as fh:
        fh.write(json.dumps(entry) + "\n")


def body_for(method: str, path: str, request: dict) -> tuple[int, bytes, bytes]:
    """(status, content type, body) of a route."""
    if (method, path) == ("GET", "/health"):
        return 200, b"text/plain", b""
    if (method, path) == ("GET", "/v1/models"):
        return 200, b"application/json", json.dumps({"object": "list", "data": [
            {"id": MODEL, "object": "model", "owned_by": "fake", "parent": None}]}).encode()
    if (method, path) == ("POST", "/tokenize"):
        return 200, b"application/json", json.dumps({"tokens": [42], "count": 1, "max_model_len": 2048}).encode()
    if (method, path) == ("POST", "/v1/chat/completions"):
        if request.get("stream"):
            chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": request["model"],
                       "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                      for piece in ("Hello", " there.")]
            sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return 200, b"text/event-stream", sse.encode()
        return 200, b"application/json", json.dumps({
            "id": "c", "object": "chat.completion", "created": int(time.time()), "model": request["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hello there."}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}).encode()
    if method == "POST" and path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/invocations", "/adapters"):
        return 200, b"text/plain", b"ok"
    return 404, b"application/json", b'{"error": "not found"}'


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    record({"method": scope["method"], "path": scope["path"], "auth": headers.get("authorization")})
    status, ctype, body = body_for(scope["method"], scope["path"], json.loads(raw) if raw else {})
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str]) -> None:
    import uvicorn

    record({"argv": argv, "env_key": os.environ.get("VLLM_API_KEY")})
    opts = {"--host": "127.0.0.1", "--port": "8000"}
    wrapped, i = app, 0
    while i < len(argv):
        if argv[i] in opts:
            opts[argv[i]] = argv[i + 1]
            i += 1
        elif argv[i] == "--middleware":  # as vLLM does: a class gets the app
            module, name = argv[i + 1].rsplit(".", 1)
            wrapped = getattr(importlib.import_module(module), name)(app=wrapped)
            i += 1
        i += 1
    uvicorn.run(wrapped, host=opts["--host"], port=int(opts["--port"]), log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
