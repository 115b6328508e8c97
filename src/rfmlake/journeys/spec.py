"""Journeys as code: the YAML files of a `journeys/` folder, validated with pydantic.

A journey has a trigger (entered or exited a segment or cluster, migrated between segments, or a
value condition on gold.customer_value), audience filters, a holdout share and A/B/n variants,
steps (email, SMS, outbound call, EventBridge event, wait, branch, exit), frequency caps and quiet
hours per channel, and a goal. Email templates live in `journeys/templates/<name>.yaml`.

Every error names the file and the key (`steps.2.branch.then: ...`), as the settings do;
docs/journeys.md is the reference.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rfmlake.journeys.errors import JourneyError

TEMPLATES_DIR = "templates"
ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
STEP_ID_PATTERN = r"^[a-z][a-z0-9_]{0,40}$"
EXIT = "exit"  # a branch target: leave the journey
NEXT = "next"  # a branch target: the following step
SMS_MAX = 1600  # SendTextMessage MessageBody
CHANNELS: tuple[str, ...] = ("email", "sms", "call", "event")
DIMENSIONS: tuple[str, ...] = ("rfm_segment", "cluster_label", "engagement_segment")
Dimension = Literal["rfm_segment", "cluster_label", "engagement_segment"]
# gold.customer_engagement's segments (dbt/models/marts/_customer_engagement.yml): 'Buyer', or for
# people who never bought, what they did on the site.
ENGAGEMENT_SEGMENTS: tuple[str, ...] = ("Buyer", "Abandoned a cart", "Browsing, never bought",
                                        "Lapsed browser, never bought", "Signed up, never visited")

# Columns a condition may name, by the table they come from (the engine joins them per customer).
RFM_COLUMNS: tuple[str, ...] = ("rfm_segment", "cluster_label", "recency_days", "frequency", "monetary",
                                "avg_order_value", "r_score", "f_score", "m_score", "rfm_cell")
# gold.customer_value names three columns after the horizon (predicted_clv_365d); conditions use
# the names without it.
VALUE_COLUMNS: tuple[str, ...] = ("p_alive", "predicted_clv", "expected_orders", "expected_order_value",
                                  "discounted_margin_clv", "repeat_orders")
CUSTOMER_COLUMNS: tuple[str, ...] = ("country_code",)
# gold.customer_engagement, per person (keyed by the primary customer id): people who never bought
# have these and no RFM columns.
ENGAGEMENT_COLUMNS: tuple[str, ...] = ("engagement_segment", "engagement_recency_days", "sessions", "sessions_30d",
                                       "sessions_90d", "page_views", "product_views", "add_to_carts",
                                       "carts_abandoned", "carts_abandoned_90d", "lifetime_orders")
AUDIENCE_COLUMNS: tuple[str, ...] = RFM_COLUMNS + VALUE_COLUMNS + CUSTOMER_COLUMNS + ENGAGEMENT_COLUMNS
# The customer's top products (gold.product_recommendations, best first) a message may name:
# {{recommendations}} lists the first RECOMMENDED_IN_LIST names, {{recommendation_<i>}} is the i-th name.
RECOMMENDATION_SLOTS = 5
RECOMMENDED_IN_LIST = 3
RECOMMENDATION_FIELDS: tuple[str, ...] = ("recommendations",
                                          *(f"recommendation_{i}" for i in range(1, RECOMMENDATION_SLOTS + 1)))
# What a message may say about the customer: never an address or a name (PII stays in bronze).
TEMPLATE_FIELDS: tuple[str, ...] = ("customer_id", "segment", "cluster_label", "engagement_segment", "recency_days",
                                    "frequency", "monetary", "journey_id", "journey_name", "variant", "step_id",
                                    *RECOMMENDATION_FIELDS)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# SES fills these itself when a contact list is configured (list management).
_SES_PLACEHOLDERS = frozenset({"amazonSESUnsubscribeUrl"})
_STATUS_LINE = re.compile(r"^status:[^\n]*$", re.MULTILINE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def placeholders(text: str) -> list[str]:
    return _PLACEHOLDER.findall(text)


def _check_placeholders(text: str) -> str:
    unknown = sorted({p for p in placeholders(text) if p not in TEMPLATE_FIELDS and p not in _SES_PLACEHOLDERS})
    if unknown:
        raise ValueError(f"unknown placeholder(s) {', '.join('{{' + u + '}}' for u in unknown)}; "
                         f"allowed: {', '.join(TEMPLATE_FIELDS)}")
    return text


def render(text: str, fields: dict[str, Any]) -> str:
    """Fill `{{field}}` placeholders; SES's own placeholders are left for SES."""
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in _SES_PLACEHOLDERS:
            return match.group(0)
        value = fields.get(name)
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(fill, text)


