"""Audiences: filters compiled to SQL over the gold tables, counted and saved in gold.audiences.
Expected members are read off the rows of tests/app_lakes.py (as_of 2024-05-01)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app_lakes import build_app_lake
from rfmlake.audiences import (
    AudienceError,
    AudienceFilters,
    audience_id,
    load_audiences,
    measure,
    parse_filters,
    resolve_members,
    save_audience,
)
from rfmlake.lake.catalog import connect


def members(lake, **filters) -> list[str]:  # noqa: ANN001
    from rfmlake.audiences import get_audience, member_query

    con = connect(lake, zones=("gold",))
    sql, params = member_query(con, AudienceFilters(**filters))
    out = sorted(r[0] for r in con.execute(sql, params).fetchall())
    con.close()
    assert get_audience  # imported for its module's public surface
    return out


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory):
    return build_app_lake(tmp_path_factory.mktemp("app") / "lake")


def test_default_audience_is_every_scored_customer_with_consent(lake) -> None:  # noqa: ANN001
    # D's consent is unknown (null) and E said no: neither is consent.
    assert members(lake) == ["A", "C", "F", "G"]
    size = measure(connect(lake, zones=("gold",)), AudienceFilters())
    assert (size.customers, size.total_customers) == (4, 6)
    assert size.revenue == pytest.approx(150 + 220 + 500 + 40)
    assert size.clv == pytest.approx(112.50 + 220.00 + 16.67 + 4.00)
    assert size.as_of == "2024-05-01"


@pytest.mark.parametrize(("filters", "expected"), [
    ({"segments": ("Champions",), "consent": "any"}, ["C", "E"]),
    ({"segments": ("Champions", "Loyal")}, ["A", "C"]),
    ({"clusters": ("Low value",), "consent": "any"}, ["D", "G"]),
    ({"r_score_min": 5, "consent": "any"}, ["C", "D"]),
    ({"m_score_min": 4, "m_score_max": 4, "consent": "any"}, ["A", "E"]),
    ({"p_alive_min": 0.5, "clv_min": 20, "consent": "any"}, ["A", "C", "E"]),
    ({"clv_max": 10, "consent": "any"}, ["D", "G"]),
    ({"active_within_days": 7, "consent": "any"}, ["A", "E"]),
    ({"min_events": 3, "consent": "any"}, ["A", "E"]),
    ({"min_events": 1, "consent": "any"}, ["A", "D", "E", "G"]),
    ({"countries": ("DE",)}, ["A", "C", "F"]),
    ({"countries": ("FR",), "consent": "not_opted_in"}, ["D", "E"]),
    ({"segments": ("x' OR '1'='1",), "consent": "any"}, []),  # a value, never SQL
])
def test_each_filter_selects_exactly_its_customers(lake, filters, expected) -> None:  # noqa: ANN001
    assert members(lake, **filters) == expected


def test_filters_on_missing_tables_match_nobody_and_say_why(tmp_path: Path) -> None:
    lake = build_app_lake(tmp_path / "lake", with_value=False, with_profile=False)
    con = connect(lake, zones=("gold",))
    size = measure(con, AudienceFilters(clv_min=1, consent="any"))
    assert size.customers == 0 and size.clv is None
    assert any("gold.customer_value does not exist" in n for n in size.notes)
    size = measure(con, AudienceFilters(min_events=1, consent="any"))
    assert size.customers == 0 and any("event counts" in n for n in size.notes)
    assert measure(con, AudienceFilters(consent="any")).customers == 6


def test_bad_filters_get_one_clear_message_per_field() -> None:
    with pytest.raises(AudienceError, match="r_score: the minimum 4 is above the maximum 2"):
        parse_filters({"r_score_min": 4, "r_score_max": 2})
    with pytest.raises(AudienceError, match="p_alive_min: Input should be less than or equal to 1"):
        parse_filters({"p_alive_min": 3})
    with pytest.raises(AudienceError, match="colour: Extra inputs are not permitted"):
        parse_filters({"colour": "red"})


def test_saved_audiences_live_in_gold_and_resolve_against_the_current_run(lake) -> None:  # noqa: ANN001
    con = connect(lake, zones=("gold",))
    filters = AudienceFilters(segments=("Champions", "Loyal"), countries=("DE",))
    saved = save_audience(lake, audience_id=audience_id("Top DE buyers!"), name="Top DE buyers!", description="x",
                          filters=filters, size=measure(con, filters), actor="mia")
    assert saved.audience_id == "top_de_buyers"
    assert [(a.name, a.customers, a.filters) for a in load_audiences(lake)] == [("Top DE buyers!", 2, filters)]
    assert resolve_members(lake, "top_de_buyers") == ["A", "C"]
    table = connect(lake, zones=("gold",)).execute(
        "SELECT audience_id, name, customers, created_by FROM gold.audiences").fetchall()
    assert table == [("top_de_buyers", "Top DE buyers!", 2, "mia")]  # the catalog sees the committed table
    with pytest.raises(AudienceError, match="exists already"):
        save_audience(lake, audience_id="top_de_buyers", name="Other", description="", filters=filters,
                      size=measure(con, filters), actor="mia")
    with pytest.raises(AudienceError, match="named 'top de buyers!' exists already"):
        save_audience(lake, audience_id="another", name="top de buyers!", description="", filters=filters,
                      size=measure(con, filters), actor="mia")
    wider = AudienceFilters(segments=("Champions", "Loyal"))
    save_audience(lake, audience_id="top_de_buyers", name="Top DE buyers!", description="", filters=wider,
                  size=measure(con, wider), actor="ada", replace=True)
    (again,) = load_audiences(lake)
    assert (again.created_by, again.updated_by, again.customers) == ("mia", "ada", 2)
    assert resolve_members(lake, "top_de_buyers") == ["A", "C"]


def test_audience_ids_are_slugs() -> None:
    assert audience_id("  Win-back: At Risk (DE) ") == "win_back_at_risk_de"
    assert audience_id("2024 buyers") == "audience_2024_buyers"
