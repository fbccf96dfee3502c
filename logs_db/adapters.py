"""The adapter registry: trained adapters, which one is active (and every change of it), the promotion gate's
decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .base import LogError, StoreBase, UnknownId, from_json, new_id, to_json

ADAPTER_STATUSES = ("candidate", "active", "retired")
ACTIVATION_KINDS = ("manual", "gate", "rollback", "cli")


@dataclass(frozen=True)
class Adapter:
    id: str
    parent_id: str | None
    method: str
    path: str
    hyperparams: dict
    snapshot_hash: str | None
    train_metrics: dict
    eval_results: dict
    status: str
    created_at: datetime


@dataclass(frozen=True)
class Activation:
    """One change of the active adapter; rollback walks these backwards."""
    id: str
    created_at: datetime
    seq: int                      # order of activations (timestamps can tie)
    adapter_id: str | None        # None = base model
    previous_id: str | None       # what was active before; None = base model
    kind: str                     # manual | gate | rollback | cli
    user_id: str | None
    reason: str | None


@dataclass(frozen=True)
class PromotionDecision:
    """The promotion gate's verdict: a candidate against the adapter active at the time, on the same items."""
    id: str
    created_at: datetime
    candidate_id: str
    baseline_id: str | None       # None = base model
    candidate_reward: float
    baseline_reward: float
    margin: float
    n_items: int
    candidate_eval_id: str | None
    baseline_eval_id: str | None
    passed: bool
    promoted: bool
    reason: str | None
    user_id: str | None


def _adapter(*r) -> Adapter:
    """An adapters row (in the column order of Adapter) with its JSON columns read."""
    return Adapter(*r[:4], from_json(r[4]), r[5], from_json(r[6]), from_json(r[7]), *r[8:])


_ACTIVATION_COLUMNS = "id, created_at, seq, adapter_id, previous_id, kind, user_id, reason"
_DECISION_COLUMNS = ("id, created_at, candidate_id, baseline_id, candidate_reward, baseline_reward, margin, n_items,"
                     " candidate_eval_id, baseline_eval_id, passed, promoted, reason, user_id")


