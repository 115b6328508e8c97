"""The run folders as the app reads them, the audit log, and the vendored htmx against its npm package."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rfmlake.app.audit import AuditLog
from rfmlake.app.journeys import JourneyEditError
from rfmlake.app.runs import load_run, quality_rows, recent_runs
from rfmlake.app.web import parse_variants

REPO = Path(__file__).resolve().parents[3]


def write_run(lake, run_id: str, summary: dict | None, quality: dict | None = None) -> None:  # noqa: ANN001
    folder = lake.runs_dir / run_id
    folder.mkdir(parents=True)
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    if quality is not None:
        (folder / "quality_gold.json").write_text(json.dumps(quality))


def test_runs_newest_first_with_status_quarantine_and_quality(lake) -> None:  # noqa: ANN001
    write_run(lake, "20261201T030000Z-aaaaaa", {
        "run_id": "20261201T030000Z-aaaaaa", "started_at": "2026-12-01T03:00:00+00:00", "seconds": 60.0,
        "stages": [{"name": "ingest_bronze", "status": "succeeded", "seconds": 10.0}],
        "quarantine": {"orders": {"bad_type": 3, "duplicate": 1}, "customers": {"duplicate": 2}}},
        {"passed": False, "tables": [{"table": "gold.customer_rfm", "status": "validated", "row_count": 10,
                                      "expectations": [{"success": True, "severity": "critical"},
                                                       {"success": False, "severity": "critical",
                                                        "description": "scores are 1..5"}]}]})
    write_run(lake, "20261202T030000Z-bbbbbb", {"run_id": "20261202T030000Z-bbbbbb", "error": "stage dbt failed",
                                                "stages": [{"name": "dbt_build", "status": "failed", "seconds": 1}]})
    write_run(lake, "20261203T030000Z-cccccc", None)  # under way: no summary yet
    (lake.runs_dir / "not a run").mkdir()  # no execution or run is named so
    assert [(r.run_id[-6:], r.status) for r in recent_runs(lake)] == [
        ("cccccc", "running"), ("bbbbbb", "failed"), ("aaaaaa", "succeeded")]
    run = load_run(lake, "20261201T030000Z-aaaaaa")
    assert run.quarantined == 6
    assert run.quarantine_by_reason() == [("bad_type", 3), ("duplicate", 3)]
    assert quality_rows(run.quality["gold"]) == [{"table": "gold.customer_rfm", "status": "validated", "rows": 10,
                                                  "checks": 2, "failed": 1, "critical": 1,
                                                  "failures": ["scores are 1..5"]}]
    assert load_run(lake, "../../etc") is None and load_run(lake, "20991231T000000Z-ffffff") is None


def test_runs_started_by_hand_on_aws_are_shown_in_their_place(lake) -> None:  # noqa: ANN001
    """Executions an operator started under a name of their own carry no time in it: they are placed
    by the day and the start their summaries record, among the trigger's runs of that day."""
    def summary(run_id: str, started_at: str) -> dict:
        return {"run_id": run_id, "started_at": started_at, "seconds": 1.0,
                "stages": [{"name": "ingest_bronze", "status": "succeeded", "seconds": 1.0}]}

    trigger_early = "schedule-20261202-0123456789abcdef0123"
    trigger_late = "landing-20261202-abcdef0123456789abcd"
    write_run(lake, trigger_early, summary(trigger_early, "2026-12-02T03:00:00+00:00"))
    write_run(lake, trigger_late, summary(trigger_late, "2026-12-02T09:00:00+00:00"))
    write_run(lake, "manual-2026-12-02", summary("manual-2026-12-02", "2026-12-02T05:00:00+00:00"))
    console = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"  # the console's default name: a UUID
    write_run(lake, console, summary(console, "2026-12-01T05:00:00+00:00"))
    write_run(lake, "manual-rerun_3", None)  # started by hand, under way
    assert [r.run_id for r in recent_runs(lake)] == [
        "manual-rerun_3", trigger_late, "manual-2026-12-02", trigger_early, console]
    assert load_run(lake, console).status == "succeeded"


def test_the_audit_log_keeps_one_entry_per_change_newest_first(lake) -> None:  # noqa: ANN001
    log = AuditLog(lake)
    log.record("mia", "marketer", "audience.save", "vip", {"customers": 3},
               now=datetime(2026, 12, 1, 10, tzinfo=UTC))
    log.record("ada", "admin", "journey.pause", "win_back", {"from": "active", "to": "paused"},
               now=datetime(2026, 12, 1, 11, tzinfo=UTC))
    assert [(e.actor, e.action, e.target) for e in log.entries()] == [
        ("ada", "journey.pause", "win_back"), ("mia", "audience.save", "vip")]
    assert len(list((lake.system_dir / "app" / "audit").glob("*.json"))) == 2


def test_variants_are_parsed_with_clear_errors() -> None:
    assert parse_variants("A=50, B=50") == [("A", 50.0), ("B", 50.0)]
    assert parse_variants("A") == [("A", 100.0)]
    for text, message in (("", "at least one"), ("A=50, B", "needs a share"), ("1x=100", "not a variant id"),
                          ("A=-5", "needs a share")):
        with pytest.raises(JourneyEditError, match=message):
            parse_variants(text)


def test_the_vendored_htmx_is_the_npm_package_of_the_lockfile() -> None:
    lock = json.loads((REPO / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/htmx.org"]["version"]
    vendored = (REPO / "src" / "rfmlake" / "app" / "static" / "htmx.min.js").read_text()
    header, _, body = vendored.partition("\n")
    assert f"htmx {version} " in header
    installed = REPO / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
    if not installed.is_file():
        pytest.skip("node_modules is not installed (npm ci)")
    assert body == installed.read_text()
