"""Kibana saved objects (kibana/saved_objects.ndjson) and their loader
(kibana/load_saved_objects.py, the compose one-shot `kibana-setup`)."""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from kibana import load_saved_objects as loader
from logs.logger_config import INDEX_TEMPLATE

ROOT = Path(__file__).resolve().parents[1]
NDJSON = ROOT / "kibana" / "saved_objects.ndjson"
MAPPING = INDEX_TEMPLATE["mappings"]["properties"]
COMPONENTS = ["producer", "consumer", "alerts", "batch", "news", "flask"]  # docs/CONTRIBUTING.md service names
# Attributes Kibana 8's `search` type accepts (its saved-object schema rejects unknown keys).
SEARCH_ATTRIBUTES = {"title", "description", "columns", "sort", "grid", "rowHeight", "rowsPerPage", "hideChart",
                     "breakdownField", "kibanaSavedObjectMeta", "isTextBasedQuery", "usesAdHocDataView",
                     "timeRestore", "timeRange", "refreshInterval", "viewMode", "hideAggregatedPreview",
                     "hits", "version"}


def objects() -> list[dict[str, Any]]:
    lines = [line for line in NDJSON.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def searches() -> list[dict[str, Any]]:
    return [o for o in objects() if o["type"] == "search"]


def search_source(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def kql_fields(query: str) -> set[str]:
    return set(re.findall(r"([A-Za-z_][A-Za-z0-9_.]*)\s*:", query))


def test_ids_are_unique_and_types_known() -> None:
    objs = objects()
    assert len({(o["type"], o["id"]) for o in objs}) == len(objs)
    assert {o["type"] for o in objs} == {"index-pattern", "search"}


def test_data_view_is_the_log_index_with_timestamp_as_time_field() -> None:
    (view,) = [o for o in objects() if o["type"] == "index-pattern"]
    assert view["id"] == loader.DATA_VIEW_ID
    assert view["attributes"]["title"] == Settings(_env_file=None).es_log_index == "stock-system-logs"  # type: ignore[call-arg]
    assert view["attributes"]["timeFieldName"] == "timestamp"
    assert MAPPING["timestamp"]["type"] == "date"


def test_every_reference_resolves() -> None:
    ids = {(o["type"], o["id"]) for o in objects()}
    for obj in objects():
        names = set()
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, f"{obj['id']}: dangling reference {ref}"
            names.add(ref["name"])
        if obj["type"] == "search":
            source = search_source(obj)
            assert "index" not in source, "reference the data view by indexRefName, not by id"
            assert source["indexRefName"] in names, obj["id"]


def test_searches_use_only_fields_of_the_log_index() -> None:
    for obj in searches():
        attrs = obj["attributes"]
        assert set(attrs) <= SEARCH_ATTRIBUTES, f"{obj['id']}: {set(attrs) - SEARCH_ATTRIBUTES}"
        source = search_source(obj)
        assert source["query"]["language"] == "kuery"
        used = kql_fields(source["query"]["query"]) | set(attrs["columns"]) | {s[0] for s in attrs["sort"]}
        assert used <= set(MAPPING), f"{obj['id']}: not in the index mapping: {used - set(MAPPING)}"
        assert attrs["sort"] == [["timestamp", "desc"]]


def test_there_is_a_search_for_errors_and_one_per_component() -> None:
    queries = {search_source(o)["query"]["query"]: o for o in searches()}
    assert any(re.fullmatch(r"level:\(?ERROR( or CRITICAL)?\)?", q) for q in queries), list(queries)
    for component in COMPONENTS:
        assert f"service:{component}" in queries, component
    # The levels are stored as Python's level names (keyword, case-sensitive in KQL).
    assert MAPPING["level"]["type"] == MAPPING["service"]["type"] == "keyword"


def test_prepare_objects_points_the_data_view_at_es_log_index() -> None:
    text = loader.prepare_objects(NDJSON.read_text(), "custom-logs")
    objs = [json.loads(line) for line in text.splitlines()]
    assert [o["id"] for o in objs] == [o["id"] for o in objects()]
    assert objs[0]["attributes"]["title"] == "custom-logs"


# --------------------------------------------------------------------------- the loader, against a stand-in Kibana

class FakeKibana(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, dict[str, str], bytes]] = []
    import_result: dict[str, Any] = {"success": True, "successCount": 0}
    ready_after = 0  # answer 503 to this many status requests first

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802
        self.calls.append(("GET", self.path, dict(self.headers), b""))
        if self.path == "/api/status":
            if FakeKibana.ready_after > 0:
                FakeKibana.ready_after -= 1
                self._reply(503, {"error": "Kibana server is not ready yet"})
            else:
                self._reply(200, {"status": {"overall": {"level": "available"}}})
        else:
            self._reply(404, {})

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.calls.append(("POST", self.path, dict(self.headers), body))
        if self.headers.get("kbn-xsrf") != "true":
            self._reply(400, {"message": "Request must contain a kbn-xsrf header."})
        elif self.path.startswith("/api/saved_objects/_import"):
            self._reply(200, FakeKibana.import_result)
        elif self.path == "/api/data_views/default":
            self._reply(200, {"acknowledged": True})
        else:
            self._reply(404, {})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def kibana() -> Iterator[str]:
    FakeKibana.calls = []
    FakeKibana.ready_after = 1
    FakeKibana.import_result = {"success": True, "successCount": len(objects())}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKibana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_loader_waits_then_imports_with_overwrite_and_sets_the_default_view(kibana: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader.time, "sleep", lambda _s: None)
    result = loader.load(kibana, "stock-system-logs", wait_seconds=30)
    assert result["success"]
    posts = [c for c in FakeKibana.calls if c[0] == "POST"]
    assert [p[1] for p in posts] == ["/api/saved_objects/_import?overwrite=true", "/api/data_views/default"]
    _, _, headers, body = posts[0]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body)
    (part,) = list(message.iter_parts())
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename().endswith(".ndjson")
    sent = [json.loads(line) for line in part.get_payload(decode=True).decode().splitlines()]
    assert sent == objects()
    assert json.loads(posts[1][3]) == {"data_view_id": loader.DATA_VIEW_ID, "force": True}


def test_loader_fails_loudly_when_kibana_rejects_objects(kibana: str) -> None:
    FakeKibana.ready_after = 0
    FakeKibana.import_result = {"success": False, "errors": [{"id": "x", "error": {"type": "conflict"}}]}
    with pytest.raises(SystemExit, match="import failed"):
        loader.load(kibana, wait_seconds=5)


def test_compose_runs_the_loader_after_kibana_is_healthy() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    block = compose.split("\n  kibana-setup:")[1].split("\n  # ---")[0]
    assert "- ./kibana:/kibana:ro" in block
    assert 'command: ["python", "/kibana/load_saved_objects.py"]' in block
    assert re.search(r"kibana:\s*\n\s*condition: service_healthy", block)
    assert 'restart: "no"' in block
