"""Deployment environments: config/<env>.yaml = pipeline settings (the keys of config/local.yaml) plus a
`deploy:` section (account, region, names, sizes) typed here. Read by `rfmlake deploy` and infra/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from rfmlake.activation.config import check_destination
from rfmlake.deploy import aws_rules
from rfmlake.errors import ConfigError
from rfmlake.settings import Settings, load_settings

ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
_QUICKSIGHT_PRINCIPAL = re.compile(
    r"^arn:aws:quicksight:(\{region\}|[a-z0-9-]+):(\{account\}|\d{12}):(user|group)/[\w.@+=-]+/[\w.@+=-]+$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Instance and worker types are checked against botocore's service models and the rules in
# rfmlake.deploy.aws_rules (each cites its source) when a config is validated, never at import.


class GlueSizing(_Strict):
    worker_type: str = Field("G.1X", description="Glue WorkerType for the Spark ETL jobs (G.* or R.*)")
    number_of_workers: int = Field(2, ge=2, le=299)
    timeout_minutes: int = Field(60, ge=1, le=2880)

    @field_validator("worker_type")
    @classmethod
    def _glue_worker_type(cls, value: str) -> str:
        return aws_rules.check_glue_worker_type(value)


class DbtSizing(_Strict):
    compute_type: str = Field("BUILD_GENERAL1_SMALL", description="CodeBuild ComputeType of the dbt build")
    timeout_minutes: int = Field(60, ge=5, le=480)

    @field_validator("compute_type")
    @classmethod
    def _codebuild_compute_type(cls, value: str) -> str:
        return aws_rules.check_codebuild_compute_type(value)


class SageMakerSizing(_Strict):
    instance_type: str = Field("ml.m5.large", description="SageMaker ProcessingInstanceType")
    instance_count: int = Field(1, ge=1, le=10)
    volume_size_gb: int = Field(30, ge=1, le=16384)
    max_runtime_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    # The jobs run the rfmlake image (lambdas/Dockerfile, infra/rfmlake_infra/functions.py), not a managed one.

    @field_validator("instance_type")
    @classmethod
    def _processing_instance_type(cls, value: str) -> str:
        return aws_rules.check_sagemaker_processing_instance_type(value)


class LambdaSizing(_Strict):
    memory_mb: int = Field(1024, ge=128, le=10240)
    timeout_seconds: int = Field(900, ge=1, le=900)
    ephemeral_storage_mb: int = Field(
        10240, ge=512, le=10240,
        description="the stage function's /tmp, which holds the workspace copy of the tables a stage reads",
    )


class Lifecycle(_Strict):
    noncurrent_version_days: int = Field(30, ge=1, description="delete old object versions after")
    landing_archive_days: int = Field(30, ge=1, description="landing files move to Glacier IR after")
    athena_results_expire_days: int = Field(7, ge=1)
    logs_expire_days: int = Field(90, ge=1)


class QuickSightDeploy(_Strict):
    """QuickSight as code (rfmlake.dashboard.quicksight) in the analytics stack; absent = named queries only."""

    principals: tuple[str, ...] = Field(
        min_length=1,
        description="QuickSight user/group ARNs who may open the dashboard; {account} and {region} are filled in",
    )
    import_mode: Literal["DIRECT_QUERY", "SPICE"] = "DIRECT_QUERY"
    horizon_days: int = Field(365, ge=1, description="gold.customer_value's predicted_clv_<N>d horizon")

    @field_validator("principals")
    @classmethod
    def _quicksight_arns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arn in value:
            if not _QUICKSIGHT_PRINCIPAL.match(arn):
                raise ValueError(
                    f"{arn!r} is not a QuickSight user or group ARN "
                    "(arn:aws:quicksight:<region>:<account>:group/<namespace>/<name>)"
                )
        return value


class OpenSearchSizing(_Strict):
    """The profile store's data nodes. The serving stack always turns on encryption at rest, node-to-node
    encryption, VPC access, gp3 EBS volumes and 2-AZ zone awareness, without dedicated masters: the checks
    (rfmlake.deploy.aws_rules) hold the sizes to what AWS accepts with exactly those."""

    engine_version: str = Field("OpenSearch_2.19", description="OpenSearch_<major>.<minor>")
    instance_type: str = Field("t3.medium.search", description="data node OpenSearchPartitionInstanceType")
    instance_count: int = Field(2, description="data nodes, spread evenly over two Availability Zones")
    volume_size_gb: int = Field(10, description="gp3 EBS volume per data node, GiB (limits depend on the type)")

    @field_validator("engine_version")
    @classmethod
    def _engine_version(cls, value: str) -> str:
        return aws_rules.check_opensearch_engine_version(value)

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return aws_rules.check_opensearch_instance_type(value)

    @field_validator("instance_count")
    @classmethod
    def _instance_count(cls, value: int) -> int:
        return aws_rules.check_opensearch_data_nodes(value)

    @field_validator("volume_size_gb")
    @classmethod
    def _volume_size(cls, value: int, info: ValidationInfo) -> int:
        # instance_type is validated first (field order); absent here when it was itself invalid.
        return aws_rules.check_opensearch_volume_gib(value, info.data.get("instance_type"))


class ProfileApiSettings(_Strict):
    """The HTTP API's `$default` stage (Mangum maps paths without a stage prefix)."""

    rate_limit: float = Field(50, gt=0, le=10000, description="stage throttling: steady requests per second")
    burst_limit: int = Field(100, ge=1, le=5000, description="stage throttling: burst")


