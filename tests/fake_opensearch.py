"""An in-memory OpenSearch behind opensearch-py's Connection interface, or served over HTTP on
localhost: it implements the few endpoints the profile store uses (templates, indices, _bulk,
aliases, _doc, _search with term / range / multi_match bool_prefix / bool (filter, must, should) /
search_after / terms aggregation, _reindex) and records every request, so one contract suite runs
against both adapters and request bodies can be asserted exactly."""

from __future__ import annotations

import fnmatch
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from opensearchpy import Connection, OpenSearch


class FakeOpenSearch:
    def __init__(self) -> None:
        self.templates: dict[str, Any] = {}
        self.indices: dict[str, dict[str, dict[str, Any]]] = {}
        self.meta: dict[str, dict[str, Any]] = {}  # index -> mappings._meta
        self.aliases: dict[str, set[str]] = {}  # alias -> indices
        self.requests: list[tuple[str, str, Any]] = []

    # -- helpers ----------------------------------------------------------------------------------
    def _resolve(self, name: str) -> list[str]:
        if name in self.aliases:
            return sorted(self.aliases[name])
        return [name] if name in self.indices else []

    @staticmethod
    def _missing(name: str) -> tuple[int, dict[str, Any]]:
        return 404, {"error": {"type": "index_not_found_exception", "reason": f"no such index [{name}]"},
                     "status": 404}

    @staticmethod
    def _source(doc: dict[str, Any], includes: list[str] | None, excludes: list[str] | None) -> dict[str, Any]:
        """Source filtering as OpenSearch does it (top-level field names only)."""
        if includes:
            doc = {k: v for k, v in doc.items() if k in includes}
        return {k: v for k, v in doc.items() if k not in (excludes or [])}

    def handle(self, method: str, url: str, body: bytes | None, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        params = params or {}
        text = body.decode() if body else None
        parsed: Any = None
        if text and url != "/_bulk":
            parsed = json.loads(text)
        self.requests.append((method, url, text if url == "/_bulk" else parsed))
        parts = url.strip("/").split("/")
        if method == "PUT" and parts[0] == "_index_template":
            self.templates[parts[1]] = parsed
            return 200, {"acknowledged": True}
        if method == "POST" and url == "/_bulk":
            return 200, self._bulk(text or "")
        if method == "GET" and parts[0] == "_alias":
            held = sorted(self.aliases.get(parts[1], set()))
            if not held:
                return 404, {"error": f"alias [{parts[1]}] missing", "status": 404}
            return 200, {index: {"aliases": {parts[1]: {}}} for index in held}
        if method == "POST" and url == "/_aliases":
            actions = parsed["actions"]
            for action in actions:  # validate first: the real call is all-or-nothing
                (kind, spec), = action.items()
                if spec["index"] not in self.indices:
                    return self._missing(spec["index"])
            for action in actions:
                (kind, spec), = action.items()
                held = self.aliases.setdefault(spec["alias"], set())
                (held.add if kind == "add" else held.discard)(spec["index"])
            return 200, {"acknowledged": True}
        if len(parts) == 1 and method == "PUT":
            if parts[0] in self.indices:
                return 400, {"error": {"type": "resource_already_exists_exception"}, "status": 400}
            self.indices[parts[0]] = {}
            self.meta[parts[0]] = ((parsed or {}).get("mappings") or {}).get("_meta") or {}
            return 200, {"acknowledged": True, "index": parts[0]}
        if len(parts) == 2 and parts[1] == "_mapping" and method == "GET":
            if parts[0] not in self.indices:
                return self._missing(parts[0])
            return 200, {parts[0]: {"mappings": {"_meta": self.meta[parts[0]]} if self.meta[parts[0]] else {}}}
        if method == "POST" and url == "/_reindex":
            source, dest = parsed["source"]["index"], parsed["dest"]["index"]
            if source not in self.indices:
                return self._missing(source)
            self.indices.setdefault(dest, {}).update({k: dict(v) for k, v in self.indices[source].items()})
            return 200, {"took": 1, "total": len(self.indices[source]), "created": len(self.indices[source]),
                         "failures": []}
        if len(parts) == 1 and method == "GET":
            found = sorted(i for i in self.indices if fnmatch.fnmatch(i, parts[0]))
            return 200, {i: {"aliases": {}, "mappings": {}, "settings": {}} for i in found}
        if len(parts) == 1 and method == "DELETE":
            if parts[0] not in self.indices:
                return self._missing(parts[0])
            del self.indices[parts[0]]
            for held in self.aliases.values():
                held.discard(parts[0])
            return 200, {"acknowledged": True}
        if len(parts) == 2 and parts[1] in ("_settings", "_refresh"):
            return (200, {"acknowledged": True}) if parts[0] in self.indices else self._missing(parts[0])
        if len(parts) == 3 and parts[1] == "_doc" and method == "GET":
            targets = self._resolve(parts[0])
            if not targets:
                return self._missing(parts[0])
            for index in targets:
                if parts[2] in self.indices[index]:
                    source = self._source(self.indices[index][parts[2]],
                                          _split(params.get("_source_includes")), _split(params.get("_source_excludes")))
                    return 200, {"_index": index, "_id": parts[2], "found": True, "_source": source}
            return 404, {"_index": targets[0], "_id": parts[2], "found": False}
        if len(parts) == 2 and parts[1] == "_search":
            targets = self._resolve(parts[0])
            if not targets:
                return self._missing(parts[0])
            return 200, self._search(targets, parsed or {})
        return 400, {"error": {"type": "fake_unsupported", "reason": f"{method} {url}"}, "status": 400}

    def _bulk(self, text: str) -> dict[str, Any]:
        lines = iter(text.strip("\n").split("\n"))
        items = []
        for action_line in lines:
            (op, meta), = json.loads(action_line).items()
            source = None if op == "delete" else json.loads(next(lines))
            index = meta["_index"]
            if index not in self.indices:
                items.append({op: {"_index": index, "_id": meta["_id"], "status": 404,
                                   "error": {"type": "index_not_found_exception"}}})
                continue
            if op == "delete":
                found = self.indices[index].pop(meta["_id"], None) is not None
                items.append({op: {"_index": index, "_id": meta["_id"], "status": 200 if found else 404,
                                   "result": "deleted" if found else "not_found"}})
                continue
            self.indices[index][meta["_id"]] = source
            items.append({op: {"_index": index, "_id": meta["_id"], "status": 201, "result": "created"}})
        return {"took": 1, "errors": any("error" in next(iter(i.values())) for i in items), "items": items}

    @staticmethod
    def _matches(doc: dict[str, Any], clause: dict[str, Any]) -> bool:
        (kind, spec), = clause.items()
        if kind == "term":
            (field, value), = spec.items()
            held = doc.get(field)
            # a field holding a list (customer_ids) is multi-valued: a term matches any of its values
            return value in held if isinstance(held, list) else held == value
        if kind == "range":
            (field, bounds), = spec.items()
            value = doc.get(field)
            if value is None:
                return False
            return all({"gte": value >= b, "lte": value <= b, "gt": value > b, "lt": value < b}[op]
                       for op, b in bounds.items())
        if kind == "multi_match":
            assert spec["type"] == "bool_prefix" and spec["operator"] == "and"
            words = re.findall(r"\w+", spec["query"].lower())
            fields = [f.split(".")[0] for f in spec["fields"]]
            terms = [t for f in fields for t in re.findall(r"\w+", str(doc.get(f) or "").lower())]
            # bool_prefix: every word but the last matches a whole term; the last one a prefix.
            return all(w in terms for w in words[:-1]) and any(t.startswith(words[-1]) for t in terms)
        if kind == "bool":
            required = all(FakeOpenSearch._matches(doc, c) for c in spec.get("filter", []) + spec.get("must", []))
            # OpenSearch's default: one should clause must match in a bool of should clauses alone
            wanted = spec.get("minimum_should_match", 0 if "filter" in spec or "must" in spec else 1)
            return required and sum(FakeOpenSearch._matches(doc, c) for c in spec.get("should", [])) >= wanted
        raise AssertionError(f"fake does not support query {kind}")

    def _search(self, targets: list[str], body: dict[str, Any]) -> dict[str, Any]:
        docs = [d for index in targets for d in self.indices[index].values()]
        if "query" in body:
            docs = [d for d in docs if self._matches(d, body["query"])]
        result: dict[str, Any] = {"took": 1, "timed_out": False}
        if "aggs" in body:
            (agg_name, agg), = body["aggs"].items()
            field = agg["terms"]["field"]
            counts: dict[str, int] = {}
            for d in docs:
                if d.get(field) is not None:
                    counts[d[field]] = counts.get(d[field], 0) + 1
            result["aggregations"] = {agg_name: {"buckets": [{"key": k, "doc_count": counts[k]}
                                                             for k in sorted(counts)][: agg["terms"]["size"]]}}
        assert body.get("sort", [{"customer_id": "asc"}]) == [{"customer_id": "asc"}]
        docs.sort(key=lambda d: d["customer_id"])
        if "search_after" in body:
            docs = [d for d in docs if d["customer_id"] > body["search_after"][0]]
        docs = docs[: body.get("size", 10)]
        source = body.get("_source", True)
        excludes = source.get("excludes") if isinstance(source, dict) else None
        result["hits"] = {"hits": [{"_id": d["customer_id"], "sort": [d["customer_id"]],
                                    **({"_source": self._source(d, None, excludes)} if source is not False else {})}
                                   for d in docs]}
        return result


def _split(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    return value.split(",") if isinstance(value, str) else list(value)


def make_client(fake: FakeOpenSearch) -> OpenSearch:
    class FakeConnection(Connection):
        def perform_request(self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None):
            status, data = fake.handle(method, url, body, params)
            raw = json.dumps(data)
            if not 200 <= status < 300 and status not in ignore:
                self._raise_error(status, raw, "application/json")
            return status, {"content-type": "application/json"}, raw

    return OpenSearch(hosts=["http://fake-opensearch:9200"], connection_class=FakeConnection, max_retries=0)




@contextmanager
def serve_opensearch(fake: FakeOpenSearch) -> Iterator[str]:
    """The fake on a free localhost port over real HTTP (what a client built by
    rfmlake.profiles.opensearch.client_for talks to); yields the endpoint URL."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            parts = urlsplit(self.path)
            with lock:
                status, data = fake.handle(self.command, parts.path, body, dict(parse_qsl(parts.query)))
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
