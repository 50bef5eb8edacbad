"""News scraper: Yahoo Finance RSS, Google News RSS search and Alpha Vantage NEWS_SENTIMENT.

Parsing is pure (bytes or JSON in, `Article`s out) and tested without servers;
`NewsScraper` only adds the HTTP around it. Every source is tried for every
symbol; one that times out, answers an error or returns something that is not
its format is logged and skipped, and the others still run.
"""

from __future__ import annotations

import html
import re
import time
import xml.sax
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import SplitResult, parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import feedparser
import requests
from bs4 import BeautifulSoup

from common.clock import utc_now
from config import Settings
from logs.logger_config import get_logger

log = get_logger("articles.news_scraper")

USER_AGENT = ("stock-analysis-system-news/1.0 (+https://github.com/; daily news digest; "
              "polite: one request per host per second)")
MAX_FEED_BYTES = 5 * 1024 * 1024
SUMMARY_MAX_CHARS = 600

YAHOO = "Yahoo Finance"
GOOGLE = "Google News"
ALPHA_VANTAGE = "Alpha Vantage"

# Query parameters that only track the click; two links differing in them are one article.
_TRACKING_PARAMS = re.compile(
    r"^(utm_.*|\.tsrc|ncid|guccounter|guce_.*|soc_src|soc_trk|fbclid|gclid|mc_cid|mc_eid|cmpid|ocid|taid|yptr)$", re.I)
# Alpha Vantage prints time_published without a zone; its timestamps are US Eastern
# (the market's clock), so they are read in that zone and stored in UTC.
_AV_ZONE = ZoneInfo("America/New_York")


class FeedFormatError(ValueError):
    """The answer is not the format the source is supposed to send (junk, HTML, broken XML)."""


@dataclass
class Article:
    url: str  # canonical
    title: str
    summary: str
    source: str  # the publisher when the feed names it, else the feed
    published_at: datetime  # UTC
    symbols: list[str] = field(default_factory=list)
    sentiment: dict[str, Any] | None = None  # {"label", "score"} overall, when the source gives it
    ticker_sentiment: dict[str, dict[str, Any]] = field(default_factory=dict)  # symbol -> {"label", "score"}
    feeds: list[str] = field(default_factory=list)  # which of our sources saw it

    @property
    def published_date(self) -> str:
        return self.published_at.astimezone(UTC).strftime("%Y-%m-%d")

    def to_doc(self, fetched_at: datetime) -> dict[str, Any]:
        return {
            "url": self.url,
            "title": self.title,
            "summary": self.summary,
            "source": self.source,
            "published_at": self.published_at,
            "published_date": self.published_date,
            "symbols": sorted(self.symbols),
            "sentiment": self.sentiment,
            "ticker_sentiment": self.ticker_sentiment,
            "feeds": sorted(self.feeds),
            "fetched_at": fetched_at,
        }


# --------------------------------------------------------------------------- pure helpers
def http_parts(url: object) -> SplitResult | None:
    """The parts of an absolute http(s) URL with a host and a valid port, else None
    (javascript:, data:, relative, empty, unparsable)."""
    if not isinstance(url, str) or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts


def canonical_url(url: str | None) -> str | None:
    """The article's identity: http(s) only, lower-case host, no fragment, no tracking
    parameters. None for anything else (javascript:, data:, relative, empty)."""
    parts = http_parts(url)
    if parts is None or parts.hostname is None:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if parts.port and not ((scheme == "http" and parts.port == 80) or (scheme == "https" and parts.port == 443)):
        host = f"{host}:{parts.port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not _TRACKING_PARAMS.match(k)])
    path = parts.path or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    return urlunsplit((scheme, host, path, query, ""))


_SPACE = re.compile(r"\s+")
_BLOCK_TAGS = ["br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
               "blockquote", "font", "a"]


def clean_text(markup: str | None, limit: int | None = None) -> str:
    """Text of an HTML fragment: tags and scripts gone, entities decoded, whitespace collapsed."""
    if not markup:
        return ""
    if "<" in markup:
        soup = BeautifulSoup(markup, "html.parser")
        # Block boundaries become spaces; inline tags join ("<b>Apple</b>'s" stays "Apple's").
        for tag in soup.find_all(_BLOCK_TAGS):
            tag.insert_before(" ")
            tag.insert_after(" ")
        text = soup.get_text()
    else:
        text = html.unescape(markup)
    text = _SPACE.sub(" ", text).strip()
    if limit and len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0] + "…"
    return text


def plain_title(title: str | None) -> str:
    # Feed titles are text, not markup: keep '<' as a character (the digest escapes
    # it), only decode entities left over and collapse whitespace.
    return _SPACE.sub(" ", html.unescape(title or "")).strip()


