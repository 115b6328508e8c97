"""run_quality with real great-expectations on tiny lake tables."""

from __future__ import annotations

import json
import socket
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from quality_tables import TS, dec, tok, ts, write_table

from rfmlake.errors import QualityError
from rfmlake.lake import Lake
from rfmlake.quality import QualityContext, QualityReport, run_quality


def _critical_message(report: QualityReport) -> str:
    with pytest.raises(QualityError) as caught:
        report.raise_for_critical()
    return str(caught.value)


def test_clean_silver_passes_and_absent_tables_are_skipped(write_silver, quality_context) -> None:
    lake = write_silver()

    report = run_quality(lake, "silver", context=quality_context)

    report.raise_for_critical()
    assert not report.has_critical_failures
    assert report.warnings == ()
    assert [t.table for t in report.skipped_tables] == ["silver.access_logs"]
    orders = report.table("silver.orders")
    assert orders.status == "validated" and orders.row_count == 4
    assert all(e.success for e in orders.expectations) and len(orders.expectations) > 10
    assert report.render().startswith("Data quality, silver zone, run 2024-06-01T12:00:00Z: PASSED")


def test_clean_gold_passes(write_gold, quality_context) -> None:
    report = run_quality(write_gold(), "gold", context=quality_context)

    report.raise_for_critical()
    assert report.warnings == ()
    assert {t.table for t in report.tables if t.status == "validated"} == {
        "gold.customer_rfm_features", "gold.customer_rfm", "gold.segment_membership_history"}


@pytest.mark.parametrize(
    ("zone", "changes", "table", "column", "expectation", "unexpected"),
    [
        pytest.param("silver", {"orders": {"order_id": ["o1", "o1", "o3", "o4"]}},
                     "silver.orders", "order_id", "expect_column_values_to_be_unique", 2, id="duplicate-key"),
        pytest.param("silver", {"customers": {"customer_id": [None, "c2", "c3"]}},
                     "silver.customers", "customer_id", "expect_column_values_to_not_be_null", 1, id="null-key"),
        pytest.param("silver", {"order_items": {"line_number": pa.array([1, 1, 1, 1], pa.int32())}},
                     "silver.order_items", "order_id, line_number", "expect_compound_columns_to_be_unique", 2,
                     id="duplicate-compound-key"),
        pytest.param("silver", {"customers": {"email_token": ["ann.lee@example.com", tok("b"), None]}},
                     "silver.customers", "email_token", "expect_column_values_to_match_regex", 1,
                     id="clear-text-email"),
        pytest.param("silver", {"order_items": {"quantity": pa.array([1, -2, 1, 3], pa.int32())}},
                     "silver.order_items", "quantity", "expect_column_values_to_be_between", 1,
                     id="negative-quantity"),
        pytest.param("silver", {"orders": {"currency": ["EUR", "XXX", "EUR", "XXX"]}},
                     "silver.orders", "currency", "expect_column_values_to_be_in_set", 2, id="unknown-currency"),
        pytest.param("gold", {"customer_rfm": {"r_score": pa.array([6, 4], pa.int32())}},
                     "gold.customer_rfm", "r_score", "expect_column_values_to_be_between", 1,
                     id="out-of-range-score"),
        pytest.param("gold", {"customer_rfm": {"rfm_segment": ["Champions", "Sleepy"]}},
                     "gold.customer_rfm", "rfm_segment", "expect_column_values_to_be_in_set", 1,
                     id="unknown-segment"),
    ],
)
def test_critical_failure_raises_with_a_readable_message(
    request, quality_context, zone, changes, table, column, expectation, unexpected
) -> None:
    writer = request.getfixturevalue(f"write_{zone}")
    report = run_quality(writer(**changes), zone, context=quality_context)

    message = _critical_message(report)

    assert message.startswith(f"data quality failed in the {zone} zone: 1 critical expectation(s) failed")
    assert f"\n{table} (" in message
    failed_line = next(line for line in message.splitlines() if "FAIL" in line)
    assert f"{expectation} [{column}]" in failed_line and "critical" in failed_line
    assert f"{unexpected} unexpected of " in message
    [failure] = report.critical_failures
    assert (failure.expectation, failure.unexpected_count) == (expectation, unexpected)