class ServingSettings(_Strict):
    """The profile store (OpenSearch in a VPC) and the profile API (HTTP API + Lambda)."""

    opensearch: OpenSearchSizing = OpenSearchSizing()
    api: ProfileApiSettings = ProfileApiSettings()
    profiles_alias: str = Field("rfmlake-profiles", pattern=r"^[a-z][a-z0-9_-]{0,60}$")
    pii_key_secret: str = Field(
        "rfmlake/pii-key",
        pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$",
        description="Secrets Manager secret (name) holding the PII key the pipeline tokenized emails with",
    )


class ActivationDeploy(_Strict):
    """Where the pipeline's `activate` stage (the stage Lambda) pushes segment changes on AWS. Each
    destination takes the options its RFMLAKE_* variables set (docs/activation.md); the stage
    Lambda's role gets exactly the API calls and resources of the destinations listed."""

    destinations: tuple[str, ...] = Field(
        ("file",), min_length=1,
        description="file (exports in the lake), eventbridge, ses, sms, customer_profiles; pinpoint is retired",
    )
    file: dict[str, str] | None = None
    eventbridge: dict[str, str] | None = Field(None, description="event_bus (name or ARN), source")
    ses: dict[str, str] | None = Field(None, description="contact_list")
    sms: dict[str, str] | None = Field(
        None, description="origination_identity and message (required), message_type, configuration_set, segments")
    pinpoint: dict[str, str] | None = Field(
        None, description="retired (2026-10-30): application_id, channel, and acknowledge_retired: 'true'")
    customer_profiles: dict[str, str] | None = Field(None, description="domain_name (required)")

    @model_validator(mode="after")
    def _destinations_are_complete(self) -> ActivationDeploy:
        from rfmlake.activation.errors import ActivationError

        if len(set(self.destinations)) != len(self.destinations):
            raise ValueError(f"destinations lists one twice: {list(self.destinations)}")
        for kind in self.destinations:
            try:
                check_destination(kind, self.options(kind))
            except ActivationError as exc:
                raise ValueError(str(exc)) from None
        return self

    def options(self, kind: str) -> dict[str, str]:
        return dict(getattr(self, kind, None) or {})

    def selected(self) -> dict[str, dict[str, str]]:
        """{destination: options} for the listed destinations, in order."""
        return {kind: self.options(kind) for kind in self.destinations}


class AlarmSettings(_Strict):
    """Thresholds of the alarms that notify the failure topic (besides failed jobs and runs)."""

    quarantine_rate_percent: float = Field(
        5.0, gt=0, le=100,
        description="alarm when a bronze -> silver run quarantines more than this percent of its rows",
    )


