"""The vLLM engine against a real vLLM server (the bundled model, fp32), checked against transformers + PEFT.

One server is started for the whole module (30-90 s on a 2-core box) and always
stopped by the fixture's teardown; the last test kills it on purpose, which
costs one automatic restart. Skipped only when the vLLM environment
(`make vllm` -> .venv-vllm) is absent. What needs no vLLM (a stand-in server plays it) is in
test_vllm_supervisor.py, test_vllm_client.py and test_vllm_adapters.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from agent.decision import QUESTION_REGEX, Exploration
from agent.engine import AdapterLoadError, EngineError, GenerationParams
from agent.items import DEV_ITEMS, load_items
from agent.policy import ASK_PREFIXES, Message, build_prompt
from agent.vllm_engine import VllmEngine, server_python
from learner.random_adapter import random_lora_adapter
from tests.agent.vllm_stand_in import CHAT

needs_vllm = pytest.mark.skipif(
    server_python() is None,
    reason="the vLLM environment is not installed (run `make vllm`, or set CLARIFY_VLLM_PYTHON)",
)

GREEDY = GenerationParams(max_new_tokens=40, temperature=0.0)
NOTES = "Reference notes: Mercury is the planet closest to the Sun. Mercury is also a chemical element (Hg)."
PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": NOTES}, {"role": "user", "content": "Tell me about Mercury."}],
    [{"role": "user", "content": "Write one sentence about autumn."},
     {"role": "assistant", "content": "Leaves fall."},
     {"role": "user", "content": "Another one, please."}],
]


@pytest.fixture(scope="module")
def probe_adapter(tmp_path_factory, model_path) -> Path:
    return random_lora_adapter(model_path, tmp_path_factory.mktemp("adapters") / "probe", seed=1234, scale=0.02)


@pytest.fixture(scope="module")
def always_ask_adapter(probe_adapter, tmp_path_factory) -> Path:
    """The probe adapter with a calibrated ask threshold so low that every turn that may ask does."""
    dest = tmp_path_factory.mktemp("calibrated") / "always-ask"
    shutil.copytree(probe_adapter, dest)
    (dest / "clarify_adapter.json").write_text(json.dumps({"ask_threshold": 1e-9}))
    return dest


DECIDED = [build_prompt(NOTES, [Message("user", "Tell me about Mercury.", "user")], horizon=1),
           build_prompt(NOTES, [Message("user", "Tell me about Mercury.", "user"),
                                Message("assistant", "Do you mean the planet or the element?", "ask"),
                                Message("user", "The planet.", "user")], horizon=1)]


@pytest.fixture(scope="module")
def reference(model_path, probe_adapter, always_ask_adapter) -> dict:
    """Greedy transformers (+PEFT) outputs in fp32, computed before the server starts (and then freed)."""
    from agent.transformers_engine import TransformersEngine

    ref = TransformersEngine(model_path, threads=1, dtype="float32")
    try:
        ref.load_adapter("probe", probe_adapter)
        out = {
            "base": [g.text for g in ref.generate_batch(PROMPTS, GREEDY)],
            "adapter": [g.text for g in ref.generate_batch(PROMPTS, GREEDY, adapter="probe")],
            "prefixed": [g.text for g in ref.generate_batch(PROMPTS, GREEDY, prefixes=["Do you mean", "", "Sure"])],
        }
        ref.load_adapter("always-ask", always_ask_adapter)
        out["decided"] = [g.text for g in ref.generate_batch(DECIDED, GREEDY, adapter="always-ask")]
        out["undecided"] = [g.text for g in ref.generate_batch(DECIDED, GREEDY, adapter="probe")]
    finally:
        ref.close()
        del ref
    return out


@pytest.fixture(scope="module")
def vllm(model_path, reference, tmp_path_factory):
    """ONE fp32 server for the module; the finalizer stops it even when a test fails."""
    log_path = tmp_path_factory.mktemp("vllm") / "vllm-server.log"
    started = time.monotonic()
    eng = VllmEngine(model_path, dtype="float32", log_path=log_path, max_loras=2, progress=print,
                     startup_timeout=1800)  # a niced start on a box busy with training took over 10 min
    print(f"vLLM server ready after {time.monotonic() - started:.0f} s")
    try:
        yield eng
    finally:
        pid = eng.pid
        eng.close()
        if pid is not None:
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)  # the whole server process group is gone


@pytest.mark.slow
@needs_vllm
def test_stream_chat_matches_transformers(vllm, reference):
    pieces = list(vllm.stream(PROMPTS[0], GREEDY))
    assert len(pieces) > 1, "the reply should arrive in several pieces"
    assert "".join(pieces).strip() == reference["base"][0]


@pytest.mark.slow
@needs_vllm
def test_adapter_greedy_output_equals_transformers_peft(vllm, reference, probe_adapter):
    assert reference["adapter"] != reference["base"], "the probe adapter must change the outputs"
    vllm.load_adapter("probe", probe_adapter)
    vllm.load_adapter("probe", probe_adapter)  # same id and folder: a no-op, not a reload
    served = vllm.served_name("probe")
    assert served != "probe" and served.startswith("probe-v")

    got = [g.text for g in vllm.generate_batch(PROMPTS, GREEDY, adapter="probe")]
    assert got == reference["adapter"]
    assert "".join(vllm.stream(PROMPTS[1], GREEDY, adapter="probe")).strip() == reference["adapter"][1]
    # The adapter is per request: the base model is unchanged next to it.
    assert [g.text for g in vllm.generate_batch(PROMPTS, GREEDY)] == reference["base"]


@pytest.mark.slow
@needs_vllm
def test_forced_prefixes_match_transformers(vllm, reference):
    gens = vllm.generate_batch(PROMPTS, GREEDY, prefixes=["Do you mean", "", "Sure"])
    assert [g.text for g in gens] == reference["prefixed"]
    assert gens[0].text.startswith("Do you mean") and gens[2].text.startswith("Sure")
    assert all(g.prompt_tokens > 0 and 0 < g.completion_tokens <= GREEDY.max_new_tokens for g in gens)


@pytest.mark.slow
@needs_vllm
def test_calibrated_ask_decision_matches_transformers(vllm, reference, always_ask_adapter):
    """The adapter's ask threshold (agent/decision.py): vLLM reads the decision from the reply's own request and
    forces the ask prefix, the transformers engine uses a logits processor; the replies are the same."""
    assert reference["decided"][0].startswith("Do") and not reference["undecided"][0].startswith("Do")
    # A decided ask is the whole prefix and one question (vLLM: a regex; transformers: per-token bans).
    assert re.fullmatch(re.escape(ASK_PREFIXES[0]) + QUESTION_REGEX, reference["decided"][0]), reference["decided"][0]
    assert reference["decided"][1] == reference["undecided"][1]  # a turn that must answer is left alone
    vllm.load_adapter("always-ask", always_ask_adapter)
    try:
        assert [g.text for g in vllm.generate_batch(DECIDED, GREEDY, adapter="always-ask")] == reference["decided"]
        assert "".join(vllm.stream(DECIDED[0], GREEDY, adapter="always-ask")).strip() == reference["decided"][0]
    finally:
        vllm.unload_adapter("always-ask")


@pytest.mark.slow
@needs_vllm
def test_decisions_read_from_the_reply_equal_the_one_token_request_paths(vllm, probe_adapter, tmp_path):
    """On dev prompts, under a threshold that splits them into asks and answers and one above them all: the
    decision read from the reply's own streamed request (stream and generate_batch) takes the action the 1-token
    request before the reply took (decided_prefix), with the same P(ask) where it is read exactly (else an upper
    bound of it), and a reply whose decision answers is one request when P(ask) is below the threshold."""
    prompts = [build_prompt(it.context, [Message("user", it.question, "user")], horizon=1)
               for it in load_items(DEV_ITEMS, limit=6)]

    def calibrated(name: str, threshold: float) -> str:
        folder = tmp_path / name
        shutil.copytree(probe_adapter, folder)
        (folder / "clarify_adapter.json").write_text(json.dumps({"ask_threshold": threshold}))
        vllm.load_adapter(name, folder)
        return name

    def old_path(adapter: str) -> list[Exploration]:
        out = [Exploration(0.0) for _ in prompts]
        for messages, exploration in zip(prompts, out):
            vllm.decided_prefix(messages, GREEDY, adapter, exploration=exploration)
        return out

    p_asks = sorted(e.p_ask for e in old_path(calibrated("probe-read", 1e-9)))
    vllm.unload_adapter("probe-read")
    middle = (p_asks[2] * p_asks[3]) ** 0.5
    sent = []
    complete = vllm._client.complete
    vllm._client.complete = lambda kwargs: sent.append(kwargs) or complete(kwargs)
    try:
        for name, threshold in (("probe-split", middle), ("probe-high", 0.3)):
            adapter = calibrated(name, threshold)
            before = old_path(adapter)
            streamed = [Exploration(0.0) for _ in prompts]
            sent.clear()
            for messages, exploration in zip(prompts, streamed):
                "".join(vllm.stream(messages, GREEDY, adapter=adapter, explore=exploration))
            batched = [Exploration(0.0) for _ in prompts]
            vllm.generate_batch(prompts, GREEDY, adapter=adapter, explorations=batched)
            for old, *new in zip(before, streamed, batched):
                assert {e.action for e in new} == {old.action}, (name, old, new)
                assert all(e.p_ask == pytest.approx(old.p_ask, rel=1e-3) or old.p_ask < e.p_ask < threshold
                           for e in new), (name, old, new)
            if name == "probe-split":
                assert {e.action for e in before} == {"ask", "answer"}
            else:   # every reply answers, from its own request alone
                assert {e.action for e in before} == {"answer"} and len(sent) == 2 * len(prompts)
            vllm.unload_adapter(name)
    finally:
        vllm._client.complete = complete


@pytest.mark.slow
@needs_vllm
def test_a_remote_server_that_forgot_an_adapter_gets_it_back_once(vllm, reference, always_ask_adapter):
    """A remote server that restarted has forgotten its adapters: the decision's first request fails, loads the
    adapter again, and the reply is the one the adapter gives."""
    import httpx

    remote = VllmEngine(url=vllm.url, api_key=vllm.api_key)
    try:
        remote.load_adapter("always-ask", always_ask_adapter)
        forgotten = remote.served_name("always-ask")
        httpx.post(vllm.url.rstrip("/").removesuffix("/v1") + "/v1/unload_lora_adapter",
                   json={"lora_name": forgotten}, headers={"Authorization": f"Bearer {vllm.api_key}"},
                   timeout=60).raise_for_status()  # what a restart does
        assert [g.text for g in remote.generate_batch(DECIDED[:1], GREEDY, adapter="always-ask")] == \
            reference["decided"][:1]
        assert remote.served_name("always-ask") != forgotten  # loaded again, under a new name
    finally:
        remote.close()


@pytest.mark.slow
@needs_vllm
def test_bad_adapters_are_refused_and_serving_continues(vllm, reference, tmp_path, model_path):
    pid = vllm.pid
    with pytest.raises(AdapterLoadError, match="does not exist"):
        vllm.load_adapter("ghost", tmp_path / "nowhere")

    corrupt = tmp_path / "corrupt"  # passes the folder check, so the server itself must refuse it
    corrupt.mkdir()
    (corrupt / "adapter_config.json").write_text(
        '{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"], '
        f'"base_model_name_or_path": "{model_path}", "task_type": "CAUSAL_LM"}}')
    (corrupt / "adapter_model.safetensors").write_bytes(b"this is not a safetensors file")
    with pytest.raises(AdapterLoadError, match="vLLM could not load adapter 'corrupt'"):
        vllm.load_adapter("corrupt", corrupt)

    too_big = random_lora_adapter(model_path, tmp_path / "r32", rank=32, seed=1234, scale=0.02)
    with pytest.raises(AdapterLoadError, match="exceeds the engine's max LoRA rank 16"):
        vllm.load_adapter("too-big", too_big)

    with pytest.raises(EngineError, match="not loaded"):
        list(vllm.stream(PROMPTS[0], GREEDY, adapter="corrupt"))

    assert "corrupt" not in vllm.adapters and "ghost" not in vllm.adapters
    assert vllm.pid == pid, "a bad adapter must not take the server down"
    assert "".join(vllm.stream(PROMPTS[0], GREEDY)).strip() == reference["base"][0]


@pytest.mark.slow
@needs_vllm
def test_the_supervised_server_answers_only_the_engines_key(vllm):
    """Raw HTTP without the key is refused (401): vLLM's own check on /v1/*, clarify's guard on the routes vLLM
    leaves open (/invocations, the SageMaker /adapters routes, /tokenize...); only GET /health is open."""
    import httpx

    root, key = vllm.url.removesuffix("/v1"), vllm.api_key
    auth = {"Authorization": f"Bearer {key}"}
    completion = {"model": vllm.base_model, "prompt": "The capital of France is", "max_tokens": 2}
    assert httpx.get(root + "/health", timeout=30).status_code == 200
    paths = httpx.get(root + "/openapi.json", headers=auth, timeout=30).json()["paths"]
    assert {"/invocations", "/adapters", "/adapters/{adapter_name}", "/tokenize"} <= set(paths)  # all mounted
    for method, path, body in [
        ("GET", "/v1/models", None), ("POST", "/v1/completions", completion),
        ("POST", "/v1/chat/completions", dict(completion, messages=CHAT)), ("POST", "/invocations", completion),
        ("POST", "/v1/load_lora_adapter", {"lora_name": "intruder", "lora_path": "/tmp"}),
        ("POST", "/adapters", {"name": "intruder", "src": "/tmp"}), ("DELETE", "/adapters/intruder", None),
        ("POST", "/tokenize", {"model": vllm.base_model, "prompt": "Do"}), ("GET", "/metrics", None),
        ("GET", "/openapi.json", None),
    ]:
        for headers in ({}, {"Authorization": "Bearer not-the-key"}):
            response = httpx.request(method, root + path, json=body, headers=headers, timeout=60)
            assert response.status_code == 401, (method, path, headers, response.text[:200])
    assert httpx.get(root + "/v1/models", headers=auth, timeout=30).status_code == 200
    answered = httpx.post(root + "/v1/completions", json=completion, headers=auth, timeout=300)
    assert answered.status_code == 200 and answered.json()["choices"][0]["text"]
    # The key is in the server's environment only: not on its command line (`ps`), not in its log.
    assert key.encode() not in Path(f"/proc/{vllm.pid}/cmdline").read_bytes()
    assert f"VLLM_API_KEY={key}\0".encode() in Path(f"/proc/{vllm.pid}/environ").read_bytes()
    assert key not in vllm.log_path.read_text(errors="replace")


@pytest.mark.slow
@needs_vllm
def test_killed_server_fails_the_request_clearly_then_restarts(vllm, reference, probe_adapter):
    """Runs last: SIGKILL the server mid-reply; that request fails, the next one is served after a restart."""
    vllm.load_adapter("probe", probe_adapter)
    old_pid, starts, old_key = vllm.pid, vllm.starts, vllm.api_key
    reply = vllm.stream(PROMPTS[1], GenerationParams(max_new_tokens=300))
    assert next(reply)
    os.kill(old_pid, signal.SIGKILL)
    with pytest.raises(EngineError, match=r"vLLM server stopped unexpectedly \(exit code -9\).*try again"):
        for _ in reply:
            pass

    started = time.monotonic()
    text = "".join(vllm.stream(PROMPTS[0], GREEDY)).strip()  # waits for the automatic restart
    print(f"restart + first reply: {time.monotonic() - started:.0f} s")
    assert text == reference["base"][0]
    assert vllm.starts == starts + 1 and vllm.pid != old_pid and vllm.api_key != old_key  # a new key, too
    with pytest.raises(ProcessLookupError):
        os.killpg(old_pid, 0)  # the old engine-core processes were cleaned up too
    # The restarted server got its adapters back.
    assert [g.text for g in vllm.generate_batch(PROMPTS, GREEDY, adapter="probe")] == reference["adapter"]
