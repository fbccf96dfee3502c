"""End to end in a real browser: `clarify serve` as a subprocess, Debian chromium driven by playwright.

Chat, watch the reply stream, rate it (thumbs and stars), check the refusals,
stop the server, then read the DuckDB file it released and compare it with
what the browser showed.
"""

from __future__ import annotations

import os
import re

import duckdb
import pytest

from agent.chat_service import DEFAULT_NOTES
from agent.policy import classify_agent_turn

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPLY_TIMEOUT_MS = 120_000
QUESTION = "How much is an espresso?"
COMMENT = "Good, but it should ask which branch."

# Collects every distinct text of the latest agent message, as the DOM changes (streaming).
WATCH_REPLIES = """() => {
    window.__replyTexts = [];
    const root = document.querySelector('#chatbot');
    new MutationObserver(() => {
        const bots = root.querySelectorAll('[data-testid="bot"]');
        if (!bots.length) return;
        const text = bots[bots.length - 1].innerText.trim();
        const seen = window.__replyTexts;
        if (text && seen[seen.length - 1] !== text) seen.push(text);
    }).observe(root, {subtree: true, childList: true, characterData: true});
}"""


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture
def server(serve):
    return serve(env={"CLARIFY_MAX_NEW_TOKENS": "48"})  # a shorter reply keeps the test quick


def wait_status(page, text: str, timeout_ms: int = 30_000) -> str:
    page.wait_for_function("t => (document.querySelector('#status')?.innerText || '').includes(t)",
                           arg=text, timeout=timeout_ms)
    return page.locator("#status").inner_text()


def test_chat_stream_rate_and_log(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server.url)
    box = page.locator("#message textarea")
    box.wait_for(timeout=60_000)
    assert "Conversations you do not rate are not used for training." in page.locator("#training-note").inner_text()
    assert page.locator("#notes textarea").input_value() == DEFAULT_NOTES

    # Refusals first: nothing may reach the log.
    page.click("#send")
    assert "The message is empty." in wait_status(page, "The message is empty.")
    box.fill("a" * 100_000)
    page.click("#send")
    status = wait_status(page, "Nothing was sent.")
    assert "The message is 100000 characters; the limit is 4000. Nothing was sent." in status
    assert page.locator('[data-testid="user"]').count() == 0

    # A real exchange, streamed.
    page.evaluate(WATCH_REPLIES)
    box.fill(QUESTION)
    page.click("#send")
    wait_status(page, "Rate this reply", timeout_ms=REPLY_TIMEOUT_MS)
    bot = page.locator('[data-testid="bot"]')
    assert bot.count() == 1
    shown = squash(bot.last.inner_text())
    seen = page.evaluate("window.__replyTexts")
    assert shown and squash(seen[-1]) == shown
    assert len(seen) >= 2, f"the reply did not stream (saw only {seen!r})"
    assert squash(page.locator('[data-testid="user"]').last.inner_text()) == QUESTION
    assert box.input_value() == "" and box.is_enabled()

    # Thumbs up on the reply, then 4 stars with a comment.
    page.locator('button[aria-label="Like"]').last.click()
    wait_status(page, "Thumbs up recorded")
    page.locator("#stars label", has_text="4 ★").click()
    page.locator("#rating-comment textarea").fill(COMMENT)
    page.click("#rate")
    wait_status(page, "4 ★ recorded")
    shot = os.environ.get("CLARIFY_UI_SCREENSHOT") or str(tmp_path / "chat.png")
    page.screenshot(path=shot, full_page=True)
    page.close()

    # Stop the server: it must exit cleanly and release (and checkpoint) the DuckDB file.
    assert server.stop() == 0, server.logs()
    assert f"serving the chat UI on {server.url}" in server.stdout.read_text()
    assert not server.db.with_name(server.db.name + ".wal").exists()

    with duckdb.connect(str(server.db), read_only=True) as con:
        convs = con.execute("SELECT id, source, context FROM conversations").fetchall()
        assert len(convs) == 1, "the refused messages must not have started a conversation"
        cid, source, context = convs[0]
        assert source == "ui" and context == DEFAULT_NOTES
        turns = con.execute("SELECT id, idx, role, kind, text, status FROM turns WHERE conversation_id = ?"
                            " ORDER BY idx", [cid]).fetchall()
        assert con.execute("SELECT count(*) FROM turns").fetchone()[0] == len(turns) == 2
        (_, i0, role0, kind0, text0, st0), (reply_id, i1, role1, kind1, text1, st1) = turns
        assert (i0, role0, kind0, text0, st0) == (0, "user", "user", QUESTION, "ok")
        assert (i1, role1, st1) == (1, "assistant", "ok")
        assert kind1 in ("ask", "answer") and kind1 == classify_agent_turn(text1)
        assert squash(text1) == shown
        ratings = con.execute("SELECT turn_id, conversation_id, kind, value, reward, comment FROM ratings"
                              " ORDER BY created_at").fetchall()
        assert ratings == [(reply_id, cid, "thumbs", 1.0, 1.0, None),
                           (reply_id, cid, "stars", 4.0, 0.75, COMMENT)]
