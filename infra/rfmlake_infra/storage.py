"""Storage: one KMS key and the landing, lake, artifacts, Athena results and logs buckets. Every bucket
is encrypted, TLS-only, blocks public access and is versioned (the logs bucket: SSE-S3, because S3
server access logs cannot be delivered to a KMS-encrypted bucket)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from rfmlake.deploy import Environment
from rfmlake.deploy.journeys import JOURNEYS_FOLDER_OUTPUT
from rfmlake.deploy.names import bucket_name, checked

BUCKETS: tuple[str, ...] = ("landing", "lake", "artifacts", "athena-results")
# The journeys folder in the artifacts bucket: the marketing app edits it, the journeys stage runs it (the
# settings' journeys.dir), `rfmlake deploy` seeds it from the repository's journeys/ (rfmlake.deploy.journeys;
# not a BucketDeployment, which would overwrite and prune the journeys the app saved there).
JOURNEYS_PREFIX = "journeys/"


class StorageStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, environment: Environment, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        deploy = environment.deploy
        prefix = environment.resource_prefix
        removal = cdk.RemovalPolicy.DESTROY if deploy.removal == "destroy" else cdk.RemovalPolicy.RETAIN
        self.key = kms.Key(
            self,
            "DataKey",
            alias=checked("kms_alias", f"alias/{prefix}-data"),
            description=f"rfmlake {deploy.name}: encrypts every data bucket",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.logs_bucket = s3.Bucket(
            self,
            "LogsBucket",
            bucket_name=bucket_name(prefix, "logs", self.account),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-logs",
                    expiration=cdk.Duration.days(deploy.lifecycle.logs_expire_days),
                    noncurrent_version_expiration=cdk.Duration.days(deploy.lifecycle.noncurrent_version_days),
                )
            ],
            removal_policy=removal,
            auto_delete_objects=removal == cdk.RemovalPolicy.DESTROY,
        )
        lifecycle = deploy.lifecycle
        rules: dict[str, list[s3.LifecycleRule]] = {
            "landing": [
                s3.LifecycleRule(
                    id="archive-landed-files",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=cdk.Duration.days(lifecycle.landing_archive_days),
                        )
                    ],
                )
            ],
            "athena-results": [
                s3.LifecycleRule(
                    id="expire-query-results",
                    expiration=cdk.Duration.days(lifecycle.athena_results_expire_days),
                )
            ],
        }
        self.buckets: dict[str, s3.Bucket] = {}
        for name in BUCKETS:
            self.buckets[name] = s3.Bucket(
                self,
                f"{name.title().replace('-', '')}Bucket",
                bucket_name=bucket_name(prefix, name, self.account),
                encryption=s3.BucketEncryption.KMS,
                encryption_key=self.key,
                bucket_key_enabled=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=True,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                server_access_logs_bucket=self.logs_bucket,
                server_access_logs_prefix=f"s3/{name}/",
                lifecycle_rules=[
                    *rules.get(name, []),
                    s3.LifecycleRule(
                        id="expire-old-versions",
                        noncurrent_version_expiration=cdk.Duration.days(lifecycle.noncurrent_version_days),
                        abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                    ),
                ],
                removal_policy=removal,
                auto_delete_objects=removal == cdk.RemovalPolicy.DESTROY,
            )
        cdk.CfnOutput(self, "LandingBucketName", value=self.buckets["landing"].bucket_name)
        self.journeys_uri = f"s3://{self.artifacts.bucket_name}/{JOURNEYS_PREFIX}"
        cdk.CfnOutput(self, JOURNEYS_FOLDER_OUTPUT, value=self.journeys_uri,
                      description="the journeys folder: the marketing app edits it, the pipeline runs it")
        # Object-created events go to EventBridge: landing -> the orchestration stack's debounced trigger,
        # lake -> the serving stack's profile indexer (gold.customer_profile commits).
        # Set on the L1 resource: no notification custom resource needed.
        for name in ("landing", "lake"):
            bucket = self.buckets[name].node.default_child
            assert isinstance(bucket, s3.CfnBucket)
            bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
                event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True),
            )

    @property
    def landing(self) -> s3.Bucket:
        return self.buckets["landing"]

    @property
    def lake(self) -> s3.Bucket:
        return self.buckets["lake"]

    @property
    def artifacts(self) -> s3.Bucket:
        return self.buckets["artifacts"]

    @property
    def athena_results(self) -> s3.Bucket:
        return self.buckets["athena-results"]
