-- Issue 23: daily_aggregates stores EMA-20, Bollinger (20, 2) and MACD (12, 26, 9) next to
-- SMA-20 and RSI-14. For a MySQL volume created before this change (the schema is applied on
-- the first start only). Run once, then recompute the indicators of the stored days:
--   docker exec -i mysql sh -c 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql -uroot stock_analytics' \
--     < database/migrations/002_daily_indicators.sql
--   docker exec batch python batch/backfill.py --force
-- Until then the batch job stops with one line naming this file (it cannot store the new
-- columns) and the dashboard shows the charts without them.
ALTER TABLE daily_aggregates
  ADD COLUMN ema_20      DECIMAL(14,4) NULL COMMENT 'EMA-20 seeded with the first close, NULL until 20 closes' AFTER rsi_14,
  ADD COLUMN bb_middle   DECIMAL(14,4) NULL COMMENT 'Bollinger (20, 2): SMA-20' AFTER ema_20,
  ADD COLUMN bb_upper    DECIMAL(14,4) NULL COMMENT 'Bollinger (20, 2): middle + 2 population std-devs' AFTER bb_middle,
  ADD COLUMN bb_lower    DECIMAL(14,4) NULL COMMENT 'Bollinger (20, 2): middle - 2 population std-devs' AFTER bb_upper,
  ADD COLUMN macd        DECIMAL(14,6) NULL COMMENT 'MACD (12, 26, 9) line: EMA-12 - EMA-26, NULL until 26 closes' AFTER bb_lower,
  ADD COLUMN macd_signal DECIMAL(14,6) NULL COMMENT 'EMA-9 of the MACD line, NULL until 34 closes' AFTER macd,
  ADD COLUMN macd_hist   DECIMAL(14,6) NULL COMMENT 'MACD line - signal' AFTER macd_signal;
