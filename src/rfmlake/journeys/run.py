"""One entry for every runtime (the pipeline's `journeys` stage, `rfmlake journeys run`, the stage
Lambda): load the journeys, advance them, derive the lake tables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rfmlake.journeys.channels import build_senders
from rfmlake.journeys.engine import TickReport, advance
from rfmlake.journeys.errors import JourneyError
from rfmlake.journeys.results import write_assignments, write_results
from rfmlake.journeys.spec import JourneySet, load_journeys
from rfmlake.journeys.store import JourneyStore
from rfmlake.lake import Lake
from rfmlake.settings import Settings

if TYPE_CHECKING:
    import boto3

    from rfmlake.activation.destinations.base import Destination
    from rfmlake.activation.retry import RetryPolicy

JOURNEYS_DIR_ENV = "RFMLAKE_JOURNEYS_DIR"
ENDPOINT_ENV = "RFMLAKE_AWS_ENDPOINT_URL"  # as activation: a test or LocalStack endpoint, unset on AWS


def default_journeys_dir() -> Path | None:
    """$RFMLAKE_JOURNEYS_DIR, else ./journeys, else the one in the source checkout (None if none)."""
    from_env = os.environ.get(JOURNEYS_DIR_ENV)
    if from_env:
        return Path(from_env)
    for candidate in (Path.cwd() / "journeys", Path(__file__).resolve().parents[3] / "journeys"):
        if candidate.is_dir():
            return candidate
    return None


def segment_names(settings: Settings) -> tuple[str, ...]:
    from rfmlake.rfm.rules import SegmentRules

    rules = SegmentRules.load(settings.segmentation.rules_file, expected_n_bins=settings.rfm.score_bins)
    return tuple(rules.names)


def load(settings: Settings, folder: str | Path | None = None) -> JourneySet | None:
    folder = folder if folder is not None else settings.journeys.dir
    if folder is None:
        return None
    return load_journeys(folder, segment_names=segment_names(settings))


@dataclass
class JourneysRun:
    journeys: int
    tick: TickReport | None
    assignments_version: str | None = None
    results_rows: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"journeys": self.journeys, "results_rows": self.results_rows}
        if self.tick is not None:
            out.update(self.tick.to_dict())
        else:
            out["status"] = self.note  # nothing to run: not a note worth showing on every run
        out["notes"] = list(self.tick.notes) if self.tick else []
        return out

    def render(self) -> str:
        if self.tick is None:
            return self.note or "no journeys"
        return self.tick.render() + f"\n  gold.journey_results: {self.results_rows} rows"


def run_journeys(lake: Lake, settings: Settings, *, folder: str | Path | None = None,
                 state_location: str | None = None, senders: Mapping[str, Destination] | None = None,
                 now: datetime | None = None, policy: RetryPolicy | None = None,
                 env: Mapping[str, str] | None = None, boto3_session: boto3.Session | None = None) -> JourneysRun:
    """Advance every journey of `folder` (default: the setting journeys.dir) as of the lake's latest
    run and write gold.journey_assignments and gold.journey_results (in one lake transaction).
    `state_location` is the lake that keeps the journey state and the outbox (the lake on S3 when
    `lake` is a workspace copy)."""
    journeys = load(settings, folder)
    if journeys is None:
        return JourneysRun(0, None, note="no journeys configured (settings journeys.dir)")
    if not journeys.journeys:
        return JourneysRun(0, None, note=f"no journey files in {journeys.folder}")
    env = os.environ if env is None else env
    where = state_location or lake.location
    if senders is None:
        senders = build_senders(settings.journeys, where, boto3_session=boto3_session,
                                endpoint_url=env.get(ENDPOINT_ENV) or None)
    with lake.transaction():
        tick = advance(lake, journeys, senders, settings=settings, state_location=where, now=now, policy=policy)
        store = JourneyStore(where)
        assignments = write_assignments(lake, store)
        results = write_results(lake, store, journeys, confidence=settings.journeys.confidence,
                                power=settings.journeys.power)
    return JourneysRun(len(journeys.journeys), tick, assignments.version, lake.count_rows(results))


def require_local_lake(path: Path) -> Lake:
    if not path.is_dir():
        raise JourneyError(f"--lake {path} is not a folder")
    return Lake(path)
