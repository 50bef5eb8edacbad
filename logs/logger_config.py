"""Centralised logging: every component gets its logger here.

Each record goes to stdout (every line, always) and to the Elasticsearch index
`stock-system-logs` as a JSON document. The Elasticsearch side never slows the
service down: `emit` only appends to a bounded in-memory queue; a daemon thread
ships batches with the bulk API, retries with backoff while Elasticsearch is
down, drops the *oldest* records when the queue is full and then logs how many
it dropped.

Usage in an entry point::

    from logs.logger_config import setup_logging, get_logger
    setup_logging("producer")                 # the service: on every record, stdout and Elasticsearch
    log = get_logger("streaming.producer")    # the module: __name__, or its dotted name in a script
"""

from __future__ import annotations

import atexit
import importlib
import logging
import socket
import sys
import threading
import time
import traceback
from collections import deque
from datetime import UTC, datetime
from typing import Any

from common.retry import Backoff, retry
from config import Settings, get_settings

log = logging.getLogger(__name__)
# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Our own transport's loggers must not feed back into the queue they drain.
_TRANSPORT_LOGGERS = ("elastic_transport", "elasticsearch", "urllib3")

INDEX_TEMPLATE: dict[str, Any] = {
    "mappings": {
        "properties": {
            "timestamp": {"type": "date"},
            "level": {"type": "keyword"},
            "logger": {"type": "keyword"},
            "service": {"type": "keyword"},
            "host": {"type": "keyword"},
            "module": {"type": "keyword"},
            "function": {"type": "keyword"},
            "line": {"type": "integer"},
            "message": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}},
            "exception": {"type": "text"},
        }
    }
}


def record_to_doc(record: logging.LogRecord, service: str, host: str) -> dict[str, Any]:
    """The JSON document stored for one log record (pure; tested without servers)."""
    doc: dict[str, Any] = {
        "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "module": record.module,
        "function": record.funcName,
        "line": record.lineno,
        "service": service,
        "host": host,
    }
    if record.exc_info:
        doc["exception"] = "".join(traceback.format_exception(*record.exc_info))
    elif record.exc_text:
        doc["exception"] = record.exc_text
    context = {
        key: value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }
    if context:
        doc["context"] = context
    return doc


def _load_node_class(path: str) -> Any:
    if not path:
        return None
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def make_es_client(settings: Settings) -> Any:
    """An Elasticsearch client that fails fast; the shipper thread does the retrying."""
    from elasticsearch import Elasticsearch

    kwargs: dict[str, Any] = {"request_timeout": 5, "max_retries": 0, "retry_on_timeout": False}
    node_class = _load_node_class(settings.elasticsearch_node_class)
    if node_class is not None:
        kwargs["node_class"] = node_class
    return Elasticsearch(settings.elasticsearch_url, **kwargs)


