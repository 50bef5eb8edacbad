-- Stock Analysis System: MySQL schema (database stock_analytics).
--
-- Loaded by the MySQL container on first start (mounted into
-- /docker-entrypoint-initdb.d) and by the tests. Safe to run twice: every
-- statement is IF NOT EXISTS or idempotent. Money is DECIMAL, never FLOAT.
--
-- The two users below get development passwords so that a fresh
-- `docker compose up -d` works with no .env; database/mysql_init_users.sh
-- (run right after this file by the container) replaces them with
-- MYSQL_PASSWORD / GRAFANA_DB_PASSWORD from the environment.

CREATE DATABASE IF NOT EXISTS stock_analytics
  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE stock_analytics;

-- One row per symbol per market day, written by batch/daily_aggregation.py.
CREATE TABLE IF NOT EXISTS daily_aggregates (
  id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  symbol           VARCHAR(16)     NOT NULL,
  date             DATE            NOT NULL,
  open_price       DECIMAL(14,4)   NOT NULL,
  close_price      DECIMAL(14,4)   NOT NULL,
  high_price       DECIMAL(14,4)   NOT NULL,
  low_price        DECIMAL(14,4)   NOT NULL,
  avg_price        DECIMAL(14,4)   NOT NULL,
  total_volume     BIGINT UNSIGNED NOT NULL DEFAULT 0,
  avg_volume       DECIMAL(20,2)   NOT NULL DEFAULT 0,
  volatility       DECIMAL(14,6)   NULL COMMENT 'population std-dev of the day''s prices',
  daily_change_pct DECIMAL(10,4)   NULL COMMENT '(close - open) / open * 100',
  sma_20           DECIMAL(14,4)   NULL COMMENT 'NULL until 20 daily closes exist',
  rsi_14           DECIMAL(7,3)    NULL COMMENT 'Wilder RSI-14, NULL until 15 daily closes exist',
  -- Issue 23 (batch/indicators.py); an install from before them: database/migrations/002_daily_indicators.sql.
  ema_20           DECIMAL(14,4)   NULL COMMENT 'EMA-20 seeded with the first close, NULL until 20 closes',
  bb_middle        DECIMAL(14,4)   NULL COMMENT 'Bollinger (20, 2): SMA-20',
  bb_upper         DECIMAL(14,4)   NULL COMMENT 'Bollinger (20, 2): middle + 2 population std-devs',
  bb_lower         DECIMAL(14,4)   NULL COMMENT 'Bollinger (20, 2): middle - 2 population std-devs',
  macd             DECIMAL(14,6)   NULL COMMENT 'MACD (12, 26, 9) line: EMA-12 - EMA-26, NULL until 26 closes',
  macd_signal      DECIMAL(14,6)   NULL COMMENT 'EMA-9 of the MACD line, NULL until 34 closes',
  macd_hist        DECIMAL(14,6)   NULL COMMENT 'MACD line - signal',
  tick_count       INT UNSIGNED    NOT NULL DEFAULT 0,
  source           VARCHAR(16)     NOT NULL COMMENT 'real, yahoo (backfilled bars), simulated or mixed',
  created_at       TIMESTAMP       NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at       TIMESTAMP       NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  UNIQUE KEY uq_daily_symbol_date (symbol, date),
  KEY ix_daily_date (date)
) ENGINE=InnoDB;

-- One row per symbol per ISO week.
CREATE TABLE IF NOT EXISTS weekly_aggregates (
  id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  symbol           VARCHAR(16)     NOT NULL,
  iso_year         SMALLINT        NOT NULL,
  iso_week         TINYINT         NOT NULL,
  week_start       DATE            NOT NULL,
  week_end         DATE            NOT NULL,
  open_price       DECIMAL(14,4)   NOT NULL,
  close_price      DECIMAL(14,4)   NOT NULL,
  high_price       DECIMAL(14,4)   NOT NULL,
  low_price        DECIMAL(14,4)   NOT NULL,
  avg_price        DECIMAL(14,4)   NOT NULL,
  total_volume     BIGINT UNSIGNED NOT NULL DEFAULT 0,
  weekly_change_pct DECIMAL(10,4)  NULL,
  trading_days     TINYINT         NOT NULL DEFAULT 0,
  source           VARCHAR(16)     NOT NULL,
  updated_at       TIMESTAMP       NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  UNIQUE KEY uq_weekly_symbol_week (symbol, iso_year, iso_week),
  KEY ix_weekly_start (week_start)
) ENGINE=InnoDB;

-- One row per symbol: the latest performance figures.
CREATE TABLE IF NOT EXISTS stock_performance (
  symbol                    VARCHAR(16)   NOT NULL PRIMARY KEY,
  as_of_date                DATE          NOT NULL,
  latest_close              DECIMAL(14,4) NOT NULL,
  return_7d_pct             DECIMAL(10,4) NULL,
  return_30d_pct            DECIMAL(10,4) NULL,
  return_90d_pct            DECIMAL(10,4) NULL,
  annualized_volatility_pct DECIMAL(10,4) NULL,
  max_drawdown_90d_pct      DECIMAL(10,4) NULL,
  rsi_14                    DECIMAL(7,3)  NULL,
  sma_20                    DECIMAL(14,4) NULL,
  trend                     VARCHAR(16)   NULL COMMENT 'above_sma, below_sma or NULL',
  source                    VARCHAR(16)   NOT NULL,
  updated_at                TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB;

-- Every alert raised by streaming/alerts.py. alert_key (symbol|rule|quote time)
-- makes a redelivered quote harmless: the same alert is never stored twice.
CREATE TABLE IF NOT EXISTS alert_log (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  alert_key       VARCHAR(128)    NOT NULL,
  symbol          VARCHAR(16)     NOT NULL,
  rule            VARCHAR(32)     NOT NULL COMMENT 'price_change or volume_spike',
  value           DECIMAL(20,4)   NOT NULL,
  threshold       DECIMAL(20,4)   NOT NULL,
  price           DECIMAL(14,4)   NOT NULL,
  quote_timestamp DATETIME(3)     NOT NULL,
  message         VARCHAR(512)    NOT NULL,
  source          VARCHAR(16)     NOT NULL DEFAULT 'simulated',
  email_status    VARCHAR(16)     NOT NULL DEFAULT 'pending' COMMENT 'sent, failed, disabled, pending',
  email_error     VARCHAR(512)    NULL,
  created_at      DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  -- Why it fired (issue 13); an install from before them: database/migrations/001_alert_log_why.sql.
  band            SMALLINT        NULL COMMENT 'price_change: the move exceeds band x threshold',
  baseline        DECIMAL(20,4)   NULL COMMENT 'volume_spike: the usual volume compared with',
  baseline_kind   VARCHAR(16)     NULL COMMENT 'time_of_day or recent_average',
  UNIQUE KEY uq_alert_key (alert_key),
  KEY ix_alert_symbol_created (symbol, created_at),
  KEY ix_alert_created (created_at)
) ENGINE=InnoDB;

-- Least privilege: the services read and write rows, nothing more.
CREATE USER IF NOT EXISTS 'stock_app'@'%' IDENTIFIED BY 'stock_app_dev_password';
GRANT SELECT, INSERT, UPDATE, DELETE ON stock_analytics.* TO 'stock_app'@'%';

-- Grafana only reads.
CREATE USER IF NOT EXISTS 'grafana_reader'@'%' IDENTIFIED BY 'grafana_dev_password';
GRANT SELECT ON stock_analytics.* TO 'grafana_reader'@'%';
