"""The synthesized CDK app, shared by every infra test module of a test process: `synth` is dev's,
`synth_env` is parametrized over every environment in config/ (each synthesized once per process)."""

from __future__ import annotations

import pytest

from infra_synth import ENVIRONMENTS


@pytest.fixture(scope="session")
def synth():
    pytest.importorskip("aws_cdk")
    from infra_synth import synthesize

    return synthesize("dev")


@pytest.fixture(scope="session", params=ENVIRONMENTS)
def synth_env(request: pytest.FixtureRequest):
    pytest.importorskip("aws_cdk")
    from infra_synth import synthesize

    return synthesize(request.param)
