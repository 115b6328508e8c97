"""Pipeline runs as the app shows them, from the run folders `<lake>/_system/runs/<run_id>/`
(summary.json from the runner, or on AWS from the state machine's run summary step; quality_silver.json
and quality_gold.json from the quality stages), read through the lake's storage, so a lake on S3 works
the same."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rfmlake.lake import Lake
from rfmlake.lake.storage import Storage
from rfmlake.pipeline.context import RUN_ID, run_time_key
from rfmlake.pipeline.remote import STOPPED_STATUSES
from rfmlake.reporting.quality import summary_succeeded

QUALITY_ZONES = ("silver", "gold")


@dataclass
class RunView:
    run_id: str
    status: str  # succeeded, failed, stopped, timed out (on AWS), running (no summary yet)
    started_at: str | None = None
    seconds: float | None = None
    as_of: str | None = None
    error: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)  # name, status, seconds, error, notes
    quarantine: dict[str, dict[str, int]] = field(default_factory=dict)
    reconciliation_ok: bool | None = None
    files_ingested: int | None = None
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)  # zone -> report
    notes: list[str] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        return sum(n for reasons in self.quarantine.values() for n in reasons.values())

    def quarantine_by_reason(self) -> list[tuple[str, int]]:
        totals: dict[str, int] = {}
        for reasons in self.quarantine.values():
            for reason, n in reasons.items():
                totals[reason] = totals.get(reason, 0) + n
        return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def _json(lake: Lake, *parts: str) -> dict[str, Any] | None:
    data = lake.read_system(*parts)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def run_ids(lake: Lake) -> list[str]:
    """Run ids, newest first by the start time they carry (AWS execution names carry only the day; a
    name given by hand none: those come first, recent_runs places them by their summaries)."""
    folder = lake.system_uri("runs")
    storage = lake.storage
    if not storage.s3 and not storage.is_dir(folder):
        return []
    names = (name for name, is_dir in storage.children(folder) if is_dir and RUN_ID.match(name))
    return sorted(names, key=lambda name: (run_time_key(name) or "~", name), reverse=True)


def load_run(lake: Lake, run_id: str, *, with_quality: bool = True) -> RunView | None:
    if not RUN_ID.match(run_id):
        return None
    summary = _json(lake, "runs", run_id, "summary.json")
    quality = {zone: q for zone in QUALITY_ZONES
               if with_quality and (q := _json(lake, "runs", run_id, f"quality_{zone}.json")) is not None}
    if summary is None:
        if not quality and not lake.storage.exists(Storage.join(lake.system_uri("runs"), run_id)):
            return None
        return RunView(run_id, "running", quality=quality)
    stopped = summary.get("stopped") if isinstance(summary.get("stopped"), dict) else {}
    status = ("succeeded" if summary_succeeded(summary)
              else STOPPED_STATUSES.get(str(stopped.get("status")), "failed"))
    return RunView(
        run_id=run_id, status=status,
        started_at=summary.get("started_at"),
        seconds=summary.get("seconds"), as_of=summary.get("as_of"), error=summary.get("error"),
        stages=list(summary.get("stages") or []), quarantine=dict(summary.get("quarantine") or {}),
        reconciliation_ok=summary.get("reconciliation_ok"), files_ingested=summary.get("files_ingested"),
        quality=quality, notes=list(summary.get("notes") or []))


def recent_runs(lake: Lake, limit: int = 50) -> list[RunView]:
    out = []
    for run_id in run_ids(lake)[:limit]:
        run = load_run(lake, run_id, with_quality=False)
        if run is not None:
            out.append(run)
    # Runs of one day on AWS: by the start their summaries record, a run still going (none yet) first;
    # a run named by hand by the day its summary records (still going: first).
    return sorted(out, key=lambda run: (run_time_key(run.run_id, run.started_at) or "~", run.started_at or "~"),
                  reverse=True)


def quality_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per table check of a quality report: table, status, checks, failed, critical failed."""
    out = []
    for table in report.get("tables", []):
        expectations = table.get("expectations", [])
        failed = [e for e in expectations if not e.get("success")]
        out.append({"table": table.get("table"), "status": table.get("status"), "rows": table.get("row_count"),
                    "checks": len(expectations), "failed": len(failed),
                    "critical": sum(1 for e in failed if e.get("severity") == "critical"),
                    "failures": [e.get("description") or e.get("expectation") for e in failed][:5]})
    return out
