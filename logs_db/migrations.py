"""Numbered schema migrations, recorded in ``_migrations`` (the simonw/llm way).

Append new migrations to the end of ``MIGRATIONS``; never edit an applied one.
Each runs in its own transaction together with its bookkeeping row, so a crash
leaves the schema either before or after a migration, never half-way.
"""

from __future__ import annotations

# The summary columns from the turns and ratings, by their definitions: migration 3 backfills with it, and a
# bulk load that writes turns with SQL (bench/logs.py) runs it after.
REBUILD_SUMMARY_SQL = """
UPDATE conversations
SET final_idx = s.final_idx, final_turn_id = s.final_turn_id, first_agent_kind = s.first_kind,
    rated_reward = s.rated_reward
FROM (
    WITH agent AS (
        SELECT conversation_id, max(idx) AS final_idx, arg_max(id, idx) AS final_turn_id,
               arg_min(kind, idx) AS first_kind
        FROM turns WHERE role = 'assistant' AND status = 'ok' GROUP BY conversation_id
    ),
    last_rating AS (
        SELECT r.conversation_id, arg_max(r.reward, r.created_at) AS rated_reward
        FROM ratings r JOIN agent a ON r.turn_id = a.final_turn_id GROUP BY r.conversation_id
    )
    SELECT a.*, lr.rated_reward FROM agent a LEFT JOIN last_rating lr USING (conversation_id)
) s
WHERE conversations.id = s.conversation_id
"""

MIGRATIONS: list[tuple[str, str]] = [
    (
        "initial",
        """
        CREATE TABLE conversations (
            id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            source VARCHAR NOT NULL,            -- ui | simulated | import
            context_key VARCHAR NOT NULL,       -- item id, or a hash of the reference notes
            context VARCHAR NOT NULL,           -- the agent's reference notes
            adapter_id VARCHAR,                 -- NULL = base model
            engine VARCHAR,
            arm VARCHAR,                        -- A/B arm, NULL when no experiment
            user_id VARCHAR,
            reward DOUBLE,                      -- grader reward for simulated conversations
            meta VARCHAR                        -- JSON
        );
        CREATE TABLE turns (
            id VARCHAR PRIMARY KEY,
            conversation_id VARCHAR NOT NULL,
            idx INTEGER NOT NULL,
            role VARCHAR NOT NULL,              -- user | assistant
            kind VARCHAR NOT NULL,              -- user | ask | answer
            text VARCHAR NOT NULL,
            adapter_id VARCHAR,
            engine VARCHAR,
            latency_ms DOUBLE,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            status VARCHAR NOT NULL DEFAULT 'ok', -- ok | failed
            error VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE INDEX turns_conversation ON turns (conversation_id);
        CREATE TABLE ratings (
            id VARCHAR PRIMARY KEY,
            turn_id VARCHAR NOT NULL,
            conversation_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,              -- thumbs | stars
            value DOUBLE NOT NULL,
            comment VARCHAR,
            reward DOUBLE NOT NULL,             -- normalized to [0, 1]
            user_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE INDEX ratings_conversation ON ratings (conversation_id);
        CREATE TABLE adapters (
            id VARCHAR PRIMARY KEY,
            parent_id VARCHAR,
            method VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            hyperparams VARCHAR,                -- JSON
            snapshot_hash VARCHAR,
            train_metrics VARCHAR,              -- JSON
            eval_results VARCHAR,               -- JSON
            status VARCHAR NOT NULL,            -- candidate | active | retired
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE training_runs (
            id VARCHAR PRIMARY KEY,
            method VARCHAR NOT NULL,
            status VARCHAR NOT NULL,            -- running | succeeded | failed | cancelled
            started_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            finished_at TIMESTAMP,
            adapter_id VARCHAR,
            snapshot_path VARCHAR,
            n_conversations INTEGER,
            error VARCHAR,
            config VARCHAR                      -- JSON
        );
        CREATE TABLE eval_runs (
            id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            adapter_id VARCHAR,
            items_path VARCHAR NOT NULL,
            items_hash VARCHAR NOT NULL,
            n INTEGER NOT NULL,
            metrics VARCHAR NOT NULL            -- JSON
        );
        """,
    ),
    (
        "activations_and_promotions",
        """
        -- Every change of the active adapter (UI, gate, rollback, CLI): rollback walks this history.
        CREATE TABLE activations (
            id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            seq BIGINT NOT NULL,                -- order of activations (timestamps can tie)
            adapter_id VARCHAR,                 -- NULL = base model
            previous_id VARCHAR,                -- what was active before; NULL = base model
            kind VARCHAR NOT NULL,              -- manual | gate | rollback | cli
            user_id VARCHAR,
            reason VARCHAR
        );
        -- The promotion gate's decisions: candidate vs the adapter active at the time, on the same items.
        CREATE TABLE promotion_decisions (
            id VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            candidate_id VARCHAR NOT NULL,
            baseline_id VARCHAR,                -- NULL = base model
            candidate_reward DOUBLE NOT NULL,
            baseline_reward DOUBLE NOT NULL,
            margin DOUBLE NOT NULL,
            n_items INTEGER NOT NULL,
            candidate_eval_id VARCHAR,
            baseline_eval_id VARCHAR,
            passed BOOLEAN NOT NULL,
            promoted BOOLEAN NOT NULL,
            reason VARCHAR,
            user_id VARCHAR
        );
        ALTER TABLE training_runs ADD COLUMN trigger VARCHAR;   -- cli | ui | scheduler
        """,
    ),
    (
        "conversation_summary",
        """
        -- Kept by the store on every write (logs_db/writer.py, LogStore.add_rating), so the snapshot and the
        -- insights read one row per conversation instead of aggregating every turn.
        ALTER TABLE conversations ADD COLUMN final_idx INTEGER;         -- idx of the last ok agent turn
        ALTER TABLE conversations ADD COLUMN final_turn_id VARCHAR;     -- id of the last ok agent turn
        ALTER TABLE conversations ADD COLUMN first_agent_kind VARCHAR;  -- kind of the first ok agent turn
        ALTER TABLE conversations ADD COLUMN rated_reward DOUBLE;       -- last rating of the final agent turn
        """ + REBUILD_SUMMARY_SQL,
    ),
    (
        "turn_exploration",
        """
        -- The serving policy's ask decision on each agent turn that may ask (issue 33; agent/decision.py
        -- Exploration). NULL on user turns, on turns that could not ask, and where no decision was read.
        ALTER TABLE turns ADD COLUMN p_ask DOUBLE;         -- the decision's P(the reply asks)
        ALTER TABLE turns ADD COLUMN action VARCHAR;       -- ask | answer: the action taken
        ALTER TABLE turns ADD COLUMN propensity DOUBLE;    -- the serving policy's probability of that action
        ALTER TABLE turns ADD COLUMN explored BOOLEAN;     -- the exploration took the action the decision did not
        """,
    ),
]


def apply_migrations(conn) -> list[str]:
    """Bring the schema up to date; returns the names applied now (empty when current)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM _migrations").fetchall()}
    applied = []
    for version, (name, sql) in enumerate(MIGRATIONS, start=1):
        if version in done:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(sql)
            conn.execute("INSERT INTO _migrations (version, name) VALUES (?, ?)", [version, name])
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
