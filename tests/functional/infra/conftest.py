"""The synthesized CDK app, shared by every infra test module of a test process: `synth` is dev's,
`synth_env` is parametrized over every environment in config/ (each synthesized once per process).
`built_lake`: a whole local run, the tables the deployed runtimes read when they run against moto."""

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


@pytest.fixture(scope="session")
def built_lake(tmp_path_factory: pytest.TempPathFactory):
    """A whole local run over generated landing data (DuckDB ingest, dbt-duckdb, the Python stages): every
    table of the lake, for the tests that run a deployed runtime's stages against a lake on moto."""
    from rfmlake.generate import generate_landing
    from rfmlake.lake import Lake
    from rfmlake.pipeline.context import RunContext
    from rfmlake.pipeline.runner import run_pipeline
    from rfmlake.settings import load_settings

    root = tmp_path_factory.mktemp("built-lake")
    generate_landing(root / "landing", order_lines=1500, seed=11, bad_rows=True)
    lake = Lake(root / "lake")
    summary = run_pipeline(RunContext(landing_dir=root / "landing", lake=lake, settings=load_settings()))
    assert all(s.status == "succeeded" for s in summary.stages)
    return lake