# ---------------------------------------------------------------------------------- conditions
Scalar = float | int | str | bool


class Condition(_Strict):
    """`column op value`, e.g. {column: p_alive, op: "<", value: 0.3}; null values never match."""

    column: str
    op: Literal["=", "!=", "<", "<=", ">", ">=", "in", "not in"]
    value: Scalar | list[Scalar]

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in ("in", "not in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value, e.g. [Champions, Loyal]")
        if self.op not in ("in", "not in") and isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs one value, not a list (use 'in')")
        numeric = isinstance(self.value, int | float) and not isinstance(self.value, bool)
        if self.op in ("<", "<=", ">", ">=") and not numeric:
            raise ValueError(f"op {self.op!r} compares numbers; got {self.value!r}")
        return self


def _check_columns(conditions: list[Condition], allowed: tuple[str, ...]) -> list[Condition]:
    for i, condition in enumerate(conditions):
        if condition.column not in allowed:
            raise ValueError(f"condition {i}: unknown column {condition.column!r}; allowed: {', '.join(allowed)}")
    return conditions


# ------------------------------------------------------------------------------------- triggers
class SegmentEntered(_Strict):
    """Customers in `segment` at an as_of date who were not in it at the previous one."""

    type: Literal["segment_entered"]
    segment: str = Field(min_length=1)
    dimension: Dimension = "rfm_segment"
    include_existing: bool = Field(
        False, description="on the journey's first run, customers already in the segment enter too")


class SegmentExited(_Strict):
    """Customers in `segment` at the previous as_of date and not in it now (or no longer scored)."""

    type: Literal["segment_exited"]
    segment: str = Field(min_length=1)
    dimension: Dimension = "rfm_segment"


class SegmentMigrated(_Strict):
    """Customers in one of `from` at the previous as_of date and in one of `to` now."""

    type: Literal["segment_migrated"]
    from_segments: list[str] = Field(alias="from", min_length=1)
    to_segments: list[str] = Field(alias="to", min_length=1)
    dimension: Dimension = "rfm_segment"

    @model_validator(mode="after")
    def _disjoint(self) -> SegmentMigrated:
        both = sorted(set(self.from_segments) & set(self.to_segments))
        if both:
            raise ValueError(f"{both} is in both 'from' and 'to': staying in a segment is not a migration")
        return self


class ValueCondition(_Strict):
    """Customers for whom every condition holds at the latest run (gold.customer_rfm, gold.customer_value
    and gold.customer_engagement joined per person), e.g. a high predicted CLV with p_alive below a
    threshold, or a cart abandoned by someone who never bought. A customer enters when the condition
    first holds for them (and again only as `reentry_after_days` allows)."""

    type: Literal["value_condition"]
    where: list[Condition] = Field(min_length=1)

    @field_validator("where")
    @classmethod
    def _columns(cls, value: list[Condition]) -> list[Condition]:
        return _check_columns(value, RFM_COLUMNS + VALUE_COLUMNS + ENGAGEMENT_COLUMNS)


Trigger = Annotated[SegmentEntered | SegmentExited | SegmentMigrated | ValueCondition, Field(discriminator="type")]


class Audience(_Strict):
    where: list[Condition] = Field(default_factory=list)
    require_consent: bool = Field(
        True, description="only customers with marketing consent enter (holdout included, so the groups compare)")

    @field_validator("where")
    @classmethod
    def _columns(cls, value: list[Condition]) -> list[Condition]:
        return _check_columns(value, AUDIENCE_COLUMNS)


# ---------------------------------------------------------------------------------------- steps
class EmailStep(_Strict):
    template: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="journeys/templates/<template>.yaml")
    by_variant: dict[str, str] = Field(default_factory=dict, description="variant -> another template")

    def template_for(self, variant: str) -> str:
        return self.by_variant.get(variant, self.template)


class SmsStep(_Strict):
    text: str = Field(min_length=1)
    by_variant: dict[str, str] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _check_sms(value)

    @field_validator("by_variant")
    @classmethod
    def _texts(cls, value: dict[str, str]) -> dict[str, str]:
        return {k: _check_sms(v) for k, v in value.items()}

    def text_for(self, variant: str) -> str:
        return self.by_variant.get(variant, self.text)


