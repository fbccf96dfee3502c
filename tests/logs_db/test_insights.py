"""Insights queries on real DuckDB files."""

from __future__ import annotations

import pytest

from logs_db import insights

NOTES = "The Harbor branch espresso costs $3. The Station branch espresso costs $4."


def ui_conversation(store, *, ask: bool, ratings: list[tuple[str, float]], adapter_id=None, arm=None) -> str:
    cid = store.new_conversation(source="ui", context=NOTES, adapter_id=adapter_id, arm=arm)
    store.add_turn(cid, role="user", kind="user", text="How much is an espresso?")
    if ask:
        store.add_turn(cid, role="assistant", kind="ask", text="Which branch, Harbor or Station?")
        store.add_turn(cid, role="user", kind="user", text="Harbor.")
    tid = store.add_turn(cid, role="assistant", kind="answer", text="An espresso costs $3 at Harbor.")
    for kind, value in ratings:
        store.add_rating(tid, kind=kind, value=value)
    return cid


def simulated(store, reward: float) -> str:
    cid = store.new_conversation(source="simulated", context=NOTES, context_key="espresso-item")
    store.add_turn(cid, role="user", kind="user", text="How much is an espresso?")
    store.add_turn(cid, role="assistant", kind="answer", text="$4.")
    store.set_conversation_reward(cid, reward)
    return cid


@pytest.fixture
def seeded(store):
    ids = {
        "up": ui_conversation(store, ask=True, ratings=[("thumbs", 0), ("thumbs", 1)]),   # last rating wins: 1.0
        "stars": ui_conversation(store, ask=False, ratings=[("stars", 4)], adapter_id=None),  # 0.75
        "unrated": ui_conversation(store, ask=True, ratings=[]),
        "sim": simulated(store, 0.25),
    }
    store.register_adapter(adapter_id="cand", method="swift", path="/nonexistent")
    for value, arm, adapter in ((1, "A", None), (0, "A", None), (1, "B", "cand"), (1, "B", "cand"),
                                (0, "B", "cand"), (1, "B", "cand")):
        ui_conversation(store, ask=False, ratings=[("thumbs", value)], adapter_id=adapter, arm=arm)
    return ids


def test_reward_ask_rate_and_ratings(store, seeded):
    per_day = insights.reward_per_day(store)
    assert list(per_day.columns) == ["day", "source", "mean_reward", "conversations"]
    by_source = per_day.set_index("source")
    assert by_source.loc["ui", "conversations"] == 8                     # the unrated one is not there
    assert by_source.loc["ui", "mean_reward"] == pytest.approx((1.0 + 0.75 + 1 + 0 + 1 + 1 + 0 + 1) / 8)
    assert by_source.loc["simulated", "mean_reward"] == pytest.approx(0.25)
    assert list(insights.reward_per_day(store, "simulated")["source"]) == ["simulated"]

    per_adapter = insights.reward_per_adapter(store, "ui").set_index("adapter")
    assert per_adapter.loc["cand", "conversations"] == 4 and per_adapter.loc["cand", "mean_reward"] == 0.75
    assert per_adapter.loc["base", "conversations"] == 4

    ask = insights.ask_rate_per_day(store, "ui")
    assert ask["conversations"].sum() == 9 and ask["ask_rate"].iloc[0] == pytest.approx(2 / 9)

    ratings = insights.ratings_per_day(store).set_index("kind")
    assert ratings.loc["thumbs", "ratings"] == 8 and ratings.loc["stars", "ratings"] == 1
    assert insights.ratings_per_day(store, "simulated").empty

    with pytest.raises(ValueError, match="Unknown source"):
        insights.reward_per_day(store, "x'; DROP TABLE conversations; --")


def test_arms_with_counts_and_a_95_ci(store, seeded):
    arms = insights.arms(store).set_index("arm")
    assert list(arms.index) == ["A", "B"]
    assert arms.loc["A", "adapter"] == "base" and arms.loc["B", "adapter"] == "cand"
    b = arms.loc["B"]
    assert b["conversations"] == 4 and b["mean_reward"] == 0.75
    half = 1.96 * 0.5 / 2                          # sd of [1, 1, 0, 1] is 0.5, n = 4
    assert b["ci95_low"] == pytest.approx(0.75 - half) and b["ci95_high"] == pytest.approx(0.75 + half)


def test_eval_per_adapter_keeps_the_latest_run(store):
    store.add_eval_run(adapter_id=None, items_path="/x/dev.jsonl", items_hash="h", n=2, metrics={"mean_reward": 0.4})
    store.add_eval_run(adapter_id=None, items_path="/x/dev.jsonl", items_hash="h", n=2, metrics={"mean_reward": 0.5})
    store.register_adapter(adapter_id="a1", method="swift", path="/x")
    store.add_eval_run(adapter_id="a1", items_path="/x/dev.jsonl", items_hash="h", n=2,
                       metrics={"mean_reward": 0.7, "accuracy": 0.5})
    df = insights.eval_per_adapter(store).set_index("adapter")
    assert df.loc["base", "mean_reward"] == 0.5 and df.loc["a1", "mean_reward"] == 0.7
    assert df.loc["a1", "items"] == "dev.jsonl (n=2)" and df.loc["a1", "accuracy"] == 0.5


def test_explored_share_and_mean_reward_by_action_per_day(store):
    """Agent turns carry the serving decision (agent/decision.py): the explored share counts the decided turns only,
    and the reward by action groups rated conversations by their first agent turn's action."""
    decided = [("ask", True, 1.0), ("answer", False, 0.0), ("answer", False, 1.0), ("answer", True, None)]
    for action, explored, rating in decided:
        cid = store.new_conversation(source="ui", context=NOTES)
        store.add_turn(cid, role="user", kind="user", text="How much is an espresso?")
        text = "Do you mean Harbor?" if action == "ask" else "$3."
        tid = store.add_turn(cid, role="assistant", kind=action, text=text, p_ask=0.2, action=action,
                             propensity=0.1 if explored else 0.9, explored=explored)
        if rating is not None:
            store.add_rating(tid, kind="thumbs", value=rating)
    simulated(store, 0.25)   # no decision logged: not in the explored share; answered first

    share = insights.explored_per_day(store)
    assert list(share.columns) == ["day", "source", "explored_share", "turns"]
    ui = share.set_index("source").loc["ui"]
    assert ui["explored_share"] == 0.5 and ui["turns"] == 4
    assert "simulated" not in set(share["source"])
    by_action = insights.reward_by_action_per_day(store).set_index("action")
    assert list(by_action.columns) == ["day", "mean_reward", "conversations"]
    assert by_action.loc["ask", "mean_reward"] == 1.0 and by_action.loc["ask", "conversations"] == 1
    assert by_action.loc["answer", "conversations"] == 3                 # two rated ui, one simulated
    assert by_action.loc["answer", "mean_reward"] == pytest.approx((0.0 + 1.0 + 0.25) / 3)
    assert insights.reward_by_action_per_day(store, "simulated").set_index("action").loc["answer", "mean_reward"] == 0.25
