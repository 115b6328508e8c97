"""The whole pipeline on generated data with bad rows of every kind: what a newcomer's `make demo`
does, checked. Runs Spark, dbt, great-expectations and the segmentation job for real."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from rfmlake.cli.main import main
from rfmlake.contract import QuarantineReason
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import stage_names
from rfmlake.pipeline.runner import RunSummary, run_pipeline
from rfmlake.settings import load_settings

pytestmark = pytest.mark.slow

GOLD_RFM_COLUMNS = [
    "customer_id", "as_of_date", "first_order_date", "last_order_date", "recency_days", "frequency",
    "monetary", "avg_order_value", "r_score", "f_score", "m_score", "rfm_cell", "rfm_segment",
    "cluster_id", "cluster_label", "model_version",
]


def snapshot(lake: Lake, table: str, order_by: str) -> list[tuple]:
    con = connect(lake)
    columns = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {table})").fetchall()
               if c != "_loaded_at"]
    rows = con.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order_by}").fetchall()
    con.close()
    return rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, spark) -> tuple[Path, Lake, RunSummary, dict]:  # noqa: ARG001
    from rfmlake.generate import generate_landing

    root = tmp_path_factory.mktemp("e2e")
    generated = generate_landing(root / "landing", order_lines=4000, seed=11, bad_rows=True)
    manifest = json.loads((root / "landing" / "_generator_manifest.json").read_text())
    lake = Lake(root / "lake")
    ctx = RunContext(landing_dir=root / "landing", lake=lake, settings=load_settings())
    summary = run_pipeline(ctx)
    assert generated.rows_per_entity
    return root, lake, summary, manifest


def test_every_stage_succeeds_in_definition_order(demo) -> None:
    _, _, summary, _ = demo
    assert [s.name for s in summary.stages] == stage_names()
    assert all(s.status == "succeeded" for s in summary.stages)


def test_every_zone_is_populated(demo) -> None:
    _, _, summary, _ = demo
    for table in ["bronze.customers", "bronze.orders", "bronze.order_items", "bronze.products", "bronze.events",
                  "bronze.access_logs", "bronze.aws_rfm_guidance", "bronze.quarantine",
                  "silver.customers", "silver.orders", "silver.order_items", "silver.products", "silver.events",
                  "silver.access_logs", "silver.currency_rates", "silver.ingest_reconciliation",
                  "gold.customer_rfm_features", "gold.customer_rfm", "gold.segment_membership_history",
                  "gold.customer_value", "gold.customer_profile", "gold.fct_orders", "gold.dim_customers"]:
        assert summary.tables.get(table, 0) > 0, table


def test_every_injected_bad_row_is_quarantined_with_its_reason(demo) -> None:
    _, lake, summary, manifest = demo
    injected = manifest["injected_bad_rows"]
    # every reason but erased_customer, which only an erasure request produces (tests/functional/governance)
    assert {reason for reasons in injected.values() for reason in reasons} == (
        {r.value for r in QuarantineReason} - {QuarantineReason.ERASED_CUSTOMER.value}
    )
    for entity, reasons in injected.items():
        for reason, count in reasons.items():
            assert summary.quarantine.get(entity, {}).get(reason) == count, (entity, reason)
    # and nothing else was quarantined: clean generated rows never trip a rule
    assert sum(n for r in summary.quarantine.values() for n in r.values()) == sum(
        n for r in injected.values() for n in r.values()
    )


def test_reconciliation_holds_for_every_file(demo) -> None:
    _, lake, summary, manifest = demo
    assert summary.reconciliation_ok
    con = connect(lake)
    files = dict(con.execute("SELECT source_file, rows_in FROM silver.ingest_reconciliation").fetchall())
    assert files == manifest["files"]  # every landed file, with exactly the rows the generator wrote


def test_gold_customer_rfm_contract(demo) -> None:
    _, lake, _, _ = demo
    con = connect(lake)
    columns = [c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE gold.customer_rfm)").fetchall()]
    assert columns == GOLD_RFM_COLUMNS
    n, distinct, segments, bad_scores = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), count(DISTINCT rfm_segment), "
        "count(*) FILTER (WHERE r_score NOT BETWEEN 1 AND 5 OR f_score NOT BETWEEN 1 AND 5 OR m_score NOT BETWEEN 1 AND 5) "
        "FROM gold.customer_rfm"
    ).fetchone()
    assert n == distinct and n > 100
    assert segments >= 5
    assert bad_scores == 0
    features = con.execute("SELECT count(*) FROM gold.customer_rfm_features").fetchone()[0]
    assert features == n


def test_no_clear_text_pii_past_bronze(demo) -> None:
    _, lake, _, _ = demo
    con = connect(lake)
    for zone in ("silver", "gold"):
        for ref in lake.tables(zone):
            text_columns = [c for c, t in con.execute(
                f"SELECT column_name, column_type FROM (DESCRIBE {zone}.{ref.name})").fetchall() if t == "VARCHAR"]
            for column in text_columns:
                hits = con.execute(
                    f"SELECT count(*) FROM {zone}.{ref.name} WHERE regexp_matches({column}, '[^@\\s]+@[^@\\s]+\\.[a-z]{{2,}}')"
                ).fetchone()[0]
                assert hits == 0, f"email-like text in {zone}.{ref.name}.{column}"


def test_rerun_on_same_input_gives_the_same_lake(demo) -> None:
    root, lake, first, _ = demo
    tables = {"silver.orders": "order_id", "silver.customers": "customer_id", "silver.order_items": "order_id, line_number",
              "bronze.quarantine": "_row_hash, entity, source_file", "gold.customer_rfm": "customer_id",
              "gold.segment_membership_history": "as_of_date, customer_id"}
    before = {t: snapshot(lake, t, o) for t, o in tables.items()}
    second = run_pipeline(RunContext(landing_dir=root / "landing", lake=lake, settings=load_settings()))
    after = {t: snapshot(lake, t, o) for t, o in tables.items()}
    for table in tables:
        assert after[table] == before[table], table
    assert second.model_version == first.model_version


def test_as_of_is_the_day_after_the_latest_order(demo) -> None:
    _, lake, summary, _ = demo
    con = connect(lake)
    latest = con.execute("SELECT max(order_date) FROM silver.orders").fetchone()[0]
    assert date.fromisoformat(summary.as_of) == date.fromordinal(latest.toordinal() + 1)


def test_sql_command_formats(demo, capsys: pytest.CaptureFixture[str]) -> None:
    _, lake, summary, _ = demo
    query = "SELECT rfm_segment, count(*) AS customers FROM gold.customer_rfm GROUP BY 1 ORDER BY 1"
    assert main(["sql", query, "--lake", str(lake.root), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert sorted(r["rfm_segment"] for r in records) == sorted(s["rfm_segment"] for s in summary.segments)
    assert sum(r["customers"] for r in records) == summary.tables["gold.customer_rfm"]
    assert main(["sql", query, "--lake", str(lake.root), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "rfm_segment,customers" and len(lines) == len(records) + 1
    assert main(["sql", "SELECT * FROM gold.nope", "--lake", str(lake.root)]) == 1
    err = capsys.readouterr().err
    assert "query failed" in err and "gold.customer_rfm" in err
