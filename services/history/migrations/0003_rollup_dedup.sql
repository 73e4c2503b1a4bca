-- The sink's insert deduplication token covers the rollups too. The same rows may be sent again
-- with the same token: a retry after a request timeout while the attempt the sink gave up on
-- still runs (ClickHouse finishes a write whose client left), so the stored-ids check found
-- nothing yet. The raw table drops that block as a duplicate and its materialized views still
-- push theirs; with deduplicate_blocks_in_dependent_materialized_views, which the sink sets, each
-- rollup drops its block too, within its non_replicated_deduplication_window. The rollups had no
-- window, so such a block counted twice. Another batch whose rollup rows happen to equal an
-- earlier batch's carries a token of its own and is kept (history-sink.test.ts checks both).

ALTER TABLE usage_daily MODIFY SETTING non_replicated_deduplication_window = 1000;

ALTER TABLE ledger_daily_by_tier MODIFY SETTING non_replicated_deduplication_window = 1000;

ALTER TABLE bonus_by_grant MODIFY SETTING non_replicated_deduplication_window = 1000;

ALTER TABLE overdrafts_daily MODIFY SETTING non_replicated_deduplication_window = 1000;
