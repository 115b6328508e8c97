"""The two ways the platform is synthesized for real, as subprocesses: `rfmlake deploy --env prod
--synth` (what a user runs first) and infra/app.py the way `cdk deploy` starts it (context and output
folder from the CDK CLI's environment variables). The session's synth fixture builds dev in-process;
these also cover the prod environment and the entry points themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra_synth import REPO

pytest.importorskip("aws_cdk")
STACKS = {"Storage", "Catalog", "Compute", "Governance", "Orchestration", "Analytics", "Serving", "MarketingApp"}
ENV = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}


def test_rfmlake_deploy_synth_renders_every_prod_stack(tmp_path: Path) -> None:
    out = tmp_path / "prod"
    done = subprocess.run([sys.executable, "-m", "rfmlake.cli.main", "deploy", "--env", "prod", "--synth",
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "synthesized 8 stacks for prod" in done.stdout
    templates = {p.name.removesuffix(".template.json"): json.loads(p.read_text()) for p in out.glob("*.template.json")}
    assert {name.removeprefix("RfmlakeProd") for name in templates} == STACKS
    jobs = [r["Properties"] for r in templates["RfmlakeProdCompute"]["Resources"].values() if r["Type"] == "AWS::Glue::Job"]
    assert {(j["WorkerType"], j["NumberOfWorkers"]) for j in jobs} == {("G.2X", 10)}  # config/prod.yaml's sizes
    buckets = [r for r in templates["RfmlakeProdStorage"]["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    assert buckets and all(b["DeletionPolicy"] == "Retain" for b in buckets)  # removal: retain
    pools = [r for r in templates["RfmlakeProdMarketingApp"]["Resources"].values() if r["Type"] == "AWS::Cognito::UserPool"]
    assert len(pools) == 1 and pools[0]["DeletionPolicy"] == "Retain"  # the app's users too


def test_cdk_starts_infra_app_with_its_context(tmp_path: Path) -> None:
    out = tmp_path / "cdk.out"
    env = {**ENV, "CDK_OUTDIR": str(out), "CDK_CONTEXT_JSON": json.dumps({"env": "dev"})}
    done = subprocess.run([sys.executable, "app.py"], capture_output=True, text=True, cwd=REPO / "infra", env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    stacks = {name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"}
    assert {name.removeprefix("RfmlakeDev") for name in stacks} == STACKS
