"""The calibrated ask decision on vLLM, read from the reply's own request (agent/vllm/decision_requests.py),
without vLLM: a stand-in server (tests/agent/fake_vllm_server.py) answers greedily from a first-token
distribution picked by a word of the user's message, and records every chat request. How many requests a reply
costs: one when the decision agrees with the streamed reply, two when it does not (or asks). Against a real
server: test_vllm_engine.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from agent.decision import QUESTION_REGEX, Exploration
from agent.engine import GenerationParams
from agent.vllm.decision_requests import ASK_PREFIX
from agent.vllm_engine import VllmEngine
from tests.agent.vllm_stand_in import records, tiny_adapter

GREEDY = GenerationParams(max_new_tokens=16, temperature=0.0)
SAMPLED = GenerationParams(max_new_tokens=16, temperature=0.7, seed=3)
# The stand-in's first tokens: "Hi" -> Hello 0.6, Do 0.3; "ask" -> Do 0.6, Hello 0.3; "rare" -> Hello 0.6 and 19
# others at 0.02, the ask word (0.001) not among them.
HI, ASK, RARE = ([{"role": "user", "content": text}] for text in ("Hi", "ask me", "rare words"))


@pytest.fixture
def server(fake_python, tmp_path):
    """(engine, calibrated(threshold) -> adapter id, chats() -> the chat requests since the last call)."""
    python, record = fake_python
    engine = VllmEngine(tmp_path, python=python, log_path=tmp_path / "vllm.log", startup_timeout=60,
                        progress=lambda _: None)
    seen = [0]

    def calibrated(threshold: float) -> str:
        name = f"t{threshold}"
        folder = tiny_adapter(tmp_path / name)
        (folder / "clarify_adapter.json").write_text(json.dumps({"ask_threshold": threshold, "ask_views": 3}))
        engine.load_adapter(name, folder)
        return name

    def chats() -> list[dict]:
        new = records(record)[seen[0]:]
        seen[0] += len(new)
        return [{k: r[k] for k in ("stream", "logprobs", "allowed", "start", "regex")}
                for r in new if r.get("path") == "/v1/chat/completions"]

    try:
        yield engine, calibrated, chats
    finally:
        engine.close()


FREE = {"stream": True, "logprobs": True, "allowed": None, "start": None, "regex": None}   # the reply's own
ONE_TOKEN = {"stream": False, "logprobs": True, "allowed": [42], "start": None, "regex": None}
FORCED_ASK = {"stream": True, "logprobs": False, "allowed": None, "start": ASK_PREFIX, "regex": QUESTION_REGEX}


def reply(engine, messages, adapter, params=GREEDY, rate: float = 0.0, draw: float = 1.0):
    exploration = Exploration(rate, draw)
    return "".join(engine.stream(messages, params, adapter=adapter, explore=exploration)), exploration


def test_an_agreeing_answer_is_one_request_and_anything_else_restarts_with_the_forced_start(server):
    engine, calibrated, chats = server
    answers, asks, never = calibrated(0.5), calibrated(0.1), calibrated(0.9)
    chats()

    # P(ask) 0.3 < 0.5 and the reply opens with "Hello": it agrees, the stream goes on.
    text, decided = reply(engine, HI, answers)
    assert (text, decided.action, decided.p_ask) == ("Hello there.", "answer", pytest.approx(0.3))
    assert chats() == [FREE]
    # 0.3 > 0.1: ask; the reply opened with "Hello", so it is closed and the ask is forced, then one question.
    text, decided = reply(engine, HI, asks)
    assert (text, decided.action) == ("Do you mean A or B?", "ask")
    assert chats() == [FREE, FORCED_ASK]
    # Asking where the reply opens with the ask word agrees, but the question must be forced whole (the regex).
    text, decided = reply(engine, ASK, asks)
    assert (text, decided.action, decided.p_ask) == ("Do you mean A or B?", "ask", pytest.approx(0.6))
    assert chats() == [FREE, FORCED_ASK]
    # 0.6 < 0.9: answer, but the reply opened with "Do": the likeliest other token is forced.
    text, decided = reply(engine, ASK, never)
    assert (text, decided.action) == ("Hello there.", "answer")
    assert chats() == [FREE, dict(FREE, logprobs=False, start="Hello")]


def test_an_ask_word_outside_the_top_20_answers_on_its_bound_or_is_read_exactly(server):
    engine, calibrated, chats = server
    above, below = calibrated(0.1), calibrated(0.01)
    chats()
    # P(ask) <= 0.02, the smallest listed probability, < 0.1: greedy answers exactly; the bound is what is logged.
    text, decided = reply(engine, RARE, above)
    assert (text, decided.action, decided.p_ask) == ("Hello there.", "answer", pytest.approx(0.02))
    assert chats() == [FREE]
    # The bound is not below 0.01: the 1-token request reads P(ask) (0.001), and the stream goes on.
    text, decided = reply(engine, RARE, below)
    assert (text, decided.action, decided.p_ask) == ("Hello there.", "answer", pytest.approx(0.001))
    assert chats() == [FREE, ONE_TOKEN]
    # Sampling draws its decision from the exact value: read as before when the ask word is not listed...
    _, decided = reply(engine, RARE, above, params=SAMPLED)
    assert decided.p_ask == pytest.approx(0.001) and chats() == [FREE, ONE_TOKEN]
    # ...and from the stream when it is.
    _, decided = reply(engine, HI, above, params=SAMPLED)
    assert decided.p_ask == pytest.approx(0.3) and chats()[0] == FREE


def test_the_base_model_sends_one_plain_request_unless_it_explores(server):
    engine, _, chats = server
    chats()
    text, decided = reply(engine, HI, None)
    assert text == "Hello there." and decided.action is None
    assert chats() == [dict(FREE, logprobs=False)]
    text, decided = reply(engine, HI, None, rate=1.0, draw=0.0)   # greedy answers; exploring, it asks
    assert (text, decided.action, decided.explored, decided.p_ask) == ("Do you mean A or B?", "ask", True,
                                                                       pytest.approx(0.3))
    assert chats() == [FREE, FORCED_ASK]
    # A turn that must answer, or the decision turned off: one plain request, as before.
    assert engine.generate_batch([HI], replace(GREEDY, calibrated_ask=False))[0].text == "Hello there."
    assert chats() == [dict(FREE, stream=False, logprobs=False)]


def test_generate_batch_applies_the_same_decision_and_counts_the_returned_requests_tokens(server):
    engine, calibrated, chats = server
    asks = calibrated(0.1)
    chats()
    explorations = [Exploration(0.0), Exploration(0.0)]
    got = engine.generate_batch([RARE, HI], GREEDY, adapter=asks, explorations=explorations)
    assert [g.text for g in got] == ["Hello there.", "Do you mean A or B?"]
    assert [(g.prompt_tokens, g.completion_tokens) for g in got] == [(5, 3), (5, 4)]
    assert [e.action for e in explorations] == ["answer", "ask"]
    assert sorted(map(json.dumps, chats())) == sorted(map(json.dumps, [FREE, FREE, FORCED_ASK]))


def test_the_decision_equals_the_one_token_request_paths(server):
    """decided_prefix is the path before (a 1-token request, then the reply): the same actions and P(ask)."""
    engine, calibrated, _ = server
    for threshold in (0.1, 0.5, 0.9):
        adapter = calibrated(threshold)
        for messages in (HI, ASK):
            new, old = Exploration(0.0), Exploration(0.0)
            text = "".join(engine.stream(messages, GREEDY, adapter=adapter, explore=new))
            prefix = engine.decided_prefix(messages, GREEDY, adapter, exploration=old)
            assert (new.action, new.p_ask) == (old.action, pytest.approx(old.p_ask))
            assert text.startswith(prefix) and (prefix == ASK_PREFIX) == (new.action == "ask")
