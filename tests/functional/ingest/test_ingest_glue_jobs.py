"""The Glue entry scripts' errors, as subprocesses. Their runs over a whole landing, as their Glue jobs
start them, are tests/functional/infra/test_glue_bundle.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[3]


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RFMLAKE_SPARK_MASTER": "local[2]", "RFMLAKE_SPARK_SHUFFLE_PARTITIONS": "2",
           "RFMLAKE_PII_KEY": "test-key-not-a-secret"}
    return subprocess.run(
        [sys.executable, str(ROOT / "glue_jobs" / script), *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )


def test_bad_landing_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = _run("landing_to_bronze.py", "--landing", str(tmp_path / "missing"), "--lake", str(tmp_path / "lake"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: landing folder {tmp_path / 'missing'} does not exist"
