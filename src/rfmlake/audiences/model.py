"""A saved audience: a name and filters over the people the lake knows by a customer id (every scored
buyer, and every person in gold.customer_engagement who never bought): RFM segment, cluster, scores,
p_alive, CLV, engagement segment and activity, country, consent. Filters are data, never SQL text:
rfmlake.audiences.query compiles them to a parameterized query."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rfmlake.errors import RfmlakeError

AUDIENCE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
Consent = Literal["opted_in", "any", "not_opted_in"]


class AudienceError(RfmlakeError):
    """An audience definition is invalid or cannot be saved or resolved."""


class AudienceFilters(BaseModel):
    """Every filter is optional; an empty one matches every customer, buyers and people who never
    bought alike (consent aside). A filter on an RFM or value column matches buyers only (people who
    never bought have none). Within a list the values OR together; different filters AND together."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    segments: tuple[str, ...] = Field((), description="RFM segments (rfm_segment)")
    clusters: tuple[str, ...] = Field((), description="KMeans clusters (cluster_label)")
    r_score_min: int | None = Field(None, ge=1, le=10)
    r_score_max: int | None = Field(None, ge=1, le=10)
    f_score_min: int | None = Field(None, ge=1, le=10)
    f_score_max: int | None = Field(None, ge=1, le=10)
    m_score_min: int | None = Field(None, ge=1, le=10)
    m_score_max: int | None = Field(None, ge=1, le=10)
    p_alive_min: float | None = Field(None, ge=0, le=1, description="BG/NBD probability the customer is active")
    p_alive_max: float | None = Field(None, ge=0, le=1)
    clv_min: float | None = Field(None, ge=0, description="predicted CLV over the value horizon, reporting currency")
    clv_max: float | None = Field(None, ge=0)
    engagement_segments: tuple[str, ...] = Field(
        (), description="engagement segments (gold.customer_engagement.engagement_segment), e.g. 'Abandoned a cart'")
    min_events: int | None = Field(None, ge=0, description="engagement: at least this many web/app events")
    active_within_days: int | None = Field(None, ge=1, le=3650,
                                           description="engagement: an event within this many days of as_of")
    countries: tuple[str, ...] = Field((), description="ISO country codes (country_code)")
    consent: Consent = Field("opted_in", description="opted_in: only customers with marketing consent")

    @model_validator(mode="after")
    def _ranges(self) -> AudienceFilters:
        for name in ("r_score", "f_score", "m_score", "p_alive", "clv"):
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if low is not None and high is not None and low > high:
                raise ValueError(f"{name}: the minimum {low:g} is above the maximum {high:g}")
        return self

    @property
    def uses_value(self) -> bool:
        return any(v is not None for v in (self.p_alive_min, self.p_alive_max, self.clv_min, self.clv_max))

    @property
    def uses_engagement(self) -> bool:
        return bool(self.engagement_segments) or self.uses_activity

    @property
    def uses_activity(self) -> bool:
        """Filters on the profile's event counts (min_events, active_within_days)."""
        return self.min_events is not None or self.active_within_days is not None

    def describe(self) -> list[str]:
        """The filters in words, for lists and the audit log."""
        parts: list[str] = []
        if self.segments:
            parts.append("segment in " + ", ".join(self.segments))
        if self.clusters:
            parts.append("cluster in " + ", ".join(self.clusters))
        for name, label in (("r_score", "R"), ("f_score", "F"), ("m_score", "M"), ("p_alive", "p_alive"),
                            ("clv", "CLV")):
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if low is not None and high is not None:
                parts.append(f"{label} {low:g}..{high:g}")
            elif low is not None:
                parts.append(f"{label} >= {low:g}")
            elif high is not None:
                parts.append(f"{label} <= {high:g}")
        if self.engagement_segments:
            parts.append("engagement in " + ", ".join(self.engagement_segments))
        if self.min_events is not None:
            parts.append(f"at least {self.min_events} events")
        if self.active_within_days is not None:
            parts.append(f"active within {self.active_within_days} days")
        if self.countries:
            parts.append("country in " + ", ".join(self.countries))
        parts.append({"opted_in": "marketing consent", "any": "any consent",
                      "not_opted_in": "without marketing consent"}[self.consent])
        return parts


def parse_filters(data: dict) -> AudienceFilters:
    """Filters from a mapping, with one clear message per wrong field."""
    try:
        return AudienceFilters.model_validate(data)
    except ValidationError as exc:
        problems = []
        for item in exc.errors():
            where = ".".join(str(p) for p in item["loc"]) or "filters"
            problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
        raise AudienceError("; ".join(problems)) from None


def audience_id(name: str) -> str:
    """The id of an audience named `name`: lower case, words joined by underscores."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    if not slug or not slug[0].isalpha():
        slug = f"audience_{slug}".strip("_")
    return slug[:63]
