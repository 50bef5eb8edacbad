"""Serves the recorded news feeds on 8080, answering per symbol as the real feeds do.

  /rss/2.0/headline?s=AAPL     Yahoo Finance RSS: recorded/yahoo_<symbol>.xml
  /rss/search?q=AAPL OR "..."  Google News RSS search (the symbol is the first word):
                               recorded/google_<symbol>.xml
A symbol with no recording gets the recorded empty feed (a real answer: no news).
"""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

RECORDED = Path(__file__).resolve().parent / "recorded"
EMPTY = RECORDED / "yahoo_empty.xml"
ROUTES = {"/rss/2.0/headline": ("yahoo", "s"), "/rss/search": ("google", "q")}


class Feeds(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        parts = urlsplit(self.path)
        route = ROUTES.get(parts.path)
        if route is None:
            self.send_error(404, "not recorded")
            return
        prefix, param = route
        words = parse_qs(parts.query).get(param, [""])[-1].split()
        symbol = words[0].lower() if words and words[0].isalnum() else ""
        recorded = RECORDED / f"{prefix}_{symbol}.xml"
        body = (recorded if symbol and recorded.is_file() else EMPTY).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer.allow_reuse_address = True
    with ThreadingHTTPServer(("0.0.0.0", 8080), Feeds) as server:
        server.serve_forever()
