"""Explicit least-privilege IAM statements. Every statement has a Sid; the only ones that may use a
"*" resource are in ANY_RESOURCE_SIDS, each because the AWS API has no resource-level permissions."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

# Sid -> why "*" is required (tests/unit/infra checks every "*" statement is one of these).
ANY_RESOURCE_SIDS: dict[str, str] = {
    "LakeFormationDataAccess": "lakeformation:GetDataAccess has no resource-level permissions",
    "GlueMetricsAnyResource": "cloudwatch:PutMetricData has no resource-level permissions (namespace-conditioned)",
    "PipelineMetricsAnyResource": (
        "cloudwatch:PutMetricData has no resource-level permissions (namespace-conditioned: rfmlake run metrics)"
    ),
    "SageMakerMetricsAnyResource": "cloudwatch:PutMetricData has no resource-level permissions (namespace-conditioned)",
    "EcrAuthTokenAnyResource": "ecr:GetAuthorizationToken has no resource-level permissions",
    "VendedLogDeliveryAnyResource": "Step Functions log delivery (logs:*LogDelivery) requires Resource *",
    "XRayAnyResource": "X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions",
    "VpcNetworkInterfacesAnyResource": (
        "Lambda in a VPC: ec2:DescribeNetworkInterfaces has no resource-level permissions, and Lambda checks "
        "Create/DeleteNetworkInterface against Resource * when the function is created"
    ),
}


def s3_read(sid: str, bucket: s3.IBucket, *prefixes: str) -> list[iam.PolicyStatement]:
    """Read objects under `prefixes`; "" is the whole bucket."""
    return [
        iam.PolicyStatement(
            sid=f"{sid}Objects",
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes],
        ),
        _list(sid, bucket, prefixes),
        _bucket_location(sid, bucket),
    ]


def _list(sid: str, bucket: s3.IBucket, prefixes: tuple[str, ...]) -> iam.PolicyStatement:
    """ListBucket under `prefixes`. For the whole bucket, no s3:prefix condition: a listing of the bucket's
    root without a prefix parameter, and HeadBucket (pyarrow's S3 filesystem sends both when it scans a
    bucket's root: the landing scan), carry no s3:prefix, so the condition would deny them (the recorded
    IAM check of the Glue jobs found it)."""
    if "" in prefixes:
        return iam.PolicyStatement(sid=f"{sid}List", actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
    return iam.PolicyStatement(
        sid=f"{sid}List",
        actions=["s3:ListBucket"],
        resources=[bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes] + [""]}},
    )


def _bucket_location(sid: str, bucket: s3.IBucket, *actions: str) -> iam.PolicyStatement:
    """Bucket calls that carry no s3:prefix: under the ListBucket statement's prefix condition they would
    never be allowed (the IAM check found Athena's GetBucketLocation on its results bucket denied)."""
    return iam.PolicyStatement(sid=f"{sid}Bucket", actions=["s3:GetBucketLocation", *actions],
                               resources=[bucket.bucket_arn])


def s3_write(sid: str, bucket: s3.IBucket, *prefixes: str) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid=f"{sid}Objects",
            actions=[
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",  # Athena writing query results and CTAS data
            ],
            resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes],
        ),
        _list(sid, bucket, prefixes),
        _bucket_location(sid, bucket, "s3:ListBucketMultipartUploads"),
    ]


def kms_use(key: kms.IKey) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="DataKeyUse", actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], resources=[key.key_arn]
    )


def lake_formation_data_access() -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="LakeFormationDataAccess", actions=["lakeformation:GetDataAccess"], resources=["*"]
    )  # AWS: no resource-level permissions


def secret_read(scope: cdk.Stack, sid: str, secret_name: str) -> iam.PolicyStatement:
    """GetSecretValue on one Secrets Manager secret, by name: its ARN ends in '-' and six random
    characters that are unknown until it is created, hence the `-??????` (AWS's documented pattern).
    A secret under the default aws/secretsmanager key needs no KMS grant; a customer-managed key
    needs kms:Decrypt for the same role (docs/deployment.md)."""
    arn = f"arn:{scope.partition}:secretsmanager:{scope.region}:{scope.account}:secret:{secret_name}-??????"
    return iam.PolicyStatement(sid=sid, actions=["secretsmanager:GetSecretValue"], resources=[arn])
