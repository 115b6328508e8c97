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
