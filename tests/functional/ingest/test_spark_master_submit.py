"""Under spark-submit (how Glue and clusters start a Python driver) the session keeps the master
the launcher chose: get_spark must not replace it with local[*]."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

SRC = Path(__file__).resolve().parents[3] / "src"


def test_get_spark_keeps_the_master_spark_submit_gives(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("from rfmlake.ingest.spark import get_spark\n"
                      "spark = get_spark('submit-test')\n"
                      "print('MASTER=' + spark.sparkContext.master)\n"
                      "spark.stop()\n")
    submit = Path(sys.executable).parent / "spark-submit"
    env = {k: v for k, v in os.environ.items() if k != "RFMLAKE_SPARK_MASTER"}
    env.update(PYTHONPATH=str(SRC), PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               SPARK_LOCAL_IP="127.0.0.1")
    done = subprocess.run([str(submit), "--master", "local[1]", str(script)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MASTER=local[1]" in done.stdout
