"""The /v1 routes: OpenAI-compatible chat completions (streamed or not), feedback on replies, the models.

A FastAPI app that `clarify serve` mounts at /v1 on the UI's own server (``ui.app.launch_kwargs(mounts=...)``),
so the UI and the API share one process, one engine and the one DuckDB writer. It holds no policy of its own:
replies come from ``ChatService`` (the Chat tab's prompt, horizon, limits, A/B assignment and logging, with
source ``api``), ratings go to ``LogStore.add_rating`` (the UI's validation and rewards), so API ratings are
rewards in Insights and the next training snapshot like the UI's.

Every response for a reply carries ``"clarify": {"conversation_id", "turn_id", "kind", "adapter"}`` (on the
completion, and on the final chunk of a stream): the turn id is what /v1/feedback rates. Every refusal is
OpenAI's error shape (api/errors.py) and is decided before anything is written.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import anyio
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, StreamingResponse

from agent.chat_service import ChatService, Reply, clean_text
from agent.engine import AdapterLoadError, EngineError
from logs_db.store import DuplicateRating, LogError, LogStore, UnknownId, new_id, normalized_reward

from .conversations import SOURCE, ChatRequest, find_continuation, parse_messages
from .errors import ApiError
from .keys import ApiKeys, Client

MODEL = "clarify"                   # the active adapter (or base), with the A/B assignment
MAX_BODY_BYTES = 4 * 1024 * 1024    # a whole conversation is resent on every request
MAX_IN_FLIGHT = 16                  # replies generating at once (the engine batches them); more: 429
MAX_ID_CHARS = 200


def _id(value: Any, what: str, code: str) -> str:
    """A client-sent id: text that could be one of ours, else ApiError 400/404 (never a database error)."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{what} must be a non-empty string.", "invalid_value")
    if len(value) > MAX_ID_CHARS or not value.isprintable():
        raise ApiError(404, f"No {what} {value[:MAX_ID_CHARS]!r}.", code)
    return value


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The request body as JSON, refused (413) as soon as it passes `limit` bytes; NaN and Infinity refused."""
    declared = request.headers.get("content-length", "")
    too_big = ApiError(413, f"The request body is larger than {limit} bytes.", "request_too_large")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)

    def no_constant(name: str):
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(b"".join(chunks), parse_constant=no_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, "The request body is not valid JSON.", "invalid_json") from None


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", "invalid_json")
    return body


class ClarifyApi:
    """The handlers, over the serving process's store, chat service and keys."""

    def __init__(self, store: LogStore, service: ChatService, keys: ApiKeys, *, max_in_flight: int = MAX_IN_FLIGHT):
        self.store, self.service, self.keys = store, service, keys
        self.started = int(time.time())
        self.max_in_flight = max_in_flight
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._replying: set[str] = set()       # conversations with a reply in progress
        self._replying_lock = threading.Lock()

    def client(self, request: Request) -> Client:
        return self.keys.authenticate(request.headers.get("authorization"))

    # -- models -------------------------------------------------------------------------------------------
    def _card(self, model_id: str, created: int, **extra) -> dict:
        return {"id": model_id, "object": "model", "created": created, "owned_by": "clarify", "clarify": extra}

    def _cards(self) -> list[dict]:
        active = self.store.active_adapter()
        cards = [self._card(MODEL, self.started, adapter=active.id if active else None,
                            ab_candidate=self.service.ab_state()[0])]
        return cards + [self._card(a.id, int(a.created_at.timestamp()), status=a.status, method=a.method,
                                   parent_id=a.parent_id) for a in self.store.list_adapters()]

    def list_models(self, request: Request) -> dict:
        self.client(request)
        return {"object": "list", "data": self._cards()}

    def get_model(self, model_id: str, request: Request) -> dict:
        self.client(request)
        card = next((c for c in self._cards() if c["id"] == model_id), None)
        if card is None:
            raise ApiError(404, f"The model {model_id!r} does not exist.", "model_not_found")
        return card

    # -- chat completions ---------------------------------------------------------------------------------
    async def chat_completions(self, request: Request):
        client = self.client(request)
        body = _object(await read_json(request))
        return await run_in_threadpool(self._complete, client, body)

    def _adapter(self, model: Any) -> str:
        """What ChatService.start takes: "active" for `clarify`, else the adapter id (loaded now)."""
        model = _id(model, "model", "model_not_found")
        if model == MODEL:
            return "active"
        try:
            record = self.store.get_adapter(model)
        except UnknownId:
            raise ApiError(404, f"The model {model!r} does not exist; GET /v1/models lists them.",
                           "model_not_found") from None
        try:
            self.service.engine.load_adapter(record.id, Path(record.path))
        except AdapterLoadError as exc:
            raise ApiError(400, f"The model {model!r} cannot be served: {exc}", "model_unavailable") from None
        return record.id

    def _read_request(self, body: dict) -> tuple[bool, str | None, ChatRequest]:
        """(stream, the conversation id the client names, the messages), or ApiError 400/404."""
        stream = body.get("stream", False)
        if stream is not None and not isinstance(stream, bool):
            raise ApiError(400, "stream must be true or false.", "invalid_value")
        if body.get("n") not in (None, 1):
            raise ApiError(400, "n must be 1: clarify gives one reply per turn.", "invalid_value")
        if body.get("tools") or body.get("functions"):
            raise ApiError(400, "clarify does not call tools.", "unsupported_parameter")
        options = body.get("clarify") or {}
        if not isinstance(options, dict):
            raise ApiError(400, "clarify must be an object, e.g. {\"conversation_id\": \"...\"}.", "invalid_value")
        wanted = options.get("conversation_id")
        if wanted is not None:
            wanted = _id(wanted, "conversation", "conversation_not_found")
        chat = parse_messages(body.get("messages"))
        self.service.validate_message(chat.question)       # LogError -> 400, before anything is written
        return bool(stream), wanted, chat

    def _claim(self, client: Client, chat: ChatRequest, model: str, adapter: str, wanted: str | None) -> str:
        """The conversation this reply goes to (continued or new), claimed with one of the in-flight slots."""
        if not self._slots.acquire(blocking=False):
            raise ApiError(429, f"{self.max_in_flight} replies are being generated; retry shortly.",
                           "too_many_requests")
        try:
            with self._replying_lock:  # match and claim in one step: two requests never extend one log at once
                conv = find_continuation(self.store, chat, client=client.name, model=model, conversation_id=wanted)
                if conv is not None and conv.id in self._replying:
                    raise ApiError(409, "A reply in this conversation is still being generated.", "conversation_busy")
                cid = conv.id if conv is not None else self.service.start(
                    chat.notes or "", opening=chat.question, user_id=client.name, adapter_id=adapter, source=SOURCE)
                self._replying.add(cid)
                return cid
        except BaseException:
            self._slots.release()
            raise

    def _complete(self, client: Client, body: dict):
        stream, wanted, chat = self._read_request(body)
        adapter = self._adapter(body.get("model"))
        model = body["model"]
        cid = self._claim(client, chat, model, adapter, wanted)
        streaming = False
        try:
            reply = self.service.reply(cid, chat.question, user_id=client.name)
            meta = dict(id="chatcmpl-" + new_id(), created=int(time.time()), model=model)
            extra = dict(conversation_id=cid, adapter=self.store.get_conversation(cid).adapter_id)
            pieces = iter(reply)
            try:
                first = next(pieces, None)  # starts generating: an engine that fails at once is a plain 503
                if not stream:
                    for _ in pieces:
                        pass
            except EngineError as exc:      # the service logged the failed turn
                raise self._engine_error(exc) from None
            except BaseException:
                pieces.close()              # logs the reply as failed
                raise
            if not stream:
                return {**meta, "object": "chat.completion",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                                     "finish_reason": "stop"}],
                        "clarify": self._ids(reply, extra)}
            streaming = True
            return _ReplyStream(self._events(pieces, first, reply, meta, extra),
                                finish=lambda: (pieces.close(), self._release(cid)))
        finally:
            if not streaming:
                self._release(cid)

    @staticmethod
    def _ids(reply: Reply, extra: dict) -> dict:
        """The documented extra field: {conversation_id, turn_id, kind, adapter}, once the reply is logged."""
        return {**extra, "turn_id": reply.turn_id, "kind": reply.kind}

    @staticmethod
    def _engine_error(exc: EngineError) -> ApiError:
        return ApiError(503, f"The agent failed: {exc} The failed turn was logged; there is nothing to rate.",
                        "engine_error")

    def _release(self, cid: str | None) -> None:
        with self._replying_lock:
            self._replying.discard(cid)
        self._slots.release()

    async def _events(self, pieces: Iterator[str], first: str | None, reply: Reply, meta: dict, extra: dict):
        """Server-sent events: a role chunk, content deltas, a final chunk with the clarify field, [DONE].

        Deltas are of the stripped text, so they add up to exactly the logged reply (what a follow-up resends).
        """
        def event(delta: dict, finish: str | None = None, **more) -> str:
            chunk = {**meta, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
            return f"data: {json.dumps(chunk)}\n\n"

        sent = ""
        try:
            yield event({"role": "assistant", "content": ""})
            partial = first
            while partial is not None:
                visible = partial.strip()
                if len(visible) > len(sent) and visible.startswith(sent):
                    yield event({"content": visible[len(sent):]})
                    sent = visible
                partial = await run_in_threadpool(next, pieces, None)
        except EngineError as exc:  # the service logged the failed turn; OpenAI's clients raise on an error event
            yield f"data: {json.dumps(self._engine_error(exc).body())}\n\n"
            return
        if reply.text.startswith(sent) and reply.text != sent:
            yield event({"content": reply.text[len(sent):]})
        yield event({}, "stop", clarify=self._ids(reply, extra))
        yield "data: [DONE]\n\n"

    # -- feedback -----------------------------------------------------------------------------------------
    async def feedback(self, request: Request):
        client = self.client(request)
        body = _object(await read_json(request))
        return await run_in_threadpool(self._feedback, client, body)

    def _feedback(self, client: Client, body: dict) -> dict:
        unknown = sorted(set(body) - {"turn_id", "kind", "value", "comment"})
        if unknown:
            raise ApiError(400, f"Unknown field(s) {', '.join(unknown)}; send turn_id, kind, value and optionally "
                                "comment.", "invalid_value")
        turn_id = _id(body.get("turn_id"), "turn", "turn_not_found")
        kind, value, comment = body.get("kind"), body.get("value"), body.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise ApiError(400, "comment must be text.", "invalid_value")
        if not isinstance(kind, str):
            raise ApiError(400, "kind must be \"thumbs\" or \"stars\".", "invalid_value")
        turn = self.store.get_turn(turn_id)                      # UnknownId -> 404
        conv = self.store.get_conversation(turn.conversation_id)
        if conv.source != SOURCE or conv.user_id != client.name:
            raise ApiError(403, "That reply is in a conversation not made with your API key; you can only rate "
                                "your own.", "not_your_conversation")
        rating_id = self.store.add_rating(turn_id, kind=kind, value=value, comment=clean_text(comment or "") or None,
                                          user_id=client.name)   # the UI's validation; LogError -> 400
        return {"object": "clarify.feedback", "id": rating_id, "turn_id": turn_id, "conversation_id": conv.id,
                "kind": kind, "value": value, "reward": normalized_reward(kind, value)}


class _ReplyStream(StreamingResponse):
    """A streamed reply that always finishes: whether the client read it all, went away mid-stream or before the
    first byte, `finish` runs once (stop the generation, which the service then logs as failed, and free the
    reply's slot), shielded from cancellation."""

    def __init__(self, events, *, finish: Callable[[], Any]):
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._finish = finish

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()
                await run_in_threadpool(self._finish)


def _refusal(status: int, code: str) -> Callable:
    def handle(request: Request, exc: Exception) -> JSONResponse:
        return ApiError(status, str(exc), code).response()
    return handle


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404:
        message = f"There is no API route {request.url.path}; see GET /v1/models, POST /v1/chat/completions, " \
                  "POST /v1/feedback."
    else:
        message = str(exc.detail)
    return ApiError(exc.status_code, message, "not_found" if exc.status_code == 404 else "invalid_request").response()


def _internal(request: Request, exc: Exception) -> JSONResponse:
    return ApiError(500, "Something went wrong on the server; nothing was recorded for this request.",
                    "internal_error").response()


def build_api(store: LogStore, service: ChatService, keys: ApiKeys, *, max_in_flight: int = MAX_IN_FLIGHT) -> FastAPI:
    """The /v1 app (mount it at /v1). Routes: GET /models, GET /models/{id}, POST /chat/completions,
    POST /feedback."""
    api = ClarifyApi(store, service, keys, max_in_flight=max_in_flight)
    app = FastAPI(title="clarify API", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(ApiError, lambda request, exc: exc.response())
    app.add_exception_handler(DuplicateRating, _refusal(409, "duplicate_rating"))
    app.add_exception_handler(UnknownId, _refusal(404, "not_found"))
    app.add_exception_handler(LogError, _refusal(400, "invalid_value"))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal)
    app.add_api_route("/models", api.list_models, methods=["GET"])
    app.add_api_route("/models/{model_id}", api.get_model, methods=["GET"])
    app.add_api_route("/chat/completions", api.chat_completions, methods=["POST"])
    app.add_api_route("/feedback", api.feedback, methods=["POST"])
    app.state.clarify = api
    return app
