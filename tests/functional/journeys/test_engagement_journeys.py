"""Journeys on engagement segments and recommended products, end to end through two real `rfmlake
run`s (tests/engagement_lakes.py): gold.customer_engagement from dbt, its history recorded by the
segmentation stage, gold.product_recommendations from the recommendations stage, and the pipeline's
journeys stage sending to the local outbox."""

from __future__ import annotations

import pytest

from engagement_lakes import FIRST_AS_OF, SECOND_AS_OF
from rfmlake.activation.destinations.outbox import read_outbox
from rfmlake.journeys.channels import outbox_location
from rfmlake.lake.catalog import connect

pytestmark = pytest.mark.slow


def _sent(site, journey_id: str) -> list[dict]:  # noqa: ANN001
    return [m for m in read_outbox(outbox_location(str(site.lake.root))) if m["journey_id"] == journey_id]


def test_the_engagement_history_keeps_each_runs_segments(engagement_lake) -> None:  # noqa: ANN001
    site, _ = engagement_lake
    con = connect(site.lake, zones=("gold",))
    try:
        rows = con.execute("SELECT CAST(as_of_date AS VARCHAR), customer_id, engagement_segment "
                           "FROM gold.engagement_segment_history WHERE customer_id IN ('c5', 'c7') ORDER BY 2, 1"
                           ).fetchall()
    finally:
        con.close()
    assert rows == [(FIRST_AS_OF, "c5", "Browsing, never bought"), (SECOND_AS_OF, "c5", "Abandoned a cart"),
                    (FIRST_AS_OF, "c7", "Signed up, never visited"), (SECOND_AS_OF, "c7", "Browsing, never bought")]


def test_entering_abandoned_a_cart_emails_the_customers_own_recommended_products(engagement_lake) -> None:  # noqa: ANN001
    site, after_first = engagement_lake
    # The first run had no earlier date to compare with: c6 and c8, already there, never "entered".
    assert [m for m in after_first if m["journey_id"] == "cart_rescue"] == []
    (email,) = _sent(site, "cart_rescue")  # c5 abandoned a cart in June; c8 has no consent
    assert (email["customer_id"], email["channel"], email["email"]) == ("c5", "email", "person5@example.com")
    con = connect(site.lake, zones=("gold",))
    try:
        picks = {c: [r[0] for r in con.execute(
            "SELECT product_name FROM gold.product_recommendations WHERE customer_id = ? ORDER BY rank LIMIT 3",
            [c]).fetchall()] for c in ("c5", "c6")}
    finally:
        con.close()
    assert len(picks["c5"]) == 3 and picks["c5"] != picks["c6"]
    assert email["subject"] == "Still thinking it over? (Abandoned a cart)"
    assert email["text"] == f"Picked for you: {', '.join(picks['c5'])}. Our top pick: {picks['c5'][0]}."


def test_leaving_an_engagement_segment_triggers_and_entering_another_does_not(engagement_lake) -> None:  # noqa: ANN001
    site, after_first = engagement_lake
    assert [m for m in after_first if m["journey_id"] == "browse_lost"] == []
    # c5 left "Browsing, never bought" for a cart; c7 came into it (not a leaver)
    assert [(m["customer_id"], m["detail_type"]) for m in _sent(site, "browse_lost")] == [("c5", "browsing stopped")]