# What a source's company name ends with that no headline repeats ("Apple Inc." is "Apple" in the news).
_LEGAL_SUFFIX = re.compile(r"(?:[,\s]+(?:inc|incorporated|corp|corporation|co|company|ltd|limited|plc|n\.?v|s\.?a|"
                           r"ag|se|holdings?|group)\.?)+$|\.com$", re.I)


def news_name(name: str | None, symbol: str) -> str | None:
    """How the news writes a company whose source name is `name` (the registry's, from Yahoo):
    without its legal suffix; None when the source gave no name (the ticker stands for it)."""
    if not name or name.upper() == symbol:
        return None
    short = name.strip()
    while (stripped := _LEGAL_SUFFIX.sub("", short).strip(" ,")) != short:
        short = stripped
    return short or None


def relevance_terms(symbol: str, name: str | None = None) -> list[re.Pattern[str]]:
    """What must appear in an article for it to be about `symbol`: the ticker (as a word,
    case as printed) or the company's name (any case; `name` as the source gives it, see
    `news_name`), and the first word of a two-word name: META / Meta Platforms / Meta."""
    terms = [re.compile(rf"(?<![A-Za-z0-9]){re.escape(symbol)}(?![A-Za-z0-9])")]
    short = news_name(name, symbol)
    if short:
        words = short.split()
        # "International" alone is not IBM, but "Meta" is Meta Platforms.
        names = {short, words[0]} if len(words) == 2 and len(words[0]) >= 4 else {short}
        terms += [re.compile(rf"\b{re.escape(n)}\b", re.I) for n in sorted(names)]
    return terms


def is_relevant(text: str, symbol: str, name: str | None = None) -> bool:
    return any(p.search(text) for p in relevance_terms(symbol, name))


def _struct_to_utc(parsed: Any) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)  # feedparser normalises to UTC
    except (TypeError, ValueError):
        return None


def _check_feed(parsed: Any) -> None:
    if not parsed.get("version"):
        raise FeedFormatError(f"not an RSS/Atom feed ({parsed.get('bozo_exception') or 'no feed element'})")
    exc = parsed.get("bozo_exception")
    if parsed.get("bozo") and isinstance(exc, xml.sax.SAXException):
        # A truncated or corrupted document: its last items may be half there.
        raise FeedFormatError(f"malformed feed XML: {exc}")


def _rss_articles(content: bytes, feed: str, symbol: str, now: datetime,
                  source_of: Callable[[Any], str], title_of: Callable[[Any], str],
                  name: str | None = None) -> list[Article]:
    parsed = feedparser.parse(content)
    _check_feed(parsed)
    out: list[Article] = []
    for entry in parsed.entries:
        url = canonical_url(entry.get("link"))
        title = title_of(entry)
        if not url or not title:
            continue  # no usable link (e.g. javascript:) or no headline: nothing to show
        summary = clean_text(entry.get("summary"), SUMMARY_MAX_CHARS)
        if summary == title:
            summary = ""
        published = _struct_to_utc(entry.get("published_parsed") or entry.get("updated_parsed")) or now
        art = Article(url, title, summary, source_of(entry), published, feeds=[feed])
        if is_relevant(f"{title} {summary}", symbol, name):
            art.symbols = [symbol]
            out.append(art)
    return out


def parse_yahoo_rss(content: bytes, symbol: str, now: datetime | None = None, name: str | None = None) -> list[Article]:
    """Yahoo Finance headline RSS (feeds.finance.yahoo.com/rss/2.0/headline?s=SYMBOL)."""
    now = now or utc_now()
    return _rss_articles(content, YAHOO, symbol, now, lambda e: YAHOO, lambda e: plain_title(e.get("title")), name)


def _google_title(entry: Any) -> str:
    # Google News appends " - Publisher" to every headline; the publisher is its own field.
    title = plain_title(entry.get("title"))
    publisher = plain_title((entry.get("source") or {}).get("title"))
    if publisher and title.endswith(f" - {publisher}"):
        title = title[: -len(publisher) - 3].rstrip()
    return title


def parse_google_news_rss(content: bytes, symbol: str, now: datetime | None = None,
                          name: str | None = None) -> list[Article]:
    """Google News RSS search (news.google.com/rss/search?q=...). The description is an
    HTML snippet repeating the headline and publisher; its text is kept only when it adds something."""
    now = now or utc_now()

    def source_of(entry: Any) -> str:
        return plain_title((entry.get("source") or {}).get("title")) or GOOGLE

    arts = _rss_articles(content, GOOGLE, symbol, now, source_of, _google_title, name)
    for art in arts:
        # "Headline  Publisher" is all a Google description usually says.
        if art.summary.replace(art.source, "").strip() in ("", art.title):
            art.summary = ""
    return arts


