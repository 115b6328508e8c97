"""The whole pipeline on generated data with bad rows of every kind: what a newcomer's `make demo`
does, checked. Runs Spark, dbt, great-expectations and the segmentation job for real."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from rfmlake.cli.main import main
from rfmlake.contract import QuarantineReason
from rfmlake.errors import PipelineError
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
    _, lake, _, _ = demo
    scratch = lake.system_dir / "tmp"  # where DuckDB spilled: every stage removes its folder
    assert not scratch.exists() or not any(scratch.iterdir())


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


def test_run_report_records_the_quarantine_metrics(demo) -> None:
    _, lake, summary, manifest = demo
    report = json.loads((lake.runs_dir / summary.run_id / "summary.json").read_text())
    (stage,) = [s for s in report["stages"] if s["name"] == "conform_silver"]
    metrics = stage["summary"]["metrics"]
    assert metrics["published_to"] == "local"  # no RFMLAKE_METRICS: the run report is the only record
    assert metrics["rows_in"] == sum(manifest["files"].values())
    for entity, reasons in summary.quarantine.items():
        assert metrics["entities"][entity]["rows_quarantined"] == sum(reasons.values()), entity
    assert metrics["quarantine_rate_percent"] == round(100 * metrics["rows_quarantined"] / metrics["rows_in"], 4)


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


# The tables the Python stages build; everything else is what Glue and dbt-athena leave on S3.
PYTHON_BUILT = {"gold.customer_rfm", "gold.segment_membership_history", "gold.segment_migration",
                "gold.engagement_segment_history", "gold.customer_value", "gold.product_recommendations",
                "gold.customer_profile"}
ONE_PROCESS_STAGES = ["quality_silver", "segmentation", "customer_value", "recommendations", "quality_gold",
                      "profiles", "activate"]


def test_one_process_stages_run_unchanged_on_a_lake_on_s3(demo, aws, tmp_path: Path) -> None:
    """What the stage Lambda and the SageMaker job do on AWS: the same stage functions against a
    lake on S3 (moto server, Glue catalog), giving the same gold tables as the local run."""
    from aws_lake import PREFIX, new_bucket
    from rfmlake.lake import open_lake
    from rfmlake.lake.workspace import copy_tables
    from rfmlake.pipeline.remote import run_stage

    _, lake, _, _ = demo
    config = tmp_path / "aws.yaml"
    config.write_text(f"prefix: {PREFIX}\n")
    remote_uri = f"s3://{new_bucket(aws)}/lake"
    remote = open_lake(remote_uri, load_settings(config), boto3_session=aws)
    upstream = [r.qualified_name for r in lake.tables() if r.qualified_name not in PYTHON_BUILT]
    copy_tables(lake, remote, upstream)  # the lake as Glue and dbt-athena leave it
    for relative in ("pii_key.fingerprint",):
        remote.write_system((lake.system_dir / relative).read_bytes(), relative)

    results = {name: run_stage(name, lake=remote_uri, config=str(config), run_id="aws-run") for name in ONE_PROCESS_STAGES}

    assert set(results["segmentation"]["lake"]["committed"]) == {
        "gold.customer_rfm", "gold.segment_membership_history", "gold.segment_migration",
        "gold.engagement_segment_history"}
    assert set(results["customer_value"]["lake"]["committed"]) == {"gold.customer_value"}
    assert set(results["recommendations"]["lake"]["committed"]) == {"gold.product_recommendations"}
    assert set(results["profiles"]["lake"]["committed"]) == {"gold.customer_profile"}
    # The quality checks read the lake on S3 in place (SQL through httpfs): no workspace, no copy.
    assert results["quality_silver"]["lake"] == results["quality_gold"]["lake"] == {"read_in_place": True}
    # Same scores, segments, clusters and model version as the local run; the same value and profiles.
    for table, key in [("gold.customer_rfm", "customer_id"), ("gold.customer_value", "customer_id"),
                       ("gold.product_recommendations", [("customer_id", "ascending"), ("rank", "ascending")]),
                       ("gold.customer_profile", "customer_id")]:
        zone, name = table.split(".")
        ours = remote.read_arrow(remote.require(zone, name)).sort_by(key)
        theirs = lake.read_arrow(lake.require(zone, name)).sort_by(key)
        assert ours.num_rows == theirs.num_rows > 0, table
        assert ours.select(theirs.column_names).equals(theirs), table
    # Committed for Athena: the Glue location is the new version; state went back to S3.
    glue = aws.client("glue").get_table(DatabaseName=f"{PREFIX}_gold", Name="customer_rfm")["Table"]
    assert glue["StorageDescriptor"]["Location"].rstrip("/") == remote.require("gold", "customer_rfm").uri
    state = [uri.split("/_system/")[1] for uri in remote.storage.walk(remote.system_uri())]
    assert any(s.startswith("models/segmentation/") for s in state)
    assert any(s.startswith("models/value/") for s in state)
    assert any(s.startswith("activation/") for s in state)
    # the file destination's exports reach the lake on S3 too (not only the journal that records them)
    assert results["activate"]["lake"]["export_files_written"] > 0
    exports = remote.storage.walk(f"{remote.location}/gold/_activation")
    assert len(exports) == results["activate"]["lake"]["export_files_written"]
    assert any(uri.endswith("_manifest.json") for uri in exports)
    assert "runs/aws-run/quality_gold.json" in state
    # A stage whose input is missing fails with the reason and publishes nothing.
    bare_config = tmp_path / "bare.yaml"
    bare_config.write_text("prefix: rfmbare\n")
    bare = f"s3://{new_bucket(aws, glue_prefix='rfmbare')}/lake"
    with pytest.raises(PipelineError, match="gold.customer_rfm_features does not exist"):
        run_stage("segmentation", lake=bare, config=str(bare_config))
    assert open_lake(bare, load_settings(bare_config), boto3_session=aws).tables() == []
