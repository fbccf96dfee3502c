"""bench/traffic.py: simulated users through the Chat tab's service, the Training tab's run and the gate, one row per
round. The pure parts (who rates, the thumbs, a row's numbers, the table, the RESULTS.md section) with hand-computed
values; then one real short round with the bundled model, checked in the DuckDB file as a user would."""

from __future__ import annotations

import os
import random
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import traffic  # noqa: E402
from traffic import count_of, gate_text, plan_ratings, render, row_cells, thumbs, traffic_numbers  # noqa: E402

from agent.items import Interpretation, Item  # noqa: E402
from agent.simulator import SimTurn, SimulatedConversation  # noqa: E402
from bench.common import with_sections, write_section  # noqa: E402

AMBIGUOUS = Item("amb", "Notes.", "Which one?",
                 (Interpretation("The first.", "one"), Interpretation("The second.", "two")))
CLEAR = Item("clear", "Notes.", "What?", (Interpretation("That.", "it"),))


# -- who rates, and how -------------------------------------------------------------------------------------------

def test_counts_round_half_up():
    assert [count_of(10, 0.6), count_of(5, 0.5), count_of(5, 0.1), count_of(4, 0.1)] == [6, 3, 1, 0]
    assert count_of(6, 0.1) == 1
    assert [count_of(500, 0.6), count_of(300, 0.1), count_of(190, 0.6), count_of(114, 0.1)] == [300, 30, 114, 11]


def test_the_rated_and_flipped_conversations_are_seeded_by_seed_and_round():
    plan = plan_ratings(10, 0.6, 0.1, seed=0, round_no=0)
    assert len(plan) == 6 and set(plan) <= set(range(10)) and sum(plan.values()) == 1
    assert plan == plan_ratings(10, 0.6, 0.1, seed=0, round_no=0)             # the same users every run
    assert plan_ratings(10, 0.6, 0.1, seed=0, round_no=1) != plan              # another round, other users
    assert plan_ratings(10, 0.6, 0.1, seed=1, round_no=0) != plan
    assert plan_ratings(6, 1.0, 0.0, seed=0, round_no=0) == dict.fromkeys(range(6), False)
    assert plan_ratings(6, 0.0, 0.5, seed=0, round_no=0) == {}
    assert list(plan_ratings(4, 0.5, 1.0, seed=3, round_no=2).values()) == [True, True]


def test_thumbs_follow_the_grader_unless_flipped():
    assert [thumbs(True, False), thumbs(False, False), thumbs(True, True), thumbs(False, True)] == [1, 0, 0, 1]


# -- a round's numbers and its row ------------------------------------------------------------------------------------

def conversation(item, agent_turns, reward, rating):
    conv = SimulatedConversation(item=item, index=0, intent=0, temperature=0.0, forced_prefix=None, adapter=None,
                                 engine="fake", seed=0, explore=0.1, done=True, correct=reward > 0, reward=reward)
    conv.turns.append(SimTurn("user", "user", item.question))
    for i, (kind, action, explored) in enumerate(agent_turns):
        if i:
            conv.turns.append(SimTurn("user", "user", "The first.", reply="clarification"))
        conv.turns.append(SimTurn("assistant", kind, "text", action=action, explored=explored))
    return traffic.Traffic(conv, "cid", "tid", rating)


def test_traffic_numbers_by_hand():
    rows = [
        conversation(AMBIGUOUS, [("ask", "ask", True), ("answer", None, None)], 0.9, 1),   # explored into asking
        conversation(AMBIGUOUS, [("answer", "answer", False)], 0.0, 0),
        conversation(CLEAR, [("answer", "answer", False)], 1.0, None),                      # not rated
        conversation(CLEAR, [("ask", "ask", False), ("answer", None, None)], 0.0, 1),       # a flipped rating
    ]
    got = traffic_numbers(rows)
    # rewards 0.9, 0, 1, 0: mean 0.475, squared deviations sum 0.9075, variance 0.3025, stderr sqrt(0.3025 / 4).
    assert got == {"conversations": 4, "rated": 3, "mean_reward": pytest.approx(0.475), "stderr": pytest.approx(0.275),
                   "mean_rating": pytest.approx(2 / 3), "ask_rate_ambiguous": 0.5, "ask_rate_unambiguous": 0.5,
                   "explored": 0.25}   # 1 of the 4 turns with a decision (the answers after a question have none)


def test_traffic_numbers_without_ratings_or_decisions():
    got = traffic_numbers([conversation(CLEAR, [("answer", None, None)], 1.0, None)])
    assert (got["rated"], got["mean_rating"], got["explored"], got["ask_rate_ambiguous"]) == (0, None, None, None)


def job(**kw):
    return SimpleNamespace(**{"gate": None, "adapter_id": None, "status": "succeeded", "error": None, **kw})


