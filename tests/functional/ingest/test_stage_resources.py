"""What the ingest stages hold after they finish: a local run is one process, so an engine left open
would keep its memory through every later stage."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from rfmlake.lake import Lake


def test_conform_silver_closes_the_ingest_engine_and_a_later_use_opens_another(ingested, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.pipeline.context import RunContext
    from rfmlake.pipeline.stages import RunState, conform_silver, ingest_bronze
    from rfmlake.settings import Settings

    lake_dir = tmp_path / "lake"
    shutil.copytree(ingested.ctx.lake.root, lake_dir)
    ctx = RunContext(landing_dir=ingested.landing, lake=Lake(lake_dir), settings=Settings(), full=True)
    state = RunState()
    try:
        ingest_bronze(ctx, state)
        engine = state.engine(ctx)
        assert isinstance(engine, DuckEngine)
        engine.con.execute("select 1")  # open while bronze and silver are built

        conform_silver(ctx, state)
        with pytest.raises(duckdb.ConnectionException):
            engine.con.execute("select 1")
        assert state.engine(ctx) is not engine
    finally:
        state.close()
