"""One contract for every ProfileStore adapter (embedded SQLite; OpenSearch through the in-memory fake)."""

from __future__ import annotations

import pytest

from rfmlake.profiles.store import InvalidQueryError, ProfileQuery, ProfileStore, ProfileStoreError, SegmentCount


def _loaded(store, documents, generation="g1"):
    assert store.load_generation(documents, generation) == len(documents)
    store.activate(generation)
    return store


def test_is_a_profile_store(store):
    assert isinstance(store, ProfileStore)


def test_reads_before_any_generation_is_active_fail_clearly(store, documents):
    store.load_generation(documents, "g1")  # loaded but not active: invisible
    assert store.active_generation() is None
    with pytest.raises(ProfileStoreError):
        store.get("c0001")


def test_get_by_id_returns_the_whole_document(store, documents):
    _loaded(store, documents)
    assert store.get("c0007") == documents[7]
    assert store.get("nobody") is None


def test_recommendations_are_served_on_their_own_and_kept_out_of_the_profile(store, documents):
    items = [{"rank": 1, "product_id": "P1", "product_name": "Lamp", "category": "Home", "brand": "b", "score": 0.5,
              "source": "similar_items"}]
    with_recs = [{**d, "recommendations": items} if i % 2 == 0 else d for i, d in enumerate(documents)]
    _loaded(store, with_recs)
    assert store.recommendations("c0002") == items
    assert store.recommendations("c0003") == []          # a customer without recommendations
    assert store.recommendations("nobody") is None       # no such customer
    assert store.get("c0002") == documents[2]            # the profile without them
    assert "recommendations" not in store.search(ProfileQuery(segment="At Risk", limit=100)).items[0]
    assert "recommendations" not in store.find_by_email_token("tok0002")


def test_a_secondary_customer_id_finds_its_person(store, documents):
    _loaded(store, documents)
    assert documents[6]["customer_ids"] == ["c0006", "c0506"]  # a person with two customer ids
    assert store.primary_id("c0506") == "c0006" and store.primary_id("c0006") == "c0006"
    assert store.primary_id("c0507") is None and store.primary_id("nobody") is None
    assert store.get("c0506") is None and store.recommendations("c0506") is None  # those answer primary ids


def _lookup(store, ids):
    return {i: store.primary_id(i) for i in ids}


def test_the_member_id_lookup_follows_merges_splits_and_removals(store, store_factory, documents, monkeypatch):
    # one document per batch: a secondary id moves to a person written before the one it leaves
    monkeypatch.setattr("rfmlake.profiles.embedded._BATCH", 1)
    _loaded(store, documents)
    moved_to = dict(documents[7], customer_ids=["c0007", "c0506"])       # c0506 leaves c0006 for c0007
    moved_from = dict(documents[6], customer_ids=["c0006"])
    merged = dict(documents[1], customer_ids=["c0001", "c0012", "c0512"])  # c0012's person joins c0001's
    split = dict(documents[18], customer_ids=["c0018"])                   # c0518 becomes a person of its own
    split_off = dict(documents[18], customer_id="c0518", email_token="tok0518", customer_ids=["c0518"])
    store.update_generation([merged, moved_to, split, split_off, moved_from], ["c0012", "c0024"], "g2")
    store.activate("g2")
    ids = [f"c{i:04d}" for i in (*range(30), *range(500, 530))] + ["nobody"]
    found = _lookup(store, ids)
    assert {i: found[i] for i in ("c0506", "c0006", "c0012", "c0512", "c0001", "c0518", "c0018")} == {
        "c0506": "c0007", "c0006": "c0006", "c0012": "c0001", "c0512": "c0001", "c0001": "c0001",
        "c0518": "c0518", "c0018": "c0018"}
    assert found["c0024"] is None and found["c0524"] is None  # removed (an erasure): its secondary id too
    # the same as a store loaded whole with the new documents
    fresh_documents = [d for d in documents if d["customer_id"] not in {"c0001", "c0006", "c0007", "c0012", "c0018",
                                                                        "c0024"}]
    fresh_documents += [merged, moved_to, split, split_off, moved_from]
    fresh = _loaded(store_factory("fresh"), fresh_documents)
    assert _lookup(fresh, ids) == found


def test_an_embedded_load_refuses_a_secondary_id_held_by_two_profiles(tmp_path, documents):
    from rfmlake.profiles.embedded import EmbeddedProfileStore

    twice = [documents[0], dict(documents[1], customer_ids=["c0001", "c0500"])]  # c0500 is c0000's already
    with pytest.raises(ProfileStoreError, match="secondary id of two"):
        EmbeddedProfileStore(tmp_path / "profiles").load_generation(twice, "g1")


def test_lookup_by_email_token(store, documents):
    _loaded(store, documents)
    assert store.find_by_email_token("tok0012")["customer_id"] == "c0012"
    assert store.find_by_email_token("unknown") is None


