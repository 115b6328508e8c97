"""Audiences of people who never bought, end to end on a lake built by two real `rfmlake run`s
(tests/engagement_lakes.py; gold.customer_engagement from dbt): counted by rfmlake.audiences, built
and saved in the marketing app over real HTTP, activated to the file destination with their
addresses, and used as a journey's trigger that the journeys engine lets in and emails."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from rfmlake.activation.destinations.outbox import read_outbox
from rfmlake.app.auth import LocalUsers
from rfmlake.app.journeys import FolderJourneys
from rfmlake.app.web import AppConfig, create_app
from rfmlake.audiences import AudienceFilters, load_audiences, measure, resolve_members
from rfmlake.cli.main import main
from rfmlake.journeys.channels import outbox_location
from rfmlake.journeys.run import run_journeys
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.settings import Settings
from serving import serving

pytestmark = pytest.mark.slow
PASSWORD = "marketer-pass-1"


@pytest.fixture(scope="module")
def site(engagement_lake, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN001
    """A copy of the engagement lake and its journeys folder: these tests save audiences and run
    journeys, which the journeys tests' lake must not see."""
    original, _ = engagement_lake
    root = tmp_path_factory.mktemp("engagement-app")
    shutil.copytree(original.lake.root, root / "lake")
    shutil.copytree(original.journeys, root / "journeys")
    lake = Lake(root / "lake")
    LocalUsers(lake).add("mia", "marketer", PASSWORD)
    return lake, root / "journeys"


def test_audiences_count_people_who_never_bought_by_engagement_segment(site) -> None:  # noqa: ANN001
    lake, _ = site
    con = connect(lake, zones=("gold",))
    try:
        everyone = measure(con, AudienceFilters(consent="any"))
        carts = measure(con, AudienceFilters(engagement_segments=("Abandoned a cart",)))
        carts_any = measure(con, AudienceFilters(engagement_segments=("Abandoned a cart",), consent="any"))
        buyers_in_carts = measure(con, AudienceFilters(engagement_segments=("Abandoned a cart",),
                                                       segments=("Champions", "Loyal", "At Risk", "Hibernating")))
    finally:
        con.close()
    assert (everyone.customers, everyone.total_customers) == (8, 8)  # 4 buyers, 4 who never bought
    assert (carts.customers, carts.revenue) == (2, 0.0)  # c5, c6 (c8 has no consent)
    assert carts_any.customers == 3
    assert buyers_in_carts.customers == 0  # an RFM filter matches buyers only


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_a_marketer_builds_saves_and_activates_an_audience_of_abandoned_carts(site, tmp_path: Path) -> None:  # noqa: ANN001
    lake, journeys = site
    app = create_app(AppConfig(lake=lake, settings=Settings(), authenticator=LocalUsers(lake),
                               secret_key="test-session-key", journeys=FolderJourneys(journeys, lake, Settings())))
    with serving(app) as base, httpx.Client(base_url=base) as client:
        csrf = _token(client.get("/login").text)
        assert client.post("/login", data={"username": "mia", "password": PASSWORD, "csrf_token": csrf}
                           ).status_code == 303
        builder = client.get("/audiences/new").text
        csrf = _token(builder)
        assert re.search(r'name="engagement_segments" value="Abandoned a cart"', builder)
        form = {"engagement_segments": ["Abandoned a cart"], "csrf_token": csrf}
        preview = client.post("/audiences/preview", data=form).text
        assert re.search(r'data-testid="audience-count">2<', preview)  # the live count is measure()'s
        assert "of 8 customers" in preview
        saved = client.post("/audiences", data={**form, "name": "Abandoned carts"}, follow_redirects=False)
        assert saved.headers["location"] == "/audiences/abandoned_carts"
        assert "2 customers" in client.get("/audiences/abandoned_carts").text
    assert [a.audience_id for a in load_audiences(lake)] == ["abandoned_carts"]
    assert resolve_members(lake, "abandoned_carts") == ["c5", "c6"]

    assert main(["activate", "--lake", str(lake.root), "--destination", "file", "--audience", "abandoned_carts"]) == 0
    # beside the pipeline's exports of the RFM segments, the audience's file under its name
    exported = [row for path in (lake.root / "gold" / "_activation").rglob("abandoned_carts.csv")
                for row in csv.DictReader(path.read_text().splitlines())]
    assert sorted((r["customer_id"], r["email"], r["segment"], r["action"]) for r in exported) == [
        ("c5", "person5@example.com", "Abandoned carts", "entered"),
        ("c6", "person6@example.com", "Abandoned carts", "entered")]


def test_an_engagement_audience_triggers_a_journey_created_in_the_app(site) -> None:  # noqa: ANN001
    lake, journeys = site
    port = FolderJourneys(journeys, lake, Settings())
    port.create(template_id="cart_rescue", journey_id="cart_audience", name="Cart audience", holdout_percent=0,
                variants=[("A", 100)],
                audience=("Abandoned carts", AudienceFilters(engagement_segments=("Abandoned a cart",))))
    data = yaml.safe_load((journeys / "cart_audience.yaml").read_text())
    assert data["trigger"] == {"type": "value_condition", "where": [
        {"column": "engagement_segment", "op": "in", "value": ["Abandoned a cart"]}]}
    port.set_status("cart_audience", "active")
    run = run_journeys(lake, Settings(), folder=journeys)
    assert run.tick is not None and run.tick.entered["cart_audience"] == 2
    sent = [m for m in read_outbox(outbox_location(str(lake.root))) if m["journey_id"] == "cart_audience"]
    assert sorted(m["customer_id"] for m in sent) == ["c5", "c6"]
    assert all(m["text"].startswith("Picked for you: ") and len(m["text"]) > len("Picked for you: . Our top pick: .")
               for m in sent)
