"""What every stage of a run receives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from rfmlake.lake import Lake
from rfmlake.settings import Settings


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


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