def test_gate_text():
    decision = {"candidate_id": "swift-1", "candidate_reward": 0.51, "baseline_reward": 0.4583, "n_items": 48,
                "passed": True, "promoted": True}
    assert gate_text(job(gate=decision, adapter_id="swift-1")) == "swift-1 promoted: 0.510 vs 0.458 on 48 dev items"
    assert gate_text(job(gate={**decision, "promoted": False})).startswith("swift-1 passed, not promoted: ")
    assert gate_text(job(gate={**decision, "passed": False, "promoted": False})).startswith("swift-1 rejected: ")
    assert gate_text(job(status="failed", error="Only 3 rated conversation(s) match; at least 4 | more\nTraceback")) \
        == "training failed: Only 3 rated conversation(s) match; at least 4 / more"
    assert gate_text(job(status="failed", adapter_id="swift-2", error="gate: boom")) == "gate failed: gate: boom"


REJECTED = "swift-2 rejected: 0.400 vs 0.458 on 48 dev items"
ROW = {"round": 2, "served_by": "swift-1", "train_s": 1020.0, "gate": REJECTED,
       "traffic": {"conversations": 190, "rated": 114, "mean_reward": 0.5, "stderr": 0.0361, "mean_rating": 0.4912,
                   "ask_rate_ambiguous": 0.125, "ask_rate_unambiguous": 0.04, "explored": 0.1},
       "dev": {"n": 192, "mean_reward": 0.507, "stderr": 0.036},
       "test": {"n": 279, "mean_reward": 0.429, "stderr": 0.03}}


def test_a_row_and_the_section():
    assert row_cells(ROW) == ["2", "swift-1", "190", "114", "0.500 ± 0.036", "0.491", "0.12", "0.04", "0.10",
                              "0.507 ± 0.036", "0.429 ± 0.030", "17 min", REJECTED]
    args = SimpleNamespace(rating_share=0.6, flip_share=0.1)
    settings = SimpleNamespace(seed=0, explore=0.1, engine="transformers", train_max_steps=None, gate_items=48,
                               question_cost=0.1)
    text = render([{**ROW, "round": 1, "served_by": None}, ROW], args, settings, command="CMD", machine="Fake CPU")
    lines = text.splitlines()
    assert lines[0] == "## Traffic through the product path" and "Reproduce: `CMD`" in lines
    assert "Traffic: 190 train items per round (shuffled with seed 0)" in text and "full training runs" in text
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| " + " | ".join(traffic.COLUMNS) + " |"
    assert [row.split(" | ")[:2] for row in table[1:]] == [["| 1", "base"], ["| 2", "swift-1"]]
    assert "on 192 dev and 279 test items" in text and "correct x (1 - 0.1 x questions asked)" in text


def test_the_section_replaces_itself_and_survives_the_learning_table(tmp_path):
    doc = tmp_path / "docs" / "RESULTS.md"
    write_section(doc, "traffic", "## Traffic\n\nfirst\n")
    assert doc.read_text() == "<!-- traffic -->\n## Traffic\n\nfirst\n<!-- /traffic -->\n"
    doc.write_text("# Learning results\n\ntable\n\n" + doc.read_text())
    write_section(doc, "traffic", "## Traffic\n\nsecond")
    assert doc.read_text() == ("# Learning results\n\ntable\n\n"
                               "<!-- traffic -->\n## Traffic\n\nsecond\n<!-- /traffic -->\n")
    # bench/learning.py rewrites the whole document and keeps the section.
    assert with_sections(doc, "# Learning results\n\nnew table\n") == (
        "# Learning results\n\nnew table\n\n<!-- traffic -->\n## Traffic\n\nsecond\n<!-- /traffic -->\n")
    assert with_sections(tmp_path / "missing.md", "# Only\n") == "# Only\n"


