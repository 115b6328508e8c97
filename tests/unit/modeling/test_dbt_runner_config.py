"""The runner's pieces that need no dbt invocation: profile, vars, project location, silver views,
the failure report, and the docs of the silver sources."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import yaml

from rfmlake.contract.entities import LINEAGE_COLUMNS, SILVER_TABLES
from rfmlake.errors import ConfigError, PipelineError
from rfmlake.lake import Lake
from rfmlake.modeling import DbtResult, NodeResult, find_project_dir, prepare_silver_views, run_dbt
from rfmlake.modeling.dbt_runner import SOURCE_TABLES, dbt_vars
from rfmlake.modeling.project import PROJECT_DIR_ENV, schema_prefix, write_profiles
from rfmlake.pipeline.context import RunContext
from rfmlake.settings import RfmSettings, Settings


def test_profile_has_local_duckdb_and_offline_athena_targets(tmp_path: Path) -> None:
    path = write_profiles(tmp_path / "profiles", tmp_path / "db" / "rfmlake.duckdb", prefix="shop")
    doc = yaml.safe_load(path.read_text())
    outputs = doc["rfmlake"]["outputs"]
    assert doc["rfmlake"]["target"] == "local"
    assert outputs["local"]["type"] == "duckdb"
    assert outputs["local"]["path"] == str(tmp_path / "db" / "rfmlake.duckdb")
    assert outputs["local"]["settings"] == {"TimeZone": "UTC", "memory_limit": "3GB"}  # settings.duckdb_memory_limit
    athena = outputs["athena"]
    assert athena["type"] == "athena"
    assert athena["s3_staging_dir"] == "{{ env_var('RFMLAKE_ATHENA_S3_STAGING_DIR', 's3://shop-athena-results/') }}"
    assert athena["schema"] == "{{ env_var('RFMLAKE_ATHENA_SCHEMA', 'shop_gold') }}"
    assert "{{ env_var('AWS_REGION'" in athena["region_name"]
    # Credentials come from the AWS default chain at run time, never from this file.
    assert not {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "password"} & set(athena)


def test_vars_come_from_settings_and_as_of() -> None:
    settings = Settings(prefix="shop", reporting_currency="USD", currency_rates={"GBP": 1.27, "EUR": 1.09},
                        rfm=RfmSettings(lookback_days=90, counted_statuses=("completed", "pending"),
                                        returns_policy="net", source="events",
                                        purchase_event_types=("Purchase", " order_completed")))
    assert dbt_vars(settings, date(2024, 3, 6), "local") == {
        "as_of_date": "2024-03-06",
        "counted_statuses": ["completed", "pending"],
        "lookback_days": 90,
        "returns_policy": "net",
        "rfm_source": "events",
        "purchase_event_types": ["purchase", "order_completed"],
        "reporting_currency": "USD",
        "default_currency": "EUR",
        "currency_rates": {"EUR": 1.09, "GBP": 1.27},
        "schema_prefix": "",
    }
    athena_vars = dbt_vars(Settings(), None, "athena")
    assert athena_vars["as_of_date"] is None and athena_vars["lookback_days"] is None
    # no setting: the reporting currency comes from the data, and there are no fixed rates
    assert athena_vars["reporting_currency"] is None and athena_vars["currency_rates"] == {}
    assert athena_vars["schema_prefix"] == "rfmlake_"
    assert schema_prefix("local", "shop") == "" and schema_prefix("athena", "shop") == "shop_"


def test_project_dir_is_found_next_to_the_package_or_from_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PROJECT_DIR_ENV, raising=False)
    found = find_project_dir()
    assert (found / "dbt_project.yml").is_file() and found.name == "dbt"

    monkeypatch.setenv(PROJECT_DIR_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=PROJECT_DIR_ENV):
        find_project_dir()
    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    assert find_project_dir() == tmp_path.resolve()


def _silver(name: str, rows: list[dict]) -> pa.Table:
    columns = [c for c, _, _ in SILVER_TABLES[name] + LINEAGE_COLUMNS]
    return pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])


def test_silver_views_need_the_purchases_rfm_works_on(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.write_arrow("silver", "orders", _silver("orders", [{"order_id": "o1", "customer_id": "c1"}]))
    with pytest.raises(PipelineError, match=r"silver\.events"):
        prepare_silver_views(lake, tmp_path / "dbt.duckdb", source="events")
    with pytest.raises(PipelineError, match=r"silver\.orders"):
        prepare_silver_views(Lake(tmp_path / "other"), tmp_path / "dbt2.duckdb")


def test_absent_optional_silver_tables_read_as_empty_typed_views(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.write_arrow("silver", "orders", _silver("orders", [{"order_id": "o1", "customer_id": "c1"}]))
    database = tmp_path / "dbt.duckdb"
    empty = prepare_silver_views(lake, database)
    assert empty == ("customers", "order_items", "products", "events", "access_logs", "currency_rates",
                     "gold.identity_graph")
    con = duckdb.connect(str(database), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM silver.orders").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM silver.events").fetchone() == (0,)
        # No identity graph yet: every customer id is its own person (dbt reads it empty, typed).
        assert con.execute("SELECT count(*), max(first_seen_at) FROM gold.identity_graph").fetchone() == (0, None)
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'silver' AND table_name = 'order_items' ORDER BY ordinal_position"
        ).fetchall()
    finally:
        con.close()
    assert [c for c, _ in columns] == [c for c, _, _ in SILVER_TABLES["order_items"] + LINEAGE_COLUMNS]
    assert dict(columns)["line_amount"] == "DECIMAL(18,2)"
    assert dict(columns)["quantity"] == "INTEGER"


def test_unknown_target_or_command_is_refused(tmp_path: Path) -> None:
    ctx = RunContext(landing_dir=tmp_path, lake=Lake(tmp_path / "lake"), settings=Settings())
    with pytest.raises(PipelineError, match="unknown dbt target"):
        run_dbt(ctx, target="snowflake")
    with pytest.raises(PipelineError, match="unsupported dbt command"):
        run_dbt(ctx, command="docs")


def test_failure_report_lists_failed_nodes_without_traceback(tmp_path: Path) -> None:
    nodes = (
        NodeResult("test.rfmlake.unique_x", "unique_fct_orders_order_id", "test", "fail", 0.1, 2,
                   "Got 2 results, configured to fail if != 0"),
        NodeResult("model.rfmlake.fct_orders", "fct_orders", "model", "success", 0.2),
        NodeResult("model.rfmlake.dim", "dim_customers", "model", "skipped", 0.0),
        NodeResult("test.rfmlake.w", "not_null_fct_orders_amount_reporting", "test", "warn", 0.1, 1, "Got 1 result"),
    )
    result = DbtResult("build", "local", False, nodes, log_path=tmp_path)
    report = result.failure_report()
    assert report.splitlines()[0] == "dbt build (target local) failed"
    assert "  - test unique_fct_orders_order_id: fail: Got 2 results, configured to fail if != 0" in report
    assert "(1 downstream node(s) skipped)" in report
    assert "fct_orders:" not in report.replace("unique_fct_orders_order_id", "")
    assert [n.name for n in result.warnings] == ["not_null_fct_orders_amount_reporting"]
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["status_counts"] == {"fail": 1, "skipped": 1, "success": 1, "warn": 1}
    assert summary["failures"][0]["name"] == "unique_fct_orders_order_id"


def test_sources_document_every_silver_column() -> None:
    sources = yaml.safe_load((find_project_dir() / "models" / "staging" / "_silver__sources.yml").read_text())
    tables = {t["name"]: t for t in sources["sources"][0]["tables"]}
    assert tuple(tables) == SOURCE_TABLES
    for name, table in tables.items():
        expected = [c for c, _, _ in SILVER_TABLES[name] + LINEAGE_COLUMNS]
        assert [c["name"] for c in table["columns"]] == expected, name
        assert all(c.get("description", "").strip() for c in table["columns"]), name
        assert table.get("description", "").strip(), name
