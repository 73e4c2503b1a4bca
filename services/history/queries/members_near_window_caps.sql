-- Members whose usage in the 5 hours before `at` is at or above `threshold_percent` of their
-- tier's 5-hour cap (the tier is the one on their latest ledger entry). Caps come from the
-- plans as two parallel arrays (tiers without a 5-hour cap are left out).
-- An approximation of the consumer's windows (which start at the first usage after the last
-- window ended): good for spotting heavy members, not for refusing tasks.
-- Params: at (DateTime64), tiers (Array(String)), caps_micros (Array(Int64)), threshold_percent (UInt8).
SELECT
    u.user_id,
    t.latest_tier AS tier_id,
    u.used_micros / 1e6 AS used_credits,
    arrayElement({caps_micros:Array(Int64)}, indexOf({tiers:Array(String)}, t.latest_tier)) AS cap,
    cap / 1e6 AS cap_credits,
    round(100 * u.used_micros / cap, 1) AS used_percent
FROM
(
    SELECT user_id, sum(cost_micros) AS used_micros
    FROM usage_events FINAL
    WHERE occurred_at > {at:DateTime64(3, 'UTC')} - INTERVAL 5 HOUR AND occurred_at <= {at:DateTime64(3, 'UTC')}
    GROUP BY user_id
) AS u
INNER JOIN
(
    SELECT user_id, argMax(tier_id, processed_at) AS latest_tier
    FROM ledger_entries FINAL
    WHERE tier_id IS NOT NULL
    GROUP BY user_id
) AS t ON t.user_id = u.user_id
WHERE cap > 0 AND u.used_micros * 100 >= cap * {threshold_percent:UInt8}
ORDER BY used_percent DESC, u.user_id
