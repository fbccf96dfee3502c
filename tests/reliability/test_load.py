"""Load: concurrent clients, every turn rated, against a real `clarify serve`, on two engines.

- transformers: 16 clients x 20 turns on the in-process engine (the bundled model on one CPU thread), replies
  capped at 2 new tokens so the model's time stays small next to the serving path.
- vLLM: the engine the product picks by default (the supervised vLLM server with the bundled model) with
  full-length replies (Settings' default max_new_tokens): 16 clients x 20 turns when the report
  (bench/reliability.py, `make reliability`) runs it; 4 x 4 in the test suite (`make test`, CI), where the
  server's start alone takes over a minute.

The clients speak the browser's protocol over raw HTTP (queue/join + the event stream; gradio_client cannot call
the app's events: they are api_visibility="private" so that only the page uses them). Afterwards the DuckDB file
the server released is compared with what every client sent and saw.
"""

from __future__ import annotations

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pytest

from agent.vllm_engine import server_python
from clarify.settings import Settings
from ui.app import message_text

pytestmark = pytest.mark.slow

CLIENTS = 16
TURNS = 20
TURNS_PER_CONVERSATION = 4   # then "New conversation": 5 conversations per client
CI_CLIENTS, CI_TURNS = 4, 4  # the vLLM variant in CI: one conversation per client
NOTES = "Espresso costs $3 at Harbor and $4 at Station."
USERS = {f"user{i:02d}": f"pw-{i:02d}" for i in range(CLIENTS)}
AUTH = ",".join(f"{u}:{p}" for u, p in USERS.items())
VLLM_START_TIMEOUT = 600     # the engine's own start-up limit (agent/vllm/options.py); it takes 50-95 s here

needs_vllm = pytest.mark.skipif(server_python() is None, reason="the vLLM environment is not installed (make vllm)")


def short_run() -> bool:
    """The shorter vLLM variant, unless the report script runs the tests (it sets the results folder): the test
    suite's size must not depend on whether the CI runner happens to set CI=true."""
    return not os.environ.get("CLARIFY_RELIABILITY_RESULTS")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def shows_text(message: dict) -> bool:
    """Whether a streamed update of the send event adds reply text to the chatbot: after the first full update
    (whose reply is still empty), each piece is a diff of the chatbot (output 2) like ["append", path, "text"]."""
    if message.get("msg") != "process_generating":
        return False
    update = message["output"]["data"][2]
    return any(isinstance(op, list) and len(op) == 3 and isinstance(op[2], str) and op[2].strip() for op in update)


def run_client(server_url: str, http, user: str, turns: int, start: threading.Barrier) -> dict:
    """One user: `turns` turns in conversations of 4, every reply rated (thumbs on even turns, stars on odd ones)."""
    session = http(server_url, user, USERS[user])
    sent, turn_ms, first_text_ms, rating_ms, errors = [], [], [], [], []
    start.wait()
    for t in range(turns):
        try:
            if t and t % TURNS_PER_CONVERSATION == 0:
                session.call("new-conversation", [None])
            message = f"[{user} turn {t:02d}] How much is an espresso at Harbor?"
            shown: list[float] = []  # when the stream first carried reply text

            def watch(update: dict) -> None:
                if not shown and shows_text(update):
                    shown.append(time.perf_counter())

            began = time.perf_counter()
            _, _, chatbot, _, status = session.call("send", [message, NOTES, None], on_message=watch)
            ended = time.perf_counter()
            turn_ms.append((ended - began) * 1000)
            first_text_ms.append(((shown or [ended])[0] - began) * 1000)  # no streamed piece: the final update
            if "Rate this reply" not in status:
                errors.append(f"{user} turn {t}: {status}")
                continue
            reply = chatbot[-1]["content"]
            began = time.perf_counter()
            if t % 2 == 0:
                liked = t % 4 == 0
                status = session.call("chatbot", [None], trigger="like",
                                      event_data={"index": len(chatbot) - 1, "value": reply, "liked": liked})[0]
                rating = ("thumbs", float(liked), None)
            else:
                stars, comment = 1 + t % 5, f"comment {t}"
                status = session.call("rate", [None, stars, comment])[0]
                rating = ("stars", float(stars), comment)
            rating_ms.append((time.perf_counter() - began) * 1000)
            if "recorded" not in status:
                errors.append(f"{user} turn {t} rating: {status}")
            sent.append((message, squash(message_text(reply)), *rating, user))
        except Exception as exc:  # counted, and the client goes on like a person would
            errors.append(f"{user} turn {t}: {type(exc).__name__}: {exc}")
    return dict(sent=sent, turn_ms=turn_ms, first_text_ms=first_text_ms, rating_ms=rating_ms, errors=errors)