class ElasticsearchHandler(logging.Handler):
    """Queue records in memory; a background thread bulk-writes them to Elasticsearch."""

    def __init__(
        self,
        client: Any,
        index: str,
        service: str,
        max_queue: int = 10000,
        batch_size: int = 500,
        max_backoff: float = 5.0,
    ) -> None:
        super().__init__()
        self.client = client
        self.index = index
        self.service = service
        self.host = socket.gethostname()
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self._queue: deque[dict[str, Any]] = deque(maxlen=max_queue)
        self._cond = threading.Condition()
        self._dropped = 0
        self._in_flight = 0
        self._closed = False
        self._closing = threading.Event()  # set by close(): ends the waits between failed shipments
        self._template_ready = False
        self.shipped = 0
        self._thread = threading.Thread(target=self._run, name="es-log-shipper", daemon=True)
        self._thread.start()

    # --- producer side: must stay O(1) and never raise ------------------------
    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_TRANSPORT_LOGGERS):
            return
        try:
            doc = record_to_doc(record, self.service, self.host)
        except Exception:  # a broken record must not break the caller
            self.handleError(record)
            return
        with self._cond:
            if len(self._queue) == self._queue.maxlen:
                self._dropped += 1  # deque(maxlen) discards the oldest on append
            self._queue.append(doc)
            self._cond.notify()

    # --- consumer side ----------------------------------------------------------
    def _take_batch(self) -> list[dict[str, Any]]:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait(timeout=1.0)
            batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
            self._in_flight = len(batch)
            return batch

    def _requeue(self, batch: list[dict[str, Any]]) -> None:
        """Put a failed batch back at the front; if the queue has filled meanwhile,
        the oldest records are the ones that go."""
        with self._cond:
            room = self._queue.maxlen - len(self._queue)  # type: ignore[operator]
            keep = batch[-room:] if room > 0 else []
            self._dropped += len(batch) - len(keep)
            self._queue.extendleft(reversed(keep))
            self._in_flight = 0

    def _ensure_template(self) -> None:
        if not self._template_ready:
            self.client.indices.put_index_template(
                name=f"{self.index}-template",
                index_patterns=[f"{self.index}*"],
                template=INDEX_TEMPLATE,
            )
            self._template_ready = True

    def _ship(self, batch: list[dict[str, Any]]) -> None:
        self._ensure_template()
        lines: list[dict[str, Any]] = []
        for doc in batch:
            lines.append({"index": {"_index": self.index}})
            lines.append(doc)
        resp = self.client.bulk(operations=lines)
        if resp.get("errors"):
            # Rejected documents (e.g. a mapping conflict) would fail forever;
            # report on stdout and move on rather than retry them.
            failed = [i for i in resp.get("items", []) if i.get("index", {}).get("error")]
            print(f"elasticsearch rejected {len(failed)} log records: {failed[:1]}", file=sys.stderr)

    def _report_drops(self) -> None:
        with self._cond:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.warning(
                "log queue was full: dropped %d oldest records bound for Elasticsearch", dropped
            )

    def _ship_next(self) -> bool:
        """Ship the next batch (a failed one goes back to the queue and raises); False once closed and empty."""
        batch = self._take_batch()
        if not batch:
            return not self._closed
        try:
            self._ship(batch)
        except Exception:
            self._requeue(batch)
            raise
        with self._cond:
            self.shipped += len(batch)
            self._in_flight = 0
            self._cond.notify_all()
        self._report_drops()
        return True

    def _run(self) -> None:
        # Silent retries (log=None): a line about Elasticsearch being down would queue for it too.
        backoff = Backoff(0.5, self.max_backoff)
        while retry(self._ship_next, what="shipping logs", retry_on=(Exception,), stop=self._closing, backoff=backoff,
                    log=None) is True:
            pass

    # --- lifecycle -------------------------------------------------------------
    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    def flush(self, timeout: float = 2.0) -> bool:  # type: ignore[override]
        """Wait (bounded) until the queue is empty; True if it emptied."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.pending

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closed = True
            self._closing.set()
            self._cond.notify_all()
        super().close()


class _StdoutFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__("%(asctime)s %(levelname)s [" + service + "] %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")


_configured: dict[str, Any] = {}


def setup_logging(service: str, settings: Settings | None = None) -> ElasticsearchHandler | None:
    """Configure the root logger for this process (idempotent). Returns the ES handler, if any."""
    if "service" in _configured:
        return _configured.get("es")
    settings = settings or get_settings()
    root = logging.getLogger()
    root.setLevel(settings.log_level)
    for handler in list(root.handlers):
        root.removeHandler(handler)

    stdout = logging.StreamHandler(sys.stdout)
    stdout.setFormatter(_StdoutFormatter(service))
    root.addHandler(stdout)
    for name in _TRANSPORT_LOGGERS + ("kafka",):
        logging.getLogger(name).setLevel(logging.WARNING)

    es_handler = None
    if settings.log_to_elasticsearch and settings.elasticsearch_url:
        es_handler = ElasticsearchHandler(
            make_es_client(settings), settings.es_log_index, service, max_queue=settings.log_queue_size
        )
        root.addHandler(es_handler)
        atexit.register(es_handler.flush, 2.0)
    sys.excepthook = _log_uncaught
    _configured.update(service=service, es=es_handler)
    return es_handler


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    # An entry point that dies still leaves its reason in Elasticsearch, not only on stderr.
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    log.critical("service stopped by an unhandled exception: %s", exc, exc_info=(exc_type, exc, tb))


def get_logger(name: str) -> logging.Logger:
    """A named logger; records flow to stdout and Elasticsearch once setup_logging ran."""
    return logging.getLogger(name)

