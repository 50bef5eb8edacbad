"""The daily news job: scrape → store in MongoDB news_articles → mail each opted-in user a digest.

Run by the news container on NEWS_CRON (articles/scheduler.py) and by hand:

    docker exec news python articles/daily_news.py

Idempotent within a day: articles are stored once per canonical URL and each
user gets at most one digest per day (digest_log), however often it runs. With
no SMTP settings the digests are written as .eml files to NEWS_OUTBOX_DIR.

Which symbols: news is collected for every registered symbol (the symbol registry:
STOCK_SYMBOLS and every ticker a user added), with the company names the quote source gave.
A user's digest covers their own symbols: their watchlist (of the defaults) and the tickers
they added on the dashboard, in that order; a user with neither gets the defaults
(STOCK_SYMBOLS), as before there was a registry.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo.database import Database

from articles.digest import build_sections, render_digest
from articles.email_sender import write_eml
from articles.news_scraper import NewsApi, NewsScraper
from common.clock import utc_now
from common.mailer import SmtpMailer, build_message
from config import Settings
from database.mongo import news as news_db
from database.mongo.prices import latest_quotes
from database.mongo.symbols import registry_entries
from database.setup_mongodb import ensure_indexes
from logs.logger_config import get_logger

log = get_logger("articles.daily_news")

DIGEST_WINDOW = timedelta(hours=24)


@dataclass
class RunReport:
    day: str
    articles_found: int = 0
    articles_new: int = 0
    source_failures: dict[str, str] = field(default_factory=dict)
    sources_ok: int = 0
    sent: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already had today's digest
    failed: dict[str, str] = field(default_factory=dict)
    outbox: Path | None = None

    @property
    def nothing_read(self) -> bool:
        return self.sources_ok == 0 and bool(self.source_failures)

    @property
    def ok(self) -> bool:
        # Partial news is still news; a run is bad when nothing could be read or a mail failed.
        return not self.failed and not self.nothing_read

    def problems(self) -> str:
        """What went wrong, in one line: which sources could not be read and why, which digests failed."""
        parts = []
        if self.nothing_read:
            parts.append("no news source could be read: " + summarize_failures(self.source_failures))
        if self.failed:
            parts.append(f"digests failed for {len(self.failed)} user(s)")
        return "; ".join(parts)


def summarize_failures(failures: dict[str, str]) -> str:
    """{"Yahoo Finance AAPL": reason, ...} -> "Yahoo Finance (AAPL, MSFT: reason), Google News (...)":
    one entry per source, the symbols grouped under each distinct reason."""
    by_source: dict[str, dict[str, list[str]]] = {}
    for key, reason in failures.items():
        source, _, symbol = key.rpartition(" ")
        by_source.setdefault(source or key, {}).setdefault(reason, []).append(symbol)
    return ", ".join(
        f"{source} (" + "; ".join(f"{', '.join(symbols)}: {reason}" for reason, symbols in reasons.items()) + ")"
        for source, reasons in by_source.items())


def alpha_vantage_source(settings: Settings, db: Database) -> NewsApi | None:
    """NEWS_SENTIMENT through the shared client and call budget, or None without a key."""
    from market_data.alpha_vantage import alpha_vantage_client

    client = alpha_vantage_client(settings, db)
    if client is None:
        log.info("Alpha Vantage news skipped: ALPHA_VANTAGE_API_KEY is not set")
    return client


@dataclass
class Registry:
    """The symbol registry as the news job reads it once a run."""

    symbols: list[str]  # every registered symbol, the defaults first
    names: dict[str, str]  # symbol -> company name as the source gave it (absent: none known)
    followed: dict[str, list[str]]  # user id -> the symbols they added, oldest first

    @classmethod
    def read(cls, db: Database, settings: Settings) -> Registry:
        entries = registry_entries(db)
        symbols = list(dict.fromkeys([*settings.stock_symbols, *(e["_id"] for e in entries)]))
        names = {e["_id"]: str(e["name"]) for e in entries if e.get("name") and e["name"] != e["_id"]}
        followed: dict[str, list[str]] = {}
        for entry in entries:
            for user_id in entry.get("followers") or []:
                followed.setdefault(str(user_id), []).append(entry["_id"])
        return cls(symbols, names, followed)


def scrape_and_store(settings: Settings, db: Database, report: RunReport, now: datetime,
                     scraper: NewsScraper | None = None, registry: Registry | None = None) -> None:
    scraper = scraper or NewsScraper(settings, alpha_vantage=alpha_vantage_source(settings, db))
    registry = registry or Registry.read(db, settings)
    result = scraper.collect(registry.symbols, now, registry.names)
    report.source_failures = result.failures
    report.sources_ok = len(result.fetched)
    report.articles_found = len(result.articles)
    fetched_at = utc_now()  # when we read it, whatever day the run is for
    new, known = news_db.upsert_articles(db, [a.to_doc(fetched_at) for a in result.articles])
    report.articles_new = new
    log.info("news_articles: %d new, %d already stored", new, known)


def user_symbols(user: dict[str, Any], settings: Settings, registry: Registry) -> list[str]:
    """A user's own symbols: their watchlist, then the tickers they added; the defaults if neither."""
    watchlist = [str(s).strip().upper() for s in user.get("watchlist") or [] if str(s).strip()]
    own = [*watchlist, *registry.followed.get(str(user.get("_id")), [])]
    return list(dict.fromkeys(own)) or list(settings.stock_symbols)


