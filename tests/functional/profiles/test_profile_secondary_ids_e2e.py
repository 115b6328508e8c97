"""End to end over HTTP, on a lake where the identity stage really joined customer ids: a person's
secondary customer id (the id a web shop may know them by) finds the person's profile and
recommendations, keyed by the primary id, from the embedded store and from the OpenSearch adapter
(through the in-memory fake, as the store's contract tests run it). A later run moves that id to
another person (a CRM correction): both stores, updated incrementally, follow; erasing the id removes
the person's profile and the id's lookup rows. The same for emails: a person who signed up twice
with two emails is found by either (`?email=`), and once a correction splits the second record off,
its email finds the new person."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from fake_opensearch import FakeOpenSearch, make_client
from rfmlake.cli.main import main
from rfmlake.governance.downstream import erase_from_profile_store
from rfmlake.ingest.pii import resolve_pii_key, tokenize
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.profiles.app import ApiConfig, create_app
from rfmlake.profiles.auth import ApiKeyRing, create_key
from rfmlake.profiles.indexer import embedded_store, index_profiles
from rfmlake.profiles.local import keys_file, local_app
from rfmlake.profiles.opensearch import OpenSearchProfileStore
from rfmlake.settings import load_settings
from serving import serving

pytestmark = pytest.mark.slow

STAGES = ("ingest_bronze", "conform_silver", "identity", "dbt_build", "segmentation", "profiles")
HEADER = "customer_id,email,phone,first_name,last_name,city,postal_code,created_at,updated_at\n"
# a1 and a2 are one person (the same email; a1 is older: the primary id); b1 and the others are
# people of their own. The "x" ids keep the share of profiles a run changes low (incremental updates).
CUSTOMERS = HEADER + "".join([
    "a1,ann.lee@example.com,+46 70 111 11 11,Ann,Lee,Lund,22100,2023-01-01T00:00:00Z,2023-01-01T00:00:00Z\n",
    "a2,ann.lee@example.com,,Ann,Lee,Lund,22100,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z\n",
    "b1,bob.ray@example.com,+46 70 222 22 22,Bob,Ray,Umea,90325,2023-02-01T00:00:00Z,2023-02-01T00:00:00Z\n",
    *(f"x{i},person{i}@example.com,,P{i},L{i},Malmo,2110{i},2023-03-0{i}T00:00:00Z,2023-03-0{i}T00:00:00Z\n"
      for i in range(1, 8)),
])
# The CRM corrects a2: it was Bob's second account all along (his phone; the same person by
# same_phone_token), no longer Ann's email.
CORRECTION = HEADER + ("a2,robert.ray@work.example,+46702222222,Robert,Ray,Umea,90325,"
                       "2024-01-01T00:00:00Z,2024-06-01T00:00:00Z\n")
ORDERS = "order_id,customer_id,order_ts,order_total\n" + "".join(
    f"o-{c}-{n},{c},2024-0{n + 2}-1{n}T12:00:00Z,{10 * n + len(c)}\n"
    for c in ("a1", "a2", "b1", *(f"x{i}" for i in range(1, 8))) for n in range(1, 4))


# b1 and b2 are one person (the same phone; b1 is older: the primary id) with two emails.
TWO_EMAILS = HEADER + "".join([
    "b1,bob.ray@example.com,+46 70 222 22 22,Bob,Ray,Umea,90325,2023-02-01T00:00:00Z,2023-02-01T00:00:00Z\n",
    "b2,robert.ray@work.example,+46702222222,Robert,Ray,Umea,90325,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z\n",
    *(f"x{i},person{i}@example.com,,P{i},L{i},Malmo,2110{i},2023-03-0{i}T00:00:00Z,2023-03-0{i}T00:00:00Z\n"
      for i in range(1, 8)),
])
# The CRM corrects b2: another person altogether (their own phone, name and town), the same email.
SPLIT = HEADER + ("b2,robert.ray@work.example,+46 70 999 99 99,Rita,Berg,Kiruna,98130,"
                  "2024-01-01T00:00:00Z,2024-06-01T00:00:00Z\n")
# b2 never ordered: the split leaves the scored people and the segmentation model as they were, so
# the second index changes only b1 and b2 (an incremental update).
TWO_EMAIL_ORDERS = "order_id,customer_id,order_ts,order_total\n" + "".join(
    f"o-{c}-{n},{c},2024-0{n + 2}-1{n}T12:00:00Z,{10 * n + len(c)}\n"
    for c in ("b1", *(f"x{i}" for i in range(1, 8))) for n in range(1, 4))


def _run(landing: Path, lake: Lake) -> None:
    run_pipeline(RunContext(landing_dir=landing, lake=lake, settings=load_settings()),
                 stages=tuple(s for s in PIPELINE if s.name in STAGES))


def _primaries(lake: Lake) -> dict[str, str]:
    con = connect(lake, zones=("gold",))
    try:
        return dict(con.execute("SELECT member_id, primary_customer_id FROM gold.identity_graph "
                                "WHERE member_kind = 'customer_id'").fetchall())
    finally:
        con.close()


class Api:
    """One served profile API and its store."""

    def __init__(self, base: str, key: str, store) -> None:  # type: ignore[no-untyped-def]
        self.base, self.key, self.store = base, key, store

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, headers={"X-API-Key": self.key}, timeout=10)

    def profile(self, customer_id: str) -> httpx.Response:
        return self.get("/profiles/" + quote(customer_id, safe=""))

    def recommendations(self, customer_id: str) -> httpx.Response:
        return self.get(f"/customers/{quote(customer_id, safe='')}/recommendations")

    def by_email(self, email: str) -> list[dict]:  # type: ignore[type-arg]
        response = self.get("/profiles?email=" + quote(email, safe=""))
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        return list(response.json()["items"])


def _assert_person(api: Api, asked: str, primary: str, customer_ids: list[str]) -> None:
    """`asked` finds the person keyed by `primary`; a secondary id says so in Content-Location."""
    response = api.profile(asked)
    assert response.status_code == 200, (asked, response.text)
    profile = response.json()
    assert (profile["customer_id"], profile["customer_ids"]) == (primary, customer_ids)
    assert response.json() == api.profile(primary).json()  # the same document as under the primary id
    assert response.headers.get("content-location") == (None if asked == primary else f"/profiles/{primary}")
    recommendations = api.recommendations(asked)
    assert recommendations.status_code == 200, recommendations.text
    assert recommendations.json() == api.recommendations(primary).json()
    assert recommendations.json()["customer_id"] == primary
    assert recommendations.headers.get("content-location") == (
        None if asked == primary else f"/customers/{primary}/recommendations")


def _assert_unknown(api: Api, customer_id: str) -> None:
    assert api.profile(customer_id).status_code == 404
    assert api.recommendations(customer_id).status_code == 404
    assert api.store.primary_id(customer_id) is None  # no lookup row left behind


def test_a_secondary_customer_id_finds_the_person_in_both_stores(tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    for name in ("customers", "orders"):
        (landing / name).mkdir(parents=True)
    (landing / "customers" / "crm.csv").write_text(CUSTOMERS)
    (landing / "orders" / "orders.csv").write_text(ORDERS)
    _run(landing, lake)
    assert _primaries(lake)["a2"] == "a1" and _primaries(lake)["b1"] == "b1"  # the identity stage joined them

    opensearch = OpenSearchProfileStore(make_client(FakeOpenSearch()), alias="e2e-profiles", replicas=0)
    assert index_profiles(lake, opensearch, rebuild=False).mode == "full"
    settings = load_settings()
    key = create_key(keys_file(lake), "e2e")
    pii_key = resolve_pii_key(lake, settings)
    config = ApiConfig(auth="api_key", keys=ApiKeyRing.load(keys_file(lake)), rate_per_second=1000, burst=1000)
    os_app = create_app(opensearch, config, lambda email: tokenize(email, pii_key, "email"))
    with serving(local_app(lake, settings, rate_per_second=1000, burst=1000)) as local_base, \
            serving(os_app) as os_base:
        apis = [Api(local_base, key, embedded_store(lake)), Api(os_base, key, opensearch)]
        for api in apis:
            _assert_person(api, "a2", "a1", ["a1", "a2"])
            _assert_person(api, "a1", "a1", ["a1", "a2"])
            _assert_person(api, "b1", "b1", ["b1"])
            _assert_unknown(api, "zz9")

        # A later run: a2 leaves Ann's person for Bob's. Both stores take the changes incrementally.
        (landing / "customers" / "crm-correction.csv").write_text(CORRECTION)
        _run(landing, lake)
        assert _primaries(lake)["a2"] == "b1" and _primaries(lake)["a1"] == "a1"
        assert index_profiles(lake, opensearch, rebuild=False).mode == "incremental"
        assert embedded_store(lake).source_of(embedded_store(lake).active_generation()) == \
            opensearch.source_of(opensearch.active_generation())
        for api in apis:
            _assert_person(api, "a2", "b1", ["a2", "b1"])
            _assert_person(api, "a1", "a1", ["a1"])

        # Erasure of the secondary id removes the person's profile and the id's lookup rows: the
        # lake's erasure for the embedded store; its profile-store step, by id alone, for OpenSearch.
        assert main(["erase", "--lake", str(lake.root), "--customer-id", "a2"]) == 0
        assert erase_from_profile_store(opensearch, "a2", None) == 1
        for api in apis:
            for customer_id in ("a2", "b1"):
                _assert_unknown(api, customer_id)


def _served_apis(lake: Lake, opensearch: OpenSearchProfileStore):  # type: ignore[no-untyped-def]
    """The embedded store's app (`rfmlake serve`'s) and an app on the OpenSearch store, with one key."""
    settings = load_settings()
    key = create_key(keys_file(lake), "e2e")  # both scopes: profiles and email
    pii_key = resolve_pii_key(lake, settings)
    config = ApiConfig(auth="api_key", keys=ApiKeyRing.load(keys_file(lake)), rate_per_second=1000, burst=1000)
    os_app = create_app(opensearch, config, lambda email: tokenize(email, pii_key, "email"))
    return key, serving(local_app(lake, settings, rate_per_second=1000, burst=1000)), serving(os_app)


def _assert_email_finds(api: Api, email: str, primary: str, customer_ids: list[str]) -> None:
    """`email` finds the person keyed by `primary`: the document `/profiles/{primary}` serves."""
    found = api.by_email(email)
    assert [(p["customer_id"], p["customer_ids"]) for p in found] == [(primary, customer_ids)], (email, found)
    assert found[0] == api.profile(primary).json()
    assert not any("email_tokens" in name for name in found[0])  # the lookup key is not served


def test_any_email_of_a_person_finds_them_in_both_stores(tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    for name in ("customers", "orders"):
        (landing / name).mkdir(parents=True)
    (landing / "customers" / "crm.csv").write_text(TWO_EMAILS)
    (landing / "orders" / "orders.csv").write_text(TWO_EMAIL_ORDERS)
    _run(landing, lake)
    assert _primaries(lake)["b2"] == "b1"  # the identity stage joined them (the same phone)

    opensearch = OpenSearchProfileStore(make_client(FakeOpenSearch()), alias="e2e-emails", replicas=0)
    assert index_profiles(lake, opensearch, rebuild=False).mode == "full"
    key, local_serving, os_serving = _served_apis(lake, opensearch)
    with local_serving as local_base, os_serving as os_base:
        apis = [Api(local_base, key, embedded_store(lake)), Api(os_base, key, opensearch)]
        for api in apis:
            _assert_email_finds(api, "bob.ray@example.com", "b1", ["b1", "b2"])
            _assert_email_finds(api, " Robert.Ray@WORK.example", "b1", ["b1", "b2"])  # normalised, then tokenized
            _assert_email_finds(api, "person3@example.com", "x3", ["x3"])
            assert api.by_email("nobody@example.com") == []

        # A later run splits b2 off into a person of their own; both stores take it incrementally.
        (landing / "customers" / "crm-correction.csv").write_text(SPLIT)
        _run(landing, lake)
        assert _primaries(lake)["b2"] == "b2" and _primaries(lake)["b1"] == "b1"
        assert index_profiles(lake, opensearch, rebuild=False).mode == "incremental"
        for api in apis:
            _assert_email_finds(api, "robert.ray@work.example", "b2", ["b2"])
            _assert_email_finds(api, "bob.ray@example.com", "b1", ["b1"])