def test_failure_shows_unexpected_values_and_row_keys(write_silver, quality_context) -> None:
    report = run_quality(write_silver(orders={"currency": ["EUR", "XXX", "EUR", "EUR"]}), "silver",
                         context=quality_context)

    [failure] = report.critical_failures
    assert failure.unexpected_examples == ("XXX",)
    assert failure.unexpected_rows == ({"order_id": "o2"},)
    assert "examples: 'XXX'; rows: order_id='o2'" in report.render()


def test_warnings_are_reported_but_do_not_raise(write_silver, write_gold, quality_context) -> None:
    future = datetime(2030, 1, 1, tzinfo=UTC)
    lake = write_silver(orders={"order_ts": pa.array([ts(1), ts(5), ts(7), future], TS)},
                        products={"price": dec([4, -1], 4)})
    write_gold(customer_rfm={"avg_order_value": dec([20, 10], 2)},
               segment_membership_history={"rfm_segment": ["Old Name", "Champions", "At Risk"]})

    silver = run_quality(lake, "silver", context=quality_context)
    gold = run_quality(lake, "gold", context=quality_context)

    silver.raise_for_critical()
    gold.raise_for_critical()
    assert {(e.columns, e.unexpected_count) for e in silver.warnings} == {(("order_ts",), 1), (("price",), 1)}
    assert [(e.columns[0], e.unexpected_count) for e in gold.warnings] == [
        ("avg_order_value", 1), ("rfm_segment", 1)]
    assert "FAIL warning  expect_column_values_to_be_between [order_ts]" in silver.render()
    assert "PASSED (0 critical failed; 2 warning(s) failed" in silver.render()


def test_empty_orders_is_critical_and_empty_side_table_a_warning(lake, write_silver, quality_context) -> None:
    write_silver()
    empty = {name: pa.array([], pa.string()) for name in ("order_id", "customer_id", "status", "currency",
                                                          "_source_file", "_row_hash")}
    write_table(lake, "silver", "orders", {**empty, "order_ts": pa.array([], TS),
                                           "order_date": pa.array([], pa.date32()),
                                           "order_total": dec([], 2)})
    write_table(lake, "silver", "order_items", {"order_id": pa.array([], pa.string())})

    report = run_quality(lake, "silver", context=quality_context)

    message = _critical_message(report)
    assert "expect_table_row_count_to_be_between (min_value=1): orders is not empty" in message
    assert "observed 0" in message
    items = report.table("silver.order_items")
    # order_items lost its columns: the schema check says which, every check on them is not evaluated.
    assert items.critical_failures[0].expectation == "expect_table_columns_to_match_set"
    assert "line_number" in items.critical_failures[0].observed_value["missing"]
    assert "not evaluated: column(s) quantity not in silver.order_items" in message


def test_missing_tables_are_skipped_unless_required(lake, write_silver, quality_context) -> None:
    write_silver(skip=("customers", "products", "events", "order_items", "currency_rates"))

    report = run_quality(lake, "silver", context=quality_context)

    report.raise_for_critical()
    assert [t.table for t in report.tables if t.status == "validated"] == ["silver.orders"]
    assert len(report.skipped_tables) == 6
    assert "silver.customers: skipped (not in the lake)" in report.render()

    empty_lake = Lake(lake.root.parent / "empty")
    message = _critical_message(run_quality(empty_lake, "silver", context=quality_context))
    assert "silver.orders: MISSING, critical (required table is not in the lake)" in message
    gold_message = _critical_message(run_quality(empty_lake, "gold", context=quality_context))
    assert "gold.customer_rfm: MISSING" in gold_message and "customer_rfm_features" not in gold_message


def test_order_lines_of_unknown_orders_warn(write_silver, quality_context) -> None:
    lake = write_silver(order_items={"order_id": ["o1", "o1", "o2", "o99"]})

    report = run_quality(lake, "silver", context=quality_context)

    [warning] = report.warnings
    assert warning.description == "every line's order_id is in silver.orders"
    assert warning.unexpected_rows == ({"order_id": "o99", "line_number": 1},)


