"""Serving: the profile store and the profile API (docs/profiles-api.md).

- A VPC with isolated subnets in two AZs (no NAT: the functions reach S3 through a gateway endpoint
  and OpenSearch inside the VPC, nothing else).
- An OpenSearch domain in that VPC: node-to-node encryption, encryption at rest, HTTPS only (TLS 1.2+),
  zone awareness; its access policy admits only the indexer role (read/write) and the API role (read).
- The profile indexer Lambda (lambdas/profile_indexer), started by EventBridge when a new
  gold.customer_profile version is committed (its `_current` pointer is written in the lake bucket).
- The profile API Lambda (lambdas/profile_api, Mangum) behind an HTTP API with IAM authorization
  (SigV4): callers are AWS principals granted `execute-api:Invoke` through the managed policy this
  stack outputs. HTTP API rather than REST: the app already reads the HTTP API IAM/JWT authorizer
  context, stage throttling and access logs need no account-wide CloudWatch role, and it is cheaper.
  IAM rather than JWT: the consumers are services in AWS with roles, and the platform has no
  identity provider to issue JWTs.
- Stage throttling, JSON access logs (no query strings: `?email=` must never be logged), an alarm on
  5xx and one on indexer errors, both to the pipeline's failure topic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from rfmlake.deploy import Environment
from rfmlake.deploy.aws_rules import OPENSEARCH_AVAILABILITY_ZONES, OPENSEARCH_VOLUME_TYPE
from rfmlake.deploy.names import checked
from rfmlake_infra.functions import ARCHITECTURE, function_code
from rfmlake_infra.monitoring import alarm_on_any
from rfmlake_infra.policies import kms_use, s3_read, secret_read
from rfmlake_infra.storage import StorageStack

# The $default stage serves paths without a stage prefix, which is what the app (through Mangum) routes.
API_STAGE = "$default"
PROFILE_TABLE_PREFIX = "gold/customer_profile/"  # the lake's tables live at the lake bucket's root
PROFILE_POINTER_KEY = f"{PROFILE_TABLE_PREFIX}_current"  # written once per committed version
OPENSEARCH_READ = ("es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost")  # POST: _search, _count, _mget
OPENSEARCH_WRITE = (*OPENSEARCH_READ, "es:ESHttpPut", "es:ESHttpDelete", "es:ESHttpPatch")
ROUTES: tuple[str, ...] = ("/health", "/profiles", "/profiles/{customer_id}", "/segments", "/segments/{name}/members",
                           "/customers/{customer_id}/recommendations")
# $context variables only: no query string, no caller IP beyond what API Gateway already records.
ACCESS_LOG_FORMAT: dict[str, str] = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "caller": "$context.identity.userArn",
}


class ServingStack(cdk.Stack):
    @property
    def availability_zones(self) -> list[str]:
        """The region's first zones, resolved by CloudFormation (Fn::GetAZs) at deploy time. Without this,
        an environment with a fixed account (prod) makes the VPC look the zones up at synth, which
        `rfmlake deploy --synth` (no credentials, no CDK CLI) answers with placeholders ('dummy1a')."""
        return [cdk.Fn.select(i, cdk.Fn.get_azs()) for i in range(OPENSEARCH_AVAILABILITY_ZONES)]

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Environment,
        storage: StorageStack,
        alarm_topic: sns.ITopic,
        repo_root: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        deploy, prefix = environment.deploy, environment.resource_prefix
        serving = deploy.serving
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=OPENSEARCH_AVAILABILITY_ZONES,  # one subnet per zone the domain spreads over
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="serving", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
            ],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
        )
        subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        functions_sg = ec2.SecurityGroup(
            self, "FunctionsSecurityGroup", vpc=self.vpc, description="profile Lambdas", allow_all_outbound=False
        )
        # HTTPS only: OpenSearch in the VPC, S3 through the gateway endpoint and Secrets Manager through its
        # interface endpoint (isolated subnets: no other route).
        functions_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to OpenSearch, S3, Secrets Manager")
        endpoint_sg = ec2.SecurityGroup(
            self, "EndpointSecurityGroup", vpc=self.vpc, description="interface endpoints", allow_all_outbound=False
        )
        endpoint_sg.add_ingress_rule(functions_sg, ec2.Port.tcp(443), "HTTPS from the profile Lambdas")
        # The API reads the PII key at cold start (rfmlake.profiles.aws.pii_key_from_env).
        self.secrets_endpoint = self.vpc.add_interface_endpoint(
            "SecretsManagerEndpoint",
            service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[endpoint_sg],
            private_dns_enabled=True,
            open=False,
        )
        domain_sg = ec2.SecurityGroup(
            self, "DomainSecurityGroup", vpc=self.vpc, description="profile store", allow_all_outbound=False
        )
        domain_sg.add_ingress_rule(functions_sg, ec2.Port.tcp(443), "HTTPS from the profile Lambdas")

        self.indexer_role = self._function_role(
            "IndexerRole", "rfmlake profile indexer: gold.customer_profile -> OpenSearch"
        )
        self.api_role = self._function_role("ApiRole", "rfmlake profile API: reads OpenSearch")
        self.domain_name = checked("opensearch_domain", f"{prefix}-profiles")
        domain_arn = f"arn:aws:es:{self.region}:{self.account}:domain/{self.domain_name}"
        # The domain's error logs (ES_APPLICATION_LOGS) in CloudWatch: the service writes them under a
        # resource policy that names this log group only and this account's domain.
        self.domain_logs = self._log_group("ProfileStoreLogs", f"/aws/vendedlogs/opensearch/{self.domain_name}")
        domain_logs_policy = logs.CfnResourcePolicy(
            self,
            "ProfileStoreLogsPolicy",
            policy_name=f"{prefix}-opensearch-logs",
            policy_document=cdk.Stack.of(self).to_json_string({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "OpenSearchApplicationLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": "es.amazonaws.com"},
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{self.domain_logs.log_group_arn}",
                    "Condition": {"StringEquals": {"aws:SourceAccount": self.account},
                                  "ArnLike": {"aws:SourceArn": domain_arn}},
                }],
            }),
        )
        self.domain = opensearch.CfnDomain(
            self,
            "ProfileStore",
            domain_name=self.domain_name,
            engine_version=serving.opensearch.engine_version,
            cluster_config=opensearch.CfnDomain.ClusterConfigProperty(
                instance_type=serving.opensearch.instance_type,
                instance_count=serving.opensearch.instance_count,
                zone_awareness_enabled=True,
                zone_awareness_config=opensearch.CfnDomain.ZoneAwarenessConfigProperty(
                    availability_zone_count=OPENSEARCH_AVAILABILITY_ZONES
                ),
            ),
            ebs_options=opensearch.CfnDomain.EBSOptionsProperty(
                ebs_enabled=True,
                volume_type=OPENSEARCH_VOLUME_TYPE,
                volume_size=serving.opensearch.volume_size_gb,
            ),
            vpc_options=opensearch.CfnDomain.VPCOptionsProperty(
                subnet_ids=subnets.subnet_ids, security_group_ids=[domain_sg.security_group_id]
            ),
            node_to_node_encryption_options=opensearch.CfnDomain.NodeToNodeEncryptionOptionsProperty(enabled=True),
            encryption_at_rest_options=opensearch.CfnDomain.EncryptionAtRestOptionsProperty(enabled=True),
            log_publishing_options={
                "ES_APPLICATION_LOGS": opensearch.CfnDomain.LogPublishingOptionProperty(
                    cloud_watch_logs_log_group_arn=self.domain_logs.log_group_arn, enabled=True
                )
            },
            domain_endpoint_options=opensearch.CfnDomain.DomainEndpointOptionsProperty(
                enforce_https=True, tls_security_policy="Policy-Min-TLS-1-2-PFS-2023-10"
            ),
            access_policies={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "IndexerReadWrite",
                        "Effect": "Allow",
                        "Principal": {"AWS": self.indexer_role.role_arn},
                        "Action": list(OPENSEARCH_WRITE),
                        "Resource": f"{domain_arn}/*",
                    },
                    {
                        "Sid": "ApiRead",
                        "Effect": "Allow",
                        "Principal": {"AWS": self.api_role.role_arn},
                        "Action": list(OPENSEARCH_READ),
                        "Resource": f"{domain_arn}/*",
                    },
                ],
            },
        )
        # the service checks the log group policy when it creates the domain
        self.domain.add_resource_dependency(domain_logs_policy)
        self.domain.apply_removal_policy(
            cdk.RemovalPolicy.DESTROY if deploy.removal == "destroy" else cdk.RemovalPolicy.RETAIN
        )
        endpoint = f"https://{self.domain.attr_domain_endpoint}"
        function_env = {"RFMLAKE_OPENSEARCH_ENDPOINT": endpoint, "RFMLAKE_PROFILES_ALIAS": serving.profiles_alias}

        # -- the indexer ------------------------------------------------------------------------------
        indexer_logs = self._log_group("IndexerLogs", f"/aws/lambda/{prefix}-profile-indexer")
        for statement in [
            *s3_read("ProfileTableRead", storage.lake, PROFILE_TABLE_PREFIX),
            kms_use(storage.key),
            iam.PolicyStatement(
                sid="OpenSearchReadWrite", actions=list(OPENSEARCH_WRITE), resources=[f"{domain_arn}/*"]
            ),
            *self._function_basics(indexer_logs),
        ]:
            self.indexer_role.add_to_policy(statement)
        self.indexer = lambda_.DockerImageFunction(
            self,
            "ProfileIndexer",
            function_name=checked("lambda_function", f"{prefix}-profile-indexer"),
            code=function_code(repo_root, "profile_indexer"),
            architecture=ARCHITECTURE,
            role=self.indexer_role.without_policy_updates(),
            log_group=indexer_logs,
            memory_size=deploy.lambdas.memory_mb,
            timeout=cdk.Duration.seconds(deploy.lambdas.timeout_seconds),
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[functions_sg],
            reserved_concurrent_executions=1,  # one generation load at a time; a later commit waits its turn
            environment=function_env,
        )
        self.indexer.node.add_dependency(self.indexer_role)
        self.indexer_dlq = sqs.Queue(
            self,
            "IndexerDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.profile_committed = events.Rule(
            self,
            "ProfileVersionCommitted",
            description="a gold.customer_profile version was committed -> index it",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [storage.lake.bucket_name]}, "object": {"key": [PROFILE_POINTER_KEY]}},
            ),
            targets=[
                targets.LambdaFunction(
                    self.indexer,
                    retry_attempts=4,
                    max_event_age=cdk.Duration.hours(6),
                    dead_letter_queue=self.indexer_dlq,
                )
            ],
        )

        # -- the API ----------------------------------------------------------------------------------
        api_logs = self._log_group("ApiFunctionLogs", f"/aws/lambda/{prefix}-profile-api")
        for statement in [
            iam.PolicyStatement(sid="OpenSearchRead", actions=list(OPENSEARCH_READ), resources=[f"{domain_arn}/*"]),
            secret_read(self, "PiiKeySecretRead", serving.pii_key_secret),  # email lookups are tokenized
            *self._function_basics(api_logs),
        ]:
            self.api_role.add_to_policy(statement)
        self.api_function = lambda_.DockerImageFunction(
            self,
            "ProfileApiFunction",
            function_name=checked("lambda_function", f"{prefix}-profile-api"),
            code=function_code(repo_root, "profile_api"),
            architecture=ARCHITECTURE,
            role=self.api_role.without_policy_updates(),
            log_group=api_logs,
            memory_size=1024,
            timeout=cdk.Duration.seconds(29),  # API Gateway's integration limit
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[functions_sg],
            environment={
                **function_env,
                # Read at cold start (rfmlake.profiles.aws.pii_key_from_env): the key itself is in neither
                # the template nor the function's configuration.
                "RFMLAKE_PII_KEY_SECRET": serving.pii_key_secret,
                "RFMLAKE_API_RATE": str(serving.api.rate_limit),
                "RFMLAKE_API_BURST": str(serving.api.burst_limit),
            },
        )
        self.api_function.node.add_dependency(self.api_role)
        self.api = apigw.HttpApi(
            self,
            "ProfileApi",
            api_name=f"{prefix}-profile-api",
            description="rfmlake customer profiles (IAM-authorized)",
            create_default_stage=False,
            default_authorizer=authorizers.HttpIamAuthorizer(),
        )
        integration = integrations.HttpLambdaIntegration("ProfileApiIntegration", self.api_function)
        for path in ROUTES:
            self.api.add_routes(path=path, methods=[apigw.HttpMethod.GET], integration=integration)
        access_logs = self._log_group("ApiAccessLogs", f"/aws/vendedlogs/apigateway/{prefix}-profile-api")
        self.stage = apigw.CfnStage(
            self,
            "ProfileApiStage",
            api_id=self.api.api_id,
            stage_name=API_STAGE,
            auto_deploy=True,
            default_route_settings=apigw.CfnStage.RouteSettingsProperty(
                throttling_rate_limit=serving.api.rate_limit,
                throttling_burst_limit=serving.api.burst_limit,
                detailed_metrics_enabled=True,
            ),
            access_log_settings=apigw.CfnStage.AccessLogSettingsProperty(
                destination_arn=access_logs.log_group_arn,
                format=cdk.Stack.of(self).to_json_string(ACCESS_LOG_FORMAT),
            ),
        )
        self.invoke_policy = iam.ManagedPolicy(
            self,
            "ProfileApiInvoke",
            managed_policy_name=checked("iam_managed_policy", f"{prefix}-profile-api-invoke"),
            description="attach to a role that may call the profile API (GET on its routes)",
            statements=[
                iam.PolicyStatement(
                    sid="InvokeProfileApi",
                    actions=["execute-api:Invoke"],
                    resources=[
                        f"arn:aws:execute-api:{self.region}:{self.account}:{self.api.api_id}/"
                        f"{API_STAGE}/GET{path.split('{')[0].rstrip('/')}"
                        + ("/*" if "{" in path else "")
                        for path in ROUTES
                    ],
                )
            ],
        )

        # -- alarms -----------------------------------------------------------------------------------
        metrics: dict[str, cloudwatch.IMetric] = {
            "ProfileApi5xx": cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name="5xx",
                dimensions_map={"ApiId": self.api.api_id, "Stage": API_STAGE},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            ),
            "ProfileIndexerErrors": self.indexer.metric_errors(period=cdk.Duration.minutes(5)),
            "ProfileIndexerDeadLetters": self.indexer_dlq.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5)
            ),
        }
        self.alarms = alarm_on_any(self, prefix, metrics, alarm_topic)
        cdk.CfnOutput(self, "ProfileApiUrl", value=self.api.api_endpoint)
        cdk.CfnOutput(self, "ProfileApiInvokePolicyArn", value=self.invoke_policy.managed_policy_arn)
        cdk.CfnOutput(self, "OpenSearchEndpoint", value=endpoint)

    def _function_role(self, construct_id: str, description: str) -> iam.Role:
        return iam.Role(
            self, construct_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description
        )

    def _log_group(self, construct_id: str, name: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            log_group_name=name,
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

    def _function_basics(self, log_group: logs.ILogGroup) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                sid="OwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            ),
            iam.PolicyStatement(
                sid="VpcNetworkInterfacesAnyResource",
                actions=[
                    # AWS: DescribeNetworkInterfaces has no resource-level permissions; Lambda checks the
                    # Create/Delete permissions against Resource * when it creates the function's ENIs.
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
            ),
        ]
