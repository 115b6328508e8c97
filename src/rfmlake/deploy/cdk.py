"""Wrap the AWS CDK: synthesize templates offline, or `cdk deploy` with clear errors when the cdk CLI
or AWS credentials are missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rfmlake.errors import RfmlakeError

INFRA_DIR = Path(__file__).resolve().parents[3] / "infra"


class DeployError(RfmlakeError):
    """The platform cannot be synthesized or deployed."""


def _infra_dir() -> Path:
    if not (INFRA_DIR / "app.py").is_file():
        raise DeployError(f"infra/ not found at {INFRA_DIR}: run rfmlake deploy from a source checkout")
    return INFRA_DIR


def synth(env: str, out_dir: Path) -> list[Path]:
    """Synthesize every stack of `env` into out_dir without an account; returns the template files."""
    try:
        import aws_cdk as cdk
    except ImportError:
        raise DeployError("aws-cdk-lib is not installed: pip install 'rfmlake[infra]'") from None
    if shutil.which("node") is None:
        raise DeployError("Node.js is not installed; the AWS CDK needs it (node >= 20)")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    sys.path.insert(0, str(_infra_dir()))
    from rfmlake_infra.platform import build_platform

    app = cdk.App(outdir=str(out_dir))
    build_platform(app, env_name=env)
    app.synth()
    return sorted(out_dir.glob("*.template.json"))


def deploy(env: str, *, require_approval: str = "broadening") -> int:
    """`cdk deploy --all -c env=<env>` from infra/, then the repository's journeys into the deployed
    journeys folder, each file once (rfmlake.deploy.journeys); returns cdk's exit code."""
    cdk_cli = shutil.which("cdk")
    if cdk_cli is None:
        raise DeployError("the AWS CDK CLI (`cdk`) is not installed: npm install -g aws-cdk, then cdk bootstrap")
    try:
        import boto3

        credentials = boto3.Session().get_credentials()
    except ImportError:
        raise DeployError("boto3 is not installed: pip install 'rfmlake[aws,infra]'") from None
    if credentials is None:
        raise DeployError("no AWS credentials found: set AWS_PROFILE or run `aws sso login`, then retry "
                          "(or use --synth to render templates without an account)")
    with tempfile.TemporaryDirectory(prefix="rfmlake-deploy-") as work:
        outputs_file = Path(work) / "outputs.json"
        command = [cdk_cli, "deploy", "--all", "-c", f"env={env}", "--require-approval", require_approval,
                   "--app", f"{sys.executable} app.py", "--outputs-file", str(outputs_file)]
        code = subprocess.run(command, cwd=_infra_dir(), check=False).returncode
        if code != 0:
            return code
        outputs = json.loads(outputs_file.read_text()) if outputs_file.is_file() else {}
    from rfmlake.deploy.journeys import journeys_folder, seed_journeys

    print(seed_journeys(_infra_dir().parent / "journeys", journeys_folder(outputs)).render())
    return 0