def check_load(server, http, record_result, *, engine: str, clients: int, turns: int, max_new_tokens: int) -> None:
    """`clients` users of `server` (started with AUTH) chat and rate at once; then the server stops and its DuckDB
    file must hold every message, reply and rating exactly once, answered by `engine`. The numbers go to the
    report as load-<engine>.json."""
    assert turns % TURNS_PER_CONVERSATION == 0
    users = list(USERS)[:clients]
    start = threading.Barrier(clients)
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda user: run_client(server.url, http, user, turns, start), users))
    wall = time.perf_counter() - began
    assert server.stop() == 0, server.logs()

    errors = [e for r in results for e in r["errors"]]
    sent = [s for r in results for s in r["sent"]]
    turn_ms, first_text_ms, rating_ms = ([x for r in results for x in r[key]]
                                         for key in ("turn_ms", "first_text_ms", "rating_ms"))
    with duckdb.connect(str(server.db), read_only=True) as con:
        reply_chars = [n for (n,) in con.execute("SELECT length(text) FROM turns WHERE role = 'assistant'").fetchall()]
    numbers = dict(engine=engine, clients=clients, turns_per_client=turns, max_new_tokens=max_new_tokens,
                   turns=len(turn_ms), ratings=len(rating_ms), errors=len(errors), wall_seconds=round(wall, 1),
                   turns_per_second=round(len(turn_ms) / wall, 2),
                   turn_p50_ms=round(percentile(turn_ms, 50)), turn_p99_ms=round(percentile(turn_ms, 99)),
                   turn_max_ms=round(max(turn_ms)), first_text_p50_ms=round(percentile(first_text_ms, 50)),
                   first_text_p99_ms=round(percentile(first_text_ms, 99)),
                   rating_p50_ms=round(percentile(rating_ms, 50)), rating_p99_ms=round(percentile(rating_ms, 99)),
                   reply_chars_mean=round(sum(reply_chars) / max(1, len(reply_chars))),
                   reply_chars_max=max(reply_chars, default=0))
    print(numbers)
    record_result(f"load-{engine}", numbers)
    assert errors == [], errors[:10]

    per_conversation = 2 * TURNS_PER_CONVERSATION
    with duckdb.connect(str(server.db), read_only=True) as con:
        counts = [con.execute(f"SELECT count(*), count(DISTINCT id) FROM {t}").fetchone()
                  for t in ("conversations", "turns", "ratings")]
        assert counts == [(n, n) for n in (clients * turns // TURNS_PER_CONVERSATION, 2 * clients * turns,
                                           clients * turns)]
        assert con.execute("SELECT count(*) FROM turns WHERE status <> 'ok'").fetchone()[0] == 0
        assert con.execute("SELECT DISTINCT engine FROM turns WHERE role = 'assistant'").fetchall() == [(engine,)]
        gaps = con.execute("SELECT conversation_id FROM turns GROUP BY conversation_id"
                           " HAVING min(idx) <> 0 OR max(idx) <> count(*) - 1 OR count(*) <> ?",
                           [per_conversation]).fetchall()
        assert gaps == []
        logged = con.execute("""
            SELECT u.text, a.text, r.kind, r.value, r.comment, r.user_id, c.user_id
            FROM ratings r
            JOIN turns a ON a.id = r.turn_id
            JOIN turns u ON u.conversation_id = a.conversation_id AND u.idx = a.idx - 1
            JOIN conversations c ON c.id = a.conversation_id
            WHERE a.role = 'assistant' AND u.role = 'user'
        """).fetchall()
        unrated = con.execute("SELECT count(*) FROM turns a WHERE a.role = 'assistant' AND NOT EXISTS"
                              " (SELECT 1 FROM ratings r WHERE r.turn_id = a.id)").fetchone()[0]
        rated_twice = con.execute("SELECT count(*) - count(DISTINCT turn_id) FROM ratings").fetchone()[0]
    assert unrated == 0 and rated_twice == 0
    assert all(rating_user == owner for *_, rating_user, owner in logged)
    assert sorted((m, squash(a), k, v, c, u) for m, a, k, v, c, u, _ in logged) == sorted(sent)
    assert len({m for m, *_ in sent}) == clients * turns


