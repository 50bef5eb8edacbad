"""Elasticsearch stand-in: osmem-server on 127.0.0.1:9201 and, in front of it on
0.0.0.0:9200, a proxy that rewrites the official client's media types.

elasticsearch-py 8 sends `application/vnd.elasticsearch+json; compatible-with=8`
(and `...+x-ndjson` for _bulk) as Content-Type and Accept; osmem-server wants plain
JSON. Everything else (method, path, body, status, response headers) passes as is.
"""

import http.client
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BACKEND = ("127.0.0.1", 9201)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def plain(value: str) -> str:
    if "vnd.elasticsearch" not in value:
        return value
    return "application/x-ndjson" if "x-ndjson" in value else "application/json"


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: (plain(v) if k.lower() in ("content-type", "accept") else v)
                   for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn = http.client.HTTPConnection(*BACKEND, timeout=60)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            self.send_error(502, f"osmem-server: {exc}")
            return
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward  # noqa: N815 - http.server names

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per log record shipped would drown the container log


def wait_for_backend(proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"osmem-server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(*BACKEND, timeout=2)
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("osmem-server did not answer on 127.0.0.1:9201")


if __name__ == "__main__":
    backend = subprocess.Popen(["osmem-server", "-addr", f"{BACKEND[0]}:{BACKEND[1]}", "-no-stdin-watch", "-no-ja"])
    try:
        wait_for_backend(backend)
        server = ThreadingHTTPServer(("0.0.0.0", 9200), Proxy)
        server.daemon_threads = True
        print("es_standin: osmem-server behind the media-type proxy on :9200", flush=True)
        server.serve_forever()
    finally:
        backend.terminate()
        backend.wait(timeout=10)
