"""models/segmentation/processing.py as the SageMaker container runs it: a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from rfmlake.segmentation.segment import CUSTOMER_RFM_SCHEMA

SCRIPT = Path(__file__).resolve().parents[3] / "models" / "segmentation" / "processing.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_processing_script_writes_rows_and_reuses_its_model(tmp_path, features_table):
    features = tmp_path / "input" / "features.parquet"
    features.parent.mkdir()
    pq.write_table(features_table(n=40), features)
    config = tmp_path / "settings.yaml"
    config.write_text("segmentation:\n  k_max: 4\n")
    common = ["--features", str(features), "--model-dir", str(tmp_path / "model"), "--config", str(config)]

    first = run(*common, "--output", str(tmp_path / "out1"))
    assert first.returncode == 0, first.stderr
    rows = pq.read_table(tmp_path / "out1" / "customer_rfm.parquet")
    assert rows.schema == CUSTOMER_RFM_SCHEMA and rows.num_rows == 40
    report = json.loads((tmp_path / "out1" / "segmentation_report.json").read_text())
    assert report["refitted"] is True
    assert (tmp_path / "model" / report["model_version"] / "model.json").is_file()

    second = run(*common, "--output", str(tmp_path / "out2"))
    assert second.returncode == 0, second.stderr
    again = json.loads((tmp_path / "out2" / "segmentation_report.json").read_text())
    assert again["refitted"] is False and again["model_version"] == report["model_version"]
    assert pq.read_table(tmp_path / "out2" / "customer_rfm.parquet").equals(rows)


def test_processing_script_reports_bad_input_without_traceback(tmp_path, features_table):
    empty = tmp_path / "empty.parquet"
    pq.write_table(features_table(n=0), empty)
    result = run("--features", str(empty), "--output", str(tmp_path / "out"), "--model-dir", str(tmp_path / "m"))
    assert result.returncode == 2
    assert "no customer has a counted order in the window" in result.stderr
    assert "Traceback" not in result.stderr


def test_processing_script_runs_the_pipeline_stage_on_a_lake_on_s3(tmp_path, features_table, aws):
    """What the deployed SageMaker job runs: `processing.py --lake s3://...` reads the features and the
    stored model from the lake and commits the stage's gold tables there (moto server, Glue catalog)."""
    from aws_lake import PREFIX, new_bucket
    from rfmlake.lake import open_lake
    from rfmlake.settings import load_settings

    config = tmp_path / "settings.yaml"
    config.write_text(f"prefix: {PREFIX}\nsegmentation:\n  k_max: 4\n")
    location = f"s3://{new_bucket(aws)}/lake"
    lake = open_lake(location, load_settings(config), boto3_session=aws)
    lake.write_arrow("gold", "customer_rfm_features", features_table(n=40))

    first = run("--lake", location, "--config", str(config), "--run-id", "sm-1")
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert set(out["committed"]) == {"gold.customer_rfm", "gold.segment_membership_history", "gold.segment_migration"}
    rfm = lake.read_arrow(lake.require("gold", "customer_rfm"))
    assert rfm.schema == CUSTOMER_RFM_SCHEMA and rfm.num_rows == 40
    glue = aws.client("glue").get_table(DatabaseName=f"{PREFIX}_gold", Name="customer_rfm")["Table"]
    assert glue["StorageDescriptor"]["Location"].rstrip("/") == lake.require("gold", "customer_rfm").uri
    model_version = out["summary"]["model_version"]
    assert any(f"models/segmentation/{model_version}/" in uri for uri in lake.storage.walk(lake.system_uri()))

    second = run("--lake", location, "--config", str(config), "--run-id", "sm-2")  # a fresh container
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)["summary"]
    assert again["model_version"] == model_version and again["refitted"] is False  # the lake's model, reused


def test_processing_script_on_a_lake_without_features_says_so(tmp_path):
    result = run("--lake", str(tmp_path / "empty-lake"))
    assert result.returncode == 2
    assert "gold.customer_rfm_features does not exist" in result.stderr and "Traceback" not in result.stderr
