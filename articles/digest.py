"""The daily digest email, rendered from templates (pure: no I/O beyond reading them).

Every string that came from a feed is escaped by Jinja2's autoescape in the HTML
part, and a link is only made from an http(s) URL, so a hostile headline or a
javascript: link cannot put markup or script into the mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from articles.news_scraper import http_parts

TEMPLATES = Path(__file__).resolve().parent / "templates"

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# The plain-text part is not HTML: escaping it would show "&lt;" to the reader.
_text_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)), autoescape=False, undefined=StrictUndefined,
    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
)


@dataclass
class RenderedDigest:
    subject: str
    text: str
    html: str
    article_count: int


def safe_link(url: Any) -> str | None:
    """The URL if it is an absolute http(s) link, else None (javascript:, data:, relative...)."""
    if http_parts(url) is None:
        return None
    url = str(url).strip()
    if any(ord(c) < 32 or c.isspace() for c in url):
        return None
    return url


def _sentiment_view(article: dict[str, Any], symbol: str) -> str:
    s = (article.get("ticker_sentiment") or {}).get(symbol) or article.get("sentiment")
    if not isinstance(s, dict) or s.get("score") is None:
        return ""
    label = s.get("label") or ""
    try:
        return f"{label} ({float(s['score']):+.2f})".strip()
    except (TypeError, ValueError):
        return str(label)


def _quote_view(quote: dict[str, Any] | None) -> dict[str, Any] | None:
    if not quote or quote.get("price") is None:
        return None
    try:
        price = float(quote["price"])
        change = quote.get("change_percent")
        change_f = float(change) if change is not None else None
    except (TypeError, ValueError):
        return None
    return {
        "price": f"{price:,.2f}",
        "change": f"{change_f:+.2f}%" if change_f is not None else "n/a",
        "direction": "up" if (change_f or 0) > 0 else "down" if (change_f or 0) < 0 else "flat",
    }


def build_sections(symbols: list[str], news: dict[str, list[dict[str, Any]]],
                   quotes: dict[str, dict[str, Any]], tz: ZoneInfo,
                   names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The view model: one section per symbol, articles newest first with display fields;
    `names` are the companies' names as the quote source gave them (the symbol registry)."""
    sections = []
    for symbol in symbols:
        items = []
        for art in news.get(symbol, []):
            published = art.get("published_at")
            when = published.astimezone(tz).strftime("%b %d %H:%M %Z") if isinstance(published, datetime) else ""
            item = {
                "title": str(art.get("title") or "(untitled)"),
                "href": safe_link(art.get("url")),
                "source": str(art.get("source") or ""),
                "time": when,
                "summary": str(art.get("summary") or ""),
                "sentiment": _sentiment_view(art, symbol),
            }
            item["meta"] = " · ".join(
                p for p in (item["source"], item["time"], item["sentiment"] and f"sentiment: {item['sentiment']}") if p)
            items.append(item)
        sections.append({"symbol": symbol, "company": (names or {}).get(symbol) or symbol,
                         "quote": _quote_view(quotes.get(symbol)),
                         "articles": items})
    return sections


def render_digest(name: str, day: str, sections: list[dict[str, Any]], *,
                  sources_unread: bool = False) -> RenderedDigest:
    """sources_unread: no news source could be read in this run; the digest says so instead of
    "no news", which would tell the reader nothing happened."""
    count = sum(len(s["articles"]) for s in sections)
    subject = f"Your daily market news — {day} ({count} article{'s' if count != 1 else ''})"
    context = {"name": name or "investor", "day": day, "sections": sections, "count": count,
               "sources_unread": sources_unread}
    html = _env.get_template("digest.html").render(**context)
    text = _text_env.get_template("digest.txt").render(**context)
    return RenderedDigest(subject, text, html, count)
