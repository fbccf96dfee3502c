"""Exploration in serving (issue 33): on a turn that may ask, the served policy takes the action its decision did
not choose with probability `explore`, and every agent turn logs the decision's P(ask), the action taken, its
propensity and whether it explored. The real bundled model, real DuckDB files; the vLLM engine at the bottom."""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest

from agent.chat_service import DEFAULT_NOTES, ChatService
from agent.decision import QUESTION_REGEX, Exploration, ask_odds
from agent.engine import GenerationParams
from agent.evaluate import evaluate
from agent.items import load_items
from agent.policy import ASK_PREFIXES, Message, build_prompt
from agent.simulator import log_conversations, run_conversations
from agent.vllm.supervisor import server_python

GREEDY = GenerationParams(max_new_tokens=24, temperature=0.0)
QUESTION = "How much is an espresso?"
COLUMNS = "role, kind, text, p_ask, action, propensity, explored"
FIXTURE = Path(__file__).parent / "fixtures" / "items.jsonl"


def logged(store, cid: str) -> list[dict]:
    """The conversation's turns as stored in the DuckDB file."""
    cur = store.execute(f"SELECT {COLUMNS} FROM turns WHERE conversation_id = ? ORDER BY idx", [cid])
    return [dict(zip(COLUMNS.split(", "), row)) for row in cur.fetchall()]


def chat(service: ChatService, messages: list[str], adapter: str | None = None) -> str:
    cid = service.start(DEFAULT_NOTES, opening=messages[0], adapter_id=adapter)
    for text in messages:
        "".join(service.reply(cid, text))
    return cid


@pytest.fixture
def calibrated(make_adapter, store, engine):
    """calibrated(threshold) -> a registered adapter id whose calibrated decision asks iff P(ask) > threshold
    (an untrained LoRA: the base model's words); unloaded from the shared engine afterwards."""
    made = []

    def make(threshold: float) -> str:
        adapter_id = make_adapter("explore")
        path = Path(store.get_adapter(adapter_id).path)
        (path / "clarify_adapter.json").write_text(json.dumps({"method": "swift", "ask_threshold": threshold}))
        made.append(adapter_id)
        return adapter_id

    yield make
    for adapter_id in made:
        engine.unload_adapter(adapter_id)


def test_the_propensity_mixes_the_decisions_chance_with_the_exploration_rate():
    greedy = Exploration(0.1, draw=0.5)
    assert not greedy.settle(0.2, 0.0, decided_ask=False) and not greedy.explored
    assert (greedy.action, greedy.propensity) == ("answer", pytest.approx(0.9))
    flipped = Exploration(0.1, draw=0.05)
    assert flipped.settle(0.2, 0.0, decided_ask=False) and flipped.explored
    assert (flipped.action, flipped.propensity) == ("ask", pytest.approx(0.1))
    # Sampling: the decision asks with chance q; the served policy asks with (1 - e) q + e (1 - q).
    sampled = Exploration(0.2, draw=0.9)
    sampled.settle(0.4, 0.3, decided_ask=True)
    assert sampled.propensity == pytest.approx(0.8 * 0.3 + 0.2 * 0.7)
    off = Exploration(0.0)
    assert off.settle(0.7, 1.0, decided_ask=True) and not off.explored and off.propensity == 1.0


def test_explore_one_flips_every_turn_that_may_ask_and_logs_it(engine, store):
    """The base model answers the café question; exploring, it asks (the whole ask prefix, one question), the
    turn is an 'ask' with propensity 1, and the follow-up that must answer carries no decision."""
    plain = ChatService(store, engine, params=GREEDY)
    reference = logged(store, chat(plain, [QUESTION]))
    assert reference[1]["kind"] == "answer" and not reference[1]["text"].startswith("Do")

    service = ChatService(store, engine, params=GREEDY, explore=1.0, rng=random.Random(7))
    turns = logged(store, chat(service, [QUESTION, "The Harbor branch."]))
    user, ask, _, answer = turns
    assert user["p_ask"] is None and user["action"] is None and user["explored"] is None
    assert re.fullmatch(re.escape(ASK_PREFIXES[0]) + QUESTION_REGEX, ask["text"]), ask["text"]
    assert (ask["kind"], ask["action"], ask["explored"], ask["propensity"]) == ("ask", "ask", True, 1.0)
    assert 0.0 <= ask["p_ask"] < 0.5
    assert (answer["p_ask"], answer["action"], answer["propensity"], answer["explored"]) == (None,) * 4