def test_the_settings_are_the_products_with_the_benchs_own_folder(tmp_path, monkeypatch):
    for name in [k for k in os.environ if k.startswith("CLARIFY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CLARIFY_DB_PATH", str(tmp_path / "user" / "clarify.duckdb"))   # never the user's log
    monkeypatch.setenv("CLARIFY_EXPLORE", "0.2")
    monkeypatch.setattr(traffic, "resolve_model", lambda model, models_dir: tmp_path / "model")
    args = traffic.parse_args(["--data-dir", str(tmp_path / "bench"), "--eval-limit", "5", "--max-steps", "3"])
    settings = traffic.traffic_settings(args)
    assert settings.database == tmp_path / "bench" / "clarify.duckdb"
    assert settings.adapters_dir == tmp_path / "bench" / "adapters"
    assert (settings.explore, settings.gate_items, settings.train_max_steps) == (0.2, 5, 3)
    assert settings.engine == "transformers"
    assert settings.model == str(tmp_path / "model") and settings.seed == 0
    assert traffic.traffic_settings(traffic.parse_args(["--data-dir", str(tmp_path)])).gate_items == 48
    (tmp_path / "bench" / "clarify.duckdb").parent.mkdir()
    (tmp_path / "bench" / "clarify.duckdb").write_bytes(b"")
    assert traffic.main(["--data-dir", str(tmp_path / "bench")]) == 2   # an existing log is refused, untouched
    for bad in (["--rating-share", "1.5"], ["--conversations", "0"]):
        with pytest.raises(SystemExit):
            traffic.parse_args(bad)


# -- one real round through the product path --------------------------------------------------------------------------

@pytest.mark.slow
def test_a_short_round_through_the_product_path(tmp_path, monkeypatch, capsys, model_path, engine):
    """6 users, every conversation rated, one training step, the gate on 2 dev items: the DuckDB file holds each
    conversation and rating once, every agent turn is the model's own reply to its prompt (given the logged action),
    the training run and the gate's decision are recorded, and the printed row has the numbers."""
    from agent.decision import Exploration
    from agent.engine import GenerationParams
    from agent.grader import conversation_reward, grade_answer
    from agent.items import TRAIN_ITEMS, load_items
    from agent.policy import Message, build_prompt
    from agent.simulator import draw_intent
    from logs_db.store import LogStore

    for name in [k for k in os.environ if k.startswith("CLARIFY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CLARIFY_MODEL", str(model_path))
    monkeypatch.setenv("CLARIFY_MAX_NEW_TOKENS", "40")
    data = tmp_path / "bench"
    assert traffic.main(["--rounds", "1", "--conversations", "6", "--rating-share", "1", "--max-steps", "1",
                         "--eval-limit", "2", "--data-dir", str(data)]) == 0
    printed = capsys.readouterr().out

    items = load_items(TRAIN_ITEMS)
    random.Random(0).shuffle(items)
    by_question = {it.question: it for it in items[:6]}
    store = LogStore(data / "clarify.duckdb")
    try:
        convs = store.execute("SELECT id, source FROM conversations").fetchall()
        assert len(convs) == 6 and {c[1] for c in convs} == {"ui"}                  # logged as the Chat tab logs
        assert all(store.get_conversation(c[0]).meta == {} for c in convs)          # no script, no forced prefix
        ratings = store.execute("SELECT conversation_id, turn_id, kind, value FROM ratings").fetchall()
        assert sorted(r[0] for r in ratings) == sorted(c[0] for c in convs)          # each conversation once
        rating_of = {r[0]: r for r in ratings}

        regenerate, flips, rewards = [], 0, []
        for cid, _ in convs:
            turns = store.list_turns(cid)
            item = by_question[turns[0].text]
            agent = [t for t in turns if t.role == "assistant"]
            assert all(t.status == "ok" and t.adapter_id is None for t in agent)     # round 1: the base model
            final = agent[-1]
            _, turn_id, kind, value = rating_of[cid]
            assert (turn_id, kind) == (final.id, "thumbs")
            correct = grade_answer(item, draw_intent(item, 0, 0), final.text).correct
            flips += value != float(correct)
            rewards.append(conversation_reward(correct, len(agent) - 1, 0.1))
            for t in agent:
                history = [Message(u.role, u.text, u.kind) for u in turns[:t.idx]]
                # The served exploration (rate 0.1) with a draw that explores or not as the logged turn did.
                explore = None if t.action is None else Exploration(0.1, 0.0 if t.explored else 1.0)
                regenerate.append((build_prompt(item.context, history, 1), explore, t.text))
        assert flips == count_of(6, 0.1) == 1                                       # the one flipped rating

        params = GenerationParams(max_new_tokens=40)
        with ThreadPoolExecutor(8) as pool:   # batched as the benchmark's replies were
            texts = list(pool.map(lambda r: "".join(engine.stream(r[0], params, explore=r[1])).strip(), regenerate))
        assert texts == [r[2] for r in regenerate]   # every agent word is the served model's

        [run] = store.list_training_runs()
        assert (run.status, run.trigger, run.n_conversations) == ("succeeded", "ui", 6) and run.adapter_id
        [decision] = store.list_promotion_decisions()
        assert (decision.candidate_id, decision.baseline_id, decision.n_items) == (run.adapter_id, None, 2)
        active = store.active_adapter()
        assert (active.id if active else None) == (run.adapter_id if decision.promoted else None)
        assert store.execute("SELECT count(*) FROM eval_runs WHERE adapter_id IS NULL AND n = 2").fetchone()[0] >= 2
    finally:
        store.close()

    [row] = [line for line in printed.splitlines() if line.startswith("| 1 |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:4] == ["base", "6", "6"]
    assert cells[4] == f"{sum(rewards) / 6:.3f} ± " + cells[4].split(" ± ")[1]
    assert cells[5] == f"{sum(r[3] for r in ratings) / 6:.3f}"
    for cell in cells[6:9]:
        assert re.fullmatch(r"\d\.\d\d|-", cell), cell
    for cell in cells[9:11]:
        assert re.fullmatch(r"\d\.\d{3} ± \d\.\d{3}", cell), cell
    assert re.fullmatch(r"\d+ s|\d+ min", cells[11]), cells[11]
    verdict = "promoted" if decision.promoted else "passed, not promoted" if decision.passed else "rejected"
    assert cells[12] == (f"{run.adapter_id} {verdict}: {decision.candidate_reward:.3f} vs "
                         f"{decision.baseline_reward:.3f} on 2 dev items")
