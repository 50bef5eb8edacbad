"""MongoDB access for stock_market.

Queries live in the modules of this package (one per collection: prices, news,
users, alerts); services call those functions and never build filters of their
own. Indexes are created by database/setup_mongodb.py.
"""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database

from config import Settings

# Collection names from the design.
REALTIME_PRICES = "realtime_prices"
NEWS_ARTICLES = "news_articles"
USERS = "users"
ALERT_HISTORY = "alert_history"
# Our own bookkeeping.
DIGEST_LOG = "digest_log"  # one digest per user per day
API_BUDGET = "api_budget"  # Alpha Vantage calls spent, shared by every process
LOGIN_ATTEMPTS = "login_attempts"  # login attempts per (email, client) / client, shared by web workers
WEB_SESSIONS = "web_sessions"  # server-side web sessions (the cookie holds only a random id)
ALERT_STATE = "alert_state"  # per-symbol state of the price-band rule (survives restarts)
SYMBOLS = "symbols"  # the registry of followed tickers (STOCK_SYMBOLS and those users add)
ALERT_DELIVERIES = "alert_deliveries"  # each alert to each recipient and channel, with its status
SYMBOL_QUOTAS = "symbol_quotas"  # per user: how many symbols they follow (the atomic per-user limit)
SOURCE_STATUS = "source_status"  # what each quote source is doing, one document from the producer
PRICE_LEVEL_RULES = "price_level_rules"  # users' "above / below a price" rules, with their state
USER_ALERTS = "user_alerts"  # alerts of users' own rules (alert_history stays the system's record)
USER_ALERT_STATE = "user_alert_state"  # per user and symbol: the band state of a user's own threshold


def make_client(settings: Settings, *, server_selection_timeout_ms: int = 5000) -> MongoClient:
    # tz_aware: datetimes come back as UTC-aware, matching what we store.
    return MongoClient(
        settings.mongo_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=server_selection_timeout_ms,
        connectTimeoutMS=5000,
        appname="stock-analysis-system",
    )


def get_db(client: MongoClient, settings: Settings) -> Database:
    return client[settings.mongo_db]