def test_explore_zero_leaves_the_replies_as_they_were(engine, store, calibrated):
    """explore=0 draws nothing and replies exactly as a service without the setting; the base model's turn logs
    no decision, an adapter's calibrated decision is logged with propensity 1."""
    questions = [QUESTION, "When does the Station branch open?"]
    before = ChatService(store, engine, params=GREEDY, rng=random.Random(3))
    off = ChatService(store, engine, params=GREEDY, explore=0.0, rng=random.Random(3))
    for question in questions:
        a, b = (logged(store, chat(service, [question])) for service in (before, off))
        assert [t["text"] for t in a] == [t["text"] for t in b]
        assert (b[1]["p_ask"], b[1]["action"], b[1]["propensity"], b[1]["explored"]) == (None,) * 4
    assert off.rng.random() == random.Random(3).random()   # no draw was taken

    agent = logged(store, chat(off, [QUESTION], adapter=calibrated(1e-9)))[1]
    assert agent["text"].startswith(ASK_PREFIXES[0])
    assert (agent["kind"], agent["action"], agent["propensity"], agent["explored"]) == ("ask", "ask", 1.0, False)
    assert 0.0 < agent["p_ask"] < 1.0


def test_explore_one_answers_where_the_decision_asks(engine, store, calibrated):
    service = ChatService(store, engine, params=GREEDY, explore=1.0, rng=random.Random(0))
    agent = logged(store, chat(service, [QUESTION], adapter=calibrated(1e-9)))[1]
    assert not agent["text"].startswith("Do")
    assert (agent["kind"], agent["action"], agent["explored"], agent["propensity"]) == ("answer", "answer", True, 1.0)


def test_a_seeded_rate_explores_where_its_draws_fall_below_it(engine, store):
    """explore=0.5 with a seeded rng: turn i explores iff the rng's i-th draw < 0.5; the propensity is 0.5 either
    way (a greedy decision), and the action is the decision's or the other one."""
    service = ChatService(store, engine, params=replace(GREEDY, max_new_tokens=8), explore=0.5,
                          rng=random.Random(11))
    draws = random.Random(11)
    for _ in range(4):
        expected = draws.random() < 0.5
        agent = logged(store, chat(service, [QUESTION]))[1]
        assert agent["explored"] is expected
        assert agent["action"] == ("ask" if expected else "answer") == agent["kind"]
        assert agent["propensity"] == pytest.approx(0.5)


def test_sampling_logs_the_propensity_of_the_sampled_decision(engine, store, calibrated):
    """Sampling with a calibrated threshold: the decision asks with ask_odds(P(ask), t), so the logged propensity
    is (1 - e) q + e (1 - q) for an ask and its complement for an answer."""
    threshold, rate = 0.05, 0.2
    service = ChatService(store, engine, params=GenerationParams(max_new_tokens=8, temperature=0.7, seed=5),
                          explore=rate, rng=random.Random(2))
    agent = logged(store, chat(service, [QUESTION], adapter=calibrated(threshold)))[1]
    q = ask_odds(agent["p_ask"], threshold)
    serving_asks = (1 - rate) * q + rate * (1 - q)
    assert agent["propensity"] == pytest.approx(serving_asks if agent["action"] == "ask" else 1 - serving_asks)


