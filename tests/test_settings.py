"""Settings: defaults, .env.example coverage, and one clear line per bad value."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_match_the_design() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.kafka_topic == "stock-prices"
    assert s.kafka_partitions == 3
    assert s.kafka_consumer_group == "stock-consumer-group"
    assert s.mongo_db == "stock_market"
    assert s.mysql_database == "stock_analytics"
    assert s.es_log_index == "stock-system-logs"
    assert s.stock_symbols == ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]
    assert s.poll_interval_seconds == 15
    assert s.price_change_threshold == 5.0
    assert s.volume_threshold_multiplier == 2.0
    assert s.retention_days == 90
    assert s.batch_cron == "0 0 * * *"
    assert s.news_cron == "0 8 * * *"
    assert not s.smtp_enabled


def test_symbols_parse_from_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCK_SYMBOLS", " aapl, BRK.B ,MSFT,aapl")
    assert Settings(_env_file=None).stock_symbols == ["AAPL", "BRK.B", "MSFT"]  # type: ignore[call-arg]


def test_env_example_documents_every_setting() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), flags=re.M))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from .env.example"


def test_env_example_values_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            monkeypatch.setenv(m.group(1), m.group(2))
    Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("var", "value", "expect"),
    [
        ("PRICE_CHANGE_THRESHOLD", "five", "valid number"),
        ("VOLUME_THRESHOLD_MULTIPLIER", "-1", "greater than 0"),
        ("STOCK_SYMBOLS", "AAPL,not a symbol", "not a ticker symbol"),
        ("MYSQL_PORT", "70000", "less than or equal to 65535"),
        ("SMTP_PORT", "0", "greater than or equal to 1"),
        ("MARKET_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("BATCH_CRON", "every midnight", "not a cron expression"),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka", "host:port"),
        ("POLL_INTERVAL_SECONDS", "0", "greater than 0"),
        ("PRICE_CHANGE_HYSTERESIS", "5", "below PRICE_CHANGE_THRESHOLD"),
        ("VOLUME_BASELINE_MIN_SESSIONS", "11", "must not exceed VOLUME_BASELINE_SESSIONS"),
    ],
)
def test_bad_value_stops_the_service_with_one_clear_line(var: str, value: str, expect: str) -> None:
    """A service reading settings exits 2 with a line naming the variable and the value."""
    proc = subprocess.run(
        [sys.executable, "-c", "from config import get_settings; get_settings(); print('started')"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), var: value},
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "started" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"Invalid setting {var}=")
    assert repr(value) in lines[0]
    assert expect in lines[0]
