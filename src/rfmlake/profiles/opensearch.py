"""The OpenSearch profile store (AWS): an index template with explicit mappings, one index per
generation (`<alias>-<generation>`) filled with helpers.bulk, and an alias readers query that is
moved to the new index in one `_aliases` call, so no reader ever sees a half-built index.

The client is handed in (awswrangler style: nothing is created at import time); `client_for`
builds one for an endpoint, signing with SigV4 from an optional boto3 session.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from rfmlake.profiles.embedded import check_generation
from rfmlake.profiles.store import (
    DocumentInput,
    ProfilePage,
    ProfileQuery,
    ProfileStoreError,
    SegmentCount,
    as_profile_document,
    page_from,
    stale_generations,
)

if TYPE_CHECKING:
    import boto3
    from opensearchpy import OpenSearch

_KEYWORD = {"type": "keyword"}
_TEXT_KEYWORD = {"type": "text", "fields": {"raw": {"type": "keyword"}}}

# Explicit mappings for every document field: `dynamic: strict` rejects a document with an unknown
# field instead of guessing a type (value is an object whose columns belong to another mart).
PROFILE_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "customer_id": _KEYWORD,
        "email_token": _KEYWORD,
        "is_guest": {"type": "boolean"},
        "country_code": {"type": "text", "fields": {"raw": _KEYWORD}},
        "city": _TEXT_KEYWORD,
        "postal_code": _KEYWORD,
        "created_at": {"type": "date"},
        "marketing_opt_in": {"type": "boolean"},
        "has_email": {"type": "boolean"},
        "has_phone": {"type": "boolean"},
        "first_order_date": {"type": "date", "format": "strict_date"},
        "last_order_date": {"type": "date", "format": "strict_date"},
        "lifetime_orders": {"type": "integer"},
        "orders_placed": {"type": "integer"},
        "as_of_date": {"type": "date", "format": "strict_date"},
        "recency_days": {"type": "integer"},
        "frequency": {"type": "integer"},
        "monetary": {"type": "scaled_float", "scaling_factor": 100},
        "avg_order_value": {"type": "scaled_float", "scaling_factor": 100},
        "r_score": {"type": "byte"},
        "f_score": {"type": "byte"},
        "m_score": {"type": "byte"},
        "rfm_cell": _KEYWORD,
        "rfm_segment": {"type": "keyword", "fields": {"text": {"type": "text"}}},
        "cluster_id": {"type": "short"},
        "cluster_label": {"type": "keyword", "fields": {"text": {"type": "text"}}},
        "model_version": _KEYWORD,
        "value": {"type": "object", "enabled": False},
        "last_event_at": {"type": "date"},
        "last_event_type": _KEYWORD,
        "event_count": {"type": "integer"},
        "person_id": _KEYWORD,
        # every customer id of the person, indexed: the member-id lookup (primary_id's term query)
        "customer_ids": _KEYWORD,
        # the person's other email tokens (ProfileDocument.secondary_email_tokens), only in documents
        # that have some: find_by_email_token matches them beside email_token; no read returns them
        "secondary_email_tokens": _KEYWORD,
        "engagement_segment": {"type": "keyword", "fields": {"text": {"type": "text"}}},
        "sessions": {"type": "integer"},
        "sessions_30d": {"type": "integer"},
        "sessions_90d": {"type": "integer"},
        "page_views": {"type": "integer"},
        "product_views": {"type": "integer"},
        "add_to_carts": {"type": "integer"},
        "carts_abandoned": {"type": "integer"},
        "last_seen_at": {"type": "date"},
        "engagement_recency_days": {"type": "integer"},
        # served by GET /customers/{id}/recommendations only: stored, never searched
        "recommendations": {"type": "object", "enabled": False},
    },
}
# Bulk requests: at most this many documents and bytes each (a profile document is about 1 KB, 2.5 KB
# with ten recommendations, so 2,000 documents stay near 5 MB, far below OpenSearch's 100 MB
# http.max_content_length).
BULK_DOCUMENTS = 2000
BULK_BYTES = 10 * 2**20
REINDEX_TIMEOUT_SECONDS = 600
_RECOMMENDATIONS = ["recommendations"]
_NOT_IN_PROFILE = [*_RECOMMENDATIONS, "secondary_email_tokens"]
_TEXT_QUERY_FIELDS = ["city", "country_code", "rfm_segment.text", "cluster_label.text"]
_SEARCH_SORT = [{"customer_id": "asc"}]


def client_for(endpoint: str, region: str, boto3_session: boto3.Session | None = None) -> OpenSearch:
    """A client for an Amazon OpenSearch Service domain, SigV4-signed with the session's credentials."""
    import boto3 as _boto3
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    session = boto3_session or _boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ProfileStoreError("no AWS credentials found for OpenSearch (configure the AWS default chain)")
    # An http:// endpoint (a cluster on a private network, a local one) is taken as written; any
    # other is https, as Amazon OpenSearch Service domains are.
    tls = not endpoint.startswith("http://")
    return OpenSearch(
        hosts=[endpoint], http_auth=AWSV4SignerAuth(credentials, region, "es"), use_ssl=tls,
        verify_certs=tls, connection_class=RequestsHttpConnection, timeout=30,
    )


