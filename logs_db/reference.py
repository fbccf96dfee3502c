"""The log's aggregate queries by their definitions: every answer computed from all turns and ratings.

The snapshot (logs_db/snapshot.py) and the insights (logs_db/insights.py) read summary columns kept on every
write (migration 3) and give exactly these results, much faster at 1M turns. These definitions are the
reference: tests/logs_db/test_fast_paths.py checks the equality, bench/logs.py times both.
"""

from __future__ import annotations

from . import insights

SNAPSHOT_SQL = """
WITH final_turn AS (
    SELECT conversation_id, arg_max(idx, idx) AS final_idx, arg_max(id, idx) AS turn_id
    FROM turns WHERE role = 'assistant' AND status = 'ok' GROUP BY conversation_id
),
last_rating AS (
    SELECT r.conversation_id, arg_max(r.reward, r.created_at) AS reward
    FROM ratings r JOIN final_turn f ON r.turn_id = f.turn_id GROUP BY r.conversation_id
),
msgs AS (
    SELECT t.conversation_id,
           list({'role': t.role, 'content': t.text, 'kind': t.kind} ORDER BY t.idx) AS messages
    FROM turns t JOIN final_turn f ON f.conversation_id = t.conversation_id
    WHERE t.status = 'ok' AND t.idx <= f.final_idx
    GROUP BY t.conversation_id
)
SELECT c.id AS conversation_id, c.context_key, c.context, c.source, c.adapter_id, c.created_at,
       coalesce(c.reward, lr.reward) AS reward, m.messages
FROM conversations c
JOIN msgs m ON m.conversation_id = c.id
LEFT JOIN last_rating lr ON lr.conversation_id = c.id
WHERE coalesce(c.reward, lr.reward) IS NOT NULL
  AND (CAST(? AS VARCHAR) IS NULL OR c.source = ?)
  AND (CAST(? AS TIMESTAMP) IS NULL OR c.created_at >= ?)
  AND (CAST(? AS TIMESTAMP) IS NULL OR c.created_at < ?)
  AND (NOT CAST(? AS BOOLEAN) OR c.adapter_id IS NOT DISTINCT FROM ?)
ORDER BY c.created_at, c.id
"""

RATED = """
WITH final_turn AS (
    SELECT conversation_id, arg_max(id, idx) AS turn_id
    FROM turns WHERE role = 'assistant' AND status = 'ok' GROUP BY conversation_id
),
last_rating AS (
    SELECT r.conversation_id, arg_max(r.reward, r.created_at) AS reward
    FROM ratings r JOIN final_turn f ON r.turn_id = f.turn_id GROUP BY r.conversation_id
),
rated AS (
    SELECT c.id, c.source, c.adapter_id, c.arm, c.created_at, coalesce(c.reward, lr.reward) AS reward
    FROM conversations c LEFT JOIN last_rating lr ON lr.conversation_id = c.id
    WHERE coalesce(c.reward, lr.reward) IS NOT NULL
      AND (CAST(? AS VARCHAR) IS NULL OR c.source = ?)
)
"""

ASK_RATE_PER_DAY_SQL = """
WITH first_agent AS (
    SELECT conversation_id, arg_min(kind, idx) AS kind
    FROM turns WHERE role = 'assistant' AND status = 'ok' GROUP BY conversation_id
)
SELECT CAST(date_trunc('day', c.created_at) AS TIMESTAMP) AS day, c.source,
       avg(CASE WHEN f.kind = 'ask' THEN 1.0 ELSE 0.0 END) AS ask_rate, count(*) AS conversations
FROM conversations c JOIN first_agent f ON f.conversation_id = c.id
WHERE CAST(? AS VARCHAR) IS NULL OR c.source = ?
GROUP BY ALL ORDER BY day, c.source
"""

# The insights functions (by name) that read the summary, and their reference SQL (?, ? = source, source).
INSIGHTS = {
    "reward_per_day": RATED + insights.REWARD_PER_DAY_SQL[len(insights._RATED):],
    "reward_per_adapter": RATED + insights.REWARD_PER_ADAPTER_SQL[len(insights._RATED):],
    "arms": RATED + insights.ARMS_SQL[len(insights._RATED):],
    "ask_rate_per_day": ASK_RATE_PER_DAY_SQL,
}
