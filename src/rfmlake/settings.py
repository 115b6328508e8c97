"""Typed settings. Built by entry points from a YAML file (and env overrides) and passed down;
nothing here is read at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rfmlake.errors import ConfigError

if TYPE_CHECKING:
    import boto3

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RfmSettings(_Strict):
    score_bins: int = Field(5, ge=2, le=10, description="number of score bins n; scores are 1..n")
    lookback_days: int | None = Field(None, ge=1, description="only orders this many days before as_of count")
    counted_statuses: tuple[str, ...] = ("completed",)
    returns_policy: Literal["exclude", "net"] = "exclude"
    source: Literal["orders", "events"] = Field(
        "orders", description="what counts as a purchase: the orders, or the clickstream's purchase events (a store "
        "whose only history is events); docs/pipeline.md")
    purchase_event_types: tuple[str, ...] = Field(
        ("purchase",), description="event types that are purchases when source is events (compared lower-case)")

    @field_validator("purchase_event_types")
    @classmethod
    def _event_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(dict.fromkeys(v.strip().lower() for v in value))
        if not cleaned or any(not v for v in cleaned):
            raise ValueError("list at least one non-empty event type, e.g. [purchase]")
        return cleaned

    @field_validator("counted_statuses")
    @classmethod
    def _known_statuses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from rfmlake.contract.entities import ORDER_STATUSES

        unknown = sorted(set(value) - set(ORDER_STATUSES))
        if unknown:
            raise ValueError(f"unknown status {unknown}; allowed: {list(ORDER_STATUSES)}")
        if not value:
            raise ValueError("at least one status must count")
        return value


class SegmentationSettings(_Strict):
    k: int | None = Field(None, ge=2, le=20, description="fixed number of clusters; null = choose automatically")
    k_min: int = Field(3, ge=2, le=20)
    k_max: int = Field(8, ge=2, le=20)
    min_cluster_share: float = Field(
        0.02, ge=0.0, lt=0.5, description="automatic k: every cluster must hold at least this share of customers")
    min_cluster_size: int = Field(
        10, ge=1, le=100_000, description="customers every cluster needs; below k_min clusters of this size, "
        "clustering is skipped")
    random_state: int = 42
    silhouette_sample_size: int = Field(10_000, ge=100)
    rules_file: str | None = Field(None, description="YAML segment rule table replacing the shipped one")
    refit: bool = Field(False, description="fit a new model even if one is stored")


class ValueSettings(_Strict):
    horizon_days: int = Field(
        365, ge=1, le=3650, description="days ahead for expected_orders_<h>d and predicted_clv_<h>d"
    )
    holdout_days: int | None = Field(
        None, ge=7, le=3650,
        description="holdout period of the calibration check; null = min(horizon, a third of the history)",
    )
    purchase_period: Literal["day", "order"] = Field(
        "day", description="what one purchase is for BG/NBD and Gamma-Gamma: a day with orders (as in the "
        "literature and lifetimes / PyMC-Marketing) or each order")
    margin: float = Field(1.0, gt=0.0, le=1.0,
                          description="gross margin as a share of revenue, for discounted_margin_clv_<h>d")
    annual_discount_rate: float = Field(0.10, ge=0.0, le=1.0,
                                        description="yearly rate discounting discounted_margin_clv_<h>d to as_of")
    min_customers: int = Field(50, ge=2, description="below this many customers the value models are skipped")
    min_repeat_customers: int = Field(
        20, ge=2, description="below this many customers with a repeat purchase the value models are skipped")
    refit_every_days: int = Field(
        7, ge=0, le=3650, description="fit the value models again when as_of is at least this many days after the "
        "as_of of the last fit with the same settings (else that model predicts); 0 or 1 = every run")


class PersonalizeSettings(_Strict):
    enabled: bool = Field(False, description="deploy the Amazon Personalize dataset group, import jobs and "
                          "batch inference (infra/), and import its batch results into gold.product_recommendations")
    recipe: str = Field("aws-user-personalization-v2", pattern=r"^[a-z0-9-]{1,63}$",
                        description="Personalize recipe of the solution (arn:aws:personalize:::recipe/<recipe>)")
    num_results: int = Field(10, ge=1, le=500, description="recommendations per user in the batch inference job")
    exchange_uri: str | None = Field(
        None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        description="S3 prefix Personalize reads the exported datasets from and writes batch results to (the "
        "Personalize stack's ExchangeUri output); the recommendations stage exports each run there")
    solution_arn: str | None = Field(
        None, pattern=r"^arn:aws[a-z-]*:personalize:[a-z0-9-]+:\d{12}:solution/[A-Za-z0-9_-]{1,63}$",
        description="the solution whose newest batch inference results the stage imports (the stack's SolutionArn)")


class RecommendationSettings(_Strict):
    n: int = Field(10, ge=1, le=100, description="recommendations kept per customer in gold.product_recommendations")
    n_neighbors: int = Field(50, ge=1, le=1000, description="most similar products kept per product")
    view_weight: float = Field(0.5, ge=0.0, le=1.0, description="weight of a product view against a purchase (1)")
    category_weight: float = Field(3.0, ge=0.0, le=100.0, description="weight of the category co-purchase "
                                   "term of the similarity (0 = products' own co-purchase only)")
    brand_weight: float = Field(3.0, ge=0.0, le=100.0, description="weight of the brand co-purchase term")
    max_per_category: int | None = Field(
        4, ge=1, le=100, description="at most this many of one category in a customer's list; null = no cap")
    test_days: int = Field(90, ge=7, le=3650, description="days before as_of held out by the offline evaluation "
                           "(at most a third of the history)")
    bootstrap_samples: int = Field(1000, ge=100, le=100_000, description="resamples of the evaluation's interval")
    evaluate_every_days: int = Field(
        7, ge=0, le=3650, description="run the offline evaluation when as_of is at least this many days after the "
        "last evaluation with the same parameters (else the report carries that one); 0 or 1 = every run")
    refit_every_days: int = Field(
        7, ge=0, le=3650, description="fit the model again when as_of is at least this many days after the as_of of "
        "the last fit with the same settings; in between the stored fit scores only the people whose purchases, "
        "views or segment changed, and everyone else keeps their list; 0 or 1 = every run")
    random_state: int = 42
    personalize: PersonalizeSettings = PersonalizeSettings()


_ENCODINGS = ("utf-8", "latin-1", "utf-16")


class IngestSettings(_Strict):
    engine: Literal["auto", "duckdb", "spark"] = Field(
        "auto", description="what runs landing -> bronze -> silver: duckdb (one process, the local default), "
        "spark (local pyspark; Glue always runs Spark); auto = duckdb for a local lake, spark otherwise")
    earliest_date: date = Field(
        date(1970, 1, 1), description="timestamps before this date are quarantined as implausible_date")
    max_days_ahead: int = Field(
        1, ge=0, le=3650, description="timestamps more than this many days after the run date are implausible_date")
    encodings: dict[str, str] = Field(
        default_factory=dict, description="text encoding per entity (utf-8 default; latin-1, utf-16)")

    @field_validator("encodings")
    @classmethod
    def _known_encodings(cls, value: dict[str, str]) -> dict[str, str]:
        from rfmlake.contract.entities import ENTITIES

        for entity_name, encoding in value.items():
            if entity_name not in ENTITIES:
                raise ValueError(f"unknown entity {entity_name!r}; known: {sorted(ENTITIES)}")
            if encoding.lower() not in _ENCODINGS:
                raise ValueError(f"encoding {encoding!r} for {entity_name} is not one of {list(_ENCODINGS)}")
        return {k: v.lower() for k, v in value.items()}


class JourneyEmailSettings(_Strict):
    destination: Literal["outbox", "ses"] = Field("outbox", description="outbox: files in the lake; ses: SES v2")
    from_address: str | None = Field(None, description="the verified SES sender, e.g. news@shop.example.com")
    configuration_set: str | None = None
    contact_list: str | None = Field(None, description="SES list management: contact list (with topic)")
    topic: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.destination == "ses" and not self.from_address:
            raise ConfigError("journeys.email.from_address: required when journeys.email.destination is ses")


class JourneySmsSettings(_Strict):
    destination: Literal["outbox", "sms"] = Field(
        "outbox", description="outbox: files in the lake; sms: AWS End User Messaging SMS")
    origination_identity: str | None = Field(None, description="phone number, pool or sender ID (ARN or id)")
    message_type: Literal["PROMOTIONAL", "TRANSACTIONAL"] = "PROMOTIONAL"
    configuration_set: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.destination == "sms" and not self.origination_identity:
            raise ConfigError("journeys.sms.origination_identity: required when journeys.sms.destination is sms")


class JourneyCallSettings(_Strict):
    destination: Literal["outbox", "connect_campaigns"] = Field(
        "outbox", description="outbox: files in the lake; connect_campaigns: Amazon Connect Outbound Campaigns v2")
    expires_after_hours: int = Field(24, ge=1, le=336, description="an outbound request not dialled by then expires")


class JourneyEventSettings(_Strict):
    destination: Literal["outbox", "eventbridge"] = "outbox"
    event_bus: str = "default"
    source: str = "rfmlake.journeys"


class JourneysSettings(_Strict):
    dir: str | None = Field(None, description="folder of journey YAML files (local or s3://); null: no journeys run")
    email: JourneyEmailSettings = JourneyEmailSettings()
    sms: JourneySmsSettings = JourneySmsSettings()
    call: JourneyCallSettings = JourneyCallSettings()
    event: JourneyEventSettings = JourneyEventSettings()
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="confidence level of intervals and tests")
    power: float = Field(0.8, gt=0.5, lt=1.0, description="power of the minimum detectable effect")
class IdentitySettings(_Strict):
    """Identity resolution (rfmlake.identity, docs/identity.md)."""

    match_threshold: float = Field(
        0.9995, gt=0.5, lt=1.0,
        description="probabilistic CRM matches at or above this match probability join two customer records")
    review_threshold: float = Field(
        0.5, gt=0.0, lt=1.0,
        description="matches from here up to match_threshold are kept in gold.identity_matches for review, not joined")
    min_training_records: int = Field(
        1_000, ge=10, description="below this many customer records the shipped model parameters are used untrained")
    max_block_size: int = Field(
        10, ge=2, le=1000, description="records sharing a postal code (with country), or a full name and city, "
        "are compared as candidate pairs only when at most this many share it")
    refit: bool = Field(False, description="train a new matching model even if one is stored")
    u_sample_pairs: int = Field(
        300_000, ge=10_000, le=1_000_000_000, description="random record pairs per comparison from which training "
        "estimates u (how often different people agree on a field); more is slower, on a fixed cost per training")


class Settings(_Strict):
    prefix: str = Field("rfmlake", pattern=r"^[a-z][a-z0-9_]{0,30}$")
    reporting_currency: str | None = Field(
        None, description="ISO 4217 code every amount is reported in; null = the orders' currency when they use "
        "one, else the base currency of the landed currency_rates (docs/pipeline.md, currencies)")
    default_currency: str = Field("EUR", description="ISO 4217 code of orders and products landed without one")
    currency_rates: dict[str, float] = Field(
        default_factory=dict, description="fixed fallback rates: units of reporting_currency per unit of the "
        "currency, used where no landed currency_rates row applies; empty = none")
    pii_key_env: str = "RFMLAKE_PII_KEY"
    pii_key_secret: str | None = Field(
        None, description="Secrets Manager secret (name or ARN) with the PII key, read when the "
        "environment variable pii_key_env is unset (the AWS runtime; config/<env>.yaml sets it from deploy)")
    lake_catalog: Literal["auto", "files", "glue"] = Field(
        "auto", description="where table pointers live: `_current` files, or Glue table locations "
        "(databases <prefix>_<zone>); auto = glue for an s3:// lake, files for a local one")
    duckdb_memory_limit: str = Field(
        "3GB", pattern=r"^\d+(\.\d+)?\s*(MB|GB|MiB|GiB)$",
        description="memory DuckDB may use in a local stage (ingest, identity, dbt, profiles) before it spills to "
        "disk under the lake's _system/tmp")
    stage_stall_minutes: float = Field(
        20, ge=0, le=1440,
        description="a local stage whose processes use almost no CPU (under 2% of one) for this many minutes is "
        "stopped, and the run fails and rolls back instead of hanging with the lake locked (Linux); 0 = never")
    ingest: IngestSettings = IngestSettings()
    rfm: RfmSettings = RfmSettings()
    segmentation: SegmentationSettings = SegmentationSettings()
    value: ValueSettings = ValueSettings()
    journeys: JourneysSettings = JourneysSettings()
    identity: IdentitySettings = IdentitySettings()
    recommendations: RecommendationSettings = RecommendationSettings()
    # config/<env>.yaml for AWS adds a `deploy:` section; its typed model is rfmlake.deploy.DeployEnvironment.
    deploy: dict[str, Any] | None = Field(None, description="AWS deployment environment (rfmlake deploy)")

    @field_validator("reporting_currency", "default_currency")
    @classmethod
    def _iso_code(cls, value: str | None) -> str | None:
        from rfmlake.contract.currencies import check_currency_code

        return None if value is None else check_currency_code(value, "currency")

    @field_validator("currency_rates")
    @classmethod
    def _positive_rates(cls, value: dict[str, float]) -> dict[str, float]:
        from rfmlake.contract.currencies import check_currency_code

        for code, rate in value.items():
            check_currency_code(code, "currency code")
            if not rate > 0:
                raise ValueError(f"rate for {code} must be > 0, got {rate}")
        return value

    def model_post_init(self, __context: Any) -> None:
        if self.currency_rates and self.reporting_currency is None:
            raise ConfigError(
                "currency_rates are units of reporting_currency per unit of each currency: set reporting_currency "
                f"too (rates given for {', '.join(sorted(self.currency_rates))})"
            )
        own = self.currency_rates.get(self.reporting_currency or "")
        if own is not None and own != 1.0:
            raise ConfigError(f"currency_rates.{self.reporting_currency}: the reporting currency's own rate is 1, "
                              f"got {own}")
        if self.identity.review_threshold >= self.identity.match_threshold:
            raise ConfigError(
                f"identity.review_threshold ({self.identity.review_threshold}) must be below "
                f"identity.match_threshold ({self.identity.match_threshold})"
            )
        if self.segmentation.k_min > self.segmentation.k_max:
            raise ConfigError(
                f"segmentation.k_min ({self.segmentation.k_min}) must be <= "
                f"segmentation.k_max ({self.segmentation.k_max})"
            )


def _format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(root)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def _read_config(path: str | Path) -> str:
    """A local file, or an s3:// object (what the deployed Lambdas are given: RFMLAKE_CONFIG)."""
    if str(path).startswith("s3://"):
        from rfmlake.lake.storage import Storage

        data = Storage.for_location(str(path)).read_bytes(str(path))
        if data is None:
            raise ConfigError(f"config file not found: {path}")
        return data.decode()
    if not Path(path).is_file():
        raise ConfigError(f"config file not found: {path}")
    return Path(path).read_text()


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read settings from a YAML file (or defaults), apply overrides, validate with precise messages."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        text = _read_config(path)
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {source} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {source} must hold a mapping of settings")
        data = loaded
    for key, value in (overrides or {}).items():
        target = data
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


