-- Top members by credits spent in a period.
-- Params: from (DateTime64), to (DateTime64), limit (UInt32).
-- Reads the usage_daily rollup: one row per member, day, feature and model.
SELECT
    user_id,
    sum(cost_micros) / 1e6 AS credits,
    sum(events) AS events,
    uniqExactMerge(tasks) AS tasks
FROM usage_daily
WHERE day >= toDate({from:DateTime64(3, 'UTC')}) AND day < toDate({to:DateTime64(3, 'UTC')})
GROUP BY user_id
ORDER BY credits DESC, user_id
LIMIT {limit:UInt32}
