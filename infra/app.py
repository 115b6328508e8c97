"""CDK app: `cdk synth -c env=dev` (or `rfmlake deploy --env dev [--synth]`). Thin: infra/rfmlake_infra builds it."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rfmlake_infra.platform import build_platform  # noqa: E402

app = cdk.App()
build_platform(app, env_name=str(app.node.try_get_context("env") or "dev"))
app.synth()
