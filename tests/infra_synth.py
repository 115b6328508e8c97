"""Synthesize the CDK app once per test session (jsii + node is slow): shared by tests/*/infra."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


# Every environment in config/ that deploys (has a `deploy:` section): each is synthesized by the tests.
ENVIRONMENTS = tuple(sorted(p.stem for p in (REPO / "config").glob("*.yaml") if "\ndeploy:" in p.read_text()))


@dataclass
class Synth:
    platform: Any          # rfmlake_infra.platform.Platform
    templates: dict[str, dict[str, Any]]   # stack name -> template
    outdir: Path
    wheel_name: str
    env: str = "dev"
    artifacts: Any = None  # rfmlake_infra.build.BuildArtifacts


@functools.cache
def synthesize(env: str = "dev") -> Synth:
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    sys.path.insert(0, str(REPO / "infra"))
    import aws_cdk as cdk
    from rfmlake_infra.platform import build_platform

    work = Path(tempfile.mkdtemp(prefix=f"rfmlake-infra-test-{env}-"))
    artifacts = _artifacts()
    app = cdk.App(outdir=str(work / "cdk.out"))
    platform = build_platform(app, env_name=env, repo_root=REPO, artifacts=artifacts)
    assembly = app.synth()
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    return Synth(platform, templates, work / "cdk.out", artifacts.wheel.name, env, artifacts)


@functools.lru_cache(maxsize=1)
def _artifacts() -> Any:
    """The build (wheel, Glue bundle) is the same for every environment: made once per session."""
    from rfmlake_infra.build import build_artifacts

    return build_artifacts(Path(tempfile.mkdtemp(prefix="rfmlake-build-")), REPO)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The resources of one CloudFormation type in a template, by logical id."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def deployed_stage_function(synth: Synth, aws: Any, monkeypatch: Any, *, module_name: str) -> tuple[Any, Any, dict]:
    """The buckets (`<env>-lake`, `-artifacts`, `-landing`), Glue databases, uploaded settings and PII
    key secret of the synthesized app in moto, and the stage function's handler loaded under
    `module_name` with the environment the compute stack gives it (the buckets' CDK tokens filled in
    with the test's buckets). Returns (handler, lake, {test bucket: the stack's bucket construct})."""
    import importlib.util

    from rfmlake.lake import open_lake
    from rfmlake.settings import load_settings

    compute, environment = synth.platform.compute, synth.platform.environment
    storage = compute.storage
    names = {storage.lake: f"{synth.env}-lake", storage.artifacts: f"{synth.env}-artifacts",
             storage.landing: f"{synth.env}-landing"}
    for bucket in names.values():
        aws.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for zone in ("bronze", "silver", "gold"):
        aws.client("glue").create_database(DatabaseInput={"Name": f"{environment.prefix}_{zone}"})
    tokens = {construct.bucket_name: bucket for construct, bucket in names.items()}

    def filled(text: str) -> str:
        for token, bucket in tokens.items():
            text = text.replace(token, bucket)
        return text

    # The settings as BucketDeployment leaves them: the artifacts bucket filled into journeys.dir.
    aws.client("s3").put_object(Bucket=names[storage.artifacts], Key="config/settings.yaml",
                                Body=filled(compute.settings_text).encode())
    # The PII key comes from the secret the deployed settings name (pii_key_secret), not from the
    # environment: what Lambda has.
    secret = load_settings(overrides={"prefix": environment.prefix}).pii_key_env
    monkeypatch.setattr("rfmlake.settings._SECRETS", {})
    aws.client("secretsmanager").create_secret(Name=environment.deploy.serving.pii_key_secret,
                                               SecretString=os.environ[secret])
    monkeypatch.delenv(secret)
    for name, value in compute.stage_function_env.items():
        monkeypatch.setenv(name, filled(value))
    spec = importlib.util.spec_from_file_location(module_name, REPO / "lambdas" / "pipeline_stage" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lake = open_lake(f"s3://{names[storage.lake]}/", load_settings(overrides={"prefix": environment.prefix}),
                     boto3_session=aws)
    return module.handler, lake, {bucket: construct for construct, bucket in names.items()}
