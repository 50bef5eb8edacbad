-- Issue 13: alert_log says which band or baseline fired. For a MySQL volume created
-- before this change (the schema is applied on the first start only). Run once:
--   docker exec -i mysql sh -c 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql -uroot stock_analytics' \
--     < database/migrations/001_alert_log_why.sql
-- Until then the alerts service keeps storing alerts without these columns (and says so).
ALTER TABLE alert_log
  ADD COLUMN band          SMALLINT      NULL COMMENT 'price_change: the move exceeds band x threshold',
  ADD COLUMN baseline      DECIMAL(20,4) NULL COMMENT 'volume_spike: the usual volume compared with',
  ADD COLUMN baseline_kind VARCHAR(16)   NULL COMMENT 'time_of_day or recent_average';
