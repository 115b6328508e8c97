"""Scoring only what changed (rfmlake.identity.reuse): run after run, with CRM records changing,
arriving, and a size-limited block growing past identity.max_block_size and shrinking back, the
identity stage that keeps the last run's pair scores writes the same gold.identity_matches and
gold.identity_graph as one that scores every pair each time; a failed run or an erasure's purge
makes the next run score everything."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from rfmlake.identity import resolve_identity, reuse
from rfmlake.identity.job import MODEL_PATH
from rfmlake.ingest.engine import DuckEngine
from rfmlake.ingest.jobs import run_ingest
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.settings import Settings

HEADER = "customer_id,email,phone,first_name,last_name,city,postal_code,country,created_at\n"
# c5 and c6 are compared only through their postal block (22350|SE): no email, phone or email user
# in common, and their full names differ.
FIRST = HEADER + """c1,ann.lee@example.com,,Ann,Lee,Lund,22100,SE,2023-01-01T00:00:00Z
c2,ann.lee@example.org,,Anne,Lee,Lund,22100,SE,2024-01-01T00:00:00Z
c3,bob.ray@example.com,+46 70 123 45 67,Bob,Ray,Uppsala,75100,SE,2023-02-01T00:00:00Z
c4,robert@example.net,+46701234568,Robert,Ray,Uppsala,75100,SE,2024-02-01T00:00:00Z
c5,maria.gonzalez@example.com,,Maria,Gonzalez,Lund,22350,SE,2023-03-01T00:00:00Z
c6,maria.gonzales@example.com,,Maria,Gonzales,Lund,22350,SE,2024-03-01T00:00:00Z
c7,eve.stone@example.com,,Eve,Stone,Umea,90325,SE,2023-05-01T00:00:00Z
"""
# c4's phone is corrected to c3's digits (a changed record); c8 is a new duplicate of c7; c9 and c10
# fill c5 and c6's postal block past the limit of 3, so that pair is no longer compared.
SECOND = HEADER + """c4,robert@example.net,+46701234567,Robert,Ray,Uppsala,75100,SE,2024-02-01T00:00:00Z
c8,eve.stone@example.com,,Evie,Stone,Umea,90325,SE,2024-06-01T00:00:00Z
c9,lars.berg@example.com,,Lars,Berg,Lund,22350,SE,2024-06-01T00:00:00Z
c10,karin.berg@example.com,,Karin,Berg,Lund,22350,SE,2024-06-01T00:00:00Z
"""
# c10 moves away: the block is back to 3 records and c5 and c6, both unchanged, are compared again.
THIRD = HEADER + "c10,karin.berg@example.com,,Karin,Berg,Malmo,21100,SE,2024-06-01T00:00:00Z\n"
SETTINGS = Settings(identity={"max_block_size": 3})


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFMLAKE_PII_KEY", "b2" * 32)


def _run(landing: Path, lake: Lake, day: int, *, keep_scores: bool) -> dict:
    if not keep_scores:
        reuse.forget(lake)
    engine = DuckEngine()
    try:
        ctx = RunContext(landing_dir=landing, lake=lake, settings=SETTINGS, run_id=f"run-{day}",
                         started_at=datetime(2024, 8, day, tzinfo=UTC))
        run_ingest(engine, ctx)
        return resolve_identity(ctx, engine).to_dict()
    finally:
        engine.close()


def _tables(lake: Lake) -> dict[str, list[tuple]]:
    con = connect(lake, zones=("gold",))
    try:
        return {name: sorted(con.execute(f"SELECT * EXCLUDE (run_id) FROM gold.{name}").fetchall())
                if name == "identity_matches" else sorted(con.execute(f"SELECT * FROM gold.{name}").fetchall())
                for name in ("identity_matches", "identity_graph", "identity_changes")}
    finally:
        con.close()


def _pair(tables: dict[str, list[tuple]], left: str, right: str) -> bool:
    return any(row[0] == left and row[1] == right for row in tables["identity_matches"])


def test_kept_scores_give_the_lake_of_scoring_every_pair(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "customers").mkdir(parents=True)
    kept, scored = Lake(tmp_path / "kept"), Lake(tmp_path / "scored")
    reports = []
    for day, delivery in enumerate((FIRST, SECOND, THIRD), start=1):
        (landing / "customers" / f"crm-{day}.csv").write_text(delivery)
        reports.append(_run(landing, kept, day, keep_scores=True))
        if day == 1:  # one model for both (a fit's model differs from lake to lake by splink's ids)
            scored.write_system(kept.read_system(*MODEL_PATH), *MODEL_PATH)
        everything = _run(landing, scored, day, keep_scores=False)
        assert everything["records_rescored"] == everything["customer_records"] and everything["pairs_kept"] == 0
        assert _tables(kept) == _tables(scored), f"after delivery {day}"
        if day == 1:
            assert _pair(_tables(kept), "c5", "c6")  # the postal block compares them
        elif day == 2:
            assert not _pair(_tables(kept), "c5", "c6")  # the block is past the limit
            assert _pair(_tables(kept), "c7", "c8")  # the new record is scored
        else:
            assert _pair(_tables(kept), "c5", "c6")  # compared again, though neither record changed

    first, second, third = reports
    assert first["records_rescored"] == first["customer_records"] == 7 and first["pairs_kept"] == 0
    # the changed record and the three new ones; the pairs of unchanged records are kept
    assert second["records_rescored"] == 4 and second["pairs_kept"] >= 1
    assert third["records_rescored"] == 1 and third["pairs_kept"] >= 1


def test_a_rolled_back_run_or_a_purge_leaves_nothing_to_keep(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "customers").mkdir(parents=True)
    (landing / "customers" / "crm-1.csv").write_text(FIRST)
    lake = Lake(tmp_path / "lake")
    _run(landing, lake, 1, keep_scores=True)
    before = lake.current("gold", "identity_matches")
    assert before is not None

    # A run whose identity tables were written but never committed (the run failed later): its
    # state names a version that is not current, so the next run cannot use it.
    (landing / "customers" / "crm-2.csv").write_text(SECOND)
    with pytest.raises(RuntimeError, match="a later stage failed"), lake.transaction():
        report = _run(landing, lake, 2, keep_scores=True)
        assert report["pairs_kept"] >= 1
        states = sorted(p.name for p in lake.system_dir.joinpath(*reuse.STATE_DIR).iterdir())
        assert len(states) == 2 and any(s.startswith(before.version) for s in states)
        raise RuntimeError("a later stage failed")
    assert lake.current("gold", "identity_matches") == before
    again = _run(landing, lake, 2, keep_scores=True)
    assert again["pairs_kept"] >= 1  # the state of the version that stayed current was kept

    assert reuse.forget(lake) >= 1  # what erasure's purge does
    purged = _run(landing, lake, 3, keep_scores=True)
    assert purged["records_rescored"] == purged["customer_records"] and purged["pairs_kept"] == 0
