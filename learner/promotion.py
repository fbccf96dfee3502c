"""The promotion gate, manual promotion and rollback: which adapter new conversations are served.

A new adapter is a *candidate*. The gate evaluates it on the first
``settings.gate_items`` items of the dev benchmark (``agent.evaluate.evaluate``,
greedy, seeded intents) and compares it with the adapter active at that moment
(or the base model) on the same items. It passes when

    candidate mean reward >= active mean reward - settings.promotion_margin

and, with ``settings.auto_promote``, it then becomes active. Every evaluation is
stored in ``eval_runs`` (and the adapter's ``eval_results``), every decision in
``promotion_decisions``, every change of the active adapter in ``activations``.

Activation hot-loads the adapter into the serving engine first: new
conversations use it from the next message on; running conversations keep the
adapter they were started with (``conversations.adapter_id``). No restart.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from agent.engine import AdapterLoadError, Engine, validate_adapter_folder
from agent.evaluate import DEFAULT_MAX_NEW_TOKENS, evaluate
from agent.items import DEV_ITEMS, Item, file_sha256, load_items
from clarify.settings import Settings
from logs_db.store import LogStore, PromotionDecision, UnknownId

# Reward differences below this are float noise, not a difference.
_EPS = 1e-9


class PromotionError(ValueError):
    """A promotion, rollback or gate that cannot be done; the message is for the admin who asked."""


class GateCancelled(RuntimeError):
    pass


def decide(candidate_reward: float, baseline_reward: float, margin: float) -> bool:
    """The gate: not lower than the active one's reward by more than `margin`."""
    return candidate_reward >= baseline_reward - margin - _EPS


def label(adapter_id: str | None) -> str:
    return adapter_id or "base"


def gate_items(settings: Settings) -> list[Item]:
    return load_items(DEV_ITEMS, limit=settings.gate_items)


def _eval_key(settings: Settings, engine: Engine) -> dict:
    """What must match for an earlier evaluation of the same adapter to stand in for a new one."""
    return {"gate": True, "seed": settings.seed, "horizon": settings.max_clarifying_questions,
            "question_cost": settings.question_cost, "max_new_tokens": DEFAULT_MAX_NEW_TOKENS,
            "engine": getattr(engine, "name", None), "model": settings.model or "bundled"}


def evaluate_adapter(settings: Settings, store: LogStore, engine: Engine, adapter_id: str | None,
                     items: list[Item], *, items_path: Path = DEV_ITEMS, reuse: bool = False) -> tuple[str, dict]:
    """Evaluate one adapter (None = base) on `items`, store the eval run; returns (eval run id, metrics).

    With `reuse`, an earlier gate evaluation of the same adapter on the same items, seed, engine and model
    is returned instead of running again (greedy decoding: same policy, same conversations).
    """
    key = _eval_key(settings, engine)
    items_hash = file_sha256(items_path)
    if reuse:
        for run in store.list_eval_runs(adapter_id, items_hash, len(items)):
            if all(run.metrics.get(k) == v for k, v in key.items()):
                return run.id, run.metrics
    if adapter_id is not None:
        record = store.get_adapter(adapter_id)
        engine.load_adapter(adapter_id, Path(record.path))
    result = evaluate(engine, items, adapter=adapter_id, horizon=settings.max_clarifying_questions,
                      question_cost=settings.question_cost, seed=settings.seed,
                      max_new_tokens=DEFAULT_MAX_NEW_TOKENS, progress=False)
    metrics = {**result.metrics, **result.details, **key, "limit": len(items)}
    run_id = store.add_eval_run(adapter_id=adapter_id, items_path=str(Path(items_path).resolve()),
                                items_hash=items_hash, n=result.metrics["n"], metrics=metrics)
    if adapter_id is not None:
        store.set_adapter_eval(adapter_id, {**result.metrics, "eval_run_id": run_id,
                                            "items": f"{Path(items_path).name}[:{len(items)}]"})
    return run_id, metrics


