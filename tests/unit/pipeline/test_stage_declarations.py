"""What each stage declares it reads and writes: the runner holds every stage to its `writes`, and
the AWS roles get exactly the zones their stages declare (zone_access, used by infra/)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.lake.tables import ZONES
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE, Stage, undeclared_writes, zone_access
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import Settings


def commit_gold_a(ctx: RunContext, state: object) -> dict:
    ctx.lake.write_arrow("gold", "a", pa.table({"x": [1]}))
    return {}


def commit_gold_a_and_b(ctx: RunContext, state: object) -> dict:
    commit_gold_a(ctx, state)
    ctx.lake.write_arrow("gold", "b", pa.table({"x": [2]}))
    return {}


def stage(entry: str, writes: tuple[str, ...]) -> Stage:
    return Stage("writer", "test", runtime="python", entry=f"{__name__}:{entry}", writes=writes)


def context(tmp_path: Path) -> RunContext:
    return RunContext(landing_dir=tmp_path / "landing", lake=Lake(tmp_path / "lake"), settings=Settings())


def test_a_stage_may_commit_what_it_declares(tmp_path: Path) -> None:
    summary = run_pipeline(context(tmp_path), stages=(stage("commit_gold_a", ("gold.a",)),))
    assert [s.status for s in summary.stages] == ["succeeded"]


def test_a_stage_that_commits_an_undeclared_table_fails_the_run(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"stage writer failed:\ncommitted gold.b, which the stage's `writes` "
                                            r".* does not declare \(gold.a\)"):
        run_pipeline(context(tmp_path), stages=(stage("commit_gold_a_and_b", ("gold.a",)),))
    assert undeclared_writes(stage("x", ("gold.*",)), ["gold.b", "silver.b"]) == ["silver.b"]


def test_every_declaration_names_a_zone() -> None:
    for s in PIPELINE:
        for pattern in (*s.reads, *s.writes):
            assert pattern.split(".", 1)[0] in ZONES and "." in pattern, (s.name, pattern)


def test_each_runtime_gets_the_zones_its_stages_declare() -> None:
    # the deployed roles (infra/rfmlake_infra/compute.py, governance grants) follow these
    assert zone_access("spark") == ((), ("bronze", "silver"))
    assert zone_access("dbt") == (("silver",), ("gold",))
    # recommendations learn from order lines, product views and the catalogue in silver
    assert zone_access("segmentation") == (("silver",), ("gold",))
    # the python stages' function also rolls a failed run back, which writes every zone's pointers
    # (rfmlake.pipeline.rollback); its stages alone read bronze and silver and write gold
    assert zone_access("python") == ((), ("bronze", "gold", "silver"))


def test_the_run_summary_runtime_reads_and_rolls_back_every_zone_whatever_its_stages_declare() -> None:
    # the stage Lambda writes each execution's run summary, which counts every table (rfmlake.pipeline.remote),
    # and records the run's start pointers and puts them back after a failure (rfmlake.pipeline.rollback)
    assert zone_access("python", ()) == ((), ("bronze", "gold", "silver"))
    assert zone_access("spark", ()) == ((), ())


def test_only_stages_that_publish_nothing_read_s3_in_place() -> None:
    in_place = [s.name for s in PIPELINE if s.in_place]
    assert in_place == ["quality_silver", "quality_gold"]
    with pytest.raises(ValueError, match="an in-place stage .* may not declare writes, state or exports"):
        Stage("x", "test", runtime="python", entry="m:f", writes=("gold.a",), in_place=True)


def test_tables_read_in_place_are_declared_reads_and_whole_zones_are_never_copied() -> None:
    from rfmlake.lake.workspace import table_matches

    for s in PIPELINE:
        assert all(table_matches(t, s.reads) for t in s.reads_in_place), s.name
        # a table both read in place and written is one the stage appends partitions to, or the
        # recommendations' lists: between fits the unchanged people's rows are read where they lie
        # and a new version replaces them (ADR 0023); so are the identity pairs kept from the last
        # run's scoring (rfmlake.identity.reuse)
        assert {t for t in s.reads_in_place if table_matches(t, s.writes)} <= {
            "gold.segment_membership_history", "gold.segment_migration", "gold.journey_assignments",
            "gold.product_recommendations", "gold.identity_matches"}, s.name
    by_name = {s.name: s for s in PIPELINE}
    # activation reads only the customers it may address and their scores: never fct_orders & co.
    assert by_name["activate"].reads == ("gold.customer_rfm", "silver.customers", "bronze.customers")
    assert set(by_name["activate"].reads_in_place) == set(by_name["activate"].reads)
    assert "gold.*" not in by_name["segmentation"].reads and "gold.*" not in by_name["profiles"].reads
    # journeys read the orders and the history where they lie, and only add assignment partitions
    assert set(by_name["journeys"].reads_in_place) == set(by_name["journeys"].reads)
