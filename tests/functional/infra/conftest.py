"""The synthesized CDK app, shared by every infra test module of a test process."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synth():
    pytest.importorskip("aws_cdk")
    from infra_synth import synthesize

    return synthesize()
