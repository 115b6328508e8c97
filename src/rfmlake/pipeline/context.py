"""What every stage of a run receives."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rfmlake.lake import Lake
from rfmlake.settings import Settings

# A run's id is its run folder's name (`<lake>/_system/runs/<run_id>/`): `rfmlake run` makes one from
# its UTC start time (new_run_id); on AWS it is the Step Functions execution name, which the one
# trigger makes from the day and the batch (rfmlake.pipeline.trigger.execution_name).
RUN_ID = re.compile(r"^(?:[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}|(?:landing|schedule)-[0-9]{8}-[0-9a-f]{20})$")


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def run_time_key(run_id: str) -> str:
    """The UTC start a run id carries, as text that sorts in time: to the second for `rfmlake run`'s
    ids, the day for AWS execution names (runs of one day are then ordered by their summaries)."""
    if run_id.startswith(("landing-", "schedule-")):
        return run_id.split("-", 2)[1]
    return run_id.split("-", 1)[0]


@dataclass
class RunContext:
    landing_dir: str | Path  # a local folder or an s3://bucket/prefix
    lake: Lake
    settings: Settings
    as_of: date | None = None  # None: the day after the latest order in the data (resolved by dbt)
    run_id: str = field(default_factory=new_run_id)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    workspace_of: str | None = None  # the lake on S3 when `lake` is a local workspace copy of it
    full: bool = False  # rebuild from every landing file (rfmlake run --full), not only new or changed ones

    @property
    def run_dir(self) -> Path:
        return self.lake.runs_dir / self.run_id

    def earlier_report(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """(run id, report) of the report file `name` in the latest successful earlier run that wrote
        one: what a stage on a schedule (an evaluation, a refit) carries forward. A failed run's
        report is never used (a failed run commits nothing). None when there is none, it is not a JSON
        object, or the lake keeps no local run folders (on AWS the state machine writes none)."""
        from rfmlake.reporting.quality import run_succeeded

        runs_dir = self.lake.runs_dir if self.lake.is_local else None
        if runs_dir is None or not runs_dir.is_dir():
            return None
        # Run ids start with their UTC start time to the second; runs within one second are ordered
        # by the start time their summary records.
        earlier = (p for p in runs_dir.iterdir() if p.is_dir() and p.name != self.run_id and (p / name).is_file())
        for run_dir in sorted(earlier, key=lambda p: (p.name.split("-", 1)[0], _started_at(p)), reverse=True):
            if not run_succeeded(run_dir):
                continue
            try:
                report = json.loads((run_dir / name).read_text())
            except ValueError:
                return None
            return (run_dir.name, report) if isinstance(report, dict) else None
        return None


def _started_at(run_dir: Path) -> str:
    """The run's start time as its summary.json records it (ISO, UTC), '' when unreadable."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(summary.get("started_at") or "") if isinstance(summary, dict) else ""