FIELD_MAX = 64  # the longest a filled placeholder is (a product name is cut to it)
# ... but for the list of products: RECOMMENDED_IN_LIST names and their separators
_LONGER_FIELDS = {"recommendations": RECOMMENDED_IN_LIST * (FIELD_MAX + 2)}


def _check_sms(text: str) -> str:
    _check_placeholders(text)
    # The longest a rendered text can be: every placeholder filled as long as it can be.
    longest = len(_PLACEHOLDER.sub(lambda m: "x" * _LONGER_FIELDS.get(m.group(1), FIELD_MAX), text))
    if not text.strip() or longest > SMS_MAX:
        raise ValueError(f"an SMS must have 1..{SMS_MAX} characters with its placeholders filled (up to {longest})")
    return text


class CallStep(_Strict):
    """An Amazon Connect Outbound Campaigns v2 request: the campaign dials (or texts, or emails)."""

    campaign_id: str = Field(min_length=1, max_length=256)
    channel: Literal["telephony", "sms", "email"] = "telephony"
    template_arn: str | None = Field(None, description="the Connect message template (sms and email channels)")


class EventStep(_Strict):
    detail_type: str = Field(min_length=1, max_length=128)


class WaitStep(_Strict):
    days: int = Field(ge=1, le=365)


class BranchStep(_Strict):
    condition: Literal["ordered", "left_segment"] = Field(
        alias="if", description="ordered: a completed order since entering; left_segment: no longer in the "
        "trigger's segment (or no longer matching the value condition)")
    then: str = NEXT
    otherwise: str = Field(NEXT, alias="else")


class ExitStep(_Strict):
    pass


_ACTIONS = ("email", "sms", "call", "event", "wait", "branch", "exit")


class Step(_Strict):
    id: str = Field(pattern=STEP_ID_PATTERN)
    email: EmailStep | None = None
    sms: SmsStep | None = None
    call: CallStep | None = None
    event: EventStep | None = None
    wait: WaitStep | None = None
    branch: BranchStep | None = None
    exit: ExitStep | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [name for name in _ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"step {self.id!r} needs exactly one of {', '.join(_ACTIONS)} (got {given or 'none'})")
        return self

    @property
    def action(self) -> str:
        return next(name for name in _ACTIONS if getattr(self, name) is not None)

    @property
    def channel(self) -> str | None:
        """The channel a sending step uses (caps and quiet hours are per channel), else None."""
        return self.action if self.action in CHANNELS else None


# ------------------------------------------------------------------------------ caps and goal
class QuietHours(_Strict):
    """No sends from `start` to `end` (local time in `timezone`); a window may span midnight."""

    start: time
    end: time
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Berlin)") from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty (or the whole day)")
        return self

    def covers(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class ChannelLimits(_Strict):
    """A frequency cap (at most `max_messages` to a customer on this channel in `per_days` days,
    counting every journey's sends) and quiet hours."""

    max_messages: int | None = Field(None, ge=1)
    per_days: int = Field(7, ge=1, le=365)
    quiet_hours: QuietHours | None = None


class Goal(_Strict):
    type: Literal["completed_order"] = "completed_order"
    within_days: int = Field(14, ge=1, le=365, description="days after entering in which an order counts")
    exit_on_goal: bool = Field(True, description="a treated customer who converts leaves the journey")


class Variant(_Strict):
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,15}$")
    percent: float = Field(gt=0, le=100, description="share of the treated (non-holdout) customers")


