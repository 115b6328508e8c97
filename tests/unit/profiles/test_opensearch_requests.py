"""The OpenSearch adapter's exact requests: template with explicit mappings, index per generation,
bulk body, one atomic alias swap, cleanup deletes, query bodies."""

from __future__ import annotations

import json

import pytest

from rfmlake.profiles.opensearch import PROFILE_MAPPINGS, OpenSearchProfileStore
from rfmlake.profiles.store import ProfileDocument, ProfileQuery, ProfileStoreError, encode_cursor


def test_load_and_swap_send_exact_requests(fake_opensearch, os_client_factory, documents):
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p", shards=2, replicas=0)
    store.load_generation(documents[:2], "g1")
    store.activate("g1")
    store.load_generation(documents[:1], "g2")
    fake_opensearch.requests.clear()
    store.activate("g2")
    assert fake_opensearch.requests == [
        ("GET", "/_alias/p", None),
        ("POST", "/_aliases", {"actions": [{"remove": {"index": "p-g1", "alias": "p"}},
                                           {"add": {"index": "p-g2", "alias": "p"}}]}),
    ]
    assert fake_opensearch.aliases["p"] == {"p-g2"}
    fake_opensearch.requests.clear()
    assert store.cleanup(keep=1) == ["g1"]
    assert ("DELETE", "/p-g1", None) in fake_opensearch.requests


def test_first_load_requests(fake_opensearch, os_client_factory, documents):
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p", shards=2, replicas=0)
    store.load_generation(documents[:2], "g1")
    template, create, bulk, settings, refresh = fake_opensearch.requests
    assert template == ("PUT", "/_index_template/p-template", {
        "index_patterns": ["p-*"],
        "template": {"settings": {"number_of_shards": 2, "number_of_replicas": 0, "refresh_interval": "1s"},
                     "mappings": PROFILE_MAPPINGS}})
    assert PROFILE_MAPPINGS["dynamic"] == "strict"
    # every field of a profile document (rfmlake.profiles.build.to_document), its recommendations and
    # the email lookup key too
    assert set(PROFILE_MAPPINGS["properties"]) == set(documents[0]) | {"recommendations", "secondary_email_tokens"}
    assert create == ("PUT", "/p-g1", {"settings": {"refresh_interval": "-1"},
                                       "mappings": {"_meta": {"rfmlake_source": None}}})
    lines = bulk[2].strip("\n").split("\n")
    assert [json.loads(line) for line in lines] == [
        {"index": {"_index": "p-g1", "_id": "c0000"}}, documents[0],
        {"index": {"_index": "p-g1", "_id": "c0001"}}, documents[1]]
    assert settings == ("PUT", "/p-g1/_settings", {"index": {"refresh_interval": "1s"}})
    assert refresh == ("POST", "/p-g1/_refresh", None)


def test_encoded_documents_are_sent_as_their_json_text(fake_opensearch, os_client_factory, documents):
    """The indexer's documents carry their JSON text: it is the bulk line as it is, never serialised
    again (spaces and escapes the client's serializer would not write stay)."""
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p")
    first = ProfileDocument.from_dict({**documents[0], "city": "Zürich"})
    first = first._replace(json_text=first.json_text.replace(',"', ', "'))
    second = ProfileDocument.from_dict(documents[1])
    store.load_generation([first, second], "g1")
    store.activate("g1")
    store.update_generation([second._replace(json_text=second.json_text.replace("Paris", "Lyon"))], ["c0000"], "g2")
    bulks = [body for _, url, body in fake_opensearch.requests if url == "/_bulk"]
    actions, sources = bulks[0].strip("\n").split("\n")[::2], bulks[0].strip("\n").split("\n")[1::2]
    assert [json.loads(a) for a in actions] == [{"index": {"_index": "p-g1", "_id": "c0000"}},
                                                {"index": {"_index": "p-g1", "_id": "c0001"}}]
    assert sources == [first.json_text, second.json_text]
    assert ', "city":"Z\\u00fcrich"' in bulks[0]
    assert bulks[-1].strip("\n").split("\n")[1] == second.json_text.replace("Paris", "Lyon")
    assert fake_opensearch.indices["p-g2"]["c0001"]["city"] == "Lyon" and "c0000" not in fake_opensearch.indices["p-g2"]