def activate(store: LogStore, engine: Engine | None, adapter_id: str | None, *, kind: str = "manual",
             user_id: str | None = None, reason: str | None = None) -> None:
    """Validate and hot-load the adapter (None = base), then make it active for new conversations."""
    active = store.active_adapter()
    if (active.id if active else None) == adapter_id:
        raise PromotionError(f"{label(adapter_id)} is already active.")
    if adapter_id is not None:
        try:
            record = store.get_adapter(adapter_id)
            validate_adapter_folder(Path(record.path))
            if engine is not None:
                engine.load_adapter(adapter_id, Path(record.path))
        except (UnknownId, AdapterLoadError) as exc:
            raise PromotionError(f"Cannot activate {adapter_id}: {exc}") from exc
    store.activate_adapter(adapter_id, kind=kind, user_id=user_id, reason=reason)


def rollback_target(store: LogStore) -> tuple[str | None, str | None]:
    """(current, target): the adapter that was active before the current one became active.

    Walks the activation history backwards: rolling back twice goes two steps back, not back and forth.
    Raises PromotionError when there is nothing to roll back to.
    """
    active = store.active_adapter()
    current = active.id if active else None
    forward = store.last_forward_activation(current)
    if forward is None:
        if current is None:
            raise PromotionError("Nothing to roll back: the base model is active and no earlier activation is recorded.")
        return current, None  # activated before activations were recorded: back to the base model
    return current, forward.previous_id


def rollback(store: LogStore, engine: Engine | None, *, user_id: str | None = None) -> tuple[str | None, str | None]:
    """Re-activate the previously active adapter (or base). Returns (from, to)."""
    current, target = rollback_target(store)
    activate(store, engine, target, kind="rollback", user_id=user_id, reason=f"rollback from {label(current)}")
    return current, target


def run_gate(settings: Settings, store: LogStore, engine: Engine, candidate_id: str, *,
             promote: bool | None = None, user_id: str | None = None,
             log: Callable[[str], None] = lambda _: None, cancel: threading.Event | None = None) -> PromotionDecision:
    """Evaluate the candidate and the active adapter (or base), store the decision, promote when it passes; returns
    the stored decision."""
    promote = settings.auto_promote if promote is None else promote
    try:
        store.get_adapter(candidate_id)
    except UnknownId as exc:
        raise PromotionError(str(exc)) from exc
    active = store.active_adapter()
    baseline_id = active.id if active else None
    if baseline_id == candidate_id:
        raise PromotionError(f"{candidate_id} is already the active adapter.")
    items = gate_items(settings)
    n = len(items)
    log(f"gate: evaluating candidate {candidate_id} on {n} dev item(s)")
    cand_eval, cand_metrics = evaluate_adapter(settings, store, engine, candidate_id, items)
    log(f"gate: candidate mean reward {cand_metrics['mean_reward']:.3f}")
    if cancel is not None and cancel.is_set():
        raise GateCancelled("The gate was cancelled after the candidate's evaluation.")
    log(f"gate: evaluating the active policy ({label(baseline_id)}) on the same items")
    base_eval, base_metrics = evaluate_adapter(settings, store, engine, baseline_id, items, reuse=True)
    log(f"gate: {label(baseline_id)} mean reward {base_metrics['mean_reward']:.3f}")
    c, b, m = float(cand_metrics["mean_reward"]), float(base_metrics["mean_reward"]), settings.promotion_margin
    passed = decide(c, b, m)
    verdict = (f"candidate {c:.3f} vs {label(baseline_id)} {b:.3f} on {n} dev item(s), margin {m:g}: "
               + ("passed" if passed else f"rejected (more than {m:g} below)"))
    promoted = False
    now_active = store.active_adapter()
    if passed and promote:
        if (now_active.id if now_active else None) != baseline_id:
            verdict += "; not promoted: the active adapter changed while the gate ran"
        else:
            activate(store, engine, candidate_id, kind="gate", user_id=user_id, reason=verdict)
            promoted = True
            verdict += "; promoted to active"
    elif passed:
        verdict += "; auto-promotion is off: promote it in the Adapters tab"
    decision_id = store.add_promotion_decision(
        candidate_id=candidate_id, baseline_id=baseline_id, candidate_reward=c, baseline_reward=b, margin=m,
        n_items=n, passed=passed, promoted=promoted, candidate_eval_id=cand_eval, baseline_eval_id=base_eval,
        reason=verdict, user_id=user_id)
    log("gate: " + verdict)
    return store.get_promotion_decision(decision_id)
