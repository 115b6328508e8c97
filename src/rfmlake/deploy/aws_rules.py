"""What AWS accepts for the sizes in `deploy:`, checked when config/<env>.yaml is loaded (`rfmlake deploy
--synth` included), so a bad value names its key instead of failing 20 minutes into a CloudFormation deploy.

Two kinds of rule:
- Enumerations come from botocore's service models (the API's own lists), loaded the first time a config is
  validated, never at import. botocore ships with boto3 (`pip install 'rfmlake[infra]'`).
- Rules botocore cannot express (EBS sizes per instance type, which families can encrypt, what the stacks
  build on top) are tables below, each citing the page it comes from.

Known gap: the OpenSearch enum in botocore's `opensearch` model (OpenSearchPartitionInstanceType) stops at the
6th-generation families plus or1/t4g; the service also offers newer ones (m7g, r7g, c7g, or2, ...). A
well-formed type of a family botocore does not know is therefore let through unchecked (AWS judges it at
deploy), while a known family with an unknown size is refused as a typo.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from typing import Any

from rfmlake.errors import ConfigError

# -- the profile store the serving stack builds (infra/rfmlake_infra/serving.py reads these) ------------------
# Zone awareness over the VPC's two isolated subnets: AvailabilityZoneCount must equal the number of subnets of a
# VPC domain (API reference, ZoneAwarenessConfig: "Valid values are 2 and 3. If your domain is provisioned within
# a VPC, this value be equal to number of subnets").
OPENSEARCH_AVAILABILITY_ZONES = 2
OPENSEARCH_VOLUME_TYPE = "gp3"
# The stack always enables encryption at rest, node-to-node encryption, HTTPS only and VPC access, and creates no
# dedicated master, UltraWarm or cold-storage nodes and no fine-grained access control; the rules below check the
# sizing against exactly that.
# Without dedicated masters: "Dedicated master nodes ... are required for domains that have instance counts greater
# than 10" (developerguide/createupdatedomains.html, "Creating OpenSearch Service domains (console)"), and T2/T3
# domains are capped at 10 instances anyway (developerguide/limits.html#clusterresource).
OPENSEARCH_MAX_DATA_NODES = 10


@cache
def _service_model(service: str) -> Any:
    try:
        import botocore.session
    except ImportError:
        raise ConfigError(
            "checking the deploy settings against AWS needs botocore: pip install 'rfmlake[infra]'"
        ) from None
    return botocore.session.get_session().get_service_model(service)


def _botocore_version() -> str:
    import botocore

    return str(botocore.__version__)


def aws_enum(service: str, shape: str) -> tuple[str, ...]:
    """The values botocore's `service` model allows for `shape`, e.g. ('opensearch', 'VolumeType')."""
    return tuple(_service_model(service).shape_for(shape).enum)


def aws_pattern(service: str, shape: str) -> str:
    return str(_service_model(service).shape_for(shape).metadata["pattern"])


def check_aws_enum(value: str, service: str, shape: str, what: str) -> str:
    allowed = aws_enum(service, shape)
    if value in allowed:
        return value
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{value!r} is not {what} (botocore {_botocore_version()}, {service!r} model, {shape}){hint}"
    )


