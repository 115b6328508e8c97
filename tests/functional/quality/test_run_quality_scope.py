"""Incremental scope: row checks read only the rows an incremental run changed; table-level checks
(row counts, key uniqueness, referential checks) keep reading the whole table, in SQL."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from quality_tables import silver_tables, write_table

from rfmlake.lake import Lake
from rfmlake.quality import QualityContext, RowScope, run_quality

# silver_tables() gives row i the source file f{i}.csv: orders o1..o4 come from f0..f3.
BAD_CURRENCY_IN_F1 = {"orders": {"currency": ["EUR", "XXX", "EUR", "EUR"]}}


def test_row_checks_read_only_the_rows_in_scope(write_silver, quality_context: QualityContext) -> None:
    lake = write_silver(**BAD_CURRENCY_IN_F1)

    unchanged = run_quality(lake, "silver", context=quality_context,
                            scope={"silver.orders": RowScope.of_files(["f2.csv", "f3.csv"])})
    changed = run_quality(lake, "silver", context=quality_context,
                          scope={"silver.orders": RowScope.of_files(["f1.csv", "f3.csv"])})

    unchanged.raise_for_critical()  # the bad row was checked when its file arrived, not again now
    orders = unchanged.table("silver.orders")
    currency = next(e for e in orders.expectations if e.parameters.get("value_set") == ["EUR", "USD"])
    assert (currency.success, currency.element_count) == (True, 2)
    assert (orders.row_count, orders.rows_in_scope) == (4, 2)
    assert "silver.orders (4 rows; row checks on 2 rows of 2 changed source file(s))" in unchanged.render()
    [failure] = changed.critical_failures
    assert (failure.columns, failure.unexpected_count, failure.element_count) == (("currency",), 1, 2)
    assert failure.unexpected_rows == ({"order_id": "o2"},)
    assert changed.to_dict()["tables"][0]["row_scope"] == {"scope": "2 changed source file(s)", "rows_in_scope": 2}


def test_table_level_checks_read_the_whole_table(write_silver, quality_context: QualityContext) -> None:
    # o1 twice (files f0 and f1); an order line of an unknown order in f3; the scope is elsewhere.
    lake = write_silver(orders={"order_id": ["o1", "o1", "o3", "o4"]},
                        order_items={"order_id": ["o1", "o1", "o3", "o99"]})
    scope = {"silver.orders": RowScope.of_files(["f3.csv"]), "silver.order_items": RowScope.of_files(["f0.csv"])}

    report = run_quality(lake, "silver", context=quality_context, scope=scope)

    [duplicate] = report.critical_failures
    assert (duplicate.expectation, duplicate.unexpected_count, duplicate.element_count) == (
        "expect_column_values_to_be_unique", 2, 4)
    assert duplicate.unexpected_rows == ({"order_id": "o1"},)
    [unknown_order] = report.warnings
    assert unknown_order.description == "every line's order_id is in silver.orders"
    assert unknown_order.unexpected_rows == ({"order_id": "o99", "line_number": 1},)
    assert unknown_order.element_count == 4
    row_count = next(e for e in report.table("silver.orders").expectations
                     if e.expectation == "expect_table_row_count_to_be_between")
    assert row_count.observed_value == 4


def test_an_empty_scope_checks_no_rows_but_the_whole_table_still(
        lake: Lake, write_silver, quality_context: QualityContext) -> None:
    write_silver(**BAD_CURRENCY_IN_F1)
    nothing_changed = {"silver.orders": RowScope.of_files([])}

    run_quality(lake, "silver", context=quality_context, scope=nothing_changed).raise_for_critical()

    empty = {name: pa.array([], pa.string()) for name in ("order_id", "customer_id", "status", "currency",
                                                          "_source_file", "_row_hash")}
    write_table(lake, "silver", "orders", {**empty, "order_ts": pa.array([], pa.timestamp("us", tz="UTC")),
                                           "order_date": pa.array([], pa.date32()),
                                           "order_total": pa.array([], pa.decimal128(18, 2))})
    report = run_quality(lake, "silver", context=quality_context, scope=nothing_changed)
    [failure] = report.critical_failures
    assert failure.description == "orders is not empty: without orders there is no RFM"


def test_scope_by_a_predicate_on_a_partition_column(write_silver, quality_context: QualityContext) -> None:
    load_dates = pa.array([date(2024, 5, d) for d in (1, 1, 2, 2)], pa.date32())
    lake = write_silver(orders={**BAD_CURRENCY_IN_F1["orders"], "_load_date": load_dates})

    newest = RowScope(predicate="_load_date = DATE '2024-05-02'")
    newest_file = RowScope(source_files=frozenset({"f1.csv", "f2.csv"}), predicate="_load_date = DATE '2024-05-02'")

    run_quality(lake, "silver", context=quality_context, scope={"silver.orders": newest}).raise_for_critical()
    report = run_quality(lake, "silver", context=quality_context, scope={"silver.orders": newest_file})
    report.raise_for_critical()  # f1 (the bad row) was loaded on the 1st
    assert report.table("silver.orders").rows_in_scope == 1
    assert "2 changed source file(s), rows where _load_date = DATE '2024-05-02'" in report.render()


def test_bad_scopes_are_refused_with_the_reason(write_silver, quality_context: QualityContext) -> None:
    lake = write_silver()
    write_table(lake, "silver", "products", {k: v for k, v in silver_tables()["products"].items()
                                             if k != "_source_file"})

    with pytest.raises(ValueError, match=r"row scope for silver\.nope: no quality suite in the silver zone"):
        run_quality(lake, "silver", context=quality_context, scope={"silver.nope": RowScope.of_files(["a"])})
    with pytest.raises(ValueError, match=r"row scope for silver\.orders \(\(no_such_column > 1\)\) cannot filter"):
        run_quality(lake, "silver", context=quality_context,
                    scope={"silver.orders": RowScope(predicate="no_such_column > 1")})
    with pytest.raises(ValueError, match=r"silver\.products: column\(s\) _source_file not in the table"):
        run_quality(lake, "silver", context=quality_context, scope={"silver.products": RowScope.of_files(["a"])})
    with pytest.raises(ValueError, match="needs source_files, a predicate, or both"):
        RowScope()
    with pytest.raises(ValueError, match="a collection of file names, not one string"):
        RowScope(source_files="f1.csv")  # type: ignore[arg-type]


def test_an_incremental_run_checks_rows_of_the_partitions_it_wrote(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The pipeline's quality_silver scope: after an incremental ingest, row checks read the silver
    partitions that run wrote; after a full rebuild (or for another run), every row."""
    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.ingest.jobs import run_ingest
    from rfmlake.ingest.sql import file_id
    from rfmlake.lake import Lake
    from rfmlake.pipeline.context import RunContext
    from rfmlake.pipeline.stages import _silver_scope
    from rfmlake.settings import Settings

    monkeypatch.setenv("RFMLAKE_PII_KEY", "test-key-not-a-secret")
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    (landing / "orders").mkdir(parents=True)
    (landing / "orders" / "a.csv").write_text("order_id,customer_id,order_ts\no1,c1,2024-01-01\n")

    def ingest(run_id: str, full: bool = False) -> RunContext:
        ctx = RunContext(landing_dir=landing, lake=lake, settings=Settings(), run_id=run_id, full=full)
        engine = DuckEngine()
        try:
            run_ingest(engine, ctx)
        finally:
            engine.close()
        return ctx

    first = ingest("r1")
    assert _silver_scope(first) is None  # the first run builds silver in full: everything is new
    (landing / "orders" / "b.csv").write_text("order_id,customer_id,order_ts\no2,c2,2024-01-02\n")
    second = ingest("r2")
    scope = _silver_scope(second)
    assert scope is not None
    assert scope["silver.orders"].predicate == f"_file IN ('{file_id('orders/b.csv')}')"
    assert scope["silver.customers"].predicate == "false"
    context = QualityContext.from_settings(Settings(), segment_names=(), run_at=second.started_at)
    report = run_quality(lake, "silver", context=context, scope=scope)
    assert report.to_dict()["tables"]
    assert _silver_scope(RunContext(landing_dir=landing, lake=lake, settings=Settings(), run_id="another")) is None
    assert _silver_scope(ingest("r3", full=True)) is None