def _sentiment(label: Any, score: Any) -> dict[str, Any] | None:
    try:
        value = round(float(score), 4)
    except (TypeError, ValueError):
        return None
    return {"label": str(label or "").strip() or None, "score": value}


def parse_av_time(value: Any) -> datetime | None:
    for fmt in ("%Y%m%dT%H%M%S", "%Y%m%dT%H%M"):
        try:
            return datetime.strptime(str(value), fmt).replace(tzinfo=_AV_ZONE).astimezone(UTC)
        except ValueError:
            continue
    return None


def parse_alpha_vantage_news(payload: Any, symbol: str, now: datetime | None = None,
                             name: str | None = None) -> list[Article]:
    """Alpha Vantage NEWS_SENTIMENT JSON: {"items", ..., "feed": [{title, url, time_published,
    summary, source, overall_sentiment_score/label, ticker_sentiment: [...]}, ...]}."""
    now = now or utc_now()
    feed = payload.get("feed") if isinstance(payload, dict) else None
    if not isinstance(feed, list):
        raise FeedFormatError('no "feed" list in the NEWS_SENTIMENT answer')
    out: list[Article] = []
    for item in feed:
        if not isinstance(item, dict):
            continue
        url = canonical_url(item.get("url"))
        title = plain_title(item.get("title"))
        if not url or not title:
            continue
        summary = clean_text(item.get("summary"), SUMMARY_MAX_CHARS)
        published = parse_av_time(item.get("time_published")) or now
        tickers: dict[str, dict[str, Any]] = {}
        for ts in item.get("ticker_sentiment") or []:
            if isinstance(ts, dict) and ts.get("ticker"):
                s = _sentiment(ts.get("ticker_sentiment_label"), ts.get("ticker_sentiment_score"))
                if s is not None:
                    tickers[str(ts["ticker"]).upper()] = s
        art = Article(
            url, title, summary, clean_text(item.get("source")) or ALPHA_VANTAGE, published,
            sentiment=_sentiment(item.get("overall_sentiment_label"), item.get("overall_sentiment_score")),
            ticker_sentiment={symbol: tickers[symbol]} if symbol in tickers else {},
            feeds=[ALPHA_VANTAGE],
        )
        if is_relevant(f"{title} {summary}", symbol, name):
            art.symbols = [symbol]
            out.append(art)
    return out


def merge_articles(articles: Iterable[Article]) -> list[Article]:
    """One Article per canonical URL: symbols, feeds and per-ticker sentiment united; the
    first-seen text kept, gaps (summary, sentiment) filled from later copies."""
    merged: dict[str, Article] = {}
    for art in articles:
        have = merged.get(art.url)
        if have is None:
            merged[art.url] = Article(art.url, art.title, art.summary, art.source, art.published_at,
                                      list(art.symbols), art.sentiment, dict(art.ticker_sentiment), list(art.feeds))
            continue
        have.symbols = sorted(set(have.symbols) | set(art.symbols))
        have.feeds = sorted(set(have.feeds) | set(art.feeds))
        have.ticker_sentiment.update({k: v for k, v in art.ticker_sentiment.items() if k not in have.ticker_sentiment})
        have.summary = have.summary or art.summary
        have.sentiment = have.sentiment or art.sentiment
        if have.source in (YAHOO, GOOGLE, ALPHA_VANTAGE) and art.source not in (YAHOO, GOOGLE, ALPHA_VANTAGE):
            have.source = art.source  # a named publisher beats the feed's name
    return list(merged.values())


def google_query(symbol: str, name: str | None = None) -> str:
    short = news_name(name, symbol)
    return f'{symbol} OR "{short}"' if short else symbol


# --------------------------------------------------------------------------- HTTP
class SourceError(Exception):
    """A source could not be read this time (timeout, HTTP error, too big)."""


# urllib3 nests the cause in a long repr; the errno text is what a reader needs.
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _short_reason(exc: Exception) -> str:
    """"ConnectionError: Name or service not known" rather than urllib3's three nested reprs."""
    found = _ERRNO_TEXT.search(str(exc))
    detail = found.group(1).strip() if found else str(exc)[:200]
    return f"{type(exc).__name__}: {detail}"


