"""The OpenAI-compatible HTTP API (/v1): clarify inside any app, its users' ratings in the same learning loop.

Served by `clarify serve` on the UI's port, next to the Gradio app (ui/). It is a second front end over the
same ``agent.chat_service.ChatService`` and ``logs_db.store.LogStore``: the same clarifying policy, horizon,
limits and logging as the Chat tab, with conversation source ``api``.

- ``keys``: who may call it (bearer keys from ``CLARIFY_API_KEYS``; loopback only without keys).
- ``conversations``: an OpenAI messages list -> notes, the turns so far, the new question; and which logged
  conversation a request continues.
- ``app``: the FastAPI routes (chat completions, streamed or not; feedback; models) and OpenAI-shaped errors.
"""
