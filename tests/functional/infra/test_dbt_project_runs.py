"""The dbt CodeBuild project of the synthesized app, run here as the state machine starts it: its buildspec's
commands (`aws s3 cp` of the settings, the wheel and the dbt project; then `python -m
rfmlake.pipeline.remote --stage dbt_build`), with the project's environment variables and the run id the
state machine passes, against a moto server holding the buckets under their deployed names and the
catalog stack's Glue databases. Every AWS call made is recorded and evaluated against the dbt role's
synthesized policies (the IAM check, rfmlake.deploy.iam_check), in every environment of config/.

Athena cannot run here: dbt's invocation (dbt-athena's own Glue, S3 and Athena calls, and Athena's with
the role's credentials) is recorded instead of run, and those calls are declared in test_iam_check.py.
`pip install` (PyPI, not AWS) is not run."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from aws_calls import assert_role_allows, denials_without, recorded
from infra_synth import REPO, Synth
from rfmlake.deploy.cfn import Templates
from rfmlake.lake import open_lake
from rfmlake.modeling import dbt_runner
from rfmlake.pipeline import remote
from rfmlake.settings import load_settings

RUN_ID = "landing-20261201-0123456789abcdef0123"


def test_the_dbt_project_calls_only_what_the_dbt_role_allows(
        synth_env: Synth, aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    platform = synth_env.platform
    compute, storage = platform.compute, platform.storage
    deploy = platform.environment.deploy
    templates = Templates(synth_env.templates, account=deploy.account or "123456789012", region=deploy.region)
    s3 = aws.client("s3")
    buckets = {}
    for construct in (storage.lake, storage.artifacts, storage.athena_results):
        name = templates.physical_name(storage.stack_name, storage.get_logical_id(construct.node.default_child))
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": deploy.region})
        buckets[name] = construct
    for zone in ("bronze", "silver", "gold"):
        aws.client("glue").create_database(DatabaseInput={"Name": f"{platform.environment.prefix}_{zone}"})
    artifacts = templates.physical_name(storage.stack_name, storage.get_logical_id(storage.artifacts.node.default_child))
    s3.put_object(Bucket=artifacts, Key="config/settings.yaml", Body=compute.settings_text.encode())
    s3.put_object(Bucket=artifacts, Key=f"wheels/{synth_env.wheel_name}", Body=b"the wheel")
    s3.put_object(Bucket=artifacts, Key="dbt/dbt_project.yml", Body=(REPO / "dbt" / "dbt_project.yml").read_bytes())
    lake_uri = f"s3://{next(b for b, c in buckets.items() if c is storage.lake)}/"
    open_lake(lake_uri, load_settings(overrides={"prefix": platform.environment.prefix}), boto3_session=aws
              ).write_arrow("silver", "orders", pa.table({"order_id": ["o1"]}))  # Athena reads it, not this

    # the project as CloudFormation creates it, and the run id the state machine's Task passes
    (project,) = [r["Properties"] for _s, _l, r in templates.resources("AWS::CodeBuild::Project")
                  if templates.resolve(compute.stack_name, r["Properties"]["Name"]).endswith("-dbt-build")]
    project = templates.resolve(compute.stack_name, project)
    task = platform.orchestration.definition["States"]["dbt_build"]["Parameters"]
    assert [v["Name"] for v in task["EnvironmentVariablesOverride"]] == ["RFMLAKE_RUN_ID"]
    for variable in project["Environment"]["EnvironmentVariables"]:
        monkeypatch.setenv(variable["Name"], variable["Value"])
    monkeypatch.setenv("RFMLAKE_RUN_ID", RUN_ID)
    phases = json.loads(project["Source"]["BuildSpec"])["phases"]
    commands = [c for phase in ("install", "build") for c in phases[phase]["commands"]]
    assert [c.split()[0] for c in commands] == ["aws", "aws", "pip", "aws", "python"]

    invoked: list[list[str]] = []

    def athena(args: list[str], *, project_dir: Path, profiles_dir: Path, target: str, target_path: Path,
               log_path: Path) -> tuple[bool, Any, str | None]:
        invoked.append([target, *args])
        log_path.mkdir(parents=True, exist_ok=True)
        (log_path / "dbt.log").write_text("dbt ran on Athena\n")
        return True, SimpleNamespace(results=[]), None

    monkeypatch.setattr(dbt_runner, "invoke_dbt", athena)
    monkeypatch.chdir(tmp_path)
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
        for command in commands:
            argv = shlex.split(os.path.expandvars(command))
            if argv[0] == "aws":  # the AWS CLI, as CodeBuild's image runs it, with the role's credentials
                subprocess.run(argv, check=True, env=os.environ, timeout=120)
            elif argv[0] == "python":
                assert argv[1:3] == ["-m", "rfmlake.pipeline.remote"]
                assert remote.main(argv[3:]) == 0
    assert (tmp_path / "settings.yaml").read_bytes() == compute.settings_text.encode()
    assert (tmp_path / "dbt" / "dbt_project.yml").is_file() and (tmp_path / "wheels" / synth_env.wheel_name).is_file()
    assert invoked and invoked[0][:2] == ["athena", "build"]

    calls = assert_role_allows(synth_env, compute, compute.dbt_role, requests, source="dbt project", buckets=buckets)
    actions = {c.action for c in calls}
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject"} <= actions  # the copies, then the run report
    reports = [c for c in calls if c.action == "s3:PutObject" and f"/_system/runs/{RUN_ID}/" in c.resources[0]]
    assert reports, "the run report reached the lake"
    # A fault put back: without the lake write statement, the run report is denied, naming the role.
    missing = denials_without(synth_env, compute, compute.dbt_role, calls, {"LakeWriteObjects"})
    assert missing and all("/DbtRole" in m for m in missing)
    assert any(f" may not s3:PutObject on arn:aws:s3:::{lake_uri[5:]}_system/runs/{RUN_ID}/" in m for m in missing)
