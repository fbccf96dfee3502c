"""The vLLM engine's parts, put together by agent/vllm_engine.py: the supervisor of a server clarify starts
(supervisor.py), the HTTP client of any server (client.py), the adapters loaded on it (adapters.py) and the ask
decision's requests (decision_requests.py). What the server process itself imports is agent/vllm_server/."""
