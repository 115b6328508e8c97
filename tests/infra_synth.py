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


@dataclass
class Synth:
    platform: Any          # rfmlake_infra.platform.Platform
    templates: dict[str, dict[str, Any]]   # stack name -> template
    outdir: Path
    wheel_name: str


@functools.lru_cache(maxsize=1)
def synthesize() -> Synth:
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    sys.path.insert(0, str(REPO / "infra"))
    import aws_cdk as cdk
    from rfmlake_infra.build import build_artifacts
    from rfmlake_infra.platform import build_platform

    work = Path(tempfile.mkdtemp(prefix="rfmlake-infra-test-"))
    artifacts = build_artifacts(work / "build", REPO)
    app = cdk.App(outdir=str(work / "cdk.out"))
    platform = build_platform(app, env_name="dev", repo_root=REPO, artifacts=artifacts)
    assembly = app.synth()
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    return Synth(platform, templates, work / "cdk.out", artifacts.wheel.name)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The resources of one CloudFormation type in a template, by logical id."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}
