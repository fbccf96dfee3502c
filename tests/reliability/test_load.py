"""Load: 16 concurrent clients x 20 turns, each turn rated, against a real `clarify serve` (the bundled model on
one CPU thread, replies capped at 2 new tokens so the model's time stays small next to the serving path).

The clients speak the browser's protocol over raw HTTP (queue/join + the event stream; gradio_client cannot call
the app's events: they are api_visibility="private" so that only the page uses them). Afterwards the DuckDB file
the server released is compared with what every client sent and saw.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pytest

from ui.app import message_text

pytestmark = pytest.mark.slow

CLIENTS = 16
TURNS = 20
TURNS_PER_CONVERSATION = 4   # then "New conversation": 5 conversations per client
NOTES = "Espresso costs $3 at Harbor and $4 at Station."
USERS = {f"user{i:02d}": f"pw-{i:02d}" for i in range(CLIENTS)}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def run_client(server_url: str, http, user: str, start: threading.Barrier) -> dict:
    """One user: 20 turns in conversations of 4, every reply rated (thumbs on even turns, stars on odd ones)."""
    session = http(server_url, user, USERS[user])
    sent, turn_ms, rating_ms, errors = [], [], [], []
    start.wait()
    for t in range(TURNS):
        try:
            if t and t % TURNS_PER_CONVERSATION == 0:
                session.call("new-conversation", [None])
            message = f"[{user} turn {t:02d}] How much is an espresso at Harbor?"
            began = time.perf_counter()
            _, _, chatbot, _, status = session.call("send", [message, NOTES, None])
            turn_ms.append((time.perf_counter() - began) * 1000)
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
    return dict(sent=sent, turn_ms=turn_ms, rating_ms=rating_ms, errors=errors)


def test_16_clients_x_20_turns_with_ratings(serve, http, record_result):
    """16 concurrent clients x 20 turns, every turn rated.

    Done: start `clarify serve` with 16 users (CLARIFY_AUTH) and 2-token replies; 16 threads sign in and,
    released together, each sends 20 messages (a new conversation every 4) through the page's send event, and
    rates every reply as soon as it arrives (thumbs up/down on even turns, 1-5 stars with a comment on odd
    ones); then stop the server with SIGTERM and read its DuckDB file.
    Checked: no request error and no refusal; the server exits cleanly; the file holds exactly 80
    conversations, 640 turns and 320 ratings: every message once, as the user turn of its own user's
    conversation (turn positions 0..7 with no gaps), followed by exactly the reply that client was shown, and
    every rating once, on that reply, with its kind, value, comment and user; p50/p99 latencies reported.
    """
    server = serve(env={"CLARIFY_MAX_NEW_TOKENS": "2", "CLARIFY_AUTH": ",".join(f"{u}:{p}" for u, p in USERS.items())})
    start = threading.Barrier(CLIENTS)
    began = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda user: run_client(server.url, http, user, start), USERS))
    wall = time.perf_counter() - began
    assert server.stop() == 0, server.logs()

    errors = [e for r in results for e in r["errors"]]
    sent = [s for r in results for s in r["sent"]]
    turn_ms = [x for r in results for x in r["turn_ms"]]
    rating_ms = [x for r in results for x in r["rating_ms"]]
    numbers = dict(clients=CLIENTS, turns_per_client=TURNS, turns=len(turn_ms), ratings=len(rating_ms),
                   errors=len(errors), wall_seconds=round(wall, 1), turns_per_second=round(len(turn_ms) / wall, 2),
                   turn_p50_ms=round(percentile(turn_ms, 50)), turn_p99_ms=round(percentile(turn_ms, 99)),
                   turn_max_ms=round(max(turn_ms)), rating_p50_ms=round(percentile(rating_ms, 50)),
                   rating_p99_ms=round(percentile(rating_ms, 99)), max_new_tokens=2)
    print(numbers)
    record_result("load", numbers)
    assert errors == [], errors[:10]

    with duckdb.connect(str(server.db), read_only=True) as con:
        counts = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("conversations", "turns", "ratings")]
        assert counts == [CLIENTS * TURNS // TURNS_PER_CONVERSATION, 2 * CLIENTS * TURNS, CLIENTS * TURNS]
        assert con.execute("SELECT count(*) FROM turns WHERE status <> 'ok'").fetchone()[0] == 0
        gaps = con.execute("SELECT conversation_id FROM turns GROUP BY conversation_id"
                           " HAVING min(idx) <> 0 OR max(idx) <> count(*) - 1 OR count(*) <> 8").fetchall()
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
    assert unrated == 0
    assert all(rating_user == owner for *_, rating_user, owner in logged)
    assert sorted((m, squash(a), k, v, c, u) for m, a, k, v, c, u, _ in logged) == sorted(sent)
    assert len({m for m, *_ in sent}) == CLIENTS * TURNS
