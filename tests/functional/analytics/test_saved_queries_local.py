"""Saved queries run on the local catalog over a small lake (tests/analytics_lakes.py); expected
rows are worked out by hand from that lake's rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from analytics_lakes import build_analytics_lake
from rfmlake.analytics import query_names, run_saved_query
from rfmlake.cli.main import main
from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return build_analytics_lake(tmp_path_factory.mktemp("analytics") / "lake")


def _rows(lake: Lake, name: str) -> list[tuple]:
    frame = run_saved_query(lake, name)
    for column in frame.columns:
        if str(frame[column].dtype).startswith("datetime64"):
            frame[column] = frame[column].dt.date
    return [tuple(row) for row in frame.itertuples(index=False)]


def test_segment_sizes_over_time(small_lake: Lake) -> None:
    # 2024-03-01: completed orders before it: A 150 (o1+o2), B 30, C 200, E 60 -> Loyal {A,E} 210,
    # Champions {C} 200, New {B} 30; total 440. 2024-05-01: A 150 (o8 returned), C 220, D 10,
    # E 60 -> Champions {C,E} 280, Loyal {A} 150, New {D} 10; total 440.
    assert _rows(small_lake, "segment_sizes_over_time") == [
        (date(2024, 3, 1), "Loyal", 2, 0.5, Decimal("210.00"), 0.4773),
        (date(2024, 3, 1), "Champions", 1, 0.25, Decimal("200.00"), 0.4545),
        (date(2024, 3, 1), "New", 1, 0.25, Decimal("30.00"), 0.0682),
        (date(2024, 5, 1), "Champions", 2, 0.5, Decimal("280.00"), 0.6364),
        (date(2024, 5, 1), "Loyal", 1, 0.25, Decimal("150.00"), 0.3409),
        (date(2024, 5, 1), "New", 1, 0.25, Decimal("10.00"), 0.0227),
    ]


def test_cohort_retention(small_lake: Lake) -> None:
    # completed orders by month: A Jan, Feb; B Jan; C Feb, Apr; D Mar; E Feb (cancelled/returned ignored)
    assert _rows(small_lake, "cohort_retention") == [
        (date(2024, 1, 1), 0, 2, 2, 1.0),
        (date(2024, 1, 1), 1, 2, 1, 0.5),
        (date(2024, 2, 1), 0, 2, 2, 1.0),
        (date(2024, 2, 1), 2, 2, 1, 0.5),
        (date(2024, 3, 1), 0, 1, 1, 1.0),
    ]


def test_migration_latest_pair_only(small_lake: Lake) -> None:
    # the 2024-01-01 pair and the cluster_label dimension are left out; shares within the from-segment
    d1, d2 = date(2024, 3, 1), date(2024, 5, 1)
    assert _rows(small_lake, "segment_migration") == [
        (d1, d2, "(new)", "New", 1, 1.0),
        (d1, d2, "Champions", "Champions", 1, 1.0),
        (d1, d2, "Loyal", "Champions", 1, 0.5),
        (d1, d2, "Loyal", "Loyal", 1, 0.5),
        (d1, d2, "New", "(gone)", 1, 1.0),
    ]


def test_top_products_per_segment(small_lake: Lake) -> None:
    # counted orders only (o4, o8 not); B is not scored; D's 20.00 line at rate 0.5 is 10.00
    rows = [(r[0], r[1], r[2], r[3], r[5], r[6], r[7]) for r in _rows(small_lake, "top_products_per_segment")]
    assert rows == [
        ("Champions", 1, "P1", "Teapot", 1, 1, Decimal("200.00")),
        ("Champions", 2, "P3", "Lamp", 4, 2, Decimal("80.00")),
        ("Loyal", 1, "P1", "Teapot", 2, 1, Decimal("80.00")),
        ("Loyal", 2, "P2", "Beanie", 6, 1, Decimal("70.00")),
        ("New", 1, "P2", "Beanie", 2, 1, Decimal("10.00")),
    ]


def test_customers_at_risk_high_value(small_lake: Lake) -> None:
    # r_score <= 2 and m_score >= 4: F (500.00), E (60.00); G has m_score 3, A r_score 3
    rows = _rows(small_lake, "customers_at_risk_high_value")
    assert [(r[0], r[1], r[8]) for r in rows] == [
        ("F", "Cannot Lose Them", Decimal("500.00")), ("E", "Champions", Decimal("60.00")),
    ]


def test_missing_table_is_named(tmp_path: Path) -> None:
    lake = build_analytics_lake(tmp_path / "lake")
    (tmp_path / "lake" / "gold" / "segment_migration").rename(tmp_path / "moved")
    with pytest.raises(RfmlakeError, match=r"reads gold\.segment_migration, which the lake"):
        run_saved_query(lake, "segment_migration")


def test_unknown_query_lists_names(small_lake: Lake) -> None:
    with pytest.raises(RfmlakeError, match="segment_sizes_over_time"):
        run_saved_query(small_lake, "segment_sizes")


def test_cli_sql_query_option(small_lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--lake", str(small_lake.root), "--query", "customers_at_risk_high_value",
                 "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("customer_id,rfm_segment,r_score")
    assert [line.split(",")[0] for line in lines[1:]] == ["F", "E"]


def test_cli_sql_lists_queries(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["sql", "--lake", str(tmp_path), "--list-queries"]) == 0
    out = capsys.readouterr().out
    for name in query_names():
        assert name in out


def test_cli_sql_needs_query_or_sql(capsys: pytest.CaptureFixture[str], small_lake: Lake) -> None:
    assert main(["sql", "--lake", str(small_lake.root)]) == 1
    assert "give a query" in capsys.readouterr().err
    assert main(["sql", "SELECT 1", "--query", "cohort_retention", "--lake", str(small_lake.root)]) == 1
    assert "not both" in capsys.readouterr().err
