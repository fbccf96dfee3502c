"""Read-only queries behind the Insights tab. Each is a constant SQL string; values travel as bound parameters.

A conversation's reward is the one the learner trains on (logs_db/snapshot.py):
the grader's for simulated conversations, else the last rating of the final
agent reply (thumbs 1/0, stars (s-1)/4). Unrated conversations have none.

Every function returns a pandas DataFrame (what gr.LinePlot / gr.BarPlot take),
with the same columns whether or not there is data.
"""

from __future__ import annotations

import pandas as pd

from .store import LogStore

SOURCES = ("ui", "api", "simulated")

# Rated conversations with their reward, optionally of one source (?, ? = source, source). The rating reward
# (last rating of the final agent turn) is a summary column kept on every write (migration 3).
_RATED = """
WITH rated AS (
    SELECT c.id, c.source, c.adapter_id, c.arm, c.created_at, c.first_agent_kind,
           coalesce(c.reward, c.rated_reward) AS reward
    FROM conversations c
    WHERE coalesce(c.reward, c.rated_reward) IS NOT NULL
      AND (CAST(? AS VARCHAR) IS NULL OR c.source = ?)
)
"""

REWARD_PER_DAY_SQL = _RATED + """
SELECT CAST(date_trunc('day', created_at) AS TIMESTAMP) AS day, source,
       avg(reward) AS mean_reward, count(*) AS conversations
FROM rated GROUP BY ALL ORDER BY day, source
"""

REWARD_PER_ADAPTER_SQL = _RATED + """
SELECT coalesce(adapter_id, 'base') AS adapter, source, avg(reward) AS mean_reward, count(*) AS conversations,
       min(created_at) AS first_seen
FROM rated GROUP BY ALL ORDER BY first_seen, adapter, source
"""

# Share of conversations whose first agent turn is a clarifying question (kind 'ask').
ASK_RATE_PER_DAY_SQL = """
SELECT CAST(date_trunc('day', c.created_at) AS TIMESTAMP) AS day, c.source,
       avg(CASE WHEN c.first_agent_kind = 'ask' THEN 1.0 ELSE 0.0 END) AS ask_rate, count(*) AS conversations
FROM conversations c
WHERE c.first_agent_kind IS NOT NULL AND (CAST(? AS VARCHAR) IS NULL OR c.source = ?)
GROUP BY ALL ORDER BY day, c.source
"""

# Exploration (agent/decision.py): the share of the agent turns with a decision that took the other action.
EXPLORED_PER_DAY_SQL = """
SELECT CAST(date_trunc('day', t.created_at) AS TIMESTAMP) AS day, c.source,
       avg(CASE WHEN t.explored THEN 1.0 ELSE 0.0 END) AS explored_share, count(*) AS turns
FROM turns t JOIN conversations c ON c.id = t.conversation_id
WHERE t.action IS NOT NULL AND t.status = 'ok' AND (CAST(? AS VARCHAR) IS NULL OR c.source = ?)
GROUP BY ALL ORDER BY day, c.source
"""

# Mean reward of rated conversations by the action of their first agent turn (its kind is the action taken).
REWARD_BY_ACTION_SQL = _RATED + """
SELECT CAST(date_trunc('day', created_at) AS TIMESTAMP) AS day, first_agent_kind AS action,
       avg(reward) AS mean_reward, count(*) AS conversations
FROM rated WHERE first_agent_kind IS NOT NULL GROUP BY ALL ORDER BY day, action
"""

RATINGS_PER_DAY_SQL = """
SELECT CAST(date_trunc('day', r.created_at) AS TIMESTAMP) AS day, r.kind, count(*) AS ratings
FROM ratings r JOIN conversations c ON c.id = r.conversation_id
WHERE CAST(? AS VARCHAR) IS NULL OR c.source = ?
GROUP BY ALL ORDER BY day, r.kind
"""

# The latest evaluation of each adapter (base included) per items file and size.
EVAL_PER_ADAPTER_SQL = """
SELECT coalesce(adapter_id, 'base') AS adapter,
       regexp_extract(items_path, '[^/]*$') || ' (n=' || CAST(n AS VARCHAR) || ')' AS items,
       CAST(json_extract_string(arg_max(metrics, created_at), '$.mean_reward') AS DOUBLE) AS mean_reward,
       CAST(json_extract_string(arg_max(metrics, created_at), '$.accuracy') AS DOUBLE) AS accuracy,
       CAST(json_extract_string(arg_max(metrics, created_at), '$.ask_rate_ambiguous') AS DOUBLE) AS ask_rate_ambiguous,
       max(created_at) AS evaluated_at
FROM eval_runs GROUP BY adapter_id, items_path, n ORDER BY evaluated_at
"""

# Per A/B arm (and the adapter it served): mean rating reward, count, and a normal-approximation 95% CI.
ARMS_SQL = _RATED + """
SELECT arm, coalesce(adapter_id, 'base') AS adapter, count(*) AS conversations, avg(reward) AS mean_reward,
       avg(reward) - 1.96 * stddev_samp(reward) / sqrt(count(*)) AS ci95_low,
       avg(reward) + 1.96 * stddev_samp(reward) / sqrt(count(*)) AS ci95_high
FROM rated WHERE arm IS NOT NULL GROUP BY ALL ORDER BY arm, adapter
"""


def _source(source: str | None) -> str | None:
    if source in (None, "", "all"):
        return None
    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}; use all, ui, api or simulated.")
    return source


def _frame(store: LogStore, sql: str, params: list) -> pd.DataFrame:
    return store.query_arrow(sql, params).to_pandas()


def _by_source(store: LogStore, sql: str, source: str | None) -> pd.DataFrame:
    """A query whose two parameters pick one source (None: all)."""
    s = _source(source)
    return _frame(store, sql, [s, s])


def reward_per_day(store: LogStore, source: str | None = None) -> pd.DataFrame:
    return _by_source(store, REWARD_PER_DAY_SQL, source)


def reward_per_adapter(store: LogStore, source: str | None = None) -> pd.DataFrame:
    return _by_source(store, REWARD_PER_ADAPTER_SQL, source)


def ask_rate_per_day(store: LogStore, source: str | None = None) -> pd.DataFrame:
    return _by_source(store, ASK_RATE_PER_DAY_SQL, source)


def explored_per_day(store: LogStore, source: str | None = None) -> pd.DataFrame:
    return _by_source(store, EXPLORED_PER_DAY_SQL, source)


def reward_by_action_per_day(store: LogStore, source: str | None = None) -> pd.DataFrame:
    return _by_source(store, REWARD_BY_ACTION_SQL, source)


def ratings_per_day(store: LogStore, source: str | None = None) -> pd.DataFrame:
    return _by_source(store, RATINGS_PER_DAY_SQL, source)


def eval_per_adapter(store: LogStore) -> pd.DataFrame:
    return _frame(store, EVAL_PER_ADAPTER_SQL, [])


def arms(store: LogStore) -> pd.DataFrame:
    """A/B arms of UI conversations (rated ones only). The CI is empty for fewer than 2 conversations."""
    return _frame(store, ARMS_SQL, [None, None])
