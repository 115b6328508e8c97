"""The segmentation stage on a lake on S3 (moto server, Glue catalog), as the SageMaker job runs it:
the history is read in place, only the new partitions are published, and a history written before
partitioning is converted where it lives."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from aws_lake import PREFIX, new_bucket
from rfmlake.lake import open_lake
from rfmlake.pipeline.remote import run_stage
from rfmlake.segmentation.segment import HISTORY_SCHEMA
from rfmlake.settings import load_settings

OLD, FIRST = date(2024, 5, 1), date(2024, 6, 1)


def test_stage_appends_to_a_converted_history_on_s3(tmp_path, features_table, aws) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(f"prefix: {PREFIX}\nsegmentation:\n  k_max: 4\n")
    location = f"s3://{new_bucket(aws)}/lake"
    lake = open_lake(location, load_settings(config), boto3_session=aws)
    features = features_table(n=40, as_of=FIRST)
    lake.write_arrow("gold", "customer_rfm_features", features)
    # A history from before partitioning: one unpartitioned version holding an earlier as_of.
    ids = features.column("customer_id").to_pylist()
    lake.write_arrow("gold", "segment_membership_history", pa.table({
        "as_of_date": [OLD] * 30, "customer_id": ids[:30], "rfm_segment": ["Lost"] * 30,
        "cluster_label": ["old"] * 30}, schema=HISTORY_SCHEMA))

    result = run_stage("segmentation", lake=location, config=str(config), run_id="s3-run")

    assert "gold.segment_membership_history" not in result["lake"]["pulled"]  # read in place, never copied
    history = lake.require("gold", "segment_membership_history")
    assert [p.key for p in history.partitions] == ["as_of_date=2024-05-01", "as_of_date=2024-06-01"]
    assert lake.count_rows(history) == 70
    migration = lake.read_arrow(lake.require("gold", "segment_migration")).to_pandas()
    rfm = migration[migration["dimension"] == "rfm_segment"]
    assert rfm["customers"].sum() == 40 and set(rfm["to_as_of_date"]) == {FIRST}
    assert rfm.loc[rfm["from_segment"].isna(), "customers"].sum() == 10  # new since the old as_of
    glue = aws.client("glue").get_partitions(DatabaseName=f"{PREFIX}_gold", TableName="segment_membership_history")
    assert sorted(p["Values"][0] for p in glue["Partitions"]) == ["2024-05-01", "2024-06-01"]
