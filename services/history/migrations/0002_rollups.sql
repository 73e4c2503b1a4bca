-- Rollups for analysts, kept by materialized views as rows arrive. Each view sees a row once:
-- the sink skips ids already stored before it inserts (see 0001). Read them with sum() and
-- GROUP BY: (Summing|Aggregating)MergeTree add rows up on merge, not at insert time; read
-- uniqExact states with uniqExactMerge().

-- Usage and credits per member, day, feature and model.
CREATE TABLE IF NOT EXISTS usage_daily
(
    day                 Date,
    user_id             String,
    feature             LowCardinality(String),
    model               LowCardinality(String),
    events              SimpleAggregateFunction(sum, UInt64),
    tasks               AggregateFunction(uniqExact, String),
    input_tokens        SimpleAggregateFunction(sum, UInt64),
    output_tokens       SimpleAggregateFunction(sum, UInt64),
    cached_input_tokens SimpleAggregateFunction(sum, UInt64),
    cost_micros         SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, user_id, feature, model);

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_daily_mv TO usage_daily AS
SELECT
    toDate(occurred_at) AS day,
    user_id,
    feature,
    model,
    count() AS events,
    uniqExactState(task_id) AS tasks,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(cost_micros) AS cost_micros
FROM usage_events
GROUP BY day, user_id, feature, model;

-- Ledger movements per tier, day and kind (debits, grants, expiries, resets, overdrafts...).
CREATE TABLE IF NOT EXISTS ledger_daily_by_tier
(
    day           Date,
    tier_id       LowCardinality(String),
    kind          LowCardinality(String),
    grant_class   LowCardinality(String),
    entries       SimpleAggregateFunction(sum, UInt64),
    members       AggregateFunction(uniqExact, String),
    amount_micros SimpleAggregateFunction(sum, Int64),
    detail_micros SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, tier_id, kind, grant_class);

CREATE MATERIALIZED VIEW IF NOT EXISTS ledger_daily_by_tier_mv TO ledger_daily_by_tier AS
SELECT
    toDate(event_at) AS day,
    ifNull(tier_id, '') AS tier_id,
    kind,
    ifNull(grant_class, '') AS grant_class,
    count() AS entries,
    uniqExactState(user_id) AS members,
    sum(amount_micros) AS amount_micros,
    sum(detail_micros) AS detail_micros
FROM ledger_entries
GROUP BY day, tier_id, kind, grant_class;

-- Bonus credits per grant: issued, spent, forfeited (and revoked), for campaign analysis. A
-- refresh of a recurring bonus (kind reset) issues its refill and forfeits what it dropped.
CREATE TABLE IF NOT EXISTS bonus_by_grant
(
    grant_id         String,
    user_id          String,
    issued_micros    Int64,
    spent_micros     Int64,
    forfeited_micros Int64,
    revoked_micros   Int64
)
ENGINE = SummingMergeTree
ORDER BY (user_id, grant_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS bonus_by_grant_mv TO bonus_by_grant AS
SELECT
    assumeNotNull(grant_id) AS grant_id,
    user_id,
    sumIf(amount_micros, kind IN ('grant', 'adjust') AND amount_micros > 0)
        + sumIf(amount_micros + detail_micros, kind = 'reset') AS issued_micros,
    -sumIf(amount_micros, kind IN ('debit', 'adjust') AND amount_micros < 0) AS spent_micros,
    -sumIf(amount_micros, kind = 'expire') + sumIf(detail_micros, kind = 'reset') AS forfeited_micros,
    -sumIf(amount_micros, kind = 'revoke') AS revoked_micros
FROM ledger_entries
WHERE grant_class = 'bonus' AND grant_id IS NOT NULL
GROUP BY grant_id, user_id;

-- Overdrafts per member and day: the shortfall of tasks that ran past the balance.
CREATE TABLE IF NOT EXISTS overdrafts_daily
(
    day              Date,
    user_id          String,
    overdrafts       UInt64,
    shortfall_micros Int64,
    carried_micros   Int64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS overdrafts_daily_mv TO overdrafts_daily AS
SELECT
    toDate(event_at) AS day,
    user_id,
    count() AS overdrafts,
    sum(detail_micros) AS shortfall_micros,
    -sum(amount_micros) AS carried_micros
FROM ledger_entries
WHERE kind = 'overdraft'
GROUP BY day, user_id;
