"""dbt build on DuckDB over a hand-built silver fixture; gold checked against values computed by
hand (see silver_fixture.shop for the orders behind each number)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from silver_fixture import item, shop, write_silver

from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.modeling import DbtResult, run_dbt
from rfmlake.modeling.dbt_runner import duckdb_path
from rfmlake.pipeline.context import RunContext
from rfmlake.settings import RfmSettings, Settings

pytestmark = pytest.mark.dbt

FEATURE_COLUMNS = ("customer_id", "as_of_date", "first_order_date", "last_order_date", "recency_days",
                   "frequency", "monetary", "avg_order_value", "reporting_currency")


def _features(lake: Lake) -> list[tuple]:
    con = connect(lake)
    try:
        return con.execute(
            f"SELECT {', '.join(FEATURE_COLUMNS)} FROM gold.customer_rfm_features ORDER BY customer_id"
        ).fetchall()
    finally:
        con.close()


def _ctx(lake: Lake, settings: Settings | None = None, as_of: date | None = None) -> RunContext:
    return RunContext(landing_dir=lake.root / "landing", lake=lake, settings=settings or Settings(), as_of=as_of)


@pytest.fixture(scope="module")
def default_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, DbtResult]:
    lake = Lake(tmp_path_factory.mktemp("dbt-default") / "lake")
    write_silver(lake, shop())
    return lake, run_dbt(_ctx(lake))


def test_rfm_features_match_hand_computed_values(default_build: tuple[Lake, DbtResult]) -> None:
    lake, result = default_build
    eur = "EUR"
    as_of = date(2024, 3, 11)  # default: the day after o7 (2024-03-10, pending: any status sets it)
    assert result.as_of_date == as_of
    assert _features(lake) == [
        # o1 from its lines (20.00 + 5.50 - 0.50; header 999 ignored) + o2 header 50 USD * 0.92;
        # o3 cancelled does not count.
        ("c1", as_of, date(2024, 1, 10), date(2024, 3, 1), 10, 2, Decimal("71.00"), Decimal("35.50"), eur),
        # o4: 3 * 3.3333 = 10.00 GBP * 1.17; o5 returned is excluded (returns_policy exclude).
        ("c2", as_of, date(2024, 2, 15), date(2024, 2, 15), 25, 1, Decimal("11.70"), Decimal("11.70"), eur),
        ("c3", as_of, date(2024, 3, 9), date(2024, 3, 9), 2, 1, Decimal("30.00"), Decimal("30.00"), eur),
        # guest: o8 10.01 USD * 0.92 = 9.2092 -> 9.21, o9 1.00 EUR; 10.21 / 2 = 5.105 -> 5.11.
        ("g1", as_of, date(2023, 12, 31), date(2024, 1, 5), 66, 2, Decimal("10.21"), Decimal("5.11"), eur),
    ]  # c4 (pending only) and c5 (events only: a purchase event is not an order) are absent.


def test_build_reports_nodes_and_exports_gold(default_build: tuple[Lake, DbtResult]) -> None:
    lake, result = default_build
    assert result.success and not result.failures
    assert {ref.name for ref in result.exported} == {"customer_rfm_features", "fct_orders", "dim_customers",
                                                     "customer_engagement"}
    by_name = {node.name: node for node in result.nodes}
    assert by_name["customer_rfm_features"].status == "success"
    assert by_name["customer_rfm_features"].rows == 4
    assert by_name["fct_orders"].rows == 9
    unit_tests = [n for n in result.nodes if n.resource_type == "unit_test"]
    assert len(unit_tests) >= 5 and all(n.status == "pass" for n in unit_tests)
    assert any(n.resource_type == "test" and n.status == "pass" for n in result.nodes)
    json.dumps(result.to_dict())  # the run report must serialise

    con = connect(lake)
    try:
        orders = {row[0]: row[1:] for row in con.execute(
            "SELECT order_id, has_items, items_amount, amount_reporting, is_rfm_counted FROM gold.fct_orders"
        ).fetchall()}
        customers = {row[0]: row[1:] for row in con.execute(
            "SELECT customer_id, is_guest, lifetime_orders, orders_placed, marketing_opt_in FROM gold.dim_customers"
        ).fetchall()}
    finally:
        con.close()
    assert orders["o1"] == (True, Decimal("25.00"), Decimal("25.00"), True)
    assert orders["o2"] == (False, Decimal("50.00"), Decimal("46.00"), True)
    assert orders["o3"][3] is False and orders["o5"][3] is False and orders["o7"][3] is False
    assert customers["g1"] == (True, 2, 2, None)
    assert customers["c1"] == (False, 2, 3, True)
    assert customers["c5"] == (False, 0, 0, None)
    assert set(customers) == {"c1", "c2", "c3", "c4", "c5", "g1"}


def test_every_model_column_is_documented(default_build: tuple[Lake, DbtResult]) -> None:
    """The yml beside each model documents exactly the columns the model produces."""
    lake, result = default_build
    assert result.target_path is not None
    manifest = json.loads((Path(result.target_path) / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    con = duckdb.connect(str(duckdb_path(lake)), read_only=True)
    try:
        for model in models:
            actual = [row[0] for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                "ORDER BY ordinal_position", [model["schema"], model["name"]]
            ).fetchall()]
            assert model["description"].strip(), model["name"]
            assert list(model["columns"]) == actual, model["name"]
            undocumented = [c for c, spec in model["columns"].items() if not spec["description"].strip()]
            assert not undocumented, (model["name"], undocumented)
    finally:
        con.close()
    assert {m["schema"] for m in models} == {"staging", "intermediate", "gold"}


def test_lookback_window_explicit_as_of_and_net_returns(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    write_silver(lake, shop())
    settings = Settings(rfm=RfmSettings(lookback_days=30, returns_policy="net"))
    as_of = date(2024, 3, 6)  # window: 2024-02-05 <= order_date < 2024-03-06
    result = run_dbt(_ctx(lake, settings, as_of))
    assert result.as_of_date == as_of
    assert _features(lake) == [
        # o1 is older than the window, o3 cancelled, o6 (03-09) after as_of.
        ("c1", as_of, date(2024, 3, 1), date(2024, 3, 1), 5, 1, Decimal("46.00"), Decimal("46.00"), "EUR"),
        # o5 returned counts for recency/frequency with zero revenue: 11.70 / 2 = 5.85.
        ("c2", as_of, date(2024, 2, 15), date(2024, 2, 20), 15, 2, Decimal("11.70"), Decimal("5.85"), "EUR"),
    ]


def test_failing_data_test_raises_pipeline_error_naming_it(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    tables = shop()
    tables["order_items"].append(item("o-missing", 1, 1, "1.0000"))  # a line whose order is absent
    write_silver(lake, tables)
    with pytest.raises(PipelineError) as caught:
        run_dbt(_ctx(lake))
    message = str(caught.value)
    assert "dbt build (target local) failed" in message
    assert (
        "  - test source_relationships_silver_order_items_order_id__order_id__source_silver_orders_: fail: "
        "Got 1 result, configured to fail if != 0" in message
    )
    assert "Traceback" not in message
    assert lake.current("gold", "customer_rfm_features") is None  # nothing half-built reaches the lake
