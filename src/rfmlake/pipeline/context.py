"""What every stage of a run receives."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from rfmlake.errors import ConfigError
from rfmlake.lake import Lake
from rfmlake.settings import Settings

# A run's id is its run folder's name (`<lake>/_system/runs/<run_id>/`): `rfmlake run` makes one from
# its UTC start time (new_run_id); on AWS it is the Step Functions execution name, which the one
# trigger makes from the day and the batch (rfmlake.pipeline.trigger.execution_name), or which an
# operator gives an execution started by hand ("manual-2026-12-07", the console's default UUID).
# Step Functions takes 1-80 characters without white space, brackets, wildcards and
# " # % \ ^ | ~ ` $ & , ; : / (botocore stepfunctions StartExecution.name); a run id is held to the
# part AWS names safe for CloudWatch logging (letters, digits, "-", "_": NAME_LIMITS["execution"]),
# which is also safe in S3 keys, local paths, SQL literals and the AWS names built from it, and starts
# with a letter or digit (never "." or "..", never read as a command-line option).
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
_LOCAL_RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")
_TRIGGER_RUN_ID = re.compile(r"^(?:landing|schedule|manual)-([0-9]{8})-[0-9a-f]{20}$")


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def check_run_id(run_id: object, what: str = "a run") -> str:
    """`run_id` if it is a usable run id; ConfigError saying what one is otherwise."""
    if isinstance(run_id, str) and RUN_ID.match(run_id):
        return run_id
    raise ConfigError(f"{what} needs the run id (on AWS the Step Functions execution name), got {run_id!r}: a "
                      "run id is 1-80 letters, digits, '-' and '_', starting with a letter or digit; start the "
                      "execution under such a name (e.g. manual-2026-12-07, or the console's default UUID)")


def run_time_key(run_id: str, started_at: str | None = None) -> str:
    """The UTC start a run id carries, as text that sorts in time: to the second for `rfmlake run`'s
    ids, the day for the trigger's execution names (runs of one day are then ordered by their
    summaries). A name given by hand carries none: the day of `started_at` (what its summary
    records), or "" when that is unknown too."""
    if _LOCAL_RUN_ID.match(run_id):
        return run_id.split("-", 1)[0]
    trigger = _TRIGGER_RUN_ID.match(run_id)
    if trigger:
        return trigger.group(1)
    return started_at[:10].replace("-", "") if started_at else ""


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

    @property
    def home_lake(self) -> Lake:
        """The lake the run belongs to: the lake on S3 (with the run's boto3 session) when `lake` is
        a local workspace copy of it, else `lake`."""
        from rfmlake.lake.workspace import WorkspaceLake

        if isinstance(self.lake, WorkspaceLake):
            return self.lake.remote
        if self.workspace_of:
            return Lake(self.workspace_of, boto3_session=self.lake.boto3_session)
        return self.lake

    def earlier_report(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """(run id, report) of the report file `name` in the latest successful earlier run that wrote
        one: what a stage on a schedule (an evaluation, a refit) carries forward. A failed run's
        report is never used (a failed run commits nothing), nor one of a run without a summary. None
        when there is none or it is not a JSON object. A stage working in a local copy of a lake on S3
        (rfmlake.lake.workspace) reads the run folders of that lake, where the state machine writes
        each execution's summary (rfmlake.pipeline.remote.summarize_execution)."""
        from rfmlake.reporting.quality import RUN_SUMMARY, summary_succeeded

        lake = self.home_lake
        earlier = [run_id for run_id, is_dir in lake.storage.children(lake.system_uri("runs"))
                   if is_dir and run_id != self.run_id]
        summaries: dict[str, Any] = {}

        def summary(run_id: str) -> Any:
            if run_id not in summaries:
                summaries[run_id] = _json(lake.read_system("runs", run_id, RUN_SUMMARY))
            return summaries[run_id]

        def started_at(run_id: str) -> str:
            found = summary(run_id)
            return str(found.get("started_at") or "") if isinstance(found, dict) else ""

        def time_key(run_id: str) -> str:  # a name given by hand carries no time: its summary's
            return run_time_key(run_id) or run_time_key(run_id, started_at(run_id))

        # Newest first: by the start time in the id, then (several runs in one second, or AWS runs of
        # one day) by the start time the summary records. Summaries are read only as far as needed.
        for _, same_time in groupby(sorted(earlier, key=time_key, reverse=True), key=time_key):
            for run_id in sorted(same_time, key=started_at, reverse=True):
                if not summary_succeeded(summary(run_id)):
                    continue
                data = lake.read_system("runs", run_id, name)
                if data is None:
                    continue
                report = _json(data)
                return (run_id, report) if isinstance(report, dict) else None
        return None


@dataclass(frozen=True)
class EarlierFit:
    """A model fit an earlier successful run made or carried (ADR 0023): its run's report, and the
    run that fitted it with that run's as_of."""

    report: dict[str, Any]
    model_version: str
    run_id: str
    as_of_date: date

    def origin(self) -> dict[str, str]:
        return {"run_id": self.run_id, "as_of_date": self.as_of_date.isoformat()}


def earlier_fit(ctx: RunContext, report_file: str, as_of: date, every_days: int) -> EarlierFit | None:
    """The fit named by the report `report_file` of the latest successful earlier run
    (RunContext.earlier_report), traced back to the run that fitted it, when it was fitted at an
    as_of fewer than `every_days` days before `as_of` (not after it). None, so the run fits, on
    `rfmlake run --full`, with every_days 0 or 1, when that report did not fit or carry a model, or
    says too little. The caller loads the model and checks it was fitted with its settings."""
    if ctx.full or every_days <= 1:
        return None
    found = ctx.earlier_report(report_file)
    if found is None or found[1].get("status") != "fitted":
        return None
    run_id, report = found
    origin = report.get("model_from") or {"run_id": run_id, "as_of_date": report.get("as_of_date")}
    try:
        fitted = EarlierFit(report, str(report["model_version"]), str(origin["run_id"]),
                            date.fromisoformat(str(origin["as_of_date"])))
    except (KeyError, TypeError, ValueError):
        return None
    return fitted if 0 <= (as_of - fitted.as_of_date).days < every_days else None


def _json(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None
