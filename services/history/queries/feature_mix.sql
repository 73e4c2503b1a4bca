-- Feature mix: share of events, tokens and credits per feature and model in a period.
-- Params: from, to (DateTime64).
SELECT
    feature,
    model,
    sum(events) AS events,
    sum(input_tokens + output_tokens + cached_input_tokens) AS tokens,
    sum(cost_micros) / 1e6 AS credits,
    round(100 * sum(cost_micros) / sum(sum(cost_micros)) OVER (), 2) AS credit_share_percent
FROM usage_daily
WHERE day >= toDate({from:DateTime64(3, 'UTC')}) AND day < toDate({to:DateTime64(3, 'UTC')})
GROUP BY feature, model
ORDER BY credits DESC, feature, model
