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
