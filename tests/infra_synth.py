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
    """An empty lake on the moto server as the dev stacks leave it (the lake and artifacts buckets,
    the zones' Glue databases, the deployed settings) and the stage Lambda's handler loaded under
    `module_name`, with the environment the compute stack gives it (bucket tokens resolved to the
    test's buckets). Returns (handler, lake, {test bucket: the stack's bucket construct})."""
    import importlib.util

    from rfmlake.lake import open_lake
    from rfmlake.settings import load_settings

    compute, environment = synth.platform.compute, synth.platform.environment
    s3 = aws.client("s3")
    for bucket in ("dev-lake", "dev-artifacts"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for zone in ("bronze", "silver", "gold"):
        aws.client("glue").create_database(DatabaseInput={"Name": f"{environment.prefix}_{zone}"})
    s3.put_object(Bucket="dev-artifacts", Key="config/settings.yaml", Body=compute.settings_text.encode())
    lake = open_lake("s3://dev-lake/", load_settings(overrides={"prefix": environment.prefix}), boto3_session=aws)
    buckets = {compute.storage.lake.bucket_name: "dev-lake", compute.storage.artifacts.bucket_name: "dev-artifacts",
               compute.storage.landing.bucket_name: "dev-landing"}
    for name, value in compute.stage_function_env.items():
        for token, bucket in buckets.items():
            value = value.replace(token, bucket)
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(module_name, REPO / "lambdas" / "pipeline_stage" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler, lake, {"dev-lake": compute.storage.lake, "dev-artifacts": compute.storage.artifacts}
