"""One ingest run over the crafted landing folder, shared by the module's read-only tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ingest_landing_fixture import TEST_KEY, IngestRun, run_once  # type: ignore[import-not-found]

__all__ = ["IngestRun", "ingested"]


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestRun]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RFMLAKE_PII_KEY", TEST_KEY)
        yield run_once(tmp_path_factory.mktemp("ingest"))