def test_no_pii_in_rendered_or_json_report(write_silver, quality_context) -> None:
    email, phone, name = "ann.lee@example.com", "+46701234567", "Annika"
    lake = write_silver(
        customers={"email_token": [tok("x"), email, None], "phone_token": [phone, None, None],
                   "first_name_token": [name, tok("bo"), None], "has_email": [True, True, False]},
        events={"url": [f"/account?email={email}", "/cart"]},
    )

    report = run_quality(lake, "silver", context=quality_context)

    texts = [report.render(show_passed=True), report.render_critical(), json.dumps(report.to_dict())]
    for text in texts:
        for value in (email, phone, name, "ann.lee", "1234567"):
            assert value not in text
    message = _critical_message(report)
    assert message.count("values hidden (personal data)") == 3
    assert "rows: customer_id='c2'" in message  # which row, without what it holds
    failed = {e.columns[0]: e for e in report.critical_failures}
    assert set(failed) == {"email_token", "phone_token", "first_name_token"}
    assert all(e.unexpected_examples == () and e.unexpected_count == 1 for e in failed.values())
    [url_warning] = report.warnings
    assert url_warning.columns == ("url",) and url_warning.unexpected_examples == ()


def test_report_is_deterministic_and_json_ready(write_silver, quality_context) -> None:
    lake = write_silver(orders={"order_id": ["o1", "o1", "o3", "o4"]})

    first = run_quality(lake, "silver", context=quality_context).to_dict()
    second = run_quality(lake, "silver", context=quality_context).to_dict()

    first.pop("duration_seconds")
    second.pop("duration_seconds")
    assert first == second
    assert json.loads(json.dumps(first)) == first
    assert first["passed"] is False and first["critical_failures"] == 1


def test_runs_offline_and_writes_nothing_outside_the_lake(
    write_silver, quality_context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = write_silver()
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)

    report = run_quality(lake, "silver", context=quality_context)

    assert not report.has_critical_failures
    assert attempts == []
    assert list(workdir.iterdir()) == []


def test_gold_recency_and_date_order_consistency_warn(write_gold, quality_context) -> None:
    lake = write_gold(customer_rfm_features={
        "recency_days": pa.array([5, 9], pa.int32()),
        "first_order_date": pa.array([date(2024, 5, 6), date(2024, 5, 7)], pa.date32()),
    })

    report = run_quality(lake, "gold", context=quality_context)

    report.raise_for_critical()
    assert {e.description for e in report.warnings} == {
        "recency_days = as_of_date - last_order_date in days", "last_order_date >= first_order_date"}


def test_score_range_follows_score_bins(write_gold, quality_context) -> None:
    lake = write_gold(customer_rfm={"r_score": pa.array([7, 4], pa.int32())})
    seven_bins = QualityContext(run_at=quality_context.run_at, known_currencies=quality_context.known_currencies,
                                score_bins=7, segment_names=quality_context.segment_names)

    run_quality(lake, "gold", context=seven_bins).raise_for_critical()
    assert "r_score in 1..5" in _critical_message(run_quality(lake, "gold", context=quality_context))


def test_pii_in_a_table_without_a_key_is_counted_never_shown(lake, write_silver, quality_context) -> None:
    write_silver()
    ip = "203.0.113.77"
    write_table(lake, "silver", "access_logs", {
        "ip_token": [tok("10.0.0.1"), ip], "remote_user_token": [None, None],
        "request_ts": pa.array([ts(1), ts(2)], TS), "request_date": pa.array([date(2024, 5, 1), date(2024, 5, 2)]),
        "method": ["GET", "GET"], "path": ["/", f"/login?user={ip}"], "protocol": ["HTTP/1.1"] * 2,
        "status": pa.array([200, 200], pa.int32()), "bytes_sent": pa.array([10, 20], pa.int64()),
        "referrer": [None, None], "user_agent": ["UA", "UA"], "_source_file": ["a.log", "a.log"],
        "_row_hash": [tok("1"), tok("2")]})

    report = run_quality(lake, "silver", context=quality_context)

    [failure] = report.critical_failures
    assert (failure.columns, failure.unexpected_count) == (("ip_token",), 1)
    assert failure.unexpected_examples == () and failure.unexpected_rows == ()
    assert ip not in report.render(show_passed=True) + json.dumps(report.to_dict())
