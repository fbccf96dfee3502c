"""The promotion gate (both ways), manual activation with hot-loading, and rollback, on a real DuckDB file.

The evaluations are real (the bundled model, greedy, the first 2 dev items). The
candidates are untrained LoRA adapters (B = 0): they answer exactly like the base
model, so candidate and base rewards are equal and a zero margin passes. For the
rejecting case the active adapter's stored evaluation is constructed (the gate
reuses a stored evaluation of the active adapter with the same items, seed,
engine and model), so both outcomes are deterministic.
"""

from __future__ import annotations

import pytest

from agent.items import DEV_ITEMS, file_sha256
from learner.promotion import (PromotionError, _eval_key, activate, decide, gate_items, rollback, rollback_target,
                               run_gate)


def test_decide_is_not_lower_by_more_than_the_margin():
    assert decide(0.50, 0.50, 0.0)
    assert decide(0.49, 0.50, 0.02)
    assert decide(0.48, 0.50, 0.02)          # exactly at the margin: passes (float noise ignored)
    assert not decide(0.47, 0.50, 0.02)
    assert decide(0.90, 0.50, 0.0)
    assert not decide(0.4999, 0.50, 0.0)


@pytest.fixture
def gate_settings(settings):
    return settings.with_overrides(gate_items=2, promotion_margin=0.0, auto_promote=True)


@pytest.mark.slow
def test_gate_promotes_then_rejects(gate_settings, store, engine, make_adapter):
    first = make_adapter("first")
    logs = []
    result = run_gate(gate_settings, store, engine, first, user_id="root", log=logs.append)

    # Passed against the base model: same answers, same reward, margin 0.
    assert result.baseline_id is None and result.n_items == 2
    assert result.candidate_reward == pytest.approx(result.baseline_reward)
    assert result.passed and result.promoted and "promoted to active" in result.reason
    assert store.active_adapter().id == first
    [decision] = store.list_promotion_decisions()
    assert decision.candidate_id == first and decision.baseline_id is None
    assert decision.passed and decision.promoted and decision.user_id == "root"
    assert decision.margin == 0.0 and decision.n_items == 2
    evals = store.execute("SELECT adapter_id, n FROM eval_runs ORDER BY created_at").fetchall()
    assert evals == [(first, 2), (None, 2)]
    assert store.get_adapter(first).eval_results["mean_reward"] == pytest.approx(result.candidate_reward)
    assert store.list_activations()[0].kind == "gate"
    assert any("evaluating candidate" in line for line in logs)

    # Now the active adapter (first) has a stored gate evaluation that is clearly better than the
    # candidate can be on these items: the gate reuses it (no new baseline run) and rejects.
    items_hash = file_sha256(DEV_ITEMS)
    better = result.candidate_reward + 0.25
    store.add_eval_run(adapter_id=first, items_path=str(DEV_ITEMS), items_hash=items_hash, n=2,
                       metrics={**_eval_key(gate_settings, engine), "mean_reward": better})
    second = make_adapter("second")
    rejected = run_gate(gate_settings.with_overrides(promotion_margin=0.02), store, engine, second)
    assert rejected.baseline_id == first and rejected.baseline_reward == pytest.approx(better)
    assert not rejected.passed and not rejected.promoted and "rejected" in rejected.reason
    assert store.active_adapter().id == first                       # nothing changed
    assert store.get_adapter(second).status == "candidate"
    latest = store.list_promotion_decisions()[0]
    assert latest.candidate_id == second and not latest.passed and not latest.promoted
    assert latest.baseline_reward == pytest.approx(better) and latest.margin == 0.02
    # One new eval run (the candidate's); the baseline's was reused.
    assert store.execute("SELECT count(*) FROM eval_runs").fetchone()[0] == 4


@pytest.mark.slow
def test_gate_without_auto_promotion_only_records(gate_settings, store, engine, make_adapter):
    cand = make_adapter()
    result = run_gate(gate_settings.with_overrides(auto_promote=False), store, engine, cand)
    assert result.passed and not result.promoted and "promote it in the Adapters tab" in result.reason
    assert store.active_adapter() is None


def test_gate_refuses_the_active_adapter_and_unknown_ids(gate_settings, store, make_adapter):
    a = make_adapter()
    activate(store, None, a)
    with pytest.raises(PromotionError, match="already the active adapter"):
        run_gate(gate_settings, store, None, a)
    with pytest.raises(PromotionError, match="No adapter"):
        run_gate(gate_settings, store, None, "nope")
    assert len(gate_items(gate_settings)) == 2


def test_activate_hot_loads_and_refuses_a_broken_folder(store, engine, make_adapter, tmp_path):
    a = make_adapter()
    activate(store, engine, a, user_id="root")
    assert a in engine.adapters and store.active_adapter().id == a
    (tmp_path / "empty").mkdir()
    store.register_adapter(adapter_id="broken", method="swift", path=str(tmp_path / "empty"))
    with pytest.raises(PromotionError, match="not a PEFT adapter"):
        activate(store, engine, "broken")
    assert store.active_adapter().id == a


def test_rollback_walks_the_activation_history(store, make_adapter):
    with pytest.raises(PromotionError, match="Nothing to roll back"):
        rollback_target(store)
    a, b, c = make_adapter("a"), make_adapter("b"), make_adapter("c")
    for x in (a, b, c):
        activate(store, None, x)
    assert rollback(store, None, user_id="root") == (c, b)
    assert rollback(store, None) == (b, a)          # two steps back, not back and forth
    assert rollback(store, None) == (a, None)       # then the base model
    assert store.active_adapter() is None
    with pytest.raises(PromotionError, match="Nothing to roll back"):
        rollback(store, None)
    kinds = [x.kind for x in store.list_activations()]
    assert kinds == ["rollback", "rollback", "rollback", "manual", "manual", "manual"]
    assert store.get_adapter(c).status == "retired"
    # Activating what is already active is refused (and would record nothing): rollback stays sane.
    activate(store, None, a)
    with pytest.raises(PromotionError, match="already active"):
        activate(store, None, a)
    store.activate_adapter(a)
    assert rollback(store, None) == (a, None)
    # A manual activation of the base model can itself be rolled back.
    activate(store, None, b)
    activate(store, None, None)
    assert rollback(store, None) == (None, b)


def test_cli_activate_and_rollback_are_recorded(tmp_path, lora_template):
    import shutil

    from typer.testing import CliRunner

    from clarify.cli import app
    from logs_db.store import LogStore

    data = tmp_path / "data"
    with LogStore(data / "clarify.duckdb") as store:
        for name in ("a", "b"):
            shutil.copytree(lora_template, data / "adapters" / name)
            store.register_adapter(adapter_id=name, method="swift", path=str(data / "adapters" / name))
    run = lambda *args: CliRunner().invoke(app, [*args, "--data-dir", str(data)])  # noqa: E731
    assert run("adapters", "activate", "a").exit_code == 0
    assert run("adapters", "activate", "b").exit_code == 0
    result = run("adapters", "rollback")
    assert result.exit_code == 0 and "rolled back from b; active: a" in result.output
    assert "active: base" in run("adapters", "rollback").output
    nothing = run("adapters", "rollback")
    assert nothing.exit_code == 2 and "Nothing to roll back" in nothing.output
    with LogStore(data / "clarify.duckdb") as store:
        assert [x.kind for x in store.list_activations()] == ["rollback", "rollback", "cli", "cli"]
