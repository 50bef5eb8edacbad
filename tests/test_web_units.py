"""Pure parts of the web app (no servers): parameter parsing, passwords,
chart specs, the secret key rules, and gunicorn refusing the placeholder key."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from flask_web_app.present import daily_figure, intraday_figure, is_simulated, jsonable, market_state, sparkline_points
from flask_web_app.security import InsecureConfigError, resolve_secret_key
from flask_web_app.validation import (
    BadParameterError,
    UnknownSymbolError,
    hash_password,
    parse_days,
    parse_range,
    parse_symbols,
    password_problem,
    verify_password,
)
from scripts.waiting import free_port

ROOT = Path(__file__).resolve().parents[1]
KNOWN = ["AAPL", "MSFT"]


def test_symbols_and_days() -> None:
    assert parse_symbols(None, KNOWN) == KNOWN
    assert parse_symbols(" msft, aapl,MSFT ", KNOWN) == ["MSFT", "AAPL"]
    with pytest.raises(UnknownSymbolError):
        parse_symbols("AAPL,ZZZ", KNOWN)
    assert parse_days("90", choices=(30, 90)) == 90
    for bad in ("45", "0", "-1", "1e3", "999999999999"):
        with pytest.raises(BadParameterError):
            parse_days(bad, choices=(30, 90))


def test_range_rules() -> None:
    anchor = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
    start, end = parse_range(None, None, None, anchor=anchor)
    assert end - start == timedelta(hours=24) and start < anchor < end
    start, end = parse_range(None, None, "30", anchor=anchor)
    assert end - start == timedelta(minutes=30)
    start, end = parse_range("2025-03-03T10:00:00", "2025-03-03T11:00:00-05:00", None, anchor=None)
    assert start.tzinfo is UTC and end == datetime(2025, 3, 3, 16, 0, tzinfo=UTC)
    for args in (("2025-03-03T12:00:00Z", "2025-03-03T11:00:00Z", None), ("x", None, None),
                 ("2025-01-01T00:00:00Z", "2025-01-09T00:00:00Z", None), (None, None, "0")):
        with pytest.raises(BadParameterError):
            parse_range(*args, anchor=anchor)


def test_password_rules_and_hashing() -> None:
    assert password_problem("river-Stone-42", "ann@example.com", "Ann") is None
    assert password_problem("short-1") and password_problem("aaaaaaaaaaaa1")
    assert password_problem("password123") and password_problem("x-bob-smith-9", "bob@x.org", "")
    hashed = hash_password("river-Stone-42")
    assert hashed.startswith("scrypt:") and verify_password(hashed, "river-Stone-42")
    assert not verify_password(hashed, "river-stone-42")


def test_chart_spec_and_json() -> None:
    rows = [{"date": date(2025, 1, i), "open_price": Decimal("1.5"), "high_price": Decimal("2"),
             "low_price": Decimal("1"),
             "close_price": Decimal("1.75"), "total_volume": 10, "sma_20": None, "rsi_14": Decimal("71.5")}
            for i in (2, 3)]
    fig = daily_figure(rows, "AAPL")
    by_name = {t["name"]: t for t in fig["data"]}
    assert by_name["AAPL"]["close"] == [1.75, 1.75] and by_name["SMA-20 (Bollinger middle)"]["y"] == [None, None]
    assert by_name["RSI-14"]["y"] == [71.5, 71.5]
    # Rows from before issue 23's columns (or too few closes) draw gaps, never zeros.
    assert by_name["EMA-20"]["y"] == [None, None] and by_name["MACD (12, 26)"]["y"] == [None, None]
    assert jsonable({"t": datetime(2025, 1, 2, tzinfo=UTC), "_id": 1, "d": Decimal("2.50")}) == {
        "t": "2025-01-02T00:00:00Z", "d": 2.5}
    assert sparkline_points([]) == "" and len(sparkline_points([1, 2, 3]).split()) == 3
    assert sparkline_points([None, 7]) == "118.0,16.0 118.0,16.0"  # one quote: a dot, not nothing
    assert sparkline_points([5, 5]) == "0.0,30.0 120.0,30.0"  # flat line, no division by zero
    assert is_simulated("simulated") and is_simulated("mixed") and not is_simulated("real")


def _drawn_pieces(trace: dict, layout: dict) -> int:
    """How many pieces plotly.js draws a line trace in: a point with no value, or one inside a
    Saturday-to-Monday rangebreak of the x axis (it becomes BADNUM), splits the line unless
    connectgaps is on."""
    weekend = {"bounds": ["sat", "mon"]} in layout["xaxis"].get("rangebreaks", [])
    pieces, drawing = 0, False
    for x, y in zip(trace["x"], trace["y"], strict=True):
        gap = y is None or (weekend and date.fromisoformat(x[:10]).weekday() >= 5)
        if gap and not trace.get("connectgaps"):
            drawing = False
        elif not gap and not drawing:
            pieces, drawing = pieces + 1, True
    return pieces


def test_daily_indicator_lines_run_on_over_weekend_rows() -> None:
    # Thursday to the next Tuesday, with a row on Saturday (quotes stored on a non-trading day).
    days = [date(2026, 1, 8) + timedelta(days=i) for i in range(6) if i != 3]
    rows = [{"date": d, "open_price": 10.0 + i, "high_price": 12.0 + i, "low_price": 9.0 + i, "close_price": 11.0 + i,
             "total_volume": 100, "sma_20": 10.5 + i, "ema_20": 10.6 + i, "bb_upper": 13.0 + i, "bb_lower": 8.0 + i,
             "rsi_14": 50.0, "macd": 0.1, "macd_signal": 0.05, "macd_hist": 0.05} for i, d in enumerate(days)]
    assert date(2026, 1, 10) in days
    fig = daily_figure(rows, "AAPL")
    lines = [t for t in fig["data"] if t["type"] == "scatter"]
    assert len(lines) == 7
    for trace in lines:
        assert _drawn_pieces(trace, fig["layout"]) == 1, trace["name"]
    # The candles keep every row (the table shows it too); only the lines leave the weekend out.
    candle = next(t for t in fig["data"] if t["type"] == "candlestick")
    assert candle["x"] == [d.isoformat() for d in days]
    # A missing value on a trading day still shows as a gap.
    rows[1]["sma_20"] = None
    sma = next(t for t in daily_figure(rows, "AAPL")["data"] if t["name"].startswith("SMA-20"))
    assert _drawn_pieces(sma, fig["layout"]) == 2


def test_secret_key_rules(tmp_path: Path) -> None:
    secret = "a-real-secret-of-32-characters-x"
    assert resolve_secret_key(f"  {secret}  ", False, tmp_path) == secret
    with pytest.raises(InsecureConfigError, match="change-me"):
        resolve_secret_key("change-me", False, tmp_path)
    assert resolve_secret_key("change-me", True, tmp_path) == "change-me"  # debug only

    # Empty: one random key, generated once and shared by every worker.
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(resolve_secret_key("", False, tmp_path / "inst")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    assert (tmp_path / "inst" / "secret_key").read_text() == keys[0]
    assert oct((tmp_path / "inst" / "secret_key").stat().st_mode & 0o777) == "0o600"
    assert resolve_secret_key("", False, tmp_path / "inst") == keys[0]  # a restart keeps it


@pytest.mark.parametrize("key", ["a", "short-secret", "x" * 31, "change-me"])
def test_a_short_secret_key_is_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(InsecureConfigError, match="FLASK_SECRET_KEY is"):
        resolve_secret_key(key, False, tmp_path)
    assert resolve_secret_key(key, True, tmp_path) == key  # FLASK_DEBUG: local development only
    assert resolve_secret_key("k" * 32, False, tmp_path) == "k" * 32


@pytest.mark.parametrize(("key", "words"), [("change-me", 'FLASK_SECRET_KEY is the placeholder "change-me"'),
                                            ("a", "FLASK_SECRET_KEY is only 1 characters long")])
def test_gunicorn_refuses_a_weak_secret(tmp_path: Path, key: str, words: str) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "FLASK_SECRET_KEY": key,
           "LOG_TO_ELASTICSEARCH": "false", "GUNICORN_BIND": f"127.0.0.1:{free_port()}", "GUNICORN_WORKERS": "1",
           "MONGO_URI": f"mongodb://127.0.0.1:{free_port()}"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", str(ROOT / "flask_web_app/gunicorn.conf.py"),
         "flask_web_app.app:create_app()"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert words in proc.stdout + proc.stderr


def test_market_state_from_the_newest_quotes() -> None:
    assert market_state([{"market_open": False}, {"market_open": True}]) == "open"
    assert market_state([{"market_open": False}, {"market_open": None}, {}]) == "closed"
    assert market_state([{"source": "simulated"}, {"market_open": None}]) is None  # no flag: say nothing


def test_intraday_figure_draws_a_lone_quote_as_a_marker_on_the_hour_around_it() -> None:
    ts = datetime(2026, 12, 3, 9, 0, 11, tzinfo=UTC)
    fig = intraday_figure([{"timestamp": ts, "price": Decimal("260.00")}], "AAPL")
    [trace] = fig["data"]
    assert trace["mode"] == "markers" and trace["y"] == [260.0]
    low, high = (datetime.fromisoformat(x) for x in fig["layout"]["xaxis"]["range"])
    assert high - low == timedelta(hours=1) and low < ts < high
    many = intraday_figure([{"timestamp": ts, "price": 1}, {"timestamp": ts + timedelta(seconds=15), "price": 2}],
                           "AAPL")
    assert many["data"][0]["mode"] == "lines" and "range" not in many["layout"]["xaxis"]


def test_csv_cells_never_start_a_formula() -> None:
    from flask_web_app.daily_csv import CSV_COLUMNS, cell, csv_filename, daily_csv

    for text in ("=1+1", "+1", "-1+cmd", "@SUM(A1)", "\t=1", "\r=1"):
        assert cell(text) == "'" + text
    assert cell("simulated") == "simulated" and cell(None) == ""
    # Numbers are written from stored numbers: a negative MACD stays a number.
    assert cell(Decimal("-0.125000")) == "-0.125000" and cell(-1.5) == "-1.5" and cell(7) == "7"
    rows = [{"date": date(2025, 1, 2), "symbol": "AAPL", "close_price": Decimal("1.75"), "macd": Decimal("-0.5"),
             "source": "=HYPERLINK(1)"}]
    text = daily_csv(rows)
    header, line, end = text.split("\r\n")
    assert header.split(",") == list(CSV_COLUMNS) and end == ""
    values = dict(zip(CSV_COLUMNS, line.split(","), strict=True))
    assert values["date"] == "2025-01-02" and values["macd"] == "-0.5" and values["source"] == "'=HYPERLINK(1)"
    assert csv_filename("AAPL", rows) == "AAPL-daily-2025-01-02-to-2025-01-02.csv"
    assert csv_filename('A"B', []) == "AB-daily.csv"  # nothing that could end the header's quoted name
