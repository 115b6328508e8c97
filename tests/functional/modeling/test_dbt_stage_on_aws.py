"""The dbt_build stage on a lake on S3, as the deployed CodeBuild project runs it
(`python -m rfmlake.pipeline.remote --stage dbt_build`): dbt runs with the athena target and the vars
from the settings (the Glue databases <prefix>_<layer>), nothing is pulled from the lake, and the run
report reaches the lake. Athena itself cannot run here, so dbt's invocation is recorded instead of run;
the same vars compile offline for the athena target in test_dbt_athena_compile.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
import yaml

from aws_lake import PREFIX, new_bucket
from rfmlake.lake import open_lake
from rfmlake.modeling import dbt_runner
from rfmlake.pipeline.remote import run_stage
from rfmlake.settings import load_settings


def test_dbt_build_on_a_lake_on_s3_runs_the_athena_target_with_the_settings(
        aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(f"prefix: {PREFIX}\nreporting_currency: USD\nrfm:\n  lookback_days: 730\n")
    location = f"s3://{new_bucket(aws)}/lake"
    lake = open_lake(location, load_settings(config), boto3_session=aws)
    lake.write_arrow("silver", "orders", pa.table({"order_id": ["o1"]}))  # dbt reads it in Athena, not here
    calls: list[dict[str, Any]] = []

    def invoke(args: list[str], *, project_dir: Path, profiles_dir: Path, target: str, target_path: Path,
               log_path: Path) -> tuple[bool, Any, str | None]:
        profile = yaml.safe_load((profiles_dir / "profiles.yml").read_text())
        calls.append({"args": args, "target": target, "profile": profile["rfmlake"]["outputs"]["athena"],
                      "workspace": str(profiles_dir)})
        log_path.mkdir(parents=True, exist_ok=True)
        (log_path / "dbt.log").write_text("dbt ran\n")
        return True, SimpleNamespace(results=[]), None

    monkeypatch.setattr(dbt_runner, "invoke_dbt", invoke)
    monkeypatch.setenv("RFMLAKE_ATHENA_WORK_GROUP", "rfmlake-dev")
    result = run_stage("dbt_build", lake=location, config=str(config), run_id="cb-1")  # what main() runs

    (call,) = calls
    assert call["target"] == "athena" and call["args"][0] == "build"
    dbt_vars = json.loads(call["args"][call["args"].index("--vars") + 1])
    assert dbt_vars["schema_prefix"] == f"{PREFIX}_"  # <prefix>_silver, _staging, _gold: the catalog stack's
    assert dbt_vars["reporting_currency"] == "USD" and dbt_vars["lookback_days"] == 730
    assert call["profile"]["work_group"] == "{{ env_var('RFMLAKE_ATHENA_WORK_GROUP', 'primary') }}"
    assert "rfmlake-workspace-" in call["workspace"]  # dbt's working files stay in a local workspace
    # nothing of the lake was copied for dbt, and its run report (with dbt's log) is on S3
    reports = [uri.split("/_system/")[1] for uri in lake.storage.walk(lake.system_uri())]
    assert "runs/cb-1/dbt/dbt.log" in reports
    assert result["lake"]["pulled"] == {} and result["lake"]["committed"] == {}
    assert result["summary"]["target"] == "athena"
