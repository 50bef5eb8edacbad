"""One typed settings object for every service, read from the environment.

Values come from environment variables and, when present, a `.env` file in the
working directory (python-dotenv via pydantic-settings). Every field has a
default that works inside the Docker Compose stack, so `docker compose up -d`
needs no `.env`. `.env.example` documents every variable; keep the two in step
(tests/test_settings.py checks that they are).
"""

from __future__ import annotations

import ipaddress
import re
import sys
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config.sources import QUOTE_SOURCE_NAMES, SOURCE_NAMES, Source

# Tickers as exchanges print them: AAPL, BRK.B, RDS-A.
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
# A host name as sent on the wire (ASCII, lower case; IDNA already applied); `_` for compose service names.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
HOST_NAME_RE = re.compile(rf"(?=.{{1,253}}$)(?:{_LABEL})(?:\.{_LABEL})*")

Port = Annotated[int, Field(ge=1, le=65535)]
CsvList = Annotated[list[str], NoDecode]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- Kafka -----------------------------------------------------------------
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_topic: str = "stock-prices"
    kafka_dlq_topic: str = "stock-prices.dlq"
    kafka_partitions: int = Field(3, ge=1, le=1000)
    kafka_replication_factor: int = Field(1, ge=1, le=10)
    kafka_consumer_group: str = "stock-consumer-group"
    kafka_alerts_group: str = "stock-alerts-group"
    kafka_session_timeout_ms: int = Field(10000, ge=1000, le=300000)
    kafka_heartbeat_interval_ms: int = Field(3000, ge=100, le=100000)

    # --- MongoDB ---------------------------------------------------------------
    mongo_uri: str = "mongodb://localhost:27017"
    mongo_db: str = "stock_market"

    # --- MySQL -----------------------------------------------------------------
    mysql_host: str = "localhost"
    mysql_port: Port = 3306
    mysql_user: str = "stock_app"
    mysql_password: str = "stock_app_dev_password"
    mysql_database: str = "stock_analytics"

    # --- Elasticsearch / logging ----------------------------------------------
    elasticsearch_url: str = "http://localhost:9200"
    es_log_index: str = "stock-system-logs"
    log_to_elasticsearch: bool = True
    log_level: str = "INFO"
    log_queue_size: int = Field(10000, ge=10, le=10_000_000)
    # Dotted "module:Class" of an elastic_transport node class; empty = default.
    # Lets a test point the client at an OpenSearch-compatible stand-in.
    elasticsearch_node_class: str = ""

    # --- Symbols and the producer ---------------------------------------------
    stock_symbols: CsvList = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]
    # The symbol registry (MongoDB `symbols`): STOCK_SYMBOLS seed it, signed-in users add more.
    # At most this many symbols in all, and this many added per user.
    max_symbols: int = Field(500, ge=1, le=100_000)
    max_symbols_per_user: int = Field(50, ge=1, le=10_000)
    poll_interval_seconds: float = Field(15.0, gt=0, le=86400)
    simulation_seed: int | None = None
    alpha_vantage_api_key: str = ""
    alpha_vantage_url: str = "https://www.alphavantage.co/query"
    alpha_vantage_calls_per_minute: int = Field(5, ge=0, le=10000)
    alpha_vantage_calls_per_day: int = Field(25, ge=0, le=1_000_000)
    # Spread the producer's real-quote calls evenly over the day (one every
    # 86400 / CALLS_PER_DAY seconds) instead of spending the day in a few minutes.
    alpha_vantage_spread_daily_budget: bool = True
    http_timeout_seconds: float = Field(10.0, gt=0, le=300)
    # Where quotes come from, in order: each symbol's quote is taken from the first
    # source that gives one (yahoo, alpha_vantage, simulated; see README "Where quotes come from").
    quote_sources: CsvList = list(QUOTE_SOURCE_NAMES)
    # Yahoo Finance (no key), asked as Chrome asks (curl_cffi): the query host serves the crumb,
    # batch quotes (/v7/finance/quote, 99 symbols a request) and the chart JSON; every symbol is
    # asked every YAHOO_REFRESH_SECONDS while the market is open (7 or 99 symbols: 60 requests/hour).
    yahoo_finance_url: str = "https://query1.finance.yahoo.com"
    # Where Yahoo sets the session cookie the crumb belongs to (yfinance asks the same host).
    yahoo_cookie_url: str = "https://fc.yahoo.com"
    yahoo_refresh_seconds: float = Field(60.0, ge=5, le=86400)
    # Yahoo's websocket streamer (keyless; the yahoo_stream source, opt-in in QUOTE_SOURCES):
    # each trade print becomes a quote, at most one per symbol per STREAM_MIN_INTERVAL_SECONDS.
    yahoo_stream_url: str = "wss://streamer.finance.yahoo.com/?version=2"
    stream_min_interval_seconds: float = Field(1.0, gt=0, le=3600)
    # Trading calendar (exchange_calendars name): XNYS = NYSE sessions, holidays and
    # half days. "24/7" makes every minute a session (demos and tests at night).
    market_calendar: str = "XNYS"
    # While the market is closed each symbol gets one quote (market_open=false, last price,
    # volume 0) this often, so the pages can say "market closed".
    closed_quote_interval_seconds: float = Field(300.0, gt=0, le=86400)
    # Simulated news-like events (a 5-9 % move with heavy volume) per symbol per session
    # hour, to make alerts fire on purpose for demos; 0 = off (only the rare natural jumps).
    simulation_event_rate: float = Field(0.0, ge=0, le=3600)
    # What the consumer (and alerts) accept: a quote for a symbol outside the symbol registry,
    # or stamped further ahead of the local clock than this, goes to the DLQ.
    reject_unknown_symbols: bool = True
    max_quote_future_seconds: int = Field(300, ge=0)

    # --- Alerts ----------------------------------------------------------------
    price_change_threshold: float = Field(5.0, gt=0)
    # A move re-arms the price rule once back below threshold minus this (percentage points).
    price_change_hysteresis: float = Field(1.0, ge=0)
    volume_threshold_multiplier: float = Field(2.0, gt=0)
    # Time-of-day volume baseline: bucket length, sessions looked at, sessions needed.
    volume_bucket_minutes: int = Field(30, ge=5, le=120)
    volume_baseline_sessions: int = Field(10, ge=1, le=60)
    volume_baseline_min_sessions: int = Field(3, ge=1, le=60)
    volume_window: int = Field(20, ge=2, le=10000)
    alert_cooldown_seconds: int = Field(900, ge=0)
    alert_email_recipients: CsvList = []
    # Alerts a user receives per market day unless they choose fewer or more on the account page.
    alert_user_daily_cap: int = Field(20, ge=1, le=1000)
    # Webhooks: a system-wide receiver (empty = none), http hosts allowed besides https, and the sender.
    alert_webhook_url: str = ""
    webhook_allowed_http_hosts: CsvList = []
    # Internal receivers a webhook may reach (host names, addresses, CIDRs: a chat server on
    # the LAN); every other private, loopback or link-local address is refused.
    webhook_allowed_internal_hosts: CsvList = []
    # The whole post (DNS, connect, TLS, answer), not one read.
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    webhook_max_attempts: int = Field(3, ge=1, le=20)
    webhook_retry_seconds: float = Field(5.0, ge=0, le=3600)
    webhook_queue_size: int = Field(1000, ge=1, le=1_000_000)
    # Posts one user may have waiting (further ones fail at once); sender threads.
    webhook_pending_per_user: int = Field(20, ge=1, le=10_000)
    webhook_workers: int = Field(4, ge=1, le=64)
    # Alert emails leave the quote loop through a queue of this many alerts and these sender threads.
    alert_email_queue_size: int = Field(1000, ge=1, le=1_000_000)
    alert_email_workers: int = Field(2, ge=1, le=64)
    # Users' own rules: price-level rules one account may have; how far (% of the level) the price
    # must go back before a re-arming level rule may fire again; how often the alerts service
    # looks whether the rules changed; a level further than this factor from the last price is refused.
    user_rules_enabled: bool = True  # false: the system's rules only (the users' are kept, not evaluated)
    user_max_level_rules: int = Field(100, ge=1, le=100_000)
    user_level_rearm_percent: float = Field(1.0, ge=0, le=50)
    user_rules_reread_seconds: float = Field(5.0, ge=0, le=3600)
    user_level_max_factor: float = Field(10.0, gt=1, le=1000)

    # --- SMTP (alerts and the news digest) -------------------------------------
    smtp_server: str = ""
    smtp_port: Port = 587
    smtp_starttls: bool = True
    email_sender: str = ""
    email_password: str = ""

    # --- Batch, news, schedules -------------------------------------------------
    retention_days: int = Field(90, ge=1, le=36500)
    market_timezone: str = "America/New_York"
    # Testing only: shifts every service's clock (common/clock.py reads it from the
    # environment; declared here so a bad value fails at start with one clear line).
    clock_offset_seconds: float = Field(0.0, ge=-100 * 365 * 86400, le=100 * 365 * 86400)
    batch_cron: str = "0 0 * * *"
    news_cron: str = "0 8 * * *"
    backfill_days: int = Field(120, ge=0, le=5000)
    yahoo_rss_url: str = "https://feeds.finance.yahoo.com/rss/2.0/headline?s={symbol}&region=US&lang=en-US"
    google_news_rss_url: str = "https://news.google.com/rss/search?q={query}&hl=en-US&gl=US&ceid=US:en"
    news_request_delay_seconds: float = Field(1.0, ge=0, le=60)
    news_outbox_dir: str = "outbox"
    # False when Airflow drives the jobs (compose profile `airflow`): the batch and
    # news containers then stay up but run nothing on their own schedule.
    batch_schedule_enabled: bool = True
    news_schedule_enabled: bool = True
    # Airflow's maintenance DAG (indexes, archive check), in MARKET_TIMEZONE.
    maintenance_cron: str = "0 3 * * 0"

    # --- Archive of expiring quotes to S3 as Parquet (optional) -----------------
    # On: the daily job copies each (symbol, market day) of quotes older than
    # RETENTION_DAYS to s3://BUCKET/PREFIX/symbol=S/date=D/quotes.parquet and
    # deletes from MongoDB only what was uploaded.
    archive_enabled: bool = False
    # Empty = AWS S3; e.g. http://minio:9000 for the compose profile `archive`.
    archive_s3_endpoint_url: str = ""
    archive_s3_bucket: str = "stock-archive"
    archive_s3_prefix: str = "realtime_prices"
    archive_s3_region: str = "us-east-1"
    # Empty = boto3's default credential chain (AWS_ACCESS_KEY_ID, instance role, ...).
    archive_s3_access_key_id: str = ""
    archive_s3_secret_access_key: str = ""

    # --- Flask -----------------------------------------------------------------
    flask_secret_key: str = ""
    flask_debug: bool = False
    # How often the live page polls for new quotes, seconds.
    flask_refresh_seconds: float = Field(5.0, gt=0, le=3600)
    # Login attempts per (email, client address) (x4 per client address) before that
    # client's logins are refused for the lockout window; other addresses are not affected.
    flask_login_max_failures: int = Field(5, ge=1, le=1000)
    flask_login_lockout_seconds: int = Field(900, ge=1, le=86400)
    # Served over TLS (a proxy in front terminates it): Secure cookies and HSTS.
    flask_https: bool = False
    # How many proxies in front set X-Forwarded-For/-Proto/-Host (0 = none: those headers are ignored).
    flask_trusted_proxies: int = Field(0, ge=0, le=5)
    # Push channel (/api/stream, server-sent events): open streams one web process holds at
    # most (each holds one gunicorn thread; beyond it the answer is 503 + Retry-After and the
    # page polls instead), how often each process reads new quotes/alerts from MongoDB, and
    # the seconds between two heartbeat comments (proxies close an idle connection).
    stream_max_per_process: int = Field(100, ge=0, le=10_000)
    stream_poll_seconds: float = Field(0.2, gt=0, le=60)
    stream_heartbeat_seconds: float = Field(15.0, gt=0, le=300)

    @field_validator("simulation_seed", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # Compose passes unset variables as empty strings.
        return None if value == "" else value

    @field_validator("stock_symbols", "alert_email_recipients", "webhook_allowed_http_hosts",
                     "webhook_allowed_internal_hosts", "quote_sources", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("webhook_allowed_internal_hosts")
    @classmethod
    def _internal_hosts(cls, value: list[str]) -> list[str]:
        """Host names, addresses or CIDRs (common/webhook_rules.py Policy reads them)."""
        entries = [v.strip().lower().rstrip(".") for v in value]
        for entry in entries:
            try:
                ipaddress.ip_network(entry.strip("[]"), strict=False)
            except ValueError:
                if not HOST_NAME_RE.fullmatch(entry):
                    raise ValueError(f"not a host name, address or CIDR: {entry!r}") from None
        return entries

    @field_validator("stock_symbols")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one symbol is required")
        upper = [s.upper() for s in value]
        bad = [s for s in upper if not SYMBOL_RE.match(s)]
        if bad:
            raise ValueError(f"not a ticker symbol: {', '.join(bad)}")
        return list(dict.fromkeys(upper))

    @field_validator("quote_sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        names = [s.lower() for s in value]
        bad = [s for s in names if s not in SOURCE_NAMES]
        if bad:
            raise ValueError(f"unknown source {', '.join(bad)} (choose from {', '.join(SOURCE_NAMES)})")
        if not names:
            raise ValueError("at least one source is required")
        if Source.SIMULATED in names and names[-1] != Source.SIMULATED:
            raise ValueError("simulated answers every time, so it can only be the last source")
        return list(dict.fromkeys(names))

    @field_validator("market_calendar")
    @classmethod
    def _calendar(cls, value: str) -> str:
        # The name itself is checked against exchange_calendars when the producer starts
        # (importing it here would load pandas into every service).
        if not re.fullmatch(r"[A-Za-z0-9/_\-]{2,20}", value.strip()):
            raise ValueError("not a calendar name (e.g. XNYS, XNAS, 24/7)")
        return value.strip()

    @field_validator("price_change_hysteresis")
    @classmethod
    def _hysteresis(cls, value: float, info: ValidationInfo) -> float:
        threshold = info.data.get("price_change_threshold")
        if threshold is not None and value >= threshold:
            raise ValueError("must be below PRICE_CHANGE_THRESHOLD (or a move could never re-arm)")
        return value

    @field_validator("volume_baseline_min_sessions")
    @classmethod
    def _min_sessions(cls, value: int, info: ValidationInfo) -> int:
        sessions = info.data.get("volume_baseline_sessions")
        if sessions is not None and value > sessions:
            raise ValueError("must not exceed VOLUME_BASELINE_SESSIONS")
        return value

    @field_validator("market_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @field_validator("batch_cron", "news_cron", "maintenance_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError("not a cron expression (5 fields, e.g. '0 0 * * *')")
        return value

    @field_validator("archive_s3_bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        # S3 bucket naming rules, so a typo fails at start rather than at the first upload.
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", value):
            raise ValueError("not an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
        return value

    @field_validator("archive_s3_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return value.strip("/")

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError("expected host:port[,host:port...]")
        return value

    # --- derived ----------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.market_timezone)

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_server and self.email_sender)


class SettingsError(SystemExit):
    """Raised (as a clean exit, code 2) when a variable has a bad value."""


def format_error(exc: ValidationError) -> str:
    """One line per bad variable: name, the value given, and why."""
    lines = []
    for err in exc.errors():
        name = str(err["loc"][0]).upper() if err["loc"] else "?"
        value = err.get("input")
        reason = err["msg"].removeprefix("Value error, ")
        lines.append(f"Invalid setting {name}={value!r}: {reason}")
    return "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Build settings; on a bad value print one clear line per variable and exit 2."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        message = format_error(exc)
        print(message, file=sys.stderr)
        raise SettingsError(2) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