def _emails(store, tokens):
    return {t: (found or {}).get("customer_id") for t in tokens for found in [store.find_by_email_token(t)]}


def test_any_email_of_a_person_finds_them_and_the_lookup_follows_updates(store, store_factory, documents,
                                                                         monkeypatch):
    """A person's other email tokens (given as `email_tokens`, every token of theirs) find them; the
    document stays as it was. Updates that split, move, add or remove emails are followed."""
    monkeypatch.setattr("rfmlake.profiles.embedded._BATCH", 1)
    people = [dict(d, email_tokens=[d["email_token"], *(["tok0506"] if i == 6 else [])])
              for i, d in enumerate(documents)]
    people[18]["email_tokens"] = ["tok0018", "tok0518"]  # c0518's email, without c0518 in customer_ids
    _loaded(store, people)
    assert store.find_by_email_token("tok0506") == documents[6]  # the document, not the lookup key
    assert store.get("c0006") == documents[6]
    assert store.search(ProfileQuery(segment="Loyal", limit=100)).items[0] == documents[1]
    assert _emails(store, ["tok0006", "tok0506", "tok0518", "tok0507"]) == {
        "tok0006": "c0006", "tok0506": "c0006", "tok0518": "c0018", "tok0507": None}
    split = dict(people[6], email_tokens=["tok0006"], customer_ids=["c0006"])    # c0506 becomes its own person
    split_off = dict(documents[6], customer_id="c0506", email_token="tok0506", customer_ids=["c0506"])
    gained = dict(people[1], email_tokens=["tok0001", "tok0901", "tok0002"])      # shares c0002's email
    store.update_generation([gained, split, split_off], ["c0018"], "g2")
    store.activate("g2")
    tokens = [f"tok{i:04d}" for i in (*range(30), *range(500, 530), 901)]
    found = _emails(store, tokens)
    assert {t: found[t] for t in ("tok0006", "tok0506", "tok0901", "tok0002", "tok0018", "tok0518")} == {
        "tok0006": "c0006", "tok0506": "c0506", "tok0901": "c0001", "tok0002": "c0001",  # the lowest primary id
        "tok0018": None, "tok0518": None}  # removed with their person
    assert store.find_by_email_token("tok0506") == split_off and store.get("c0506") == split_off
    # the same as a store loaded whole with the new documents
    fresh = [d for d in people if d["customer_id"] not in {"c0001", "c0006", "c0018"}] + [gained, split, split_off]
    assert _emails(_loaded(store_factory("fresh"), fresh), tokens) == found


def test_filter_by_segment_and_score_ranges(store, documents):
    _loaded(store, documents)
    page = store.search(ProfileQuery(segment="Loyal", ranges={"r_score": (2, 3)}, limit=100))
    expected = [d["customer_id"] for d in documents if d["rfm_segment"] == "Loyal" and 2 <= d["r_score"] <= 3]
    assert [d["customer_id"] for d in page.items] == expected and expected
    assert page.next_cursor is None
    money = store.search(ProfileQuery(ranges={"monetary": (100, None)}, limit=100))
    assert [d["customer_id"] for d in money.items] == [d["customer_id"] for d in documents if d["monetary"] >= 100]


def test_text_search_on_clear_attributes(store, documents):
    _loaded(store, documents)
    found = store.search(ProfileQuery(text="new yo", limit=100)).items
    assert [d["customer_id"] for d in found] == [d["customer_id"] for d in documents if d["city"] == "New York"]
    at_risk = store.search(ProfileQuery(text="risk", cluster_label="mid", limit=100)).items
    assert {d["customer_id"] for d in at_risk} == {
        d["customer_id"] for d in documents if d["rfm_segment"] == "At Risk" and d["cluster_label"] == "mid"}


