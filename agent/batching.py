"""Request batching for the in-process engine: concurrent chats share one padded `generate` call.

The model is one shared object behind the engine's lock, so streamed replies used to be generated one after
another: with 8 users chatting at once the 8th waited for the other 7. Here every `stream` call becomes a
request on a queue; one batcher thread takes the first waiting request, gathers the requests that arrive
within a short window (``window_s`` of quiet, at most ``max_batch``) and can share its call (same adapter and
generation parameters; a seeded sampling request runs alone, so its seed means what it meant), left-pads
their prompts and runs one ``generate``. Its streamer hands each row's new token to that request's own
``TextIteratorStreamer``, so every reader still gets its own text pieces as they are generated; a row ends
at its end-of-sequence token, and a reader that stops early (browser closed) stops its row only.

Greedy replies equal the ones generated alone (tests/agent/test_batching.py); ``max_batch=1`` gives back the
serialized engine (what bench/serving.py compares against).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from .decision import Exploration, may_ask
from .engine import EngineError, GenerationParams


@dataclass(eq=False)
class Request:
    ids: list[int]
    params: GenerationParams
    adapter: str | None
    streamer: object                       # a transformers TextIteratorStreamer
    may_ask: bool = False                  # the prompt lets the agent ask (agent/decision.py)
    exploration: Exploration | None = None  # the turn's exploration (agent/decision.py), settled at its first token
    stop: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None
    finished: bool = False

    @property
    def key(self) -> tuple:
        """Requests with the same key can share one generate call."""
        p = self.params
        if p.temperature > 0 and p.seed is not None:
            return ("alone", id(self))
        return (self.adapter, p.max_new_tokens, p.temperature, p.top_p if p.temperature > 0 else None)


class _RowsStreamer:
    """What `generate` streams to: splits each step's tokens by row and feeds each request's streamer."""

    def __init__(self, batch: list[Request], eos: set[int]):
        self.batch, self.eos, self.prompt_done = batch, eos, False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_done:  # generate streams the prompt first; every row's streamer skips it
            self.prompt_done = True
            for r in self.batch:
                r.streamer.put(torch.tensor(r.ids[-1:]))
            return
        for r, token in zip(self.batch, value.view(-1).tolist()):
            if r.finished:
                continue
            r.streamer.put(torch.tensor([token]))
            if token in self.eos:
                r.finished = True
                r.streamer.end()

    def end(self) -> None:
        for r in self.batch:
            if not r.finished:
                r.finished = True
                r.streamer.end()


class StreamBatcher:
    def __init__(self, engine, *, max_batch: int = 8, window_s: float = 0.01, max_wait_s: float = 0.1):
        self.engine, self.max_batch, self.window_s, self.max_wait_s = engine, max(1, max_batch), window_s, max_wait_s
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self._waiting: list[Request] = []    # taken off the queue but not fitting the last batch
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        eos = engine.model.generation_config.eos_token_id
        self._eos = set(eos if isinstance(eos, list) else [eos]) | {engine.tokenizer.eos_token_id}
        self.batch_sizes: list[int] = []     # every batch run, for tests and benchmarks

    def stream(self, messages: list[dict], params: GenerationParams, adapter: str | None,
               exploration: Exploration | None = None) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        with self._encode_lock:  # a fast tokenizer called with padding from two threads can raise "Already borrowed"
            ids = self.engine._encode([messages])["input_ids"][0].tolist()
        streamer = TextIteratorStreamer(self.engine.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=600)
        request = Request(ids, params, adapter, streamer, may_ask=may_ask(messages), exploration=exploration)
        self._ensure_thread()
        self._queue.put(request)
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            request.stop.set()
        if request.failure is not None:
            raise EngineError(f"Generation failed: {request.failure}") from request.failure

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=60)
            self._thread = None

    # -- the batcher thread ------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stream-batcher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._generate(batch)

    def _take(self, timeout: float | None) -> Request | None:
        """The next request (None = closing); raises queue.Empty after `timeout`."""
        request = self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()
        if request is None:
            self._queue.put(None)  # seen again by the outer loop once the waiting ones are served
        return request

    def _next_batch(self) -> list[Request] | None:
        if self._waiting:
            first = self._waiting.pop(0)
        else:
            first = self._take(None)
            if first is None:
                return None
        batch, later = [first], []
        for r in list(self._waiting):  # requests that waited through the last batch go first
            if len(batch) < self.max_batch and r.key == first.key:
                batch.append(r)
                self._waiting.remove(r)
        started = last = time.perf_counter()
        while len(batch) < self.max_batch:
            now = time.perf_counter()
            timeout = min(self.window_s - (now - last), self.max_wait_s - (now - started))
            if timeout <= 0:
                break
            try:
                r = self._take(timeout)
            except queue.Empty:
                break
            if r is None:
                break
            last = time.perf_counter()
            (batch if r.key == first.key else later).append(r)
        self._waiting.extend(later)
        return batch

    def _generate(self, batch: list[Request]) -> None:
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

        engine = self.engine
        pad = engine.tokenizer.pad_token_id
        width = max(len(r.ids) for r in batch)
        input_ids = torch.tensor([[pad] * (width - len(r.ids)) + r.ids for r in batch])
        attention_mask = torch.tensor([[0] * (width - len(r.ids)) + [1] * len(r.ids) for r in batch])

        class StopAbandoned(StoppingCriteria):
            """A reader that stops early (browser closed) ends its row at the next token."""

            def __call__(self, input_ids, scores, **kwargs):
                return torch.tensor([r.stop.is_set() for r in batch], dtype=torch.bool)

        params = batch[0].params
        streamer = _RowsStreamer(batch, self._eos)
        self.batch_sizes.append(len(batch))
        try:
            with engine._lock:
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                processors = engine.decision_processor(batch[0].adapter, [r.may_ask for r in batch], params, width,
                                                       [r.exploration for r in batch])
                with torch.inference_mode(), engine._select(batch[0].adapter):
                    engine.model.generate(input_ids=input_ids, attention_mask=attention_mask, streamer=streamer,
                                          stopping_criteria=StoppingCriteriaList([StopAbandoned()]),
                                          logits_processor=LogitsProcessorList(processors),
                                          **engine._generate_kwargs(params))
        except BaseException as exc:  # noqa: BLE001 - reported to every reader of the batch
            for r in batch:
                r.failure = exc
        finally:
            streamer.end()
