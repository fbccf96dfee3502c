"""A stand-in for vLLM's OpenAI server (tests only): the routes VllmEngine calls, each request written down.

Run as the vLLM "python" would be: ``fake_vllm_server.py -m <module> --host H --port P [--middleware M] ...``
(other arguments are ignored). ``--middleware`` import paths are applied as vLLM applies them. Every request
is appended to the JSON-lines file named by ``CLARIFY_FAKE_VLLM_RECORD`` (method, path, Authorization header,
and of a chat completion what the ask decision sends: stream, logprobs, allowed tokens, the forced start, a
regex), after a first line with the server's argv and its ``VLLM_API_KEY``.

Chat completions answer greedily from FIRST_TOKENS: the first token's probabilities, chosen by a word in the
last user message, with raw log-probabilities as vLLM reports them (`logprobs`, `top_logprobs`, the sampled
token listed first; `allowed_token_ids` forces the token as vLLM's mask does, the log-probability stays raw).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time

RECORD = os.environ["CLARIFY_FAKE_VLLM_RECORD"]
MODEL = "fake-base"
ASK_ID = 42   # what /tokenize says the ask word's first token is
# The first token's probabilities (most likely first), by a word in the last user message ("" otherwise).
FIRST_TOKENS = {
    "ask": [("Do", 0.6), ("Hello", 0.3), ("Hi", 0.1)],
    "rare": [("Hello", 0.6)] + [(f"w{i}", 0.02) for i in range(19)],   # the ask word is not among the top 20
    "": [("Hello", 0.6), ("Do", 0.3), ("Hi", 0.1)],
}
REST = {"Do": [" you", " mean", " A", " or", " B", "?"], "Hello": [" there", "."]}   # after the first token


def first_tokens(request: dict) -> list[tuple[str, float]]:
    last = next((m["content"] for m in reversed(request.get("messages", [])) if m["role"] == "user"), "")
    return next(tops for word, tops in FIRST_TOKENS.items() if not word or word in last.lower().split())


def reply_tokens(request: dict) -> list[str]:
    """The tokens of the reply: after a forced start (continue_final_message) its continuation."""
    if request.get("continue_final_message"):
        start = request["messages"][-1]["content"]
        return [" A", " or", " B", "?"] if start == "Do you mean" else REST.get(start, [" there", "."])
    first = ("Do" if request.get("allowed_token_ids") == [ASK_ID] else first_tokens(request)[0][0])
    return [first] + REST.get(first, [" there", "."])[: request.get("max_tokens", 16) - 1]


def logprobs(request: dict, tokens: list[str]) -> dict | None:
    if not request.get("logprobs"):
        return None
    tops = dict(first_tokens(request))
    probs = [tops.get(tokens[0], 0.001)] + [0.9] * (len(tokens) - 1)
    listed = [(tokens[0], probs[0])] + [(t, p) for t, p in tops.items() if t != tokens[0]]
    n = request.get("top_logprobs") or 0
    return {"content": [{"token": token, "logprob": math.log(p), "bytes": list(token.encode()),
                         "top_logprobs": [{"token": t, "logprob": math.log(q), "bytes": list(t.encode())}
                                          for t, q in (listed if i == 0 else [(token, p)])][:n]}
                        for i, (token, p) in enumerate(zip(tokens, probs))]}


def chat(request: dict) -> tuple[bytes, bytes]:
    tokens = reply_tokens(request)
    if request.get("continue_final_message") or request.get("allowed_token_ids"):
        lp = None if request.get("continue_final_message") else logprobs(request, tokens[:1])
        tokens = tokens if request.get("continue_final_message") else tokens[:1]
    else:
        lp = logprobs(request, tokens)
    usage = {"prompt_tokens": 5, "completion_tokens": len(tokens), "total_tokens": 5 + len(tokens)}
    if request.get("stream"):
        chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
        chunks += [{"choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None,
                                 "logprobs": {"content": lp["content"][i : i + 1]} if lp else None}]}
                   for i, token in enumerate(tokens)]
        if (request.get("stream_options") or {}).get("include_usage"):
            chunks.append({"choices": [], "usage": usage})
        sse = "".join(f"data: {json.dumps(dict(c, id='c', object='chat.completion.chunk', created=0, model=request['model']))}\n\n"
                      for c in chunks) + "data: [DONE]\n\n"
        return b"text/event-stream", sse.encode()
    return b"application/json", json.dumps({
        "id": "c", "object": "chat.completion", "created": int(time.time()), "model": request["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": lp,
                     "message": {"role": "assistant", "content": "".join(tokens)}}],
        "usage": usage}).encode()


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
        return 200, b"application/json", json.dumps({"tokens": [ASK_ID], "count": 1, "max_model_len": 2048}).encode()
    if (method, path) == ("POST", "/v1/chat/completions"):
        return (200, *chat(request))
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
    request = json.loads(raw) if raw else {}
    entry = {"method": scope["method"], "path": scope["path"], "auth": headers.get("authorization")}
    if scope["path"] == "/v1/chat/completions":
        entry.update(stream=bool(request.get("stream")), logprobs=bool(request.get("logprobs")),
                     allowed=request.get("allowed_token_ids"),
                     start=request["messages"][-1]["content"] if request.get("continue_final_message") else None,
                     regex=(request.get("structured_outputs") or {}).get("regex"))
    record(entry)
    status, ctype, body = body_for(scope["method"], scope["path"], request)
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