def test_cursor_pagination_walks_every_member_once(store, documents):
    _loaded(store, documents)
    seen, cursor = [], None
    for _ in range(10):
        page = store.search(ProfileQuery(segment="Champions", limit=3, cursor=cursor))
        seen += [d["customer_id"] for d in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [d["customer_id"] for d in documents if d["rfm_segment"] == "Champions"]


def test_segments_are_counted(store, documents):
    _loaded(store, documents)
    assert store.segments() == [SegmentCount("At Risk", 7), SegmentCount("Champions", 8),
                                SegmentCount("Hibernating", 7), SegmentCount("Loyal", 8)]


def test_switching_generations_is_atomic_and_old_ones_are_cleaned(store, documents):
    _loaded(store, documents, "g1")
    changed = [dict(d, rfm_segment="Champions") for d in documents[:5]]
    store.load_generation(changed, "g2")
    assert store.get("c0010") is not None  # g2 loaded, g1 still serving
    store.activate("g2")
    assert store.active_generation() == "g2"
    assert store.get("c0010") is None and store.get("c0001")["rfm_segment"] == "Champions"
    store.load_generation(documents, "g3")  # newer than the active one: a loader's, never removed
    assert store.cleanup(keep=1) == ["g1"]
    assert store.generations() == ["g2", "g3"]
    assert store.get("c0001")["rfm_segment"] == "Champions"


def test_bad_queries_are_rejected():
    with pytest.raises(InvalidQueryError, match="cannot filter"):
        ProfileQuery(ranges={"email_token": (1, 2)})
    with pytest.raises(InvalidQueryError, match="greater"):
        ProfileQuery(ranges={"r_score": (4, 2)})
    with pytest.raises(InvalidQueryError, match="cursor"):
        ProfileQuery(cursor="not-a-cursor!")
    with pytest.raises(InvalidQueryError, match="limit"):
        ProfileQuery(limit=0)


def test_a_generation_updated_from_the_active_one_holds_it_plus_the_changes(store, documents):
    store.load_generation(documents, "g1", source="v1")
    store.activate("g1")
    moved = dict(documents[3], rfm_segment="Champions", city="Porto")
    new = dict(documents[0], customer_id="c9999", email_token="tok9999")
    assert store.update_generation([moved, new], ["c0004", "c0005", "nobody"], "g2", source="v2") == 4
    assert store.get("c0004") is not None  # g2 is not visible before it is activated
    store.activate("g2")
    assert store.source_of("g2") == "v2" and store.source_of("g1") == "v1"
    assert store.get("c0004") is None and store.get("c0005") is None
    assert store.get("c0003") == moved and store.get("c9999") == new and store.get("c0006") == documents[6]
    assert [d["customer_id"] for d in store.search(ProfileQuery(text="porto", limit=10)).items] == ["c0003"]
    assert store.find_by_email_token("tok9999")["customer_id"] == "c9999"
    assert sum(s.customers for s in store.segments()) == len(documents) - 1


def test_an_embedded_generation_from_before_updates_can_be_updated(tmp_path, documents):
    """A store written by the previous release (no text-row link, no meta table) still takes updates,
    e.g. an erasure."""
    import json
    import sqlite3

    from rfmlake.profiles.embedded import EmbeddedProfileStore

    root = tmp_path / "profiles"
    root.mkdir()
    con = sqlite3.connect(root / "g1.sqlite")
    con.executescript("""
        CREATE TABLE profiles (customer_id TEXT PRIMARY KEY, email_token TEXT, rfm_segment TEXT,
            cluster_label TEXT, r_score INTEGER, f_score INTEGER, m_score INTEGER, recency_days INTEGER,
            frequency INTEGER, monetary REAL, doc TEXT NOT NULL) WITHOUT ROWID;
        CREATE VIRTUAL TABLE profiles_text USING fts5(customer_id UNINDEXED, city, country_code, rfm_segment,
            cluster_label);""")
    for d in documents:
        con.execute("INSERT INTO profiles VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (d["customer_id"], d["email_token"], d["rfm_segment"], d["cluster_label"], d["r_score"],
                     d["f_score"], d["m_score"], d["recency_days"], d["frequency"], d["monetary"], json.dumps(d)))
        con.execute("INSERT INTO profiles_text VALUES (?,?,?,?,?)",
                    (d["customer_id"], d["city"], d["country_code"], d["rfm_segment"], d["cluster_label"]))
    con.commit()
    con.close()
    store = EmbeddedProfileStore(root)
    store.activate("g1")
    assert store.source_of("g1") is None
    assert store.primary_id("c0006") == "c0006" and store.primary_id("c0506") is None  # no member-id lookup yet
    assert store.find_by_email_token("tok0009")["customer_id"] == "c0009"  # no email lookup: primary emails
    moved = dict(documents[7], city="Porto")  # an upsert too: the upgraded table has text_rowid last
    store.update_generation([dict(moved, email_tokens=["tok0007", "tok0507"])], ["c0004"], "g2")
    store.activate("g2")
    assert store.get("c0007") == moved
    assert store.find_by_email_token("tok0507") == store.find_by_email_token("tok0007") == moved  # the update's
    assert store.find_by_email_token("tok0009")["customer_id"] == "c0009"
    assert [d["customer_id"] for d in store.search(ProfileQuery(text="porto", limit=10)).items] == ["c0007"]
    assert store.get("c0004") is None and store.get("c0009") == documents[9]
    assert store.primary_id("c0506") == "c0006" and store.primary_id("c0512") == "c0012"  # filled by the update
    lyon = {d["customer_id"] for d in documents if d["city"] == "Lyon" and d["customer_id"] != "c0004"}
    assert {d["customer_id"] for d in store.search(ProfileQuery(text="lyon", limit=100)).items} == lyon
