"""dbt builds on a second lake reuse the first lake's parse of the project and build the same gold;
an edited project is parsed again, and a damaged cache entry is parsed again and replaced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from silver_fixture import shop, write_silver

from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.modeling import DbtResult, find_project_dir, parse_cache, run_dbt
from rfmlake.modeling.project import PROJECT_DIR_ENV
from rfmlake.pipeline.context import RunContext
from rfmlake.settings import Settings

pytestmark = pytest.mark.dbt
FULL_PARSE = "Unable to do partial parsing"


def _build(root: Path) -> tuple[Lake, DbtResult]:
    lake = Lake(root / "lake")
    write_silver(lake, shop())
    ctx = RunContext(landing_dir=root / "landing", lake=lake, settings=Settings())
    return lake, run_dbt(ctx, unit_tests=False)


def _gold(lake: Lake) -> dict[str, list[tuple]]:
    con = connect(lake)
    try:
        return {name: sorted(con.execute(f"SELECT * FROM gold.{name}").fetchall(), key=repr)
                for name in ("customer_rfm_features", "fct_orders", "dim_customers")}
    finally:
        con.close()


def _parsed(result: DbtResult) -> bool:
    return FULL_PARSE in (result.log_path / "dbt.log").read_text()


def test_a_second_lake_reuses_the_parse_and_an_edited_project_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parse_cache.CACHE_ENV, str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "dbt-parse"

    first, built = _build(tmp_path / "one")
    assert _parsed(built) and len(list(cache.glob("*.msgpack"))) == 1

    second, reused = _build(tmp_path / "two")
    assert not _parsed(reused)
    assert not (reused.target_path / parse_cache.PARTIAL_PARSE_FILE).exists()  # dbt did not parse at all
    assert (reused.target_path / "manifest.json").exists()  # and still wrote the project's manifest
    assert sorted((n.name, n.status) for n in reused.nodes) == sorted((n.name, n.status) for n in built.nodes)
    assert _gold(second) == _gold(first)

    # an edited project: a new mart. Parsed again; the mart is built and exported.
    project = tmp_path / "project"
    shutil.copytree(find_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "models" / "marts" / "zz_parse_probe.sql").write_text("select 1 as probe\n")
    monkeypatch.setenv(PROJECT_DIR_ENV, str(project))
    edited_lake, edited = _build(tmp_path / "edited")
    assert _parsed(edited) and "zz_parse_probe" in {ref.name for ref in edited.exported}
    assert len(list(cache.glob("*.msgpack"))) == 2
    monkeypatch.delenv(PROJECT_DIR_ENV)

    # a damaged entry: passed over, parsed again, replaced
    for entry in cache.glob("*.msgpack"):
        entry.write_bytes(b"\x00damaged")
    third, repaired = _build(tmp_path / "three")
    assert _parsed(repaired) and _gold(third) == _gold(first)
    assert sum(1 for entry in cache.glob("*.msgpack") if entry.read_bytes() != b"\x00damaged") == 1