class OpenSearchProfileStore:
    def __init__(self, client: OpenSearch, alias: str = "rfmlake-profiles", shards: int = 1, replicas: int = 1) -> None:
        self.client = client
        self.alias = alias
        self.shards = shards
        self.replicas = replicas

    # -- generations ----------------------------------------------------------------------------
    def index_name(self, generation: str) -> str:
        return f"{self.alias}-{check_generation(generation).lower()}"

    def template_body(self) -> dict[str, Any]:
        return {
            "index_patterns": [f"{self.alias}-*"],
            "template": {
                "settings": {"number_of_shards": self.shards, "number_of_replicas": self.replicas,
                             "refresh_interval": "1s"},
                "mappings": PROFILE_MAPPINGS,
            },
        }

    def _actions(self, index: str, documents: Iterable[DocumentInput]) -> Iterator[dict[str, Any]]:
        for doc in map(as_profile_document, documents):
            # The JSON text as the bulk line: opensearch-py's serializer passes a str through as is.
            source = doc.json_text
            if doc.secondary_email_tokens:  # the lookup key joins the document's JSON object as one more field
                source = f'{source[:-1]},"secondary_email_tokens":{json.dumps(list(doc.secondary_email_tokens))}}}'
            yield {"_op_type": "index", "_index": index, "_id": doc.customer_id, "_source": source}

    def _bulk(self, index: str, actions: Iterable[dict[str, Any]]) -> int:
        """Stream `actions` in bulk requests of BULK_DOCUMENTS documents (at most BULK_BYTES each)."""
        from opensearchpy import helpers

        count, errors = helpers.bulk(self.client, actions, chunk_size=BULK_DOCUMENTS, max_chunk_bytes=BULK_BYTES,
                                     raise_on_error=False, stats_only=False)
        # A delete of a document the index does not hold is what was wanted.
        errors = [e for e in errors if not ("delete" in e and e["delete"].get("status") == 404)]
        if errors:
            raise ProfileStoreError(
                f"OpenSearch rejected {len(errors)} profile documents in {index}; first: {errors[0]}")
        return int(count)

    def _create(self, index: str, source: str | None) -> None:
        self.client.indices.put_index_template(name=f"{self.alias}-template", body=self.template_body())
        # No refreshes while loading: the index is invisible to readers until the alias moves. The
        # source (table version) it holds is kept in the mapping's _meta, where the next run finds it.
        self.client.indices.create(index=index, body={"settings": {"refresh_interval": "-1"},
                                                      "mappings": {"_meta": {"rfmlake_source": source}}})

    def _open(self, index: str) -> None:
        self.client.indices.put_settings(index=index, body={"index": {"refresh_interval": "1s"}})
        self.client.indices.refresh(index=index)

    def load_generation(self, documents: Iterable[DocumentInput], generation: str, source: str | None = None) -> int:
        index = self.index_name(generation)
        self._create(index, source)
        count = self._bulk(index, self._actions(index, documents))
        self._open(index)
        return count

    def update_generation(self, upserts: Iterable[DocumentInput], deletes: Iterable[str], generation: str,
                          source: str | None = None) -> int:
        """A new index: the active one copied inside the cluster (`_reindex`), then the changes
        streamed in bulk requests. The client sends only the changes; the copy costs the cluster."""
        base = self.active_generation()
        if base is None:
            raise ProfileStoreError(f"no profile index is active behind alias {self.alias} to update")
        index = self.index_name(generation)
        self._create(index, source)
        self.client.reindex(body={"source": {"index": self.index_name(base)}, "dest": {"index": index}},
                            wait_for_completion=True, refresh=False, request_timeout=REINDEX_TIMEOUT_SECONDS)
        removals = ({"_op_type": "delete", "_index": index, "_id": customer_id} for customer_id in deletes)
        count = self._bulk(index, removals) + self._bulk(index, self._actions(index, upserts))
        self._open(index)
        return count

    def source_of(self, generation: str) -> str | None:
        from opensearchpy import NotFoundError

        index = self.index_name(generation)
        try:
            mapping = self.client.indices.get_mapping(index=index)
        except NotFoundError:
            return None
        meta = mapping.get(index, {}).get("mappings", {}).get("_meta") or {}
        source = meta.get("rfmlake_source")
        return str(source) if source else None

    def _alias_indices(self) -> list[str]:
        from opensearchpy import NotFoundError

        try:
            return sorted(self.client.indices.get_alias(name=self.alias))
        except NotFoundError:
            return []

    def activate(self, generation: str) -> None:
        index = self.index_name(generation)
        actions: list[dict[str, Any]] = [{"remove": {"index": old, "alias": self.alias}}
                                         for old in self._alias_indices() if old != index]
        actions.append({"add": {"index": index, "alias": self.alias}})
        self.client.indices.update_aliases(body={"actions": actions})  # one atomic call

    def active_generation(self) -> str | None:
        indices = self._alias_indices()
        if not indices:
            return None
        return indices[-1][len(self.alias) + 1:]

    def generations(self) -> list[str]:
        from opensearchpy import NotFoundError

        try:
            found = self.client.indices.get(index=f"{self.alias}-*")
        except NotFoundError:
            return []
        return sorted(name[len(self.alias) + 1:] for name in found)

    def cleanup(self, keep: int = 1) -> list[str]:
        stale = stale_generations(self.generations(), self.active_generation(), keep)
        for generation in stale:
            self.client.indices.delete(index=self.index_name(generation))
        return stale

    # -- reads ----------------------------------------------------------------------------------
    def get(self, customer_id: str) -> dict[str, Any] | None:
        from opensearchpy import NotFoundError

        try:
            return dict(self.client.get(index=self.alias, id=customer_id, _source_excludes=_NOT_IN_PROFILE)["_source"])
        except NotFoundError as exc:
            if _is_missing_index(exc):
                raise ProfileStoreError(f"no profile index is active behind alias {self.alias}") from None
            return None

    def primary_id_body(self, customer_id: str) -> dict[str, Any]:
        # A term on `customer_ids` (keyword, indexed as each document is): its inverted index is the
        # member-id lookup, so a bulk write, a delete or a reindex keeps it right with the documents.
        return {"size": 1, "query": {"bool": {"filter": [{"term": {"customer_ids": customer_id}}]}},
                "sort": _SEARCH_SORT, "track_total_hits": False, "_source": False}

    def primary_id(self, customer_id: str) -> str | None:
        hits = self._search(self.primary_id_body(customer_id))
        return str(hits[0]["_id"]) if hits else None

    def recommendations(self, customer_id: str) -> list[dict[str, Any]] | None:
        from opensearchpy import NotFoundError

        try:
            source = self.client.get(index=self.alias, id=customer_id, _source_includes=_RECOMMENDATIONS)["_source"]
        except NotFoundError as exc:
            if _is_missing_index(exc):
                raise ProfileStoreError(f"no profile index is active behind alias {self.alias}") from None
            return None
        return list(source.get("recommendations") or [])

    def find_by_email_token_body(self, email_token: str) -> dict[str, Any]:
        # The primary record's email or another of the person's (an index written before the email
        # lookup has no secondary_email_tokens: the term on it matches nothing there).
        should = [{"term": {"email_token": email_token}}, {"term": {"secondary_email_tokens": email_token}}]
        return {"size": 1, "query": {"bool": {"should": should, "minimum_should_match": 1}}, "sort": _SEARCH_SORT,
                "track_total_hits": False, "_source": {"excludes": _NOT_IN_PROFILE}}

    def find_by_email_token(self, email_token: str) -> dict[str, Any] | None:
        hits = self._search(self.find_by_email_token_body(email_token))
        return dict(hits[0]["_source"]) if hits else None

    def search_body(self, query: ProfileQuery) -> dict[str, Any]:
        filters: list[dict[str, Any]] = []
        if query.segment is not None:
            filters.append({"term": {"rfm_segment": query.segment}})
        if query.cluster_label is not None:
            filters.append({"term": {"cluster_label": query.cluster_label}})
        for name, (low, high) in sorted(query.ranges.items()):
            bounds = {k: v for k, v in (("gte", low), ("lte", high)) if v is not None}
            if bounds:
                filters.append({"range": {name: bounds}})
        boolean: dict[str, Any] = {"filter": filters}
        if query.text is not None:
            boolean["must"] = [{"multi_match": {"query": query.text, "fields": _TEXT_QUERY_FIELDS,
                                                "type": "bool_prefix", "operator": "and"}}]
        body: dict[str, Any] = {"size": query.limit + 1, "query": {"bool": boolean}, "sort": _SEARCH_SORT,
                                "track_total_hits": False, "_source": {"excludes": _NOT_IN_PROFILE}}
        if query.after is not None:
            body["search_after"] = [query.after]
        return body

    def search(self, query: ProfileQuery) -> ProfilePage:
        return page_from([dict(h["_source"]) for h in self._search(self.search_body(query))], query.limit)

    def segments(self) -> list[SegmentCount]:
        body = {"size": 0, "aggs": {"segments": {"terms": {"field": "rfm_segment", "size": 100,
                                                            "order": {"_key": "asc"}}}}}
        response = self._raw_search(body)
        return [SegmentCount(b["key"], int(b["doc_count"])) for b in response["aggregations"]["segments"]["buckets"]]

    def _raw_search(self, body: dict[str, Any]) -> dict[str, Any]:
        from opensearchpy import NotFoundError

        try:
            return dict(self.client.search(index=self.alias, body=body))
        except NotFoundError:
            raise ProfileStoreError(f"no profile index is active behind alias {self.alias}") from None

    def _search(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self._raw_search(body)["hits"]["hits"])

    def close(self) -> None:
        self.client.close()


def _is_missing_index(exc: Exception) -> bool:
    info = getattr(exc, "info", None)
    return isinstance(info, dict) and isinstance(info.get("error"), dict) and \
        info["error"].get("type") == "index_not_found_exception"