class PoliteFetcher:
    """GET with a timeout, an honest User-Agent and a pause between requests to one host."""

    def __init__(self, timeout: float, delay: float, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.timeout = timeout
        self.delay = delay
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.clock = clock
        self.sleep = sleep
        self._last: dict[str, float] = {}

    def get(self, url: str) -> bytes:
        host = urlsplit(url).netloc
        if self.delay and host in self._last:
            wait = self._last[host] + self.delay - self.clock()
            if wait > 0:
                self.sleep(wait)
        try:
            with self.session.get(url, timeout=self.timeout, stream=True,
                                  headers={"Accept": "application/rss+xml, application/xml;q=0.9, */*;q=0.5"}) as resp:
                if resp.status_code != 200:
                    raise SourceError(f"HTTP {resp.status_code}")
                body = bytearray()
                for chunk in resp.iter_content(65536):
                    body += chunk
                    if len(body) > MAX_FEED_BYTES:
                        raise SourceError(f"answer larger than {MAX_FEED_BYTES} bytes")
                return bytes(body)
        except requests.Timeout as exc:
            raise SourceError(f"no answer in {self.timeout}s") from exc
        except requests.RequestException as exc:
            raise SourceError(f"cannot read {host}: {_short_reason(exc)}") from exc
        finally:
            self._last[host] = self.clock()


class NewsApi(Protocol):
    def news_sentiment(self, tickers: list[str]) -> dict[str, Any]: ...


@dataclass
class ScrapeResult:
    articles: list[Article]  # merged, relevant
    fetched: dict[str, int] = field(default_factory=dict)  # "source SYMBOL" -> relevant items
    failures: dict[str, str] = field(default_factory=dict)  # "source SYMBOL" -> reason


class NewsScraper:
    def __init__(self, settings: Settings, fetcher: PoliteFetcher | None = None,
                 alpha_vantage: NewsApi | None = None) -> None:
        self.settings = settings
        self.names: Mapping[str, str] = {}  # symbol -> company name as the source gave it (set by collect)
        self.fetcher = fetcher or PoliteFetcher(settings.http_timeout_seconds, settings.news_request_delay_seconds)
        self.alpha_vantage = alpha_vantage

    def _sources(self) -> list[tuple[str, Callable[[str, datetime], list[Article]]]]:
        s = self.settings
        sources: list[tuple[str, Callable[[str, datetime], list[Article]]]] = []
        if s.yahoo_rss_url:
            sources.append((YAHOO, lambda sym, now: parse_yahoo_rss(
                self.fetcher.get(s.yahoo_rss_url.format(symbol=quote_plus(sym), query=quote_plus(sym))), sym, now,
                self.names.get(sym))))
        if s.google_news_rss_url:
            sources.append((GOOGLE, lambda sym, now: parse_google_news_rss(
                self.fetcher.get(s.google_news_rss_url.format(
                    symbol=quote_plus(sym), query=quote_plus(google_query(sym, self.names.get(sym))))),
                sym, now, self.names.get(sym))))
        if self.alpha_vantage is not None:
            sources.append((ALPHA_VANTAGE, lambda sym, now: parse_alpha_vantage_news(
                self.alpha_vantage.news_sentiment([sym]), sym, now, self.names.get(sym))))  # type: ignore[union-attr]
        return sources

    def collect(self, symbols: Iterable[str], now: datetime | None = None,
                names: Mapping[str, str] | None = None) -> ScrapeResult:
        """News of `symbols`; `names` (the registry's company names) widen the relevance check."""
        from market_data.alpha_vantage import AlphaVantageRefused

        self.names = dict(names or {})
        now = now or utc_now()
        symbols = list(symbols)
        result = ScrapeResult([])
        found: list[Article] = []
        skip: set[str] = set()
        for symbol in symbols:
            for name, read in self._sources():
                key = f"{name} {symbol}"
                if name in skip:
                    continue
                try:
                    arts = read(symbol, now)
                except AlphaVantageRefused as exc:
                    result.failures[key] = str(exc)
                    # Out of calls or no key: asking again for the next symbol only spends more.
                    if exc.kind.ends_tick:
                        skip.add(name)
                        log.warning("%s refused (%s); skipping it for the rest of this run", name, exc)
                    else:
                        log.warning("%s failed for %s: %s; other sources continue", name, symbol, exc)
                    continue
                except (SourceError, FeedFormatError) as exc:
                    result.failures[key] = str(exc)
                    log.warning("%s failed for %s: %s; other sources continue", name, symbol, exc)
                    continue
                except Exception as exc:  # a parser surprise must not cost the other sources
                    result.failures[key] = f"{type(exc).__name__}: {exc}"
                    log.exception("%s failed unexpectedly for %s; other sources continue", name, symbol)
                    continue
                result.fetched[key] = len(arts)
                found.extend(arts)
        result.articles = merge_articles(found)
        log.info("scraped %d relevant articles (%d unique) for %s; %d source failures",
                 len(found), len(result.articles), ",".join(symbols),
                 len(result.failures))
        return result