class Journey(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    status: Literal["active", "paused"] = "active"
    start_date: date | None = None
    end_date: date | None = None
    trigger: Trigger
    audience: Audience = Audience()
    holdout_percent: float = Field(10.0, ge=0, lt=100)
    salt: str = Field("", max_length=64, description="changing it draws new groups")
    variants: list[Variant] = Field(default_factory=lambda: [Variant(id="A", percent=100)], min_length=1)
    reentry_after_days: int | None = Field(
        None, ge=1, description="null: a customer enters once; N: again N days after their last entry")
    channels: dict[Literal["email", "sms", "call", "event"], ChannelLimits] = Field(default_factory=dict)
    goal: Goal = Goal()
    steps: list[Step] = Field(min_length=1)
    source: str = Field("", exclude=True)  # the file it came from

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: list[Variant]) -> list[Variant]:
        ids = [v.id for v in value]
        if len(set(ids)) != len(ids):
            raise ValueError(f"variant ids must be unique: {ids}")
        if "holdout" in {i.lower() for i in ids}:
            raise ValueError("'holdout' is the control group's name, not a variant id")
        total = sum(v.percent for v in value)
        if abs(total - 100.0) > 1e-9:
            raise ValueError(f"variant percents must add up to 100, got {total:g}")
        return value

    @model_validator(mode="after")
    def _steps(self) -> Journey:
        ids = [s.id for s in self.steps]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"steps: duplicate step id(s) {duplicates}")
        variant_ids = {v.id for v in self.variants}
        for index, step in enumerate(self.steps):
            if step.branch is not None:
                for key, target in (("then", step.branch.then), ("else", step.branch.otherwise)):
                    if target in (EXIT, NEXT):
                        continue
                    if target not in ids:
                        raise ValueError(f"steps.{index}.branch.{key}: no step {target!r} (steps: {ids}, or "
                                         f"'{NEXT}' / '{EXIT}')")
                    if ids.index(target) <= index:
                        raise ValueError(f"steps.{index}.branch.{key}: {target!r} is not after this step; "
                                         "branches go forward only, so a journey always ends")
            for action in ("email", "sms"):
                overrides = getattr(getattr(step, action) or object(), "by_variant", {})
                unknown = sorted(set(overrides) - variant_ids)
                if unknown:
                    raise ValueError(f"steps.{index}.{action}.by_variant: unknown variant(s) {unknown}; "
                                     f"variants: {sorted(variant_ids)}")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self

    # -- derived ---------------------------------------------------------------------------------
    @property
    def sending_channels(self) -> set[str]:
        return {s.channel for s in self.steps if s.channel}

    @property
    def digest(self) -> str:
        """What assignment and progress depend on; recorded with the state so a change is visible."""
        payload = self.model_dump(mode="json", by_alias=True)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def step_index(self, step_id: str) -> int:
        return [s.id for s in self.steps].index(step_id)


class EmailTemplate(_Strict):
    subject: str = Field(min_length=1, max_length=998)
    text: str = Field(min_length=1)
    html: str | None = None
    name: str = Field("", exclude=True)

    @field_validator("subject", "text", "html")
    @classmethod
    def _fields(cls, value: str | None) -> str | None:
        return None if value is None else _check_placeholders(value)


class JourneySet(BaseModel):
    """The journeys of a folder and the email templates they use."""

    model_config = ConfigDict(frozen=True)

    journeys: tuple[Journey, ...]
    templates: dict[str, EmailTemplate]
    folder: str

    def get(self, journey_id: str) -> Journey:
        for journey in self.journeys:
            if journey.id == journey_id:
                return journey
        raise JourneyError(f"no journey {journey_id!r} in {self.folder} (journeys: "
                           f"{', '.join(j.id for j in self.journeys) or 'none'})")


