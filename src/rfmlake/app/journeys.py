"""The journeys pages' one door to journeys as code (rfmlake.journeys, YAML files in the journeys
folder): `JourneyPort`. The app lists the folder's journeys, creates one from another used as a
template (new id, name, holdout, variants, and optionally a saved audience as its trigger), starts
and pauses them (their `status:`), and shows gold.journey_results.

`journeys_port()` returns `FolderJourneys` when the journeys package is part of the build and a
journeys folder is configured, else `UnavailableJourneys`, whose pages say why.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from rfmlake.audiences.model import AudienceFilters
from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake
from rfmlake.lake.storage import Storage
from rfmlake.settings import Settings


class JourneyEditError(RfmlakeError):
    """A journey cannot be created or changed as asked (the message says which field and why)."""


@dataclass(frozen=True)
class JourneySummary:
    id: str
    name: str
    status: str
    description: str
    trigger: str
    holdout_percent: float
    variants: list[tuple[str, float]]
    steps: list[tuple[str, str]]
    goal_days: int
    source: str


@dataclass
class JourneyResults:
    journey_id: str
    latest_day: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)  # gold.journey_results rows, every day
    confidence: float | None = None

    def latest(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if str(r["day"]) == self.latest_day]


class JourneyPort(Protocol):
    available: bool
    reason: str

    def list(self) -> list[JourneySummary]: ...

    def get(self, journey_id: str) -> JourneySummary: ...

    def create(self, *, template_id: str, journey_id: str, name: str, holdout_percent: float,
               variants: list[tuple[str, float]], audience: tuple[str, AudienceFilters] | None = None
               ) -> JourneySummary: ...

    def set_status(self, journey_id: str, status: str) -> JourneySummary: ...

    def results(self, journey_id: str) -> JourneyResults: ...


class UnavailableJourneys:
    available = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _refuse(self) -> Any:
        raise JourneyEditError(self.reason)

    def list(self) -> list[JourneySummary]:
        return []

    def get(self, journey_id: str) -> JourneySummary:
        return self._refuse()

    def create(self, **kwargs: Any) -> JourneySummary:
        return self._refuse()

    def set_status(self, journey_id: str, status: str) -> JourneySummary:
        return self._refuse()

    def results(self, journey_id: str) -> JourneyResults:
        return self._refuse()


def _describe_trigger(trigger: Any) -> str:
    kind = trigger.type
    if kind == "segment_entered":
        return f"enters {trigger.segment}" + (" (engagement)" if trigger.dimension == "engagement_segment" else "")
    if kind == "segment_exited":
        return f"leaves {trigger.segment}" + (" (engagement)" if trigger.dimension == "engagement_segment" else "")
    if kind == "segment_migrated":
        return f"moves from {', '.join(trigger.from_segments)} to {', '.join(trigger.to_segments)}"
    return "matches " + " and ".join(f"{c.column} {c.op} {c.value}" for c in trigger.where)


def audience_trigger(name: str, filters: AudienceFilters) -> tuple[dict[str, Any], dict[str, Any]]:
    """A saved audience as a journey trigger: (trigger, audience) of a journey file. Customers enter
    when they first match the audience's segment, cluster, engagement segment, score and value
    filters (a value_condition trigger); country and consent become the journey's audience filter."""
    if filters.uses_activity:
        raise JourneyEditError(f"audience {name!r} filters on event counts or the last event, which journeys cannot "
                               "trigger on; filter on the engagement segment instead")
    if filters.consent == "not_opted_in":
        raise JourneyEditError(f"audience {name!r} holds customers without marketing consent: a journey may not "
                               "message them")
    where: list[dict[str, Any]] = []
    if filters.segments:
        where.append({"column": "rfm_segment", "op": "in", "value": list(filters.segments)})
    if filters.clusters:
        where.append({"column": "cluster_label", "op": "in", "value": list(filters.clusters)})
    if filters.engagement_segments:
        where.append({"column": "engagement_segment", "op": "in", "value": list(filters.engagement_segments)})
    for name_, column in (("r_score", "r_score"), ("f_score", "f_score"), ("m_score", "m_score"),
                          ("p_alive", "p_alive"), ("clv", "predicted_clv")):
        low, high = getattr(filters, f"{name_}_min"), getattr(filters, f"{name_}_max")
        if low is not None:
            where.append({"column": column, "op": ">=", "value": low})
        if high is not None:
            where.append({"column": column, "op": "<=", "value": high})
    if not where:
        raise JourneyEditError(f"audience {name!r} needs a filter on segment, cluster, engagement segment, scores, "
                               "p_alive or CLV to "
                               "trigger a journey (country and consent alone select everyone at once)")
    audience: dict[str, Any] = {"require_consent": filters.consent == "opted_in"}
    if filters.countries:
        audience["where"] = [{"column": "country_code", "op": "in", "value": list(filters.countries)}]
    return {"type": "value_condition", "where": where}, audience


