"""Crash safety and idempotency: a failed stage leaves every table as it was, a re-run of the same
landing changes nothing, and --full rebuilds the same lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect

VOLATILE = ("_loaded_at", "_load_date", "_file")  # lineage that records when a file was read


def snapshot(lake: Lake) -> dict[str, list[tuple]]:
    """Every table's rows (load-time lineage left out), sorted: what a reader of the lake sees.
    Columns are taken by name: a bronze partition holds the extra columns of every file read in the
    same run, so where the files of one entity differ in extra columns, the order of the union's
    columns depends on which files were read together; the values do not."""
    con = connect(lake)
    try:
        out: dict[str, list[tuple]] = {}
        for ref in lake.tables():
            columns = sorted(r[0] for r in con.execute(f"DESCRIBE {ref.zone}.{ref.name}").fetchall())
            keep = ", ".join(f'"{c}"' for c in columns if c not in VOLATILE and c not in ("ingest_id", "loaded_at",
                                                                                         "run_id", "modified"))
            out[ref.qualified_name] = sorted(con.execute(f"SELECT {keep} FROM {ref.zone}.{ref.name}").fetchall(),
                                             key=repr)
        return out
    finally:
        con.close()


def _versions(lake: Lake) -> dict[str, str]:
    return {ref.qualified_name: ref.version for ref in lake.tables()}


def _run(lake: Lake, landing: Path, *, full: bool = False):  # type: ignore[no-untyped-def]
    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.ingest.jobs import run_ingest
    from rfmlake.pipeline.context import RunContext
    from rfmlake.settings import Settings

    engine = DuckEngine()
    try:
        return run_ingest(engine, RunContext(landing_dir=landing, lake=lake, settings=Settings(), full=full))
    finally:
        engine.close()


@pytest.mark.parametrize("stage", ["bronze", "silver"])
def test_a_crash_between_commits_changes_no_table(ingested, stage: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.ingest.jobs import run_landing_to_bronze
    from rfmlake.ingest.silver import conform_silver
    from rfmlake.pipeline.context import RunContext
    from rfmlake.settings import Settings

    lake_dir = tmp_path / "lake"
    shutil.copytree(ingested.ctx.lake.root, lake_dir)
    lake = Lake(lake_dir)
    before, versions = snapshot(lake), _versions(lake)
    ctx = RunContext(landing_dir=ingested.landing, lake=lake, settings=Settings(), full=True)

    real = Lake.commit_partitions
    calls: list[str] = []

    def crash_on_second(self: Lake, zone: str, name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(f"{zone}.{name}")
        if len(calls) == 2:
            raise OSError("simulated crash")
        return real(self, zone, name, *args, **kwargs)

    monkeypatch.setattr(Lake, "commit_partitions", crash_on_second)
    engine = DuckEngine()
    with pytest.raises(OSError, match="simulated crash"):
        if stage == "bronze":
            run_landing_to_bronze(engine, ctx)
        else:
            conform_silver(engine, ctx, full=True)
    engine.close()
    # The stage commits its tables together: nothing moved.
    assert _versions(lake) == versions
    assert snapshot(lake) == before
    monkeypatch.setattr(Lake, "commit_partitions", real)

    _run(lake, ingested.landing)  # the next run completes
    assert snapshot(lake) == before


def test_rerun_of_the_same_landing_changes_nothing_and_full_rebuilds_the_same(ingested, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    lake_dir = tmp_path / "lake"
    shutil.copytree(ingested.ctx.lake.root, lake_dir)
    lake = Lake(lake_dir)
    before, versions = snapshot(lake), _versions(lake)

    report = _run(lake, ingested.landing)
    assert report.mode == "unchanged" and report.files_conformed == []
    assert _versions(lake) == versions  # nothing was rewritten
    assert report.to_dict()["reconciliation"] == ingested.report.to_dict()["reconciliation"]

    report = _run(lake, ingested.landing, full=True)
    assert report.mode == "full"
    assert snapshot(lake) == before
    assert report.quarantine_counts == ingested.report.quarantine_counts