# -- OpenSearch Service ---------------------------------------------------------------------------------------
# Cannot encrypt data at rest, which the stack enables: developerguide/supported-instance-types.html (M3 and R3
# rows; T2 row) and the AWS CDK Domain construct's own synth check (aws-cdk-lib 2.275.0,
# aws-opensearchservice/lib/domain.ts: "M3, R3, and T2 instance types do not support encryption of data at rest").
_NO_ENCRYPTION_AT_REST = frozenset({"t2", "m3", "r3"})
# Instance storage only, no EBS volume (the stack attaches one): developerguide/limits.html#ebsresource (I3 and
# R6GD rows: N/A) and aws-cdk-lib's unSupportEbsInstanceType list (I3, R6GD, I4G, I4I, I8G, IM4GN, R7GD, R8GD, OI2).
_NO_EBS = frozenset({"i3", "r6gd", "i4g", "i4i", "i8g", "im4gn", "r7gd", "r8gd", "oi2"})
# EBS but not gp3 (the stack's volume type): developerguide/limits.html#ebsresource, "Maximum EBS size (gp3)" N/A.
_NO_GP3 = frozenset({"t2", "m3", "m4", "c4", "r3", "r4", "i2"})
# UltraWarm types are warm-tier nodes (ClusterConfig.WarmType), never data nodes (developerguide/ultrawarm.html).
_WARM_ONLY = frozenset({"ultrawarm1"})
# The API enum lists t3.nano to t3.2xlarge, but the service offers T3 data nodes as t3.small.search and
# t3.medium.search only (developerguide/supported-instance-types.html, T3 row).
_T3_SIZES = frozenset({"small", "medium"})
# Minimum EBS size is 10 GiB for every EBS-backed type (developerguide/limits.html#ebsresource).
OPENSEARCH_MIN_VOLUME_GIB = 10
_TIB = 1024
# Maximum gp3 volume per data node, GiB: developerguide/limits.html#ebsresource, column "Maximum EBS size (gp3)".
# Types the table does not list (m5.24xlarge, r5.24xlarge, or1.*, t4g.*) get no upper bound here; AWS checks it.
_GP3_MAX_GIB: dict[str, int] = {
    "t3.small.search": 100,
    "t3.medium.search": 200,
    "m5.large.search": 1 * _TIB,
    "m5.xlarge.search": 2 * _TIB,
    "m5.2xlarge.search": 3 * _TIB,
    "m5.4xlarge.search": 6 * _TIB,
    "m5.12xlarge.search": 18 * _TIB,
    "m6g.large.search": 1 * _TIB,
    "m6g.xlarge.search": 2 * _TIB,
    "m6g.2xlarge.search": 3 * _TIB,
    "m6g.4xlarge.search": 6 * _TIB,
    "m6g.8xlarge.search": 12 * _TIB,
    "m6g.12xlarge.search": 18 * _TIB,
    "c5.large.search": 256,
    "c5.xlarge.search": 512,
    "c5.2xlarge.search": 1 * _TIB,
    "c5.4xlarge.search": 1536,
    "c5.9xlarge.search": 3584,
    "c5.18xlarge.search": 7 * _TIB,
    "c6g.large.search": 256,
    "c6g.xlarge.search": 512,
    "c6g.2xlarge.search": 1 * _TIB,
    "c6g.4xlarge.search": 1536,
    "c6g.8xlarge.search": 3 * _TIB,
    "c6g.12xlarge.search": 4608,
    "r5.large.search": 2 * _TIB,
    "r5.xlarge.search": 3 * _TIB,
    "r5.2xlarge.search": 6 * _TIB,
    "r5.4xlarge.search": 12 * _TIB,
    "r5.12xlarge.search": 24 * _TIB,
    "r6g.large.search": 2 * _TIB,
    "r6g.xlarge.search": 3 * _TIB,
    "r6g.2xlarge.search": 6 * _TIB,
    "r6g.4xlarge.search": 12 * _TIB,
    "r6g.8xlarge.search": 16 * _TIB,
    "r6g.12xlarge.search": 24 * _TIB,
}


def check_opensearch_engine_version(value: str) -> str:
    # Format: botocore's VersionString pattern ("Elasticsearch_X.Y" or "OpenSearch_X.Y"); the profile store
    # (rfmlake.profiles, opensearch-py) targets OpenSearch, so legacy Elasticsearch versions are refused.
    if not re.fullmatch(aws_pattern("opensearch", "VersionString"), value) or not value.startswith("OpenSearch_"):
        raise ValueError(
            f"{value!r} is not an OpenSearch engine version: OpenSearch_<major>.<minor>, e.g. OpenSearch_2.19"
        )
    return value


def check_opensearch_instance_type(value: str) -> str:
    """A data-node type the API knows and that supports what the serving stack turns on.

    botocore's list lags the service (see the module docstring): a well-formed type of a family the
    list does not know at all (m7g, r7g, or2, ...) is let through for AWS to judge; a family it knows
    with a size it does not is a typo and refused with a hint."""
    shape = re.fullmatch(r"(?P<family>[a-z][a-z0-9-]*)\.(?P<size>[a-z0-9]+)\.search", value)
    known_families = {t.split(".")[0] for t in aws_enum("opensearch", "OpenSearchPartitionInstanceType")}
    if shape is None or shape["family"] in known_families:
        check_aws_enum(value, "opensearch", "OpenSearchPartitionInstanceType", "an OpenSearch Service instance type")
    family, size, _ = value.split(".")
    if family in _WARM_ONLY:
        raise ValueError(f"{value} is an UltraWarm (warm tier) type, not a data node type")
    if family == "t3" and size not in _T3_SIZES:
        raise ValueError(
            f"{value}: OpenSearch Service offers T3 data nodes only as t3.small.search and t3.medium.search"
        )
    if family in _NO_ENCRYPTION_AT_REST:
        raise ValueError(
            f"{value} cannot encrypt data at rest, which the serving stack turns on (T2, M3 and R3 cannot)"
        )
    if family in _NO_EBS:
        raise ValueError(
            f"{value} has instance storage only; the serving stack attaches {OPENSEARCH_VOLUME_TYPE} EBS volumes"
        )
    if family in _NO_GP3:
        raise ValueError(f"{value} cannot use {OPENSEARCH_VOLUME_TYPE} EBS volumes, which the serving stack attaches")
    return value


