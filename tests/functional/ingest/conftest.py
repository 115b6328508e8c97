"""One ingest run over the crafted landing folder, shared by the module's read-only tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ingest_landing_fixture import build_landing  # type: ignore[import-not-found]

TEST_KEY = "test-key-not-a-secret"  # same as tests/conftest.py's autouse fixture


@dataclass
class IngestRun:
    landing: Path
    ctx: object
    report: object


def run_once(root: Path, engine: object = None) -> IngestRun:
    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.ingest.jobs import run_ingest
    from rfmlake.lake import Lake
    from rfmlake.pipeline.context import RunContext
    from rfmlake.settings import Settings

    landing = build_landing(root) if not (root / "landing").exists() else root / "landing"
    ctx = RunContext(landing_dir=landing, lake=Lake(root / "lake"), settings=Settings())
    engine = engine or DuckEngine()
    try:
        return IngestRun(landing, ctx, run_ingest(engine, ctx))
    finally:
        if not hasattr(engine, "spark"):
            engine.close()


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestRun]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RFMLAKE_PII_KEY", TEST_KEY)
        yield run_once(tmp_path_factory.mktemp("ingest"))
