"""Journeys on AWS: one folder, `s3://<artifacts>/journeys/`. The synthesized settings of every
environment name it as `journeys.dir` (so the stage function runs, and the marketing app edits, the same
journeys), the stage function's role may read it and call exactly what the settings' journey senders
need, and `rfmlake deploy` seeds it from the repository's journeys/ without overwriting what the app saved.
(The stage function running a started journey of that folder, its calls checked against its role, is
in test_stage_function_runs.py.)"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra_synth import REPO, Synth, resources
from rfmlake.deploy.cfn import Templates
from rfmlake.deploy.journeys import JOURNEYS_FOLDER_OUTPUT, JourneySeedError, journeys_folder, seed_journeys
from rfmlake.journeys.channels import sender_iam
from rfmlake.journeys.errors import JourneyError
from rfmlake.journeys.spec import load_journeys
from rfmlake.settings import Settings

ACCOUNT = "123456789012"


def _deployed_settings(synth: Synth, templates: Templates) -> dict[str, Any]:
    """config/settings.yaml as the compute stack's BucketDeployment writes it: the staged asset with its
    markers replaced by the values CloudFormation resolves them to."""
    compute = synth.platform.compute
    (upload,) = [r["Properties"] for logical, r in resources(synth.templates[compute.stack_name],
                                                             "Custom::CDKBucketDeployment").items()
                 if logical.startswith("UploadSettings")]
    assert upload["DestinationBucketKeyPrefix"] == "config/"
    (key,) = upload["SourceObjectKeys"]
    text = (synth.outdir / f"asset.{key.removesuffix('.zip')}" / "settings.yaml").read_text()
    for markers in upload.get("SourceMarkers", []):
        for marker, value in markers.items():
            text = text.replace(marker, str(templates.resolve(compute.stack_name, value)))
    return yaml.safe_load(text)


def _statements(synth: Synth, stack: Any, role: Any) -> dict[str, dict[str, Any]]:
    role_id = stack.get_logical_id(role.node.default_child)
    return {s["Sid"]: s for r in resources(synth.templates[stack.stack_name], "AWS::IAM::Policy").values()
            if {"Ref": role_id} in r["Properties"]["Roles"] for s in r["Properties"]["PolicyDocument"]["Statement"]}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_environment_runs_the_journeys_of_the_folder_the_app_edits(synth_env: Synth) -> None:
    platform, environment = synth_env.platform, synth_env.platform.environment
    compute, app, storage = platform.compute, platform.marketing_app, platform.storage
    templates = Templates(synth_env.templates, account=environment.deploy.account or ACCOUNT,
                          region=environment.deploy.region)
    artifacts = templates.physical_name(storage.stack_name, storage.get_logical_id(storage.artifacts.node.default_child))
    folder = f"s3://{artifacts}/journeys/"

    settings = Settings.model_validate(_deployed_settings(synth_env, templates))
    assert settings.journeys.dir == folder
    # `rfmlake deploy` finds it in the storage stack's output (cdk deploy --outputs-file)
    output = synth_env.templates[storage.stack_name]["Outputs"][JOURNEYS_FOLDER_OUTPUT]["Value"]
    assert journeys_folder({storage.stack_name: {JOURNEYS_FOLDER_OUTPUT: templates.resolve(storage.stack_name,
                                                                                          output)}}) == folder
    # The app reads the same settings file (no folder of its own) and may write that folder.
    assert "RFMLAKE_JOURNEYS_DIR" not in app.function_env
    app_write = _statements(synth_env, app, app.role)["JourneysWriteObjects"]
    assert [templates.resolve(app.stack_name, r) for r in _listed(app_write["Resource"])] == [
        f"arn:aws:s3:::{artifacts}/journeys/*"]

    # The stage function reads the folder, and sends exactly through what the settings' channels need.
    statements = _statements(synth_env, compute, compute.stage_function_role)
    read = statements["JourneysReadObjects"]
    assert [templates.resolve(compute.stack_name, r) for r in _listed(read["Resource"])] == [
        f"arn:aws:s3:::{artifacts}/journeys/*"]
    actions, arns = sender_iam(settings.journeys, partition="aws", region=templates.region, account=templates.account)
    if actions:
        send = statements["JourneysSend"]
        assert sorted(_listed(send["Action"])) == sorted(actions)
        assert sorted(templates.resolve(compute.stack_name, r) for r in _listed(send["Resource"])) == arns
    else:
        assert "JourneysSend" not in statements
    if environment.deploy.name == "dev":  # config/dev.yaml: emails through SES from its sender, nothing else
        assert actions == ("ses:SendEmail",)
        assert arns == [f"arn:aws:ses:eu-west-1:{templates.account}:identity/news@shop.example.com",
                        f"arn:aws:ses:eu-west-1:{templates.account}:identity/shop.example.com"]


def _journey_keys(aws, bucket: str) -> dict[str, bytes]:
    s3 = aws.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="journeys/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_rfmlake_deploy_seeds_the_folder_once_and_keeps_what_the_app_saved(aws, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`rfmlake deploy` runs `cdk deploy` (which needs an account: a stand-in `cdk` on PATH writes the
    outputs file as the CDK CLI does, with the folder the compute stack outputs), then seeds the folder."""
    from rfmlake.cli.main import main

    bucket = "rfmlake-dev-artifacts-123456789012"
    aws.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    # The marketer started the demo journey before this deploy, and the file says so.
    saved = (REPO / "journeys" / "win_back_at_risk.yaml").read_text().replace("id: win_back_at_risk",
                                                                              "id: win_back_at_risk\nstatus: active")
    aws.client("s3").put_object(Bucket=bucket, Key="journeys/win_back_at_risk.yaml", Body=saved.encode())

    bin_dir, calls = tmp_path / "bin", tmp_path / "cdk-calls.json"
    bin_dir.mkdir()
    cdk = bin_dir / "cdk"
    cdk.write_text(f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
with open({str(calls)!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
outputs = args[args.index("--outputs-file") + 1]
with open(outputs, "w") as f:
    json.dump({{"RfmlakeDevCompute": {{}}, "RfmlakeDevStorage": {{"{JOURNEYS_FOLDER_OUTPUT}": "s3://{bucket}/journeys/"}}}}, f)
sys.exit(int(__import__("os").environ.get("CDK_EXIT", "0")))
""")
    cdk.chmod(cdk.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(REPO)

    assert main(["deploy", "--env", "dev"]) == 0
    (args,) = [json.loads(line) for line in calls.read_text().splitlines()]
    assert args[:4] == ["deploy", "--all", "-c", "env=dev"] and "--outputs-file" in args
    printed = capsys.readouterr().out
    assert f"journeys folder s3://{bucket}/journeys/: 2 file(s) added, 1 kept as they are" in printed
    first = _journey_keys(aws, bucket)
    assert set(first) == {"journeys/win_back_at_risk.yaml", "journeys/templates/winback_offer.yaml",
                          "journeys/templates/winback_free_shipping.yaml"}
    assert first["journeys/win_back_at_risk.yaml"] == saved.encode()  # the app's file, not the repository's
    for name in ("winback_offer", "winback_free_shipping"):
        assert first[f"journeys/templates/{name}.yaml"] == (REPO / "journeys" / "templates" / f"{name}.yaml").read_bytes()
    assert load_journeys(f"s3://{bucket}/journeys/").get("win_back_at_risk").status == "active"

    # A later deploy adds a journey the folder lacks, paused, and leaves every file there as it is.
    aws.client("s3").delete_object(Bucket=bucket, Key="journeys/win_back_at_risk.yaml")
    assert main(["deploy", "--env", "dev"]) == 0
    second = _journey_keys(aws, bucket)
    seeded = second.pop("journeys/win_back_at_risk.yaml").decode()
    assert second == {k: v for k, v in first.items() if k != "journeys/win_back_at_risk.yaml"}
    assert seeded == (REPO / "journeys" / "win_back_at_risk.yaml").read_text().rstrip("\n") + "\nstatus: paused\n"
    assert load_journeys(f"s3://{bucket}/journeys/").get("win_back_at_risk").status == "paused"

    # A failed cdk deploy seeds nothing.
    aws.client("s3").delete_object(Bucket=bucket, Key="journeys/templates/winback_offer.yaml")
    monkeypatch.setenv("CDK_EXIT", "3")
    assert main(["deploy", "--env", "dev"]) == 3
    assert "journeys/templates/winback_offer.yaml" not in _journey_keys(aws, bucket)


def test_seeding_refuses_an_invalid_journey_and_a_missing_output(aws, tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("id: broken\nname: Broken\ntrigger: {type: segment_entered}\nsteps: []\n")
    with pytest.raises(JourneyError, match=r"broken.yaml"):
        seed_journeys(tmp_path, "s3://nowhere/journeys/", boto3_session=aws)
    with pytest.raises(JourneySeedError, match=f"0 {JOURNEYS_FOLDER_OUTPUT} outputs"):
        journeys_folder({"RfmlakeDevCompute": {}})
