# ruff: noqa: N999 - gunicorn looks for this file name
"""gunicorn settings of the web container.

    gunicorn --config flask_web_app/gunicorn.conf.py "flask_web_app.app:create_app()"

GUNICORN_BIND (default 0.0.0.0:5000), GUNICORN_WORKERS (default 2) and
GUNICORN_THREADS (default 4) override the defaults; the tests use them to run
the app on a free port. The app itself reads its settings through config/.

Worker model for the push channel (/api/stream): gthread. An open stream holds one
thread of its worker for as long as the page stays open, mostly asleep on its queue
(flask_web_app/push.py), so each worker gets GUNICORN_THREADS threads for ordinary
requests plus one per allowed stream (STREAM_MAX_PER_PROCESS); beyond that bound the
stream view answers 503 at once, so streams can never take the threads pages need.
A sleeping thread costs about 100 kB of memory and no CPU. An async worker (gevent)
would hold more streams per process, but needs pymongo, PyMySQL and smtplib
monkey-patched in every request path for a gain this app does not need (a few hundred
viewers); threads keep the code as it is.
"""

import os
import signal

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:5000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads: the live page polls, so many short requests; a slow store (a page
# waits up to 2 s for a dead one) must not block every other request.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4")) + int(os.environ.get("STREAM_MAX_PER_PROCESS", "100"))
# Open streams are connections too (gthread's default bound is 1000).
worker_connections = max(1000, 2 * threads)
timeout = 60
graceful_timeout = 20
keepalive = 5
# Access log on stdout like every other service's output.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = "127.0.0.1"
# No runtime control socket: nothing uses it, and in the image the non-root user
# cannot create it in /app (gunicorn logged "Control server error" at every start).
control_socket_disable = True


def post_worker_init(worker) -> None:  # type: ignore[no-untyped-def]
    """On SIGTERM end the open streams first: otherwise a restart waits graceful_timeout
    for connections that never finish by themselves (the pages reconnect to the new worker)."""
    previous = signal.getsignal(signal.SIGTERM)
    feed = getattr(worker.wsgi, "extensions", {}).get("live_feed")

    def stop(signum, frame) -> None:  # type: ignore[no-untyped-def]
        if feed is not None:
            feed.stop()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, stop)