def test_16_clients_x_20_turns_with_ratings(serve, http, record_result):
    """16 concurrent clients x 20 turns, every turn rated (transformers engine, 2-token replies).

    Done: start `clarify serve --engine transformers` with 16 users (CLARIFY_AUTH) and 2-token replies; 16
    threads sign in and, released together, each sends 20 messages (a new conversation every 4) through the
    page's send event, and rates every reply as soon as it arrives (thumbs up/down on even turns, 1-5 stars with
    a comment on odd ones); then stop the server with SIGTERM and read its DuckDB file.
    Checked: no request error and no refusal; the server exits cleanly; the file holds exactly 80
    conversations, 640 turns and 320 ratings, each id once: every message once, as the user turn of its own
    user's conversation (turn positions 0..7 with no gaps), followed by exactly the reply that client was shown,
    and every rating once, on that reply, with its kind, value, comment and user; p50/p99 latencies and time to
    first text reported.
    """
    server = serve(env={"CLARIFY_MAX_NEW_TOKENS": "2", "CLARIFY_AUTH": AUTH})
    check_load(server, http, record_result, engine="transformers", clients=CLIENTS, turns=TURNS, max_new_tokens=2)


@needs_vllm
def test_default_engine_full_replies_with_ratings(serve, http, record_result):
    """16 concurrent clients x 20 turns, every turn rated (the default engine, vLLM, with full-length replies).

    Done: start `clarify serve` with 16 users (CLARIFY_AUTH) and no engine or length options, so it serves
    with the engine its factory picks by default (the supervised vLLM server from `make vllm`, the bundled
    model) and the default reply cap; then the same 16 clients as in the transformers run send and rate 20
    messages each (4 clients x 4 messages in the test suite); then stop the server with SIGTERM and read its
    DuckDB file.
    Checked: as in the transformers run: no request error, no refusal and no failed turn; a clean exit; each
    conversation, turn and rating id once (80, 640 and 320); every message once with exactly the reply its
    client was shown and exactly one rating of that reply, with its kind, value, comment and user; every reply
    was written by the vLLM engine (no fall-back to transformers); p50/p99 latencies and time to first text
    reported.
    """
    clients, turns = (CI_CLIENTS, CI_TURNS) if short_run() else (CLIENTS, TURNS)
    env = {"CLARIFY_AUTH": AUTH}
    if os.environ.get("CLARIFY_VLLM_PYTHON"):  # the same vLLM environment the skip condition found
        env["CLARIFY_VLLM_PYTHON"] = os.environ["CLARIFY_VLLM_PYTHON"]
    server = serve(env=env, engine=None, timeout=VLLM_START_TIMEOUT)
    check_load(server, http, record_result, engine="vllm", clients=clients, turns=turns,
               max_new_tokens=Settings.model_fields["max_new_tokens"].default)
