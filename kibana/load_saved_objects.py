"""Load kibana/saved_objects.ndjson into Kibana: the stock-system-logs data view
(time field: timestamp) and the saved searches (errors, one per component).

Run by the one-shot `kibana-setup` container of docker-compose.yml once Kibana is
healthy; safe to run again (objects are overwritten by id). Standard library only,
so it runs on the plain python image. By hand, from the host:

    KIBANA_URL=http://localhost:5601 python kibana/load_saved_objects.py

Environment: KIBANA_URL (default http://kibana:5601), ES_LOG_INDEX (default
stock-system-logs: the data view's index pattern follows it), KIBANA_WAIT_SECONDS
(default 300: how long to wait for Kibana to answer).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

SAVED_OBJECTS = Path(__file__).resolve().parent / "saved_objects.ndjson"
DATA_VIEW_ID = "stock-system-logs"
DEFAULT_INDEX = "stock-system-logs"


def prepare_objects(ndjson: str, index: str = DEFAULT_INDEX) -> str:
    """The ndjson to import, with the data view pointed at `index` (ES_LOG_INDEX)."""
    lines = []
    for line in ndjson.splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        if obj["type"] == "index-pattern" and obj["id"] == DATA_VIEW_ID:
            obj["attributes"]["title"] = index
        lines.append(json.dumps(obj, separators=(",", ":")))
    return "\n".join(lines) + "\n"


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field (what the import API takes)."""
    boundary = f"----stock-analysis-{uuid.uuid4().hex}"
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _request(url: str, *, data: bytes | None = None, content_type: str | None = None, timeout: float = 30) -> Any:
    headers = {"kbn-xsrf": "true"}  # Kibana refuses writes without it
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else {}


def wait_for_kibana(base: str, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            _request(f"{base}/api/status", timeout=10)
            return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # 503 "Kibana server is not ready yet" while it starts; connection refused before.
            if time.monotonic() >= deadline:
                raise SystemExit(f"kibana-setup: Kibana at {base} did not answer within {wait_seconds:.0f}s: {exc}") \
                    from exc
            time.sleep(3)


def load(base: str, index: str = DEFAULT_INDEX, wait_seconds: float = 300) -> dict[str, Any]:
    """Import the saved objects and make the logs data view Discover's default."""
    base = base.rstrip("/")
    wait_for_kibana(base, wait_seconds)
    objects = prepare_objects(SAVED_OBJECTS.read_text(encoding="utf-8"), index)
    body, ctype = multipart("file", SAVED_OBJECTS.name, objects.encode())
    result = _request(f"{base}/api/saved_objects/_import?overwrite=true", data=body, content_type=ctype)
    if not result.get("success"):
        raise SystemExit(f"kibana-setup: import failed: {json.dumps(result.get('errors', result))[:2000]}")
    _request(
        f"{base}/api/data_views/default",
        data=json.dumps({"data_view_id": DATA_VIEW_ID, "force": True}).encode(),
        content_type="application/json",
    )
    return result


def main() -> int:
    base = os.environ.get("KIBANA_URL", "http://kibana:5601")
    index = os.environ.get("ES_LOG_INDEX") or DEFAULT_INDEX
    wait_seconds = float(os.environ.get("KIBANA_WAIT_SECONDS", "300"))
    try:
        result = load(base, index, wait_seconds)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:2000]
        print(f"kibana-setup: {exc.code} from {exc.url}: {detail}", file=sys.stderr)
        return 1
    print(f"kibana-setup: {result.get('successCount', 0)} saved objects loaded into {base} "
          f"(data view {DATA_VIEW_ID!r} on index {index!r}, now the default)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
