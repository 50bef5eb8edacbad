# ruff: noqa: N999 - gunicorn looks for this file name
"""gunicorn settings of the web container.

    gunicorn --config flask_web_app/gunicorn.conf.py "flask_web_app.app:create_app()"

GUNICORN_BIND (default 0.0.0.0:5000), GUNICORN_WORKERS (default 2) and
GUNICORN_THREADS (default 4) override the defaults; the tests use them to run
the app on a free port. The app itself reads its settings through config/.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:5000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads: the live page polls, so many short requests; a slow store (a page
# waits up to 2 s for a dead one) must not block every other request.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
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
