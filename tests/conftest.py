"""Shared fixtures. Tests mirror the package: tests/unit (no network, no Spark) and
tests/functional (Spark, DuckDB, dbt, HTTP)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
# A fixed test key so tokens are reproducible across tests and module-scoped fixtures; never a real secret.
TEST_PII_KEY = "test-key-not-a-secret"
os.environ["RFMLAKE_PII_KEY"] = TEST_PII_KEY
# One dbt parse cache per test run (rfmlake.modeling.parse_cache), shared by the xdist workers and the
# CLI subprocesses they start; never the user's own cache.
_RUN = str(os.getppid() if "PYTEST_XDIST_WORKER" in os.environ else os.getpid())  # xdist: the controller's
os.environ.setdefault("RFMLAKE_CACHE_DIR", str(Path(tempfile.gettempdir()) / f"rfmlake-test-cache-{_RUN}"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller, once every worker has finished
        shutil.rmtree(Path(tempfile.gettempdir()) / f"rfmlake-test-cache-{_RUN}", ignore_errors=True)


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession per test process (starting one costs seconds)."""
    from rfmlake.ingest.spark import get_spark

    session = get_spark("rfmlake-tests", master="local[2]")
    yield session
    session.stop()


@pytest.fixture()
def lake(tmp_path: Path):
    from rfmlake.lake import Lake

    return Lake(tmp_path / "lake")



@pytest.fixture(scope="session")
def moto_endpoint_url():
    """One moto server (S3, Glue, ...) per test process; tests reset it through `aws` below."""
    from aws_lake import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch, moto_endpoint_url: str):
    """boto3/pyarrow/DuckDB pointed at a freshly reset moto server; yields a boto3 Session."""
    from aws_lake import aws_env

    return aws_env(monkeypatch, moto_endpoint_url)


@pytest.fixture(scope="session")
def engagement_lake(tmp_path_factory: pytest.TempPathFactory):
    """Two real `rfmlake run`s over people who browse, abandon carts and never buy (engagement_lakes);
    yields (site, what the journeys had sent after the first run)."""
    from engagement_lakes import build_engagement_lake, second_run
    from rfmlake.activation.destinations.outbox import read_outbox
    from rfmlake.journeys.channels import outbox_location

    site = build_engagement_lake(tmp_path_factory.mktemp("engagement"))
    after_first = read_outbox(outbox_location(str(site.lake.root)))
    second_run(site)
    return site, after_first