_SECRETS: dict[str, bytes] = {}  # secret id -> key, per process


def pii_key(settings: Settings, *, env: Mapping[str, str] | None = None,
            boto3_session: boto3.Session | None = None) -> bytes | None:
    """The keyed-hash secret for PII tokens: the environment variable settings.pii_key_env (in `env`,
    default os.environ), else the Secrets Manager secret settings.pii_key_secret (the AWS runtime),
    read once per process. None means: use the lake's local key."""
    value = (os.environ if env is None else env).get(settings.pii_key_env)
    if value:
        return value.encode()
    if settings.pii_key_secret is None:
        return None
    if settings.pii_key_secret not in _SECRETS:  # a Glue job or a warm Lambda asks once
        _SECRETS[settings.pii_key_secret] = _read_secret(settings.pii_key_secret, boto3_session)
    return _SECRETS[settings.pii_key_secret]


def _read_secret(secret_id: str, boto3_session: boto3.Session | None = None) -> bytes:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = (boto3_session or boto3.Session()).client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ConfigError(f"pii_key_secret: cannot read Secrets Manager secret {secret_id!r}: "
                          f"{error.get('Code', '')}: {error.get('Message', '')}") from None
    except BotoCoreError as exc:
        raise ConfigError(f"pii_key_secret: cannot read Secrets Manager secret {secret_id!r}: {exc}") from None
    value = response.get("SecretString") or ""
    if not value.strip():
        raise ConfigError(f"pii_key_secret: Secrets Manager secret {secret_id!r} holds no string value")
    return value.strip().encode()
