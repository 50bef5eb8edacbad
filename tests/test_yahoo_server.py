"""scripts/yahoo_server.py, the local Yahoo the benches and the local stack run on, answers the
ticker search the dashboard's "add a ticker" form asks (flask_web_app/tickers.py): without it a
user of the local stack could add no ticker ("Yahoo Finance could not be asked about IBM")."""

from __future__ import annotations

import json

from common.clock import utc_now
from config.settings import Settings
from flask_web_app.tickers import TickerCheck
from scripts.yahoo_server import SEARCH, LocalYahoo
from tests.support.http_fixture import FIXTURES


def test_a_typed_ticker_is_known_with_the_name_its_quotes_carry() -> None:
    template = json.loads((FIXTURES / "yahoo_quote_open.json").read_text())["quoteResponse"]["result"][0]
    with LocalYahoo(template) as yahoo:
        settings = Settings(_env_file=None, quote_sources="yahoo,simulated",  # type: ignore[call-arg]
                            **{k.lower(): v for k, v in yahoo.env().items()})
        check = TickerCheck(settings)
        known = check.known("IBM", utc_now())
        assert (known.symbol, known.name, known.simulated) == ("IBM", "IBM Bench Inc.", False)
        assert [(s.symbol, s.exchange) for s in check.suggestions("ib", utc_now())] == [("IB", "NYSE")]
        assert yahoo.count(SEARCH) == 2
        quoted = yahoo.entry("IBM", utc_now())
        assert quoted["longName"] == known.name  # the registry's name and the quotes' agree