def send_digests(settings: Settings, db: Database, report: RunReport, now: datetime,
                 mailer: SmtpMailer | None = None, registry: Registry | None = None) -> None:
    mailer = mailer or SmtpMailer(settings)
    users = news_db.digest_recipients(db)
    if not users:
        log.info("no user has opted in to the digest")
        return
    registry = registry or Registry.read(db, settings)
    wanted = list(dict.fromkeys(s for u in users for s in user_symbols(u, settings, registry)))
    news = news_db.news_for_symbols(db, wanted, now - DIGEST_WINDOW)
    quotes = latest_quotes(db, wanted)
    if not mailer.enabled:
        report.outbox = Path(settings.news_outbox_dir).resolve()
    for user in users:
        email = str(user.get("email") or "").strip().lower()
        if not email:
            continue
        try:
            if not news_db.claim_digest(db, email, report.day, now):
                report.skipped.append(email)
                log.info("digest for %s already sent on %s; not sending again", email, report.day)
                continue
        except Exception as exc:
            report.failed[email] = f"digest_log: {exc}"
            log.exception("could not record the digest of %s", email)
            continue
        try:
            symbols = user_symbols(user, settings, registry)
            digest = render_digest(str(user.get("name") or ""), report.day,
                                   build_sections(symbols, news, quotes, settings.tz, registry.names),
                                   sources_unread=report.nothing_read)
            msg = build_message(settings.email_sender, email, digest.subject, digest.text, digest.html)
            if mailer.enabled:
                mailer.send(msg)
                news_db.finish_digest(db, email, report.day, "sent", utc_now(), articles=digest.article_count)
                report.sent.append(email)
                log.info("digest sent to %s: %d articles for %s", email, digest.article_count, ",".join(symbols))
            else:
                path = write_eml(settings.news_outbox_dir, msg, f"digest-{report.day}-{email}.eml")
                news_db.finish_digest(db, email, report.day, "written", utc_now(),
                                      articles=digest.article_count, path=str(path.resolve()))
                report.written.append(path.resolve())
                log.info("digest for %s written to %s (SMTP not configured)", email, path.resolve())
        except Exception as exc:  # one bad recipient must not stop the others
            report.failed[email] = f"{type(exc).__name__}: {exc}"
            # repr: an address with a line break must not forge log lines.
            log.error("digest to %r failed: %s; a later run today will retry it", email, exc)
            try:
                news_db.finish_digest(db, email, report.day, "failed", utc_now(), error=str(exc)[:500])
            except Exception:
                log.exception("could not record the failed digest of %s", email)


def run(settings: Settings, db: Database, *, now: datetime | None = None, scraper: NewsScraper | None = None,
        mailer: SmtpMailer | None = None) -> RunReport:
    now = now or utc_now()
    report = RunReport(day=now.astimezone(settings.tz).date().isoformat())
    ensure_indexes(db)
    registry = Registry.read(db, settings)
    log.info("daily news run for %s started (%d registered symbols: %s)", report.day, len(registry.symbols),
             ",".join(registry.symbols[:20]) + (" ..." if len(registry.symbols) > 20 else ""))
    try:
        scrape_and_store(settings, db, report, now, scraper, registry)
    except Exception:
        # Stored news from earlier runs can still go out.
        log.exception("scraping failed; sending digests from the news already stored")
        report.source_failures["scrape"] = "unexpected error"
    send_digests(settings, db, report, now, mailer, registry)
    if report.outbox is not None:
        log.info("SMTP not configured (SMTP_SERVER/EMAIL_SENDER): %d digests written to %s",
                 len(report.written), report.outbox)
    log.info("daily news run for %s done: %d articles (%d new), %d source failures, digests: %d sent, "
             "%d written, %d already sent, %d failed", report.day, report.articles_found, report.articles_new,
             len(report.source_failures), len(report.sent), len(report.written), len(report.skipped),
             len(report.failed))
    return report


def main() -> int:
    from config import get_settings
    from database.mongo import get_db, make_client
    from logs.logger_config import setup_logging

    settings = get_settings()
    setup_logging("news", settings)
    client = make_client(settings)
    try:
        report = run(settings, get_db(client, settings))
    finally:
        client.close()
    if report.outbox is not None:
        # Said on stdout too, for whoever ran it by hand.
        print(f"SMTP is not configured: digests written to {report.outbox}")
    if not report.ok:
        log.error("news run for %s incomplete: %s", report.day, report.problems())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
