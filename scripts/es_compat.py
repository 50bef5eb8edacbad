"""elastic_transport node for the osmem-server stand-in (local stack and tests only).

The official client sends `application/vnd.elasticsearch+json;
compatible-with=8`, which osmem-server rejects; this node rewrites those
headers to plain JSON. The product selects it only through
ELASTICSEARCH_NODE_CLASS, which only the local stack and the tests set.
"""

from __future__ import annotations

from typing import Any

from elastic_transport import Urllib3HttpNode


class CompatNode(Urllib3HttpNode):
    def perform_request(  # type: ignore[override]
        self, method: str, target: str, body: Any = None, headers: Any = None, request_timeout: Any = None
    ) -> Any:
        fixed = dict(headers or {})
        for key in list(fixed):
            value = str(fixed[key])
            if key.lower() in ("accept", "content-type") and "vnd.elasticsearch" in value:
                fixed[key] = "application/x-ndjson" if "x-ndjson" in value else "application/json"
        return super().perform_request(method, target, body=body, headers=fixed, request_timeout=request_timeout)


NODE_CLASS_PATH = "scripts.es_compat:CompatNode"