def test_generate_batch_explores_the_rows_given_an_exploration(engine):
    """The batch path (simulation) settles each row's exploration where the decision is applied."""
    first = build_prompt(DEFAULT_NOTES, [Message("user", QUESTION, "user")], horizon=1)
    explorations = [Exploration(1.0, 0.0), None]
    plain, explored = (engine.generate_batch([first, first], GREEDY, explorations=e) for e in (None, explorations))
    assert explored[1].text == plain[1].text == plain[0].text
    assert explored[0].text.startswith(ASK_PREFIXES[0]) and explorations[0].action == "ask"


def test_simulation_explores_like_the_chat_and_the_evaluation_never_does(engine, store):
    """`clarify simulate`'s path: every first turn flips at explore=1 (seeded per item, conversation and turn), the
    logged turns carry the decision; the evaluation (the gate's) runs the same items without exploring."""
    cafe = next(i for i in load_items(FIXTURE) if i.id == "cafe-espresso")
    kwargs = dict(per_item=2, params=GenerationParams(max_new_tokens=24), progress=False)
    plain = run_conversations(engine, [cafe], **kwargs)
    explored = run_conversations(engine, [cafe], explore=1.0, **kwargs)
    for before, after in zip(plain, explored):
        first = after.agent_turns[0]
        assert before.agent_turns[0].kind == "answer" and before.agent_turns[0].explored is None
        assert (first.kind, first.action, first.explored, first.propensity) == ("ask", "ask", True, 1.0)
        assert first.text.startswith(ASK_PREFIXES[0]) and after.meta()["explore"] == 1.0
        assert after.agent_turns[-1].action is None   # the answer after the question must answer
    [cid, _] = log_conversations(store, explored)
    asked = [t for t in logged(store, cid) if t["role"] == "assistant"][0]
    assert (asked["action"], asked["explored"], asked["propensity"]) == ("ask", True, 1.0)
    assert asked["p_ask"] == pytest.approx(explored[0].agent_turns[0].p_ask)

    result = evaluate(engine, [cafe], max_new_tokens=24, progress=False)
    assert [t.explored for c in result.conversations for t in c.agent_turns] == [None] * 1
    assert result.conversations[0].meta()["explore"] == 0.0


needs_vllm = pytest.mark.skipif(
    server_python() is None,
    reason="the vLLM environment is not installed (run `make vllm`, or set CLARIFY_VLLM_PYTHON)",
)


@pytest.mark.slow
@needs_vllm
def test_the_vllm_engine_explores_and_logs_as_the_transformers_engine_does(engine, store, model_path, tmp_path,
                                                                            calibrated):
    """The same seeded conversations through both engines: the same replies, actions, explored flags and
    propensities; P(ask) agrees to a few decimals (one is a forward pass, the other a server's log-probability)."""
    from agent.vllm_engine import VllmEngine

    params = GenerationParams(max_new_tokens=40, temperature=0.0)   # a question ends before the cap in both
    always = calibrated(1e-9)

    def run(eng) -> list[dict]:
        out = []
        for adapter, rate, seed in ((None, 1.0, 0), (always, 1.0, 0), (None, 0.5, 1), (None, 0.5, 0),
                                    (always, 0.0, 0)):
            service = ChatService(store, eng, params=params, explore=rate, rng=random.Random(seed))
            out.append(logged(store, chat(service, [QUESTION], adapter=adapter))[1])
        return out

    reference = run(engine)
    with VllmEngine(model_path, dtype="float32", log_path=tmp_path / "vllm.log", max_loras=2,
                    startup_timeout=1800) as vllm:
        served = run(vllm)
    # Flipped both ways; at 0.5 seed 1 explores (its draw 0.13) and seed 0 does not (0.84).
    assert [(t["action"], t["explored"]) for t in reference] == [
        ("ask", True), ("answer", True), ("ask", True), ("answer", False), ("ask", False)]
    for ref, got in zip(reference, served):
        assert {k: got[k] for k in ("text", "kind", "action", "explored", "propensity")} == \
            {k: ref[k] for k in ("text", "kind", "action", "explored", "propensity")}
        assert got["p_ask"] == pytest.approx(ref["p_ask"], abs=1e-3)
