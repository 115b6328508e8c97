"""The Glue entry scripts run unchanged under local pyspark, as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rfmlake.lake import Lake

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[3]


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RFMLAKE_SPARK_MASTER": "local[2]", "RFMLAKE_SPARK_SHUFFLE_PARTITIONS": "2",
           "RFMLAKE_PII_KEY": "test-key-not-a-secret"}
    return subprocess.run(
        [sys.executable, str(ROOT / "glue_jobs" / script), *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )


def test_landing_to_bronze_then_bronze_to_silver(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "orders").mkdir(parents=True)
    (landing / "orders" / "o.csv").write_text("order_id,customer_id,order_ts\no1,c1,2024-01-01\no1,c1,2024-01-01\n")
    (landing / "order_items").mkdir()
    (landing / "order_items" / "i.csv").write_text("order_id,product_id,quantity,unit_price\no1,p1,2,1.5\n")
    lake_dir = tmp_path / "lake"

    bronze = _run("landing_to_bronze.py", "--landing", str(landing), "--lake", str(lake_dir), "--run-id", "r1")
    assert bronze.returncode == 0, bronze.stderr[-3000:]
    assert "bronze.orders: 2 rows from 1 files" in bronze.stdout

    silver = _run("bronze_to_silver.py", "--lake", str(lake_dir))
    assert silver.returncode == 0, silver.stderr[-3000:]
    summary = json.loads(silver.stdout)
    assert summary["tables"]["orders"] == 1 and summary["tables"]["order_items"] == 1
    assert summary["quarantine"] == {"orders/duplicate": 1}
    metrics = summary["metrics"]  # no --metrics, no RFMLAKE_METRICS: recorded here only
    assert metrics["published_to"] == "local" and "publish_error" not in metrics
    assert metrics["entities"]["orders"] == {"rows_in": 2, "rows_quarantined": 1, "rows_erased": 0,
                                             "quarantine_rate_percent": 50.0}
    assert metrics["rows_in"] == 3 and metrics["quarantine_rate_percent"] == round(100 / 3, 4)
    lake = Lake(lake_dir)
    assert lake.current("silver", "order_items") is not None and lake.current("bronze", "quarantine") is not None


def test_bad_landing_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = _run("landing_to_bronze.py", "--landing", str(tmp_path / "missing"), "--lake", str(tmp_path / "lake"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: landing folder {tmp_path / 'missing'} does not exist"
