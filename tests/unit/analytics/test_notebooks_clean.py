"""notebooks/ are committed without outputs and read the lake the documented way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[3] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) == 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    book = json.loads(path.read_text())
    for cell in book["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: clear the outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_reads_the_lake_through_the_catalog(path: Path) -> None:
    source = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
    assert 'os.environ.get("RFMLAKE_LAKE", "../demo/lake")' in source
    assert "con = connect(lake)" in source and "from rfmlake.lake.catalog import connect" in source
    assert "read_parquet" not in source  # through the catalog, never around it
