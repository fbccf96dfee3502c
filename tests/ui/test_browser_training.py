"""The loop closed in a real browser: train from the Training tab, promote in the Adapters tab, chat with it.

`clarify serve` runs as a subprocess on a tmp data dir that was seeded (before the
server started, through LogStore) with rated conversations: two per context, one
that asks and is rated well, one that guesses and is rated badly. Debian chromium,
driven by playwright, starts a 2-step training run (the Training tab's max-steps
field), reloads the page mid-run, sees progress reach 100% and "succeeded", finds
the new adapter in the Adapters tab, promotes it, and chats. Along the way it reads
the Training tab's count of what was rated since the last run and the Chat tab's
"Answering: ..." line. The DuckDB file is then read after the server released it:
the reply is logged with that adapter, and the two lines name its run and activation.

The promotion gate runs after training on 2 dev items (CLARIFY_GATE_ITEMS=2) with
auto-promotion off (CLARIFY_AUTO_PROMOTE=false), so the promotion is the manual one.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import duckdb
import pytest

from logs_db.store import LogStore

pytestmark = [pytest.mark.slow, pytest.mark.browser]

TRAIN_TIMEOUT_MS = 240_000
REPLY_TIMEOUT_MS = 120_000
QUESTION = "How much is a large latte?"

CONTEXTS = [
    ("Georgia is a country in the Caucasus; its capital is Tbilisi. Georgia is also a US state; its capital is Atlanta.",
     "What is the capital of Georgia?", "Do you mean the country or the US state?", "The country.",
     "The capital of Georgia is Tbilisi.", "The capital of Georgia is Atlanta."),
    ("Paris is the capital of France. Paris is also a city in Texas, founded in 1844.",
     "When was Paris founded?", "Do you mean Paris in France or Paris, Texas?", "Paris, Texas.",
     "Paris, Texas was founded in 1844.", "Paris was founded in the 3rd century BC."),
    ("The Harbor branch opens at 7 am. The Station branch opens at 6 am.",
     "When do you open?", "Which branch: Harbor or Station?", "Station.",
     "The Station branch opens at 6 am.", "We open at 7 am."),
]


def seed(db: Path) -> int:
    """Six rated UI conversations in three shared contexts (stars 5 for asking, 1-2 for guessing)."""
    n = 0
    with LogStore(db) as store:
        for k, (notes, question, ask, clarification, good, bad) in enumerate(CONTEXTS):
            cid = store.new_conversation(source="ui", context=notes, context_key=f"ctx-{k}")
            store.add_turn(cid, role="user", kind="user", text=question)
            store.add_turn(cid, role="assistant", kind="ask", text=ask)
            store.add_turn(cid, role="user", kind="user", text=clarification)
            store.add_rating(store.add_turn(cid, role="assistant", kind="answer", text=good), kind="stars", value=5)
            cid = store.new_conversation(source="ui", context=notes, context_key=f"ctx-{k}")
            store.add_turn(cid, role="user", kind="user", text=question)
            tid = store.add_turn(cid, role="assistant", kind="answer", text=bad)
            store.add_rating(tid, kind="stars", value=1 + k % 2)
            n += 2
    return n


@pytest.fixture
def server(serve, tmp_path):
    data = tmp_path / "data"
    assert seed(data / "clarify.duckdb") == 6
    return serve(data, env={"CLARIFY_MAX_NEW_TOKENS": "32", "CLARIFY_GATE_ITEMS": "2",
                            "CLARIFY_AUTO_PROMOTE": "false"})


def wait_text(page, selector: str, text: str, timeout_ms: int = 30_000) -> str:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=timeout_ms)
    return page.locator(selector).inner_text()


def wait_value(page, selector: str, text: str, timeout_ms: int = 30_000) -> str:
    """For textareas (their text is not in innerText)."""
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.value || '').includes(t)",
                           arg=[selector, text], timeout=timeout_ms)
    return page.locator(selector).input_value()


def line(text: str, start: str) -> str:
    """The line of an element's text that starts with `start` (a running event adds Gradio's hidden timer text)."""
    return next(part.strip() for part in text.splitlines() if part.strip().startswith(start))


def test_train_promote_and_chat_with_the_new_adapter(server, browser, tmp_path):
    started = time.monotonic()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server.url)
    page.locator("#message textarea").wait_for(timeout=60_000)
    wait_text(page, "#answering", "Answering: base model")

    # Training tab: what was rated so far, then a 2-step run on everything rated.
    page.get_by_role("tab", name="Training").click()
    wait_text(page, "#train-rated-since",
              "Rated so far (no training run yet): 6 conversations (0 thumbs up, 0 down, 6 with stars).")
    steps = page.locator("#train-max-steps input")
    steps.fill("2")
    page.click("#train-start")
    wait_text(page, "#train-message", "Training started")
    wait_value(page, "#train-log textarea", "snapshot: 6 rated conversation(s)", timeout_ms=60_000)

    # A reload mid-run: the page picks the run up again (the server owns it, the timer polls it).
    page.reload()
    page.locator("#message textarea").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Training").click()
    page.wait_for_function(
        "() => /\\b(succeeded|failed|cancelled)\\b/.test(document.querySelector('#train-progress')?.innerText || '')",
        timeout=TRAIN_TIMEOUT_MS)
    progress = page.locator("#train-progress").inner_text()
    log = page.locator("#train-log textarea").input_value()
    assert progress.strip().startswith("succeeded"), f"{progress}\n{log}"
    assert "step 2/2 (100%)" in progress, progress
    adapter_id = re.search(r"adapter (swift-\S+)", progress).group(1)
    assert "gate:" in progress and "auto-promotion is off" in progress
    assert "training: 2 step(s)" in log and f"adapter {adapter_id} registered as a candidate" in log
    # The run's end refreshed the count: nothing was rated since it started.
    rated = line(wait_text(page, "#train-rated-since", "Rated since the last training run ("), "Rated since")
    print(f"training + gate seen in the browser after {time.monotonic() - started:.0f} s")
    page.screenshot(path=str(tmp_path / "training-tab.png"), full_page=True)

    # Adapters tab: the new candidate is listed and preselected; promote it.
    page.get_by_role("tab", name="Adapters").click()
    wait_text(page, "#adapters-table", adapter_id)
    assert "Active: base model" in page.locator("#active-adapter").inner_text()
    page.click("#adapter-promote")
    wait_text(page, "#adapters-message", f"{adapter_id} is now active")
    wait_text(page, "#active-adapter", f"Active: {adapter_id}")

    # Chat: a new conversation uses the promoted adapter, no restart.
    page.get_by_role("tab", name="Chat").click()
    page.locator("#message textarea").fill(QUESTION)
    page.click("#send")
    wait_text(page, "#status", "Rate this reply", timeout_ms=REPLY_TIMEOUT_MS)
    reply = page.locator('[data-testid="bot"]').last.inner_text().strip()
    assert reply
    answering = line(wait_text(page, "#answering", f"Answering: adapter {adapter_id} (activated "), "Answering:")
    shot = os.environ.get("CLARIFY_UI_SCREENSHOT_TRAINING") or str(tmp_path / "adapters-tab.png")
    page.get_by_role("tab", name="Adapters").click()
    wait_text(page, "#active-adapter", f"Active: {adapter_id}")
    page.screenshot(path=shot, full_page=True)

    # Insights: the seeded ratings and the gate's evaluations are plotted.
    page.get_by_role("tab", name="Insights").click()
    wait_text(page, "#insights-message", "6 rated conversation(s) (all)")
    page.screenshot(path=str(tmp_path / "insights-tab.png"), full_page=True)
    page.close()

    assert server.stop() == 0, server.logs()
    with duckdb.connect(str(server.db), read_only=True) as con:
        assert con.execute("SELECT status, trigger, adapter_id FROM training_runs").fetchall() == [
            ("succeeded", "ui", adapter_id)]
        assert con.execute("SELECT status FROM adapters WHERE id = ?", [adapter_id]).fetchone() == ("active",)
        assert con.execute("SELECT adapter_id, previous_id, kind FROM activations").fetchall() == [
            (adapter_id, None, "manual")]
        (run_started,) = con.execute("SELECT started_at FROM training_runs").fetchone()
        assert rated == (f"Rated since the last training run ({str(run_started)[:16]}): 0 conversations "
                          "(0 thumbs up, 0 down), 6 rated in all.")
        (activated,) = con.execute("SELECT created_at FROM activations").fetchone()
        assert answering == f"Answering: adapter {adapter_id} (activated {str(activated)[:16]})"
        [(passed, promoted, n_items)] = con.execute(
            "SELECT passed, promoted, n_items FROM promotion_decisions WHERE candidate_id = ?", [adapter_id]).fetchall()
        assert not promoted and n_items == 2
        [(cid, conv_adapter)] = con.execute(
            "SELECT id, adapter_id FROM conversations WHERE id NOT IN "
            "(SELECT conversation_id FROM ratings)").fetchall()
        assert conv_adapter == adapter_id
        turns = con.execute("SELECT role, text, adapter_id, status FROM turns WHERE conversation_id = ? ORDER BY idx",
                            [cid]).fetchall()
        assert turns[0][:2] == ("user", QUESTION)
        assert turns[1][0] == "assistant" and turns[1][2] == adapter_id and turns[1][3] == "ok"
        assert re.sub(r"\s+", " ", turns[1][1]).strip() == re.sub(r"\s+", " ", reply).strip()
    print(f"browser test: {time.monotonic() - started:.0f} s")