def test_search_body(fake_opensearch, os_client_factory):
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p")
    body = store.search_body(ProfileQuery(segment="Loyal", ranges={"m_score": (None, 3), "r_score": (2, 4)},
                                          text="lyon", limit=10, cursor=encode_cursor("c0005")))
    assert body == {
        "size": 11,
        "query": {"bool": {
            "filter": [{"term": {"rfm_segment": "Loyal"}}, {"range": {"m_score": {"lte": 3}}},
                       {"range": {"r_score": {"gte": 2, "lte": 4}}}],
            "must": [{"multi_match": {"query": "lyon", "fields": ["city", "country_code", "rfm_segment.text",
                                                                   "cluster_label.text"],
                                      "type": "bool_prefix", "operator": "and"}}]}},
        "sort": [{"customer_id": "asc"}], "track_total_hits": False, "search_after": ["c0005"],
        # recommendations are served by their own route; the email lookup key is no part of a profile
        "_source": {"excludes": ["recommendations", "secondary_email_tokens"]}}


def test_rejected_documents_fail_the_load(fake_opensearch, os_client_factory, documents):
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p")
    original = fake_opensearch._bulk

    def reject_one(text):
        result = original(text)
        result["errors"] = True
        result["items"][0] = {"index": {"_index": "p-g1", "_id": "c0000", "status": 400,
                                        "error": {"type": "strict_dynamic_mapping_exception"}}}
        return result

    fake_opensearch._bulk = reject_one
    with pytest.raises(ProfileStoreError, match="rejected 1 profile"):
        store.load_generation(documents[:3], "g1")


def test_missing_alias_is_a_store_error(fake_opensearch, os_client_factory):
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p")
    with pytest.raises(ProfileStoreError, match="no profile index"):
        store.get("c1")
    with pytest.raises(ProfileStoreError, match="no profile index"):
        store.segments()


def test_a_secondary_id_is_looked_up_by_a_term_on_customer_ids(fake_opensearch, os_client_factory, documents):
    """The member-id lookup is the indexed `customer_ids` keyword field: one search, ids only."""
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p")
    store.load_generation(documents[:7], "g1")
    store.activate("g1")
    fake_opensearch.requests.clear()
    assert store.primary_id("c0506") == "c0006"
    assert fake_opensearch.requests == [("POST", "/p/_search", {
        "size": 1, "query": {"bool": {"filter": [{"term": {"customer_ids": "c0506"}}]}},
        "sort": [{"customer_id": "asc"}], "track_total_hits": False, "_source": False})]
    assert PROFILE_MAPPINGS["properties"]["customer_ids"] == {"type": "keyword"}  # indexed, so searchable


def test_the_other_email_tokens_are_indexed_beside_the_document_and_matched_by_a_term(fake_opensearch,
                                                                                      os_client_factory, documents):
    """A person's other email tokens join the bulk source as one keyword list (only where there are
    some); an email finds the person through a term on it or on email_token; reads leave it out."""
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p")
    two_emails = {**documents[6], "email_tokens": ["tok0006", "tok0506"]}  # c0006 and c0506's emails
    store.load_generation([two_emails, {**documents[7], "email_tokens": ["tok0007"]}], "g1")
    store.activate("g1")
    bulk = next(body for _, url, body in fake_opensearch.requests if url == "/_bulk").strip("\n").split("\n")
    assert json.loads(bulk[1]) == {**documents[6], "secondary_email_tokens": ["tok0506"]}
    assert json.loads(bulk[3]) == documents[7]
    fake_opensearch.requests.clear()
    assert store.find_by_email_token("tok0506") == documents[6]
    assert fake_opensearch.requests == [("POST", "/p/_search", {
        "size": 1, "query": {"bool": {"should": [{"term": {"email_token": "tok0506"}},
                                                 {"term": {"secondary_email_tokens": "tok0506"}}],
                                      "minimum_should_match": 1}},
        "sort": [{"customer_id": "asc"}], "track_total_hits": False,
        "_source": {"excludes": ["recommendations", "secondary_email_tokens"]}})]
    assert store.find_by_email_token("tok0007") == documents[7] and store.find_by_email_token("tok0507") is None
    assert store.get("c0006") == documents[6] and store.recommendations("c0006") == []
