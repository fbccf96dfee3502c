"""The calibrated ask decision (agent/decision.py) on a vLLM server, read from the reply's own request.

vLLM takes no per-request logits processor. So a turn the decision applies to (`applies`) sends its streamed
reply at once, with `logprobs` and the top 20 `top_logprobs`, holds the first token back and reads P(ask word)
from it (`DecisionRequests.reply`). vLLM reports log-probabilities from the raw logits (its default
`--logprobs-mode raw_logprobs`: before temperature, top-p or any mask), so that is the exact probability the
transformers engine reads from its own logits:

* the sampled token's, if it is the ask word; else the ask word's entry among the top 20;
* not among them, P(ask) is at most the smallest probability listed (besides the sampled token's): the bound.
  When the bound is below the threshold, greedy decoding answers exactly as with the exact value, and the logged
  P(ask) (Exploration.p_ask) is then the bound, an upper bound of it, not the value. Otherwise (no threshold:
  the base model exploring; a bound not below it; sampling, whose draw needs the exact value) P(ask) is read by
  an extra 1-token request, whose only allowed token is the ask word (`reading`: vLLM reports the sampled
  token's raw log-probability before the mask), while the reply's stream waits.

If the decided action (and the turn's exploration) agrees with the streamed reply, the stream goes on, held
token first: one request, the reply's own. It agrees when the decision answers and greedy decoding of the prompt
would not ask (sampling: the reply does not open with the ask word). Otherwise the stream is closed and the
forced start is sent: a decided ask always, as the whole ask prefix and then one question
(QUESTION_REGEX as a structured output, which the free stream could not carry); an answer that the stream
would have opened with the ask word, the likeliest other token (sampling: one drawn from the top others).
On the dev items asks are rare, so the restart is rare (docs/BENCHMARKS.md).

`decided_prefix` reads the decision by the 1-token request alone, before any reply is sent (the same read a stream
without log-probabilities falls back to); bench/decision.py and the tests compare it with the reply's own read.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Iterator

from ..decision import Exploration, ask_start_words, decision_chance, may_ask
from ..engine import EngineError, GenerationParams
from ..policy import ASK_PREFIXES
from .adapters import AdapterRegistry
from .client import ServerClient, chat_request, count_usage, stream_text

ASK_PREFIX = ASK_PREFIXES[0]   # a decided ask starts with the whole prefix, then one question
TOP_LOGPROBS = 20   # vLLM's default --max-logprobs: the likeliest first tokens besides the ask word
PROCESSED = ("The vLLM server reports processed log-probabilities; the calibrated ask decision needs the default "
             "--logprobs-mode raw_logprobs.")


@dataclass(frozen=True)
class Reading:
    """What a first token's log-probabilities say: P(ask word), and the likeliest other printable first tokens
    with their probabilities (most likely first). `exact` False: p_ask is the bound (the ask word was not listed)."""
    p_ask: float
    others: list[tuple[str, float]]
    exact: bool = True


class DecisionRequests:
    """Applies the calibrated decision (and the turn's exploration) to vLLM replies, through `registry`'s names."""

    def __init__(self, client: ServerClient, registry: AdapterRegistry):
        self._client, self._registry = client, registry
        self._token_ids: dict[str, int] = {}   # the served tokenizer's first token of each ask word
        self._ask_words = ask_start_words()
        self._word = min(self._ask_words)

    def _threshold(self, adapter: str | None, params: GenerationParams) -> float | None:
        decision = self._registry.decision(adapter) if params.calibrated_ask else None
        return decision.threshold if decision is not None else None

    def applies(self, messages: list[dict], params: GenerationParams, adapter: str | None,
                exploration: Exploration | None = None) -> bool:
        """Is there a decision to apply to this reply? A turn that may ask, with the adapter's threshold or an
        exploration above rate 0 (the base model's own first token is then decided too). If not, the reply is
        one plain request, without log-probabilities."""
        return may_ask(messages) and (self._threshold(adapter, params) is not None
                                      or (exploration is not None and exploration.active))

    def reply(self, messages: list[dict], params: GenerationParams, adapter: str | None, seed_offset: int = 0,
              exploration: Exploration | None = None, usage: dict | None = None) -> Iterator[str]:
        """The reply's text, streamed, with the decision applied (see the module docstring); `exploration` is
        settled on the way. `usage`, if given, receives the token counts of the request whose text is returned
        (prompt_tokens, completion_tokens)."""
        first, held = None, []
        with self._stream(messages, params, adapter, seed_offset, usage, logprobs=True) as response:
            chunks = iter(response)
            for chunk in chunks:
                count_usage(chunk, usage)
                if chunk.choices:
                    held.append(chunk.choices[0].delta.content or "")
                    content = chunk.choices[0].logprobs.content if chunk.choices[0].logprobs else None
                    if content:
                        first = content[0]
                        break
            reading = self._first_token_reading(first) if first is not None else None
            opens_with_ask = first is not None and first.token.strip() in self._ask_words
            prefix = self._settle(messages, params, adapter, seed_offset, exploration, reading, opens_with_ask)
            if not prefix:
                yield from (piece for piece in held if piece)
                yield from stream_text(chunks, usage)
                return
        yield prefix
        with self._stream(messages, params, adapter, seed_offset, usage, prefix=prefix) as response:
            yield from stream_text(response, usage)

    def decided_prefix(self, messages: list[dict], params: GenerationParams, adapter: str | None,
                       seed_offset: int = 0, exploration: Exploration | None = None) -> str:
        """The forced start of the reply ("" = none needed), read by the 1-token request alone, and the turn's
        `exploration` settled."""
        if not self.applies(messages, params, adapter, exploration):
            return ""
        return self._settle(messages, params, adapter, seed_offset, exploration, None, opens_with_ask=True) or ""

    def _settle(self, messages: list[dict], params: GenerationParams, adapter: str | None, seed_offset: int,
                exploration: Exploration | None, reading: Reading | None, opens_with_ask: bool) -> str | None:
        """Decide and settle the exploration: the forced start of the reply, or None when the reply as it is
        streamed (or a plain request) is what the decision wants. `reading` None or not exact enough: the
        1-token request reads P(ask) exactly. `opens_with_ask`: the streamed reply opens with the ask word."""
        threshold = self._threshold(adapter, params)
        draw = None
        if params.temperature > 0:
            draw = random.Random(None if params.seed is None else params.seed + seed_offset).random()
        if reading is None or not (reading.exact or (draw is None and threshold is not None
                                                      and reading.p_ask < threshold)):
            reading = self.reading(messages, params, adapter)
        p_ask, others = reading.p_ask, reading.others
        asks, chance = decision_chance(p_ask, threshold, draw, greedy_asks=not others or p_ask >= others[0][1])
        if exploration is not None:
            asks = exploration.settle(p_ask, chance, asks)
        if asks:
            return ASK_PREFIX
        if draw is None:  # greedy: the likeliest other token, unless greedy decoding would not ask anyway
            return None if not others or others[0][1] > p_ask else others[0][0]
        if not others or not opens_with_ask:
            return None
        tokens, weights = zip(*others)
        return random.Random(None if params.seed is None else params.seed + seed_offset + 1).choices(tokens, weights)[0]

    def _first_token_reading(self, first) -> Reading | None:
        """The reading of the streamed reply's first token (None: the ask word may be listed under another
        text, e.g. with a leading space, so only the 1-token request can tell)."""
        tops = [(t.token, math.exp(t.logprob)) for t in first.top_logprobs or []]
        if sum(p for _, p in tops) > 1.01:
            raise EngineError(PROCESSED)
        others = self._others(tops)
        if first.token == self._word:
            return Reading(math.exp(first.logprob), others)
        p_ask = next((p for token, p in tops if token == self._word), None)
        if p_ask is not None:
            return Reading(p_ask, others)
        if first.token.strip() in self._ask_words or any(token.strip() in self._ask_words for token, _ in tops):
            return None
        listed = [p for token, p in tops if token != first.token]   # the top ones: the sampled token may not be
        return Reading(min(listed), others, exact=False) if listed else None

    def reading(self, messages: list[dict], params: GenerationParams, adapter: str | None) -> Reading:
        """The exact reading: one 1-token request whose only allowed token is the ask word."""
        one_token = replace(params, max_new_tokens=1, temperature=0.0)
        kwargs = dict(chat_request(self._registry.served_name(adapter), messages, one_token),
                      logprobs=True, top_logprobs=TOP_LOGPROBS,
                      extra_body={"allowed_token_ids": [self.token_id(self._word)]})
        response = self._registry.complete(kwargs, adapter)
        content = response.choices[0].logprobs.content if response.choices[0].logprobs else None
        if not content:
            raise EngineError("The vLLM server returned no log-probabilities for the ask decision.")
        p_ask = math.exp(content[0].logprob)
        tops = [(t.token, math.exp(t.logprob)) for t in content[0].top_logprobs]
        if p_ask + sum(p for token, p in tops if token.strip() not in self._ask_words) > 1.01:
            raise EngineError(PROCESSED)
        return Reading(p_ask, self._others(tops))

    def _others(self, tops: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """The listed first tokens that do not open with an ask word and print, most likely first."""
        return sorted(((token, p) for token, p in tops
                       if token.strip() not in self._ask_words and token and token.isprintable()),
                      key=lambda tp: -tp[1])

    def _stream(self, messages: list[dict], params: GenerationParams, adapter: str | None, seed_offset: int,
                usage: dict | None, *, prefix: str = "", logprobs: bool = False):
        """One streamed request of the reply: free with the first token's log-probabilities (`logprobs`), or
        with its forced start (a decided ask: then one question)."""
        kwargs = chat_request(self._registry.served_name(adapter), messages, params, prefix=prefix, stream=True,
                              seed_offset=seed_offset, question=prefix == ASK_PREFIX)
        if logprobs:
            kwargs.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        if usage is not None:
            kwargs["stream_options"] = {"include_usage": True}
        return self._registry.complete(kwargs, adapter)

    def token_id(self, text: str) -> int:
        """The served tokenizer's first token id of `text`, asked once per engine."""
        if text not in self._token_ids:
            self._token_ids[text] = self._client.first_token_id(text)
        return self._token_ids[text]

