"""Create the stock_market collections and the indexes their queries need.

Idempotent: every service that writes calls `ensure_indexes` at start, and it
can be run by hand: `python database/setup_mongodb.py`.

Retention of realtime_prices is done by the batch job (delete older than
RETENTION_DAYS, using the timestamp index) rather than a TTL index, so that the
optional archive step can copy a day to S3 before it is deleted.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database

from database.mongo import (
    ALERT_DELIVERIES,
    ALERT_HISTORY,
    API_BUDGET,
    DIGEST_LOG,
    LOGIN_ATTEMPTS,
    NEWS_ARTICLES,
    PRICE_LEVEL_RULES,
    REALTIME_PRICES,
    SYMBOLS,
    USER_ALERT_STATE,
    USER_ALERTS,
    USERS,
    WEB_SESSIONS,
)

INDEXES: dict[str, list[IndexModel]] = {
    REALTIME_PRICES: [
        # The dedupe key: a redelivered quote hits this and changes nothing.
        # Walked backwards it also answers "latest quote of a symbol" and the
        # intraday range query (symbol = ?, timestamp in [a, b)).
        IndexModel([("symbol", ASCENDING), ("timestamp", ASCENDING)], unique=True, name="uq_symbol_timestamp"),
        # Retention deletes and whole-day scans across symbols.
        IndexModel([("timestamp", ASCENDING)], name="ix_timestamp"),
    ],
    NEWS_ARTICLES: [
        IndexModel([("url", ASCENDING)], unique=True, name="uq_url"),
        IndexModel([("symbols", ASCENDING), ("published_at", DESCENDING)], name="ix_symbols_published"),
        IndexModel([("published_at", DESCENDING)], name="ix_published"),
    ],
    USERS: [
        IndexModel([("email", ASCENDING)], unique=True, name="uq_email"),
    ],
    ALERT_HISTORY: [
        IndexModel([("alert_key", ASCENDING)], unique=True, name="uq_alert_key"),
        # Cooldown look-up (last alert of a symbol and rule) and "latest alerts".
        IndexModel([("symbol", ASCENDING), ("rule", ASCENDING), ("quote_timestamp", DESCENDING)],
                   name="ix_symbol_rule_time"),
        IndexModel([("created_at", DESCENDING)], name="ix_created"),
    ],
    # ALERT_STATE is keyed by _id ("price_band|SYMBOL"): no index of its own.
    ALERT_DELIVERIES: [
        # A user's deliveries of a market day (the daily cap) and the retry of pending ones.
        IndexModel([("user_id", ASCENDING), ("day", ASCENDING)], name="ix_user_day"),
        IndexModel([("status", ASCENDING), ("channel", ASCENDING)], name="ix_status_channel"),
        IndexModel([("alert_key", ASCENDING)], name="ix_alert_key"),
    ],
    DIGEST_LOG: [
        # One digest per user per day, however often the job runs.
        IndexModel([("email", ASCENDING), ("date", ASCENDING)], unique=True, name="uq_email_date"),
    ],
    API_BUDGET: [
        # Spent minute/day counters clean themselves up.
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="ttl_expires_at"),
    ],
    WEB_SESSIONS: [
        # Logout and a password change delete a user's sessions; TTL drops expired ones.
        IndexModel([("user_id", ASCENDING)], name="ix_user"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="ttl_expires_at"),
    ],
    SYMBOLS: [
        # A user's own symbols (the account page, the per-user limit).
        IndexModel([("followers", ASCENDING)], name="ix_followers"),
    ],
    PRICE_LEVEL_RULES: [
        # A user's rules (the account page, the per-user limit).
        IndexModel([("user_id", ASCENDING)], name="ix_user"),
    ],
    USER_ALERTS: [
        IndexModel([("alert_key", ASCENDING)], unique=True, name="uq_alert_key"),
        # A user's newest alerts, and the cooldown of their volume rule.
        IndexModel([("user_id", ASCENDING), ("symbol", ASCENDING), ("rule", ASCENDING),
                    ("quote_timestamp", DESCENDING)], name="ix_user_symbol_rule_time"),
    ],
    USER_ALERT_STATE: [
        # All users' band states of a symbol, read at once the first time it is quoted.
        IndexModel([("symbol", ASCENDING)], name="ix_symbol"),
    ],
    LOGIN_ATTEMPTS: [
        # One attempt counter per throttle key ((email, client address) or client address);
        # the TTL index removes a counter once its window is over.
        IndexModel([("key", ASCENDING)], unique=True, name="uq_key"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="ttl_expires_at"),
    ],
}


def ensure_indexes(db: Database) -> None:
    # create_indexes creates a missing collection too, and is a no-op for an
    # index that already exists with the same definition.
    for name, indexes in INDEXES.items():
        db[name].create_indexes(indexes)


def main() -> None:
    from config import get_settings
    from database.mongo import get_db, make_client
    from logs.logger_config import get_logger, setup_logging

    settings = get_settings()
    setup_logging("setup_mongodb", settings)
    client = make_client(settings)
    ensure_indexes(get_db(client, settings))
    get_logger("database.setup_mongodb").info("MongoDB %s: collections and indexes ready", settings.mongo_db)


if __name__ == "__main__":
    main()