def check_opensearch_data_nodes(count: int) -> int:
    zones = OPENSEARCH_AVAILABILITY_ZONES
    if count < zones or count % zones:
        # With 2-AZ zone awareness the API refuses an odd count: "ValidationException: You must choose an even
        # number of data nodes for a two Availability Zone deployment" (quoted in
        # cloudposse/terraform-aws-elasticsearch#192; arkime/aws-aio's capacity planner applies the same rule).
        raise ValueError(
            f"{count} data nodes cannot be spread evenly over the {zones} Availability Zones the serving stack uses "
            f"(zone awareness): use a multiple of {zones}"
        )
    if count > OPENSEARCH_MAX_DATA_NODES:
        raise ValueError(
            f"more than {OPENSEARCH_MAX_DATA_NODES} data nodes needs dedicated master nodes, "
            "which the serving stack does not create"
        )
    return count


def check_opensearch_volume_gib(size: int, instance_type: str | None) -> int:
    if size < OPENSEARCH_MIN_VOLUME_GIB:
        raise ValueError(f"EBS volumes are at least {OPENSEARCH_MIN_VOLUME_GIB} GiB per data node")
    maximum = _GP3_MAX_GIB.get(instance_type or "")
    if maximum is not None and size > maximum:
        raise ValueError(
            f"{size} GiB is more than {instance_type} takes: {OPENSEARCH_VOLUME_TYPE} volumes of "
            f"{OPENSEARCH_MIN_VOLUME_GIB}-{maximum} GiB per data node"
        )
    return size


# -- Glue, CodeBuild, SageMaker -------------------------------------------------------------------------------
# The ETL jobs are Spark (`glueetl`, Glue 5.0, infra/rfmlake_infra/compute.py). botocore's Job.WorkerType docs list
# the G.* and R.* types for Spark ETL jobs; G.025X is for streaming jobs and Z.2X for Ray jobs, and Standard is
# not offered for Spark jobs (AWS SDK docs, CreateJobRequest.WorkerType: "Accepts a value of G.1X, G.2X, G.4X,
# G.8X or G.025X for Spark jobs. Accepts the value Z.2X for Ray jobs"). G.12X, G.16X and R.* need Glue 4.0 or
# later (we run 5.0) and exist only in some Regions, which is not checked here.
_GLUE_NOT_SPARK_ETL = {
    "G.025X": "is for streaming jobs",
    "Z.2X": "is for Ray jobs",
    "Standard": "is not offered for Spark jobs",
}


def check_glue_worker_type(value: str) -> str:
    check_aws_enum(value, "glue", "WorkerType", "a Glue worker type")
    if value in _GLUE_NOT_SPARK_ETL:
        raise ValueError(f"{value} {_GLUE_NOT_SPARK_ETL[value]}; the pipeline's Glue jobs are Spark ETL jobs")
    return value


# dbt runs on CodeBuild's standard Linux image (LINUX_CONTAINER, aws/codebuild/standard:7.0). botocore's
# ProjectEnvironment.computeType docs: BUILD_LAMBDA_* are "Only available for environment type
# LINUX_LAMBDA_CONTAINER and ARM_LAMBDA_CONTAINER"; ATTRIBUTE_BASED_COMPUTE and CUSTOM_INSTANCE_TYPE need extra
# configuration the stack does not set. compute.py maps the three general sizes below onto the CDK's ComputeType.
DBT_COMPUTE_TYPES = ("BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE")


def check_codebuild_compute_type(value: str) -> str:
    check_aws_enum(value, "codebuild", "ComputeType", "a CodeBuild compute type")
    if value not in DBT_COMPUTE_TYPES:
        raise ValueError(
            f"{value}: the dbt build runs on the standard Linux image; use one of {', '.join(DBT_COMPUTE_TYPES)}"
        )
    return value


def check_sagemaker_processing_instance_type(value: str) -> str:
    return check_aws_enum(value, "sagemaker", "ProcessingInstanceType", "a SageMaker processing instance type")