class DeployEnvironment(_Strict):
    name: str = Field(description="environment name: dev, prod, ...")
    account: str | None = Field(None, pattern=r"^\d{12}$", description="AWS account id; null = from credentials")
    region: str = Field("eu-west-1", pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    removal: Literal["destroy", "retain"] = Field(
        "retain", description="what `cdk destroy` does to buckets and keys: destroy (dev) or retain (prod)"
    )
    alarm_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    schedule: str | None = Field(
        "cron(0 3 * * ? *)", description="EventBridge schedule expression for a daily run; null = landing events only"
    )
    debounce_seconds: int = Field(
        300, ge=0, le=300, description="SQS batching window: files landing together = one run"
    )
    glue: GlueSizing = GlueSizing()
    dbt: DbtSizing = DbtSizing()
    sagemaker: SageMakerSizing = SageMakerSizing()
    lambdas: LambdaSizing = LambdaSizing()
    lifecycle: Lifecycle = Lifecycle()
    tags: dict[str, str] = Field(default_factory=dict, description="tags on every resource")
    quicksight: QuickSightDeploy | None = Field(
        None, description="null = the analytics stack deploys the named queries only"
    )
    serving: ServingSettings = ServingSettings()
    alarms: AlarmSettings = AlarmSettings()
    activation: ActivationDeploy = ActivationDeploy()


class Environment(_Strict):
    """One deploy environment: where (deploy) and how the pipeline behaves there (settings)."""

    deploy: DeployEnvironment
    settings: Settings
    source: str

    @property
    def prefix(self) -> str:
        """Glue database prefix (`<prefix>_bronze`, ...), from the pipeline settings."""
        return self.settings.prefix

    @property
    def resource_prefix(self) -> str:
        """Prefix for names that allow hyphens but not underscores (buckets, roles, functions)."""
        return self.settings.prefix.replace("_", "-")

    def pipeline_settings(self, *, journeys_dir: str) -> dict[str, Any]:
        """The settings the jobs run with on AWS: everything but the deploy section, with `journeys.dir` the
        deployed journeys folder (the one the marketing app edits: its location is known only to infra/)."""
        settings = self.settings.model_dump(mode="json", exclude={"deploy"})
        settings["journeys"]["dir"] = journeys_dir
        # The jobs read the PII key from the same secret the profile API uses (never from the template).
        settings["pii_key_secret"] = settings.get("pii_key_secret") or self.deploy.serving.pii_key_secret
        return settings


def config_path(env: str, config_dir: str | Path = "config") -> Path:
    if not ENV_NAME.match(env):
        raise ConfigError(f"environment name {env!r}: lowercase letters, digits and hyphens, starting with a letter")
    return Path(config_dir) / f"{env}.yaml"


def load_environment(env: str, config_dir: str | Path = "config") -> Environment:
    """Read config/<env>.yaml; raises ConfigError naming the bad key, or the missing `deploy:` section."""
    path = config_path(env, config_dir)
    settings = load_settings(path)
    if settings.deploy is None:
        raise ConfigError(f"{path} has no `deploy:` section (account, region, sizes); see config/dev.yaml")
    try:
        deploy = DeployEnvironment.model_validate(settings.deploy)
    except ValidationError as exc:
        lines = [f"invalid deploy settings in {path}:"]
        for item in exc.errors():
            key = ".".join(("deploy", *(str(p) for p in item["loc"])))
            message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"].removeprefix("Value error, ")
            lines.append(f"  {key}: {message}")
        raise ConfigError("\n".join(lines)) from None
    if deploy.name != env:
        raise ConfigError(f"{path}: deploy.name is {deploy.name!r} but the file is for environment {env!r}")
    if settings.journeys.dir is not None:
        raise ConfigError(f"{path}: journeys.dir: remove it; a deployment runs the journeys of the folder the "
                          "marketing app edits, s3://<artifacts bucket>/journeys/ (docs/journeys.md, On AWS)")
    return Environment(deploy=deploy, settings=settings, source=str(path))
