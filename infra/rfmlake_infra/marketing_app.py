"""The marketing app (docs/app.md): one Lambda (lambdas/marketing_app, Mangum) behind an HTTP API,
people signing in with a Cognito user pool.

- Cognito: a user pool without self sign-up (an admin creates users), its groups `analyst`,
  `marketer`, `admin` are the app's roles; an app client without a secret that allows
  USER_PASSWORD_AUTH: the app's sign-in form sends the password to Cognito and verifies the ID token
  it gets back against the pool's keys (rfmlake.app.auth.CognitoUsers). No hosted UI, no domain.
- The session cookie key: a generated Secrets Manager secret, read at cold start.
- The function reads the gold zone and the run reports of the lake, the CRM customer records (an
  admin's drill-down shows the contact details its persona may read), and writes only gold.audiences
  and the app's own state (`_system/app/`: the audit log); it reads and writes the journeys folder,
  which it finds in the deployed settings (`journeys.dir`, the folder the pipeline's journeys stage runs).
  Not in the serving VPC: it needs Cognito's public endpoints, which that VPC cannot reach.
- The HTTP API: every path to the function (the app routes and checks sign-in itself), stage
  throttling, JSON access logs without query strings, an alarm on 5xx to the pipeline's topic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from rfmlake.app.auth import ROLES
from rfmlake.deploy import Environment
from rfmlake.deploy.names import checked
from rfmlake_infra.catalog import database_name
from rfmlake_infra.functions import ARCHITECTURE, function_code
from rfmlake_infra.monitoring import alarm_on_any
from rfmlake_infra.policies import kms_use, s3_read, s3_write, secret_read
from rfmlake_infra.serving import ACCESS_LOG_FORMAT, API_STAGE
from rfmlake_infra.storage import JOURNEYS_PREFIX, StorageStack

AUDIENCES_PREFIX = "gold/audiences/"
APP_STATE_PREFIX = "_system/app/"
# What the app reads in the lake: the gold tables, the run reports, and the CRM customer records an
# admin's drill-down shows (bronze.customers holds contact details; silver.customers links to them).
LAKE_READS = ("gold/", "_system/runs/", "bronze/customers/", "silver/customers/", "_system/pii_key_fingerprint")


class MarketingAppStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, environment: Environment, storage: StorageStack,
                 alarm_topic: sns.ITopic, settings_uri: str, repo_root: Path, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        deploy, prefix = environment.deploy, environment.resource_prefix
        removal = cdk.RemovalPolicy.DESTROY if deploy.removal == "destroy" else cdk.RemovalPolicy.RETAIN

        # -- sign-in ------------------------------------------------------------------------------------
        self.user_pool = cognito.UserPool(
            self, "Users",
            user_pool_name=checked("cognito_user_pool", f"{prefix}-marketing-app"),
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            password_policy=cognito.PasswordPolicy(min_length=12, require_digits=True, require_lowercase=True,
                                                   require_uppercase=True, require_symbols=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=removal,
        )
        self.client = self.user_pool.add_client(
            "AppClient",
            user_pool_client_name=checked("cognito_client", f"{prefix}-marketing-app"),
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_password=True),
            prevent_user_existence_errors=True,
            id_token_validity=cdk.Duration.hours(1),
        )
        for role in ROLES:
            cognito.CfnUserPoolGroup(self, f"Group{role.title()}", user_pool_id=self.user_pool.user_pool_id,
                                     group_name=checked("cognito_group", role),
                                     description=f"rfmlake marketing app role: {role}")
        self.session_secret_name = checked("secret", f"{prefix}/marketing-app/session-key")
        self.session_secret = secretsmanager.Secret(
            self, "SessionKey", secret_name=self.session_secret_name,
            description="rfmlake marketing app: the key that signs session cookies",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
            removal_policy=removal,
        )

        # -- the function -------------------------------------------------------------------------------
        log_group = logs.LogGroup(self, "AppFunctionLogs", log_group_name=f"/aws/lambda/{prefix}-marketing-app",
                                  retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "AppRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description="rfmlake marketing app: reads gold and run reports, writes gold.audiences")
        glue = f"arn:aws:glue:{self.region}:{self.account}"
        gold, bronze, silver = (database_name(environment, z) for z in ("gold", "bronze", "silver"))
        for statement in [
            *s3_read("LakeRead", storage.lake, *LAKE_READS),
            *s3_write("AppWrite", storage.lake, AUDIENCES_PREFIX, APP_STATE_PREFIX),
            *s3_read("SettingsRead", storage.artifacts, "config/"),
            *s3_write("JourneysWrite", storage.artifacts, JOURNEYS_PREFIX),
            kms_use(storage.key),
            iam.PolicyStatement(
                sid="CatalogRead",
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"],
                resources=[f"{glue}:catalog", f"{glue}:database/{gold}", f"{glue}:table/{gold}/*",
                           f"{glue}:database/{bronze}", f"{glue}:table/{bronze}/customers",
                           f"{glue}:database/{silver}", f"{glue}:table/{silver}/customers"]),
            iam.PolicyStatement(
                sid="CatalogWriteAudiences", actions=["glue:CreateTable", "glue:UpdateTable"],
                resources=[f"{glue}:catalog", f"{glue}:database/{gold}", f"{glue}:table/{gold}/audiences"]),
            secret_read(self, "SessionKeyRead", self.session_secret_name),
            iam.PolicyStatement(sid="OwnLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[log_group.log_group_arn]),
        ]:
            self.role.add_to_policy(statement)
        self.function_env = {
            "RFMLAKE_LAKE": f"s3://{storage.lake.bucket_name}/",
            "RFMLAKE_CONFIG": settings_uri,
            "RFMLAKE_COGNITO_USER_POOL_ID": self.user_pool.user_pool_id,
            "RFMLAKE_COGNITO_CLIENT_ID": self.client.user_pool_client_id,
            "RFMLAKE_APP_SESSION_SECRET": self.session_secret_name,
        }
        self.function = lambda_.DockerImageFunction(
            self, "AppFunction",
            function_name=checked("lambda_function", f"{prefix}-marketing-app"),
            code=function_code(repo_root, "marketing_app"),
            architecture=ARCHITECTURE,
            role=self.role.without_policy_updates(),
            log_group=log_group,
            memory_size=2048,  # DuckDB aggregates gold in place; memory also buys CPU
            timeout=cdk.Duration.seconds(29),  # API Gateway's integration limit
            environment=self.function_env,
        )
        self.function.node.add_dependency(self.role)

        # -- the HTTP API -------------------------------------------------------------------------------
        self.api = apigw.HttpApi(
            self, "AppApi", api_name=f"{prefix}-marketing-app", description="rfmlake marketing app",
            create_default_stage=False,
            default_integration=integrations.HttpLambdaIntegration("AppIntegration", self.function),
        )
        access_logs = logs.LogGroup(self, "AppAccessLogs",
                                    log_group_name=f"/aws/vendedlogs/apigateway/{prefix}-marketing-app",
                                    retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY)
        apigw.CfnStage(
            self, "AppStage", api_id=self.api.api_id, stage_name=API_STAGE, auto_deploy=True,
            default_route_settings=apigw.CfnStage.RouteSettingsProperty(
                throttling_rate_limit=20, throttling_burst_limit=40, detailed_metrics_enabled=True),
            access_log_settings=apigw.CfnStage.AccessLogSettingsProperty(
                destination_arn=access_logs.log_group_arn, format=cdk.Stack.of(self).to_json_string(ACCESS_LOG_FORMAT)),
        )
        self.alarms = alarm_on_any(self, prefix, {
            "MarketingApp5xx": cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name="5xx",
                                                 dimensions_map={"ApiId": self.api.api_id, "Stage": API_STAGE},
                                                 statistic="Sum", period=cdk.Duration.minutes(5)),
            "MarketingAppErrors": self.function.metric_errors(period=cdk.Duration.minutes(5)),
        }, alarm_topic)
        cdk.CfnOutput(self, "MarketingAppUrl", value=self.api.api_endpoint)
        cdk.CfnOutput(self, "MarketingAppUserPoolId", value=self.user_pool.user_pool_id)
