-- Distribution of the credits one task costs, per feature (and agent task kind), in a period:
-- count, mean and the 50th, 90th and 99th percentiles.
-- Params: from, to (DateTime64).
SELECT
    feature,
    ifNull(task_kind, '') AS task_kind,
    count() AS tasks,
    round(avg(cost) / 1e6, 4) AS mean_credits,
    round(quantileExact(0.5)(cost) / 1e6, 4) AS p50_credits,
    round(quantileExact(0.9)(cost) / 1e6, 4) AS p90_credits,
    round(quantileExact(0.99)(cost) / 1e6, 4) AS p99_credits
FROM
(
    SELECT user_id, task_id, any(feature) AS feature, any(task_kind) AS task_kind, sum(cost_micros) AS cost
    FROM usage_events FINAL
    WHERE occurred_at >= {from:DateTime64(3, 'UTC')} AND occurred_at < {to:DateTime64(3, 'UTC')}
    GROUP BY user_id, task_id
)
GROUP BY feature, task_kind
ORDER BY feature, task_kind
