"""articles/news_scraper.py and articles/digest.py: pure parsing and rendering, no servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from articles.digest import build_sections, render_digest, safe_link
from articles.news_scraper import (
    FeedFormatError,
    canonical_url,
    clean_text,
    is_relevant,
    merge_articles,
    parse_alpha_vantage_news,
    parse_google_news_rss,
    parse_yahoo_rss,
)
from tests.support.http_fixture import FIXTURES

NEWS = FIXTURES / "news"
# Company names as Yahoo's quote answer gives them (tests/fixtures/yahoo_quote_open.json), kept in the
# symbol registry: the news relevance check and the digest use them.
NAMES = {"AAPL": "Apple Inc.", "MSFT": "Microsoft Corporation"}
NOW = datetime(2026, 1, 13, 18, 0, tzinfo=UTC)


def _fixture(name: str) -> bytes:
    return (NEWS / name).read_bytes()


def test_yahoo_rss_every_field_and_irrelevant_dropped() -> None:
    arts = parse_yahoo_rss(_fixture("yahoo_aapl.xml"), "AAPL", NOW, NAMES["AAPL"])
    # 4 items; the Treasury-yields one mentions neither AAPL nor Apple.
    assert [a.title for a in arts] == [
        "Apple services record lifts shares as analysts raise targets",
        "Microsoft vs. Apple: who wins the on-device AI race?",
        "AAPL options price a big earnings move",
    ]
    first = arts[0]
    # ?.tsrc=rss gone:
    assert first.url == "https://finance.yahoo.com/news/apple-services-record-lifts-shares-140500123.html"
    assert first.summary.startswith("Apple shares climbed in morning trading")
    assert first.source == "Yahoo Finance"
    assert first.published_at == datetime(2026, 1, 13, 14, 5, tzinfo=UTC)
    assert first.published_date == "2026-01-13"
    assert first.symbols == ["AAPL"]
    assert first.sentiment is None  # Yahoo gives none
    # Tracking parameters (.tsrc, utm_*) are not part of an article's identity.
    assert arts[2].url == "https://finance.yahoo.com/news/aapl-options-earnings-move-093000321.html"
    doc = first.to_doc(NOW)
    assert set(doc) >= {"url", "title", "summary", "source", "published_at", "published_date", "symbols",
                        "sentiment", "fetched_at"}


def test_google_news_rss_publisher_and_markup() -> None:
    arts = parse_google_news_rss(_fixture("google_aapl.xml"), "AAPL", NOW, NAMES["AAPL"])
    assert [(a.title, a.source) for a in arts] == [
        ("Apple to open new manufacturing academy in Detroit", "Reuters"),  # " - Reuters" suffix removed
        ("Is AAPL stock a buy after the January pullback?", "The Motley Fool"),
    ]  # the CNBC market wrap never names Apple: dropped
    assert arts[0].url.startswith("https://news.google.com/rss/articles/CBMi")
    assert arts[0].published_at == datetime(2026, 1, 13, 13, 15, tzinfo=UTC)
    # The HTML description only repeats headline + publisher: no summary rather than markup.
    assert all("<" not in a.summary and "font" not in a.summary for a in arts)


def test_alpha_vantage_news_sentiment_fields() -> None:
    payload = json.loads(_fixture("alpha_vantage_news_aapl.json"))
    arts = parse_alpha_vantage_news(payload, "AAPL", NOW, NAMES["AAPL"])
    assert [a.source for a in arts] == ["Yahoo Finance", "Benzinga"]  # dividend listicle dropped
    eu = arts[1]
    assert eu.title == "Apple Faces EU Scrutiny Over App Store Fees Again"
    assert eu.summary == ("European regulators opened a new review of Apple's App Store fee structure, "
                          "the third in two years.")
    # 07:15 US Eastern (Alpha Vantage's clock) is 12:15 UTC.
    assert eu.published_at == datetime(2026, 1, 13, 12, 15, tzinfo=UTC)
    assert eu.sentiment == {"label": "Somewhat-Bearish", "score": -0.2123}
    assert eu.ticker_sentiment == {"AAPL": {"label": "Somewhat-Bearish", "score": -0.301}}
    with pytest.raises(FeedFormatError):
        parse_alpha_vantage_news({"items": "0"}, "AAPL", NOW, NAMES["AAPL"])
    assert parse_alpha_vantage_news({"items": "0", "feed": []}, "AAPL", NOW, NAMES["AAPL"]) == []


@pytest.mark.parametrize("name", ["yahoo_truncated.xml", "junk_consent_page.html", "junk_binary.bin",
                                  "alpha_vantage_news_aapl.json"])
def test_broken_or_junk_feed_is_a_format_error(name: str) -> None:
    with pytest.raises(FeedFormatError):
        parse_yahoo_rss(_fixture(name), "AAPL", NOW, NAMES["AAPL"])


def test_empty_feed_is_no_news() -> None:
    assert parse_yahoo_rss(_fixture("yahoo_empty.xml"), "MSFT", NOW, NAMES["MSFT"]) == []


def test_duplicates_across_sources_and_symbols_merge_by_canonical_url() -> None:
    found = (parse_yahoo_rss(_fixture("yahoo_aapl.xml"), "AAPL", NOW, NAMES["AAPL"])
             + parse_yahoo_rss(_fixture("yahoo_msft.xml"), "MSFT", NOW, NAMES["MSFT"])
             + parse_alpha_vantage_news(json.loads(_fixture("alpha_vantage_news_aapl.json")), "AAPL", NOW,
                                        NAMES["AAPL"]))
    merged = {a.url: a for a in merge_articles(found)}
    assert len(found) == 7 and len(merged) == 5
    both = merged["https://finance.yahoo.com/news/microsoft-apple-ai-assistants-compared-120000456.html"]
    assert both.symbols == ["AAPL", "MSFT"]
    services = merged["https://finance.yahoo.com/news/apple-services-record-lifts-shares-140500123.html"]
    assert services.feeds == ["Alpha Vantage", "Yahoo Finance"]
    assert services.ticker_sentiment["AAPL"]["label"] == "Bullish"  # gap filled from the AV copy


def test_canonical_url_and_relevance_rules() -> None:
    assert canonical_url("javascript:alert(1)") is None
    assert canonical_url("data:text/html,<b>x</b>") is None
    assert canonical_url("/relative/path") is None
    assert canonical_url("HTTPS://Example.COM:443/a/b/?utm_source=x&id=7#top") == "https://example.com/a/b?id=7"
    meta = "Meta Platforms, Inc."  # the name as Yahoo gives it (the symbol registry's)
    assert is_relevant("Meta Platforms beats estimates", "META", meta)
    assert is_relevant("Meta beats estimates", "META", meta)
    assert not is_relevant("Meta beats estimates", "META")  # no name known: the ticker only
    assert not is_relevant("International news", "IBM", "International Business Machines Corporation")
    assert is_relevant("International Business Machines beats", "IBM", "International Business Machines Corporation")
    assert is_relevant("Why META fell today", "META")
    assert not is_relevant("metadata standards update", "META", meta)
    assert not is_relevant("AAPLX fund rebalances", "AAPL")
    assert clean_text("<p>one</p><p>two</p><script>evil()</script>") == "one two"


def _hostile_sections() -> list[dict]:
    arts = parse_yahoo_rss(_fixture("yahoo_hostile.xml"), "AAPL", NOW, NAMES["AAPL"])
    news = {"AAPL": [a.to_doc(NOW) for a in arts] + [{
        "url": "javascript:alert(document.cookie)", "title": "Stored before the rules", "summary": "",
        "source": "Somewhere", "published_at": NOW, "sentiment": {"label": "Bullish", "score": 0.5}}]}
    quotes = {"AAPL": {"symbol": "AAPL", "price": 261.05, "change_percent": -1.2345}}
    return build_sections(["AAPL", "MSFT"], news, quotes, ZoneInfo("America/New_York"), NAMES)


def test_digest_escapes_scraped_strings_and_keeps_only_web_links() -> None:
    digest = render_digest("Ana <i>", "2026-01-13", _hostile_sections())
    assert "<script>" not in digest.html and "<b>bold" not in digest.html and "<i>" not in digest.html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; Apple headline &lt;b&gt;bold&lt;/b&gt;" in digest.html
    assert "javascript:" not in digest.html and "javascript:" not in digest.text
    assert "onerror" not in digest.html
    assert '<a href="https://finance.yahoo.com/news/apple-hostile-headline-130000111.html">' in digest.html
    assert "Stored before the rules" in digest.html  # shown, just not as a link
    assert "$261.05" in digest.html and "-1.23%" in digest.html
    assert "08:00 EST" in digest.html  # 13:00 UTC in the market's zone
    assert "Bullish (+0.50)" in digest.html
    assert "MSFT" in digest.html and "No news in the last day." in digest.html
    # The plain-text alternative says the same thing, unescaped.
    assert '<script>alert("pwned")</script> Apple headline' in digest.text
    assert "$261.05 (-1.23%)" in digest.text
    assert digest.article_count == 2
    assert safe_link(" https://example.com/x ") == "https://example.com/x"
    assert safe_link("https://exa mple.com") is None
    assert safe_link("ftp://example.com/x") is None


def test_a_digest_after_no_source_could_be_read_says_so_not_no_news() -> None:
    """Seen on the local stack (no network): every news source failed, and the digest still told
    the reader "No news in the last day." for each symbol, as if nothing had happened."""
    sections = build_sections(["AAPL"], {}, {}, ZoneInfo("America/New_York"), {"AAPL": "Apple Inc."})
    quiet = render_digest("Ana", "2026-12-03", sections)
    assert "No news in the last day." in quiet.text and "could not be read" not in quiet.text + quiet.html
    unread = render_digest("Ana", "2026-12-03", sections, sources_unread=True)
    for body in (unread.text, unread.html):
        assert "The news sources could not be read today" in body and "No news could be read." in body
        assert "No news in the last day." not in body