class FolderJourneys:
    """Journeys as YAML files in a folder (local or s3://), through rfmlake.journeys."""

    available = True
    reason = ""

    def __init__(self, folder: str | Path, lake: Lake, settings: Settings) -> None:
        self.folder = Storage.normalize(folder)
        self.storage = Storage.for_location(self.folder)
        self.lake = lake
        self.settings = settings

    def _set(self):  # noqa: ANN202 - a JourneySet
        from rfmlake.journeys.run import segment_names
        from rfmlake.journeys.spec import load_journeys

        return load_journeys(self.folder, segment_names=segment_names(self.settings))

    @staticmethod
    def _summary(journey: Any) -> JourneySummary:
        return JourneySummary(
            id=journey.id, name=journey.name, status=journey.status, description=journey.description,
            trigger=_describe_trigger(journey.trigger), holdout_percent=journey.holdout_percent,
            variants=[(v.id, v.percent) for v in journey.variants], steps=[(s.id, s.action) for s in journey.steps],
            goal_days=journey.goal.within_days, source=journey.source)

    def list(self) -> list[JourneySummary]:
        return [self._summary(j) for j in self._set().journeys]

    def get(self, journey_id: str) -> JourneySummary:
        from rfmlake.journeys.errors import JourneyError

        try:
            return self._summary(self._set().get(journey_id))
        except JourneyError as exc:
            raise JourneyEditError(str(exc)) from None

    def _path(self, journey_id: str) -> str:
        return Storage.join(self.folder, f"{journey_id}.yaml")

    def create(self, *, template_id: str, journey_id: str, name: str, holdout_percent: float,
               variants: list[tuple[str, float]], audience: tuple[str, AudienceFilters] | None = None
               ) -> JourneySummary:
        from rfmlake.journeys.errors import JourneyError
        from rfmlake.journeys.spec import check_references, parse_journey

        journeys = self._set()
        if any(j.id == journey_id for j in journeys.journeys):
            raise JourneyEditError(f"a journey with id {journey_id!r} exists already")
        try:
            template = journeys.get(template_id)
        except JourneyError as exc:
            raise JourneyEditError(str(exc)) from None
        data = template.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"source"})
        variant_ids = {v for v, _ in variants}
        for step in data["steps"]:  # messages a removed variant had of its own fall back to the default
            for action in ("email", "sms"):
                if isinstance(step.get(action), dict) and "by_variant" in step[action]:
                    step[action]["by_variant"] = {k: v for k, v in step[action]["by_variant"].items()
                                                  if k in variant_ids}
        data.update(id=journey_id, name=name, status="paused", holdout_percent=holdout_percent,
                    variants=[{"id": v, "percent": p} for v, p in variants], salt=journey_id,
                    description=f"Created in the marketing app from {template_id}." +
                    (f" Triggered by the saved audience {audience[0]!r}." if audience else ""))
        if audience is not None:
            data["trigger"], data["audience"] = audience_trigger(*audience)
        uri = self._path(journey_id)
        try:
            journey = parse_journey(data, uri)
            check_references(journey, journeys.templates, None)
        except JourneyError as exc:
            raise JourneyEditError(str(exc)) from None
        header = (f"# Created in the marketing app (rfmlake app) from {template_id}; edit freely: journeys are "
                  "code (docs/journeys.md).\n")
        self.storage.write_bytes(uri, (header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).encode())
        return self.get(journey_id)

    def set_status(self, journey_id: str, status: str) -> JourneySummary:
        from rfmlake.journeys.errors import JourneyError
        from rfmlake.journeys.spec import parse_journey, with_status

        if status not in ("active", "paused"):
            raise JourneyEditError(f"status must be active or paused, not {status!r}")
        uri = self.get(journey_id).source  # the file the journey came from
        text = (self.storage.read_bytes(uri) or b"").decode("utf-8")
        text = with_status(text, status)  # only the status line changes
        try:
            parse_journey(yaml.safe_load(text), uri)
        except JourneyError as exc:
            raise JourneyEditError(str(exc)) from None
        self.storage.write_bytes(uri, text.encode())
        return self.get(journey_id)

    def results(self, journey_id: str) -> JourneyResults:
        from rfmlake.journeys.errors import JourneyError
        from rfmlake.journeys.report import load_results

        try:
            rows = load_results(self.lake, journey_id, all_days=True)
        except JourneyError:
            return JourneyResults(journey_id, None)
        latest = max(str(r["day"]) for r in rows) if rows else None
        confidence = rows[0].get("confidence_level") if rows else None
        return JourneyResults(journey_id, latest, rows, confidence)


def journeys_port(lake: Lake, settings: Settings, folder: str | Path | None) -> JourneyPort:
    if importlib.util.find_spec("rfmlake.journeys") is None:
        return UnavailableJourneys("journeys are not part of this rfmlake build (the rfmlake.journeys package "
                                   "is missing)")
    if folder is None:
        from rfmlake.journeys.run import default_journeys_dir

        folder = settings.journeys.dir or default_journeys_dir()  # type: ignore[attr-defined]
    if folder is None:
        return UnavailableJourneys("no journeys folder: start the app with --journeys DIR, or set journeys.dir "
                                   "in the settings")
    return FolderJourneys(folder, lake, settings)
