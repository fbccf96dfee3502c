"""The adapters on a vLLM server (agent/vllm/adapters.py) without vLLM: a remote server that restarted and
forgot an adapter gets it back once, however many requests miss it together. (Against a real server:
test_vllm_engine.py.)
"""

from __future__ import annotations

import time

import pytest

from tests.agent.vllm_stand_in import tiny_adapter


class _ForgetfulServer:
    """A fake client of a remote server that restarted: it knows only names loaded since, and loads slowly."""

    remote = True
    base_model = "base"

    def __init__(self):
        import threading

        self.known: set[str] = set()
        self.loads: list[str] = []
        self.reloading = threading.Event()

    def complete(self, kwargs: dict):
        import httpx
        import openai

        if kwargs["model"] not in self.known:
            response = httpx.Response(404, request=httpx.Request("POST", "http://remote/v1/chat/completions"))
            raise openai.NotFoundError(f"The model `{kwargs['model']}` does not exist.", response=response, body=None)
        return kwargs["model"]

    def load_adapter(self, adapter_id, served, path):
        self.reloading.set()
        time.sleep(0.3)  # requests built meanwhile must still find the adapter
        self.loads.append(served)
        self.known.add(served)

    def unload_adapter(self, served):
        self.known.discard(served)


def test_requests_that_fail_together_on_a_forgetful_server_reload_the_adapter_once(tmp_path):
    """The race CI met: a request built while another one reloads the adapter must neither find it missing
    nor load it a second time."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import openai

    from agent.vllm.adapters import AdapterRegistry

    server = _ForgetfulServer()
    registry = AdapterRegistry(server, lock=threading.RLock(), max_rank=16, ensure_server=lambda: None)
    registry.load("views-3", tiny_adapter(tmp_path / "views-3"))
    old = registry.served_name("views-3")
    server.known.clear()  # what a restart does
    server.loads.clear()
    server.reloading.clear()

    def request() -> str:
        return registry.complete({"model": registry.served_name("views-3")}, "views-3")

    with ThreadPoolExecutor(4) as pool:
        together = [pool.submit(request) for _ in range(3)]
        assert server.reloading.wait(10)
        during = pool.submit(request)  # built while the reload is under way
        served = {future.result() for future in together + [during]}
    assert served == set(server.loads) and len(server.loads) == 1
    assert registry.served_name("views-3") == server.loads[0] != old
    with pytest.raises(openai.NotFoundError):  # an adapter it never had: nothing to reload
        registry.complete({"model": "ghost-v1"}, "ghost")