# -------------------------------------------------------------------------------------- loading
def _format(error: ValidationError, source: str) -> str:
    lines = [f"invalid journey in {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "union_tag_invalid":
            message = f"unknown type {item['input'].get('type')!r}; one of {item['ctx']['expected_tags']}"
        elif item["type"] == "union_tag_not_found":
            message = "needs a 'type' (segment_entered, segment_exited, segment_migrated, value_condition)"
        lines.append(f"  {key}: {message}" if key else f"  {message}")
    return "\n".join(lines)


def _read_yaml(name: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise JourneyError(f"{name} is not valid YAML: {exc}") from None


def parse_journey(data: Any, source: str = "journey") -> Journey:
    if not isinstance(data, dict):
        raise JourneyError(f"{source} must hold a mapping (id, name, trigger, steps, ...)")
    try:
        return Journey.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise JourneyError(_format(exc, source)) from None


def parse_template(data: Any, name: str, source: str) -> EmailTemplate:
    if not isinstance(data, dict):
        raise JourneyError(f"{source} must hold a mapping (subject, text, html)")
    try:
        return EmailTemplate.model_validate({**data, "name": name})
    except ValidationError as exc:
        raise JourneyError(_format(exc, source).replace("invalid journey", "invalid email template")) from None


def with_status(text: str, status: str) -> str:
    """A journey file's text with its top-level `status:` set: only that line changes (or is added), so
    the file's comments and layout stay as written (the marketing app's start and pause, the deployed
    folder's seeding)."""
    if _STATUS_LINE.search(text):
        return _STATUS_LINE.sub(f"status: {status}", text)
    return text.rstrip("\n") + f"\nstatus: {status}\n"


def load_journeys(folder: str | Path, *, segment_names: tuple[str, ...] | None = None) -> JourneySet:
    """Every `*.yaml` journey of `folder` (a local folder or an s3:// prefix) and its templates.

    `segment_names` (the rule table's) are checked against the segments triggers and filters name."""
    from rfmlake.lake.storage import Storage, StorageError

    location = str(folder)
    storage = Storage.for_location(location)
    try:
        # An S3 prefix is no object: asking S3 about it (HEAD on the folder's own name) needs
        # s3:GetObject on that name, which no role has (the marketing app's recorded IAM check found it).
        if not storage.s3 and not storage.is_dir(location):
            raise JourneyError(f"journeys folder {location} does not exist")
        files = [u for u in storage.files(location) if u.endswith((".yaml", ".yml"))]
        template_files = [u for u in storage.files(Storage.join(location, TEMPLATES_DIR))
                          if u.endswith((".yaml", ".yml"))]
        texts = {uri: (storage.read_bytes(uri) or b"").decode("utf-8") for uri in [*files, *template_files]}
    except StorageError as exc:
        raise JourneyError(f"cannot read the journeys folder: {exc}") from None
    except UnicodeDecodeError as exc:
        raise JourneyError(f"a journey file in {location} is not UTF-8: {exc}") from None
    templates: dict[str, EmailTemplate] = {}
    for uri in template_files:
        name = uri.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        templates[name] = parse_template(_read_yaml(uri, texts[uri]), name, uri)
    journeys: list[Journey] = []
    for uri in files:
        journey = parse_journey(_read_yaml(uri, texts[uri]), uri)
        check_references(journey, templates, segment_names)
        journeys.append(journey)
    ids = [j.id for j in journeys]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise JourneyError(f"journey id(s) {duplicates} appear in more than one file of {location}")
    return JourneySet(journeys=tuple(sorted(journeys, key=lambda j: j.id)), templates=templates, folder=location)


def check_references(journey: Journey, templates: dict[str, EmailTemplate],
                     segment_names: tuple[str, ...] | None) -> None:
    """What a single file cannot check: templates exist, named RFM segments exist in the rule table."""
    problems: list[str] = []
    for index, step in enumerate(journey.steps):
        if step.email is None:
            continue
        for name in {step.email.template, *step.email.by_variant.values()}:
            if name not in templates:
                problems.append(f"steps.{index}.email: no template {name!r} in {TEMPLATES_DIR}/ "
                                f"(templates: {', '.join(sorted(templates)) or 'none'})")
    trigger = journey.trigger
    engagement: list[tuple[str, str]] = []  # a fixed set (dbt), checked whatever the rule table is
    if isinstance(trigger, SegmentEntered | SegmentExited) and trigger.dimension == "engagement_segment":
        engagement.append(("trigger.segment", trigger.segment))
    if isinstance(trigger, SegmentMigrated) and trigger.dimension == "engagement_segment":
        engagement += [("trigger.from", s) for s in trigger.from_segments]
        engagement += [("trigger.to", s) for s in trigger.to_segments]
    for key, condition in [("audience.where", c) for c in journey.audience.where] + \
            [("trigger.where", c) for c in (trigger.where if isinstance(trigger, ValueCondition) else [])]:
        if condition.column == "engagement_segment":
            values = condition.value if isinstance(condition.value, list) else [condition.value]
            engagement += [(f"{key}.engagement_segment", str(v)) for v in values]
    for key, segment in engagement:
        if segment not in ENGAGEMENT_SEGMENTS:
            problems.append(f"{key}: {segment!r} is not an engagement segment ({', '.join(ENGAGEMENT_SEGMENTS)})")
    if segment_names is not None:
        named: list[tuple[str, str]] = []
        if isinstance(trigger, SegmentEntered | SegmentExited) and trigger.dimension == "rfm_segment":
            named.append(("trigger.segment", trigger.segment))
        if isinstance(trigger, SegmentMigrated) and trigger.dimension == "rfm_segment":
            named += [("trigger.from", s) for s in trigger.from_segments]
            named += [("trigger.to", s) for s in trigger.to_segments]
        conditions = list(journey.audience.where)
        if isinstance(trigger, ValueCondition):
            conditions += trigger.where
        for condition in conditions:
            if condition.column == "rfm_segment":
                values = condition.value if isinstance(condition.value, list) else [condition.value]
                named += [("audience.where.rfm_segment", str(v)) for v in values]
        for key, segment in named:
            if segment not in segment_names:
                problems.append(f"{key}: {segment!r} is not an RFM segment of the rule table "
                                f"({', '.join(segment_names)})")
    if problems:
        raise JourneyError(f"invalid journey in {journey.source}:\n" + "\n".join(f"  {p}" for p in problems))
