"""Suites as data: they follow the contract and the run's parameters (no great-expectations here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rfmlake.contract.entities import ORDER_STATUSES, SILVER_TABLES
from rfmlake.quality import QualityContext, Severity, gold_suites, silver_suites, suites_for
from rfmlake.quality.suites import GOLD_TABLE_COLUMNS, HEX_TOKEN_REGEX
from rfmlake.settings import load_settings

CTX = QualityContext(run_at=datetime(2024, 6, 1, 12, tzinfo=UTC), known_currencies=frozenset({"EUR", "SEK"}),
                     score_bins=4, segment_names=("Champions", "Lost"))


def _checks(suites, table):
    return next(s for s in suites if s.table == table).checks


def test_every_check_reads_columns_of_the_contract() -> None:
    for suite in (*silver_suites(CTX), *gold_suites(CTX)):
        contract = ({c for c, _, _ in SILVER_TABLES[suite.table]} if suite.zone == "silver"
                    else set(GOLD_TABLE_COLUMNS[suite.table]))
        assert set(suite.key) <= contract, suite.qualified_name
        for check in suite.checks:
            assert set(suite.source_columns(check)) <= contract, (suite.qualified_name, check)
            assert check.expectation.startswith("expect_")


def test_every_silver_token_column_must_look_like_a_token() -> None:
    suites = silver_suites(CTX)
    for table, columns in SILVER_TABLES.items():
        tokens = {name for name, _, _ in columns if name.endswith("_token")}
        if not tokens:
            continue
        checked = {c.kwargs["column"] for c in _checks(suites, table)
                   if c.kwargs.get("regex") == HEX_TOKEN_REGEX and c.severity is Severity.CRITICAL and c.pii}
        assert checked == tokens, table


def test_keys_are_not_null_and_unique_and_critical() -> None:
    expected = {"customers": ("customer_id",), "orders": ("order_id",), "products": ("product_id",),
                "events": ("event_id",), "order_items": ("order_id", "line_number")}
    suites = silver_suites(CTX)
    for table, key in expected.items():
        checks = _checks(suites, table)
        critical = [c for c in checks if c.severity is Severity.CRITICAL]
        for column in key:
            assert any(c.expectation == "expect_column_values_to_not_be_null" and c.columns == (column,)
                       for c in critical), (table, column)
        unique = "expect_column_values_to_be_unique" if len(key) == 1 else "expect_compound_columns_to_be_unique"
        assert any(c.expectation == unique and c.columns == key for c in critical), table


def test_run_parameters_reach_the_expectations() -> None:
    orders = _checks(silver_suites(CTX), "orders")
    sets = {c.columns[0]: c.kwargs["value_set"] for c in orders if "value_set" in c.kwargs}
    assert sets == {"status": sorted(ORDER_STATUSES), "currency": ["EUR", "SEK"]}
    suite = next(s for s in silver_suites(CTX) if s.table == "orders")
    future = {suite.source_columns(c): (c.kwargs["max_value"], c.derived[0].sql) for c in orders if c.derived}
    assert future == {
        ("order_ts",): (0, "(epoch_us(order_ts) - 1717243200000000) / 86400e6"),  # 2024-06-01T12:00Z
        ("order_date",): (0, "date_diff('day', DATE '2024-06-01', order_date)"),
    }

    rfm = _checks(gold_suites(CTX), "customer_rfm")
    score_ranges = {c.columns[0]: (c.kwargs["min_value"], c.kwargs["max_value"]) for c in rfm
                    if c.columns and c.columns[0].endswith("_score") and "max_value" in c.kwargs}
    assert score_ranges == {"r_score": (1, 4), "f_score": (1, 4), "m_score": (1, 4)}
    segment = next(c for c in rfm if c.columns == ("rfm_segment",) and "value_set" in c.kwargs)
    assert segment.kwargs["value_set"] == ["Champions", "Lost"] and segment.severity is Severity.CRITICAL


def test_row_count_is_critical_for_the_table_rfm_works_on_only_in_silver() -> None:
    def severities(ctx: QualityContext) -> dict[str, Severity | None]:
        return {s.table: next((c.severity for c in s.checks if c.expectation.startswith("expect_table_row_count")),
                              None) for s in silver_suites(ctx)}

    on_orders = severities(CTX)
    assert on_orders.pop("orders") is Severity.CRITICAL
    assert on_orders.pop("currency_rates") is None  # a shop in one currency lands no rates
    assert set(on_orders.values()) == {Severity.WARNING}
    on_events = severities(QualityContext(run_at=CTX.run_at, known_currencies=CTX.known_currencies,
                                          rfm_source="events"))
    assert (on_events["events"], on_events["orders"]) == (Severity.CRITICAL, Severity.WARNING)


def test_required_tables() -> None:
    assert [s.qualified_name for s in suites_for("silver", CTX) if s.required] == ["silver.orders"]
    assert [s.qualified_name for s in suites_for("gold", CTX) if s.required] == ["gold.customer_rfm"]
    with pytest.raises(ValueError, match="no quality suites for zone 'bronze'"):
        suites_for("bronze", CTX)


def test_gold_needs_segment_names() -> None:
    ctx = QualityContext(run_at=CTX.run_at, known_currencies=CTX.known_currencies)
    with pytest.raises(ValueError, match="segment_names is empty"):
        gold_suites(ctx)
    assert silver_suites(ctx)  # silver does not need them


def test_context_normalises_and_validates() -> None:
    naive = QualityContext(run_at=datetime(2024, 6, 1, 12), known_currencies={"EUR"})  # type: ignore[arg-type]
    assert naive.run_at == datetime(2024, 6, 1, 12, tzinfo=UTC)
    cest = QualityContext(run_at=datetime(2024, 6, 1, 14, tzinfo=timezone(timedelta(hours=2))),
                          known_currencies=frozenset({"EUR"}))
    assert cest.run_at_utc_naive == datetime(2024, 6, 1, 12)
    with pytest.raises(ValueError, match="'eur' is not an ISO 4217 code"):
        QualityContext(run_at=CTX.run_at, known_currencies=frozenset({"eur"}))
    with pytest.raises(ValueError, match="known_currencies is empty"):
        QualityContext(run_at=CTX.run_at, known_currencies=frozenset())


def test_context_from_settings() -> None:
    settings = load_settings(overrides={"rfm.score_bins": 3, "rfm.source": "events"})
    ctx = QualityContext.from_settings(settings, segment_names=["Champions"], run_at=CTX.run_at)
    assert (ctx.score_bins, ctx.segment_names, ctx.rfm_source) == (3, ("Champions",), "events")
    # unknown_currency means "not an ISO 4217 code", whatever rates there are
    assert {"EUR", "NOK", "JPY", "XCG"} <= ctx.known_currencies and not {"XXX", "XTS", "ABC"} & ctx.known_currencies


def test_the_table_rfm_works_on_is_the_required_one() -> None:
    def required(ctx: QualityContext) -> set[str]:
        return {s.table for s in silver_suites(ctx) if s.required}

    assert required(CTX) == {"orders"}
    assert required(QualityContext(run_at=CTX.run_at, known_currencies=CTX.known_currencies,
                                   rfm_source="events")) == {"events"}


def test_importing_the_package_does_not_import_great_expectations() -> None:
    import subprocess
    import sys

    code = "import sys, rfmlake.quality; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
