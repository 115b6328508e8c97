"""Crash safety and idempotency: a failed stage leaves the previous versions visible, and a re-run
of the same landing gives row-identical silver tables and quarantine."""

from __future__ import annotations

import pytest

from rfmlake.lake import Lake

pytestmark = pytest.mark.spark


def _snapshot(spark, lake: Lake, zone: str, table: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    df = spark.read.parquet(str(lake.require(zone, table).path))
    return sorted((tuple(r) for r in df.drop("_loaded_at").collect()), key=repr)


def _tables(lake: Lake) -> dict[str, object]:
    return {ref.qualified_name: ref.path for ref in lake.tables()}


def test_crash_then_rerun(spark, ingested, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from rfmlake.contract.landing import scan_landing
    from rfmlake.ingest.bronze import load_bronze
    from rfmlake.ingest.jobs import run_ingest
    from rfmlake.ingest.silver import conform_silver
    from rfmlake.pipeline.context import RunContext

    lake: Lake = ingested.ctx.lake
    before = _tables(lake)
    data_before = {name: _snapshot(spark, lake, *name.split(".")) for name in before}
    ctx = RunContext(landing_dir=ingested.landing, lake=lake, settings=ingested.ctx.settings)

    real_commit = Lake.commit
    calls: list[str] = []

    def crash_on_second(self: Lake, zone: str, name: str, version_dir):  # type: ignore[no-untyped-def]
        calls.append(f"{zone}.{name}")
        if len(calls) == 2:
            raise OSError("simulated crash")
        return real_commit(self, zone, name, version_dir)

    monkeypatch.setattr(Lake, "commit", crash_on_second)
    with pytest.raises(OSError, match="simulated crash"):
        conform_silver(spark, ctx)
    silver_first = calls[0]
    assert [name for name in before if _tables(lake)[name] != before[name]] == [silver_first]
    calls.clear()
    with pytest.raises(OSError, match="simulated crash"):
        load_bronze(spark, ctx, scan_landing(ctx.landing_dir))
    bronze_first = calls[0]
    # Only the one table committed before each crash moved on; all others still show the old version.
    assert {name for name in before if _tables(lake)[name] != before[name]} == {silver_first, bronze_first}
    for name in before:  # every table still readable, with the same rows as before
        assert _snapshot(spark, lake, *name.split(".")) == data_before[name], name
    monkeypatch.setattr(Lake, "commit", real_commit)

    report = run_ingest(spark, ctx)
    after = _tables(lake)
    assert set(after) == set(before)
    assert all(after[name] != before[name] for name in before)  # every table has a new version
    for name in before:
        assert _snapshot(spark, lake, *name.split(".")) == data_before[name], name
    assert report.to_dict() == ingested.report.to_dict()
