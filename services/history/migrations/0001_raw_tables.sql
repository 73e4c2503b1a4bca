-- Raw history: every ledger entry, every accepted usage event, every grant command, every dead
-- letter. Deduplication: ReplacingMergeTree on the record's own id (the sorting key ends with
-- it), so a row written twice collapses on merge and reads exactly once with FINAL; the sink
-- also skips ids already present and sends an insert deduplication token per batch, so the
-- rollups fed by materialized views never see a row twice.
-- Partitioned by month of the business time; sorted by member first (the balance page and the
-- rebuild read one member at a time; analysts filter by member or scan a month).

CREATE TABLE IF NOT EXISTS ledger_entries
(
    entry_id             String,
    kind                 LowCardinality(String),
    user_id              String,
    grant_id             Nullable(String),
    grant_class          LowCardinality(Nullable(String)),
    tier_id              LowCardinality(Nullable(String)),
    amount_micros        Int64 CODEC(T64, ZSTD(1)),
    balance_after_micros Int64 CODEC(T64, ZSTD(1)),
    detail_micros        Int64 CODEC(T64, ZSTD(1)),
    feature              LowCardinality(Nullable(String)),
    task_id              Nullable(String),
    event_at             DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    processed_at         DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    source_topic         LowCardinality(Nullable(String)),
    source_partition     Nullable(Int32),
    source_offset        Nullable(Int64),
    ledger_partition     Int32,
    ledger_offset        Int64,
    inserted_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(event_at)
ORDER BY (user_id, entry_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Raw usage is kept 400 days (13 months of analysis plus margin); the ledger has no TTL: it is
-- the record from which balances are rebuilt.
CREATE TABLE IF NOT EXISTS usage_events
(
    event_id            String,
    user_id             String,
    task_id             String,
    feature             LowCardinality(String),
    task_kind           LowCardinality(Nullable(String)),
    model               LowCardinality(String),
    input_tokens        UInt64 CODEC(T64, ZSTD(1)),
    output_tokens       UInt64 CODEC(T64, ZSTD(1)),
    cached_input_tokens UInt64 CODEC(T64, ZSTD(1)),
    cost_micros         Int64 CODEC(T64, ZSTD(1)),
    rate_card_version   LowCardinality(String),
    occurred_at         DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    service             LowCardinality(String),
    kafka_partition     Int32,
    kafka_offset        Int64,
    inserted_at         DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (user_id, event_id)
TTL toDateTime(occurred_at) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Grant commands as issued (the grant id is the command id): source and campaign for analysts.
CREATE TABLE IF NOT EXISTS grant_commands
(
    grant_id       String,
    user_id        String,
    source         LowCardinality(String),
    campaign       LowCardinality(String),
    amount_micros  Int64,
    effective_from DateTime64(3, 'UTC'),
    expires_at     DateTime64(3, 'UTC'),
    issued_by      LowCardinality(String),
    issued_at      DateTime64(3, 'UTC'),
    inserted_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(issued_at)
ORDER BY (user_id, grant_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Records the consumer could not decode or validate, with the reason; kept 90 days.
CREATE TABLE IF NOT EXISTS dead_letters
(
    source_topic     LowCardinality(String),
    source_partition Int32,
    source_offset    Int64,
    reason           LowCardinality(String),
    detail           String,
    value_base64     String CODEC(ZSTD(3)),
    dead_at          DateTime64(3, 'UTC'),
    dlq_partition    Int32,
    dlq_offset       Int64,
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(dead_at)
ORDER BY (source_topic, source_partition, source_offset)
TTL toDateTime(dead_at) + INTERVAL 90 DAY;