class AdapterStore(StoreBase):
    def register_adapter(
        self,
        *,
        adapter_id: str,
        method: str,
        path: str,
        parent_id: str | None = None,
        hyperparams: dict | None = None,
        snapshot_hash: str | None = None,
        train_metrics: dict | None = None,
        status: str = "candidate",
    ) -> str:
        if status not in ADAPTER_STATUSES:
            raise LogError(f"Unknown adapter status {status!r}.")
        self._cur.execute(
            "INSERT INTO adapters (id, parent_id, method, path, hyperparams, snapshot_hash, train_metrics,"
            " eval_results, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [adapter_id, parent_id, method, path, to_json(hyperparams or {}), snapshot_hash,
             to_json(train_metrics or {}), to_json({}), status],
        )
        return adapter_id

    def _adapter_rows(self, where: str = "", params: list | None = None) -> list[Adapter]:
        return self._rows(_adapter, "SELECT id, parent_id, method, path, hyperparams, snapshot_hash, train_metrics,"
                                    " eval_results, status, created_at FROM adapters"
                                    f" {where} ORDER BY created_at DESC, id", params or [])

    def list_adapters(self) -> list[Adapter]:
        return self._adapter_rows()

    def get_adapter(self, adapter_id: str) -> Adapter:
        rows = self._adapter_rows("WHERE id = ?", [adapter_id])
        if not rows:
            raise UnknownId(f"No adapter with id {adapter_id!r}.")
        return rows[0]

    def active_adapter(self) -> Adapter | None:
        rows = self._adapter_rows("WHERE status = 'active'")
        return rows[0] if rows else None

    def set_adapter_eval(self, adapter_id: str, results: dict) -> None:
        self.get_adapter(adapter_id)
        self._cur.execute("UPDATE adapters SET eval_results = ? WHERE id = ?", [to_json(results), adapter_id])

    # -- activations ----------------------------------------------------------
    def activate_adapter(self, adapter_id: str | None, *, kind: str = "manual", user_id: str | None = None,
                         reason: str | None = None) -> None:
        """Make one adapter active (None = base model); the previous active one is retired.

        The change is recorded in ``activations`` (same transaction), which is what rollback walks.
        Activating what is already active changes and records nothing.
        """
        if kind not in ACTIVATION_KINDS:
            raise LogError(f"Unknown activation kind {kind!r}.")
        if adapter_id is not None:
            self.get_adapter(adapter_id)
        with self._transaction() as cur:
            row = cur.execute("SELECT id FROM adapters WHERE status = 'active' ORDER BY created_at DESC LIMIT 1").fetchone()
            previous = row[0] if row else None
            if previous == adapter_id:  # already active: nothing changes, nothing to record (rollback stays sane)
                return
            cur.execute("UPDATE adapters SET status = 'retired' WHERE status = 'active'")
            if adapter_id is not None:
                cur.execute("UPDATE adapters SET status = 'active' WHERE id = ?", [adapter_id])
            cur.execute(
                "INSERT INTO activations (id, seq, adapter_id, previous_id, kind, user_id, reason)"
                " SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ? FROM activations",
                [new_id(), adapter_id, previous, kind, user_id, reason],
            )

    def list_activations(self, limit: int = 50) -> list[Activation]:
        """Newest first."""
        return self._rows(Activation, f"SELECT {_ACTIVATION_COLUMNS} FROM activations ORDER BY seq DESC LIMIT ?",
                          [limit])

    def last_forward_activation(self, adapter_id: str | None) -> Activation | None:
        """The latest non-rollback activation that made `adapter_id` (None = base) active, or None."""
        return self.last_activation(adapter_id, rollbacks=False)

    def last_activation(self, adapter_id: str | None, *, rollbacks: bool = True) -> Activation | None:
        """The latest activation that made `adapter_id` (None = base) active (rollbacks too, unless told not), or
        None when it never was active."""
        rows = self._rows(Activation, f"SELECT {_ACTIVATION_COLUMNS} FROM activations"
                          " WHERE adapter_id IS NOT DISTINCT FROM ? AND (? OR kind <> 'rollback')"
                          " ORDER BY seq DESC LIMIT 1", [adapter_id, rollbacks])
        return rows[0] if rows else None

    # -- promotion decisions --------------------------------------------------
    def add_promotion_decision(self, *, candidate_id: str, baseline_id: str | None, candidate_reward: float,
                               baseline_reward: float, margin: float, n_items: int, passed: bool, promoted: bool,
                               candidate_eval_id: str | None = None, baseline_eval_id: str | None = None,
                               reason: str | None = None, user_id: str | None = None) -> str:
        self.get_adapter(candidate_id)
        did = new_id()
        self._cur.execute(
            "INSERT INTO promotion_decisions (id, candidate_id, baseline_id, candidate_reward, baseline_reward, margin,"
            " n_items, candidate_eval_id, baseline_eval_id, passed, promoted, reason, user_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [did, candidate_id, baseline_id, float(candidate_reward), float(baseline_reward), float(margin),
             int(n_items), candidate_eval_id, baseline_eval_id, bool(passed), bool(promoted), reason, user_id],
        )
        return did

    def get_promotion_decision(self, decision_id: str) -> PromotionDecision:
        return self._one(PromotionDecision, f"SELECT {_DECISION_COLUMNS} FROM promotion_decisions WHERE id = ?",
                         [decision_id], f"No promotion decision with id {decision_id!r}.")

    def list_promotion_decisions(self, limit: int = 50, candidate_id: str | None = None) -> list[PromotionDecision]:
        """Newest first; optionally only one candidate's."""
        return self._rows(PromotionDecision, f"SELECT {_DECISION_COLUMNS} FROM promotion_decisions"
                          " WHERE CAST(? AS VARCHAR) IS NULL OR candidate_id = ? ORDER BY created_at DESC, id LIMIT ?",
                          [candidate_id, candidate_id, limit])
