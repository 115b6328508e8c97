"""AWS name limits, in one table, and the names the platform gives its resources.

Every name infra/ sets goes through `checked` (or `fitted` where a name must always fit whatever the
environment's prefix), so `rfmlake deploy --synth` refuses a prefix that makes a name too long before
any CloudFormation runs, naming the setting. tests/functional/infra scans every synthesized template of
every environment in config/ against this table (RESOURCE_NAMES maps each CloudFormation type to the
limit of its name property), and tests/unit/infra checks the table against botocore's service models
where a model states the limit.

Names built at run time are bounded by construction:
- Step Functions execution names (<= 80): rfmlake.pipeline.trigger.execution_name.
- SageMaker processing job names (<= 63), for ANY execution name: the state machine names each job
  `<processing_job_prefix>-<States.UUID()>`, the prefix at most 63 - 1 - 36 = 26 characters, so the
  execution name never enters the job name (the run id reaches the job as RFMLAKE_RUN_ID instead).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from rfmlake.errors import ConfigError


@dataclass(frozen=True)
class NameLimit:
    max_length: int
    pattern: str  # a full match is required
    source: str   # where the limit is stated: "botocore <service> <Operation>.<Member>" or a documentation page
    min_length: int = 1


# kind -> limit. "botocore ..." sources are checked against the installed botocore's service model.
NAME_LIMITS: dict[str, NameLimit] = {
    "s3_bucket": NameLimit(63, r"[a-z0-9][a-z0-9.-]*[a-z0-9]",
                           "S3 User Guide, General purpose bucket naming rules (3-63 characters)", 3),
    "iam_role": NameLimit(64, r"[\w+=,.@-]+", "botocore iam CreateRole.RoleName"),
    "iam_managed_policy": NameLimit(128, r"[\w+=,.@-]+", "botocore iam CreatePolicy.PolicyName"),
    "lambda_function": NameLimit(64, r"[a-zA-Z0-9_-]+",
                                 "Lambda API reference, CreateFunction FunctionName: the name alone is 1-64"),
    "glue_job": NameLimit(255, r"[^\x00-\x1f]+", "botocore glue CreateJob.Name"),
    # lowercase letters, digits and underscores: what Hive and Athena accept unquoted
    "glue_database": NameLimit(255, r"[a-z0-9_]+", "botocore glue CreateDatabase.DatabaseInput.Name"),
    "state_machine": NameLimit(80, r"[a-zA-Z0-9_-]+", "botocore stepfunctions CreateStateMachine.name"),
    "execution": NameLimit(80, r"[a-zA-Z0-9_-]+", "botocore stepfunctions StartExecution.name"),
    "processing_job": NameLimit(63, r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
                                "botocore sagemaker CreateProcessingJob.ProcessingJobName"),
    "codebuild_project": NameLimit(150, r"[A-Za-z0-9][A-Za-z0-9\-_]{1,149}",
                                   "botocore codebuild CreateProject.name", 2),
    "sns_topic": NameLimit(256, r"[A-Za-z0-9_-]+", "SNS API reference, CreateTopic Name (up to 256)"),
    "sqs_queue": NameLimit(80, r"[A-Za-z0-9_-]+(\.fifo)?", "SQS API reference, CreateQueue QueueName (up to 80)"),
    "log_group": NameLimit(512, r"[.\-_/#A-Za-z0-9]+", "botocore logs CreateLogGroup.logGroupName"),
    "events_rule": NameLimit(64, r"[.\-_A-Za-z0-9]+", "botocore events PutRule.Name"),
    "kms_alias": NameLimit(256, r"alias/[a-zA-Z0-9/_-]+", "botocore kms CreateAlias.AliasName"),
    "athena_workgroup": NameLimit(128, r"[a-zA-Z0-9._-]{1,128}", "botocore athena CreateWorkGroup.Name"),
    "cloudwatch_alarm": NameLimit(255, r"[^\x00-\x1f]+", "botocore cloudwatch PutMetricAlarm.AlarmName"),
    "opensearch_domain": NameLimit(28, r"[a-z][a-z0-9\-]+", "botocore opensearch CreateDomain.DomainName", 3),
    "dynamodb_table": NameLimit(255, r"[a-zA-Z0-9_.-]+",
                                "DynamoDB developer guide, Naming rules: table names 3-255 characters", 3),
    "http_api": NameLimit(128, r"[^\x00-\x1f]+", "botocore apigatewayv2 CreateApi.Name"),
    "secret": NameLimit(512, r"[A-Za-z0-9/_+=.@-]+", "botocore secretsmanager CreateSecret.Name"),
    "iam_inline_policy": NameLimit(128, r"[\w+=,.@-]+", "botocore iam PutRolePolicy.PolicyName"),
    "athena_named_query": NameLimit(128, r"[^\x00-\x1f]+", "botocore athena CreateNamedQuery.Name"),
    "quicksight_resource": NameLimit(128, r"[^\x00-\x1f]+", "botocore quicksight CreateDataSet.Name"),
    "quicksight_analysis": NameLimit(2048, r"[^\x00-\x1f]+", "botocore quicksight CreateAnalysis.Name"),
    "quicksight_dashboard": NameLimit(2048, r"[^\x00-\x1f]+", "botocore quicksight CreateDashboard.Name"),
    "api_stage": NameLimit(128, r"[^\x00-\x1f]+", "botocore apigatewayv2 CreateStage.StageName"),
    "cognito_user_pool": NameLimit(128, r"[\w\s+=,.@-]+", "botocore cognito-idp CreateUserPool.PoolName"),
    "cognito_client": NameLimit(128, r"[\w\s+=,.@-]+", "botocore cognito-idp CreateUserPoolClient.ClientName"),
    "cognito_group": NameLimit(128, r"[^\x00-\x20]+", "botocore cognito-idp CreateGroup.GroupName"),
}

# CloudFormation type -> (path of its name property, kind). The template scan checks every resource of
# these types that sets the property, and fails on any other resource type that sets a "...Name".
RESOURCE_NAMES: dict[str, tuple[tuple[str, ...], str]] = {
    "AWS::S3::Bucket": (("BucketName",), "s3_bucket"),
    "AWS::IAM::Role": (("RoleName",), "iam_role"),
    "AWS::IAM::ManagedPolicy": (("ManagedPolicyName",), "iam_managed_policy"),
    "AWS::Lambda::Function": (("FunctionName",), "lambda_function"),
    "AWS::Glue::Job": (("Name",), "glue_job"),
    "AWS::Glue::Database": (("DatabaseInput", "Name"), "glue_database"),
    "AWS::StepFunctions::StateMachine": (("StateMachineName",), "state_machine"),
    "AWS::CodeBuild::Project": (("Name",), "codebuild_project"),
    "AWS::SNS::Topic": (("TopicName",), "sns_topic"),
    "AWS::SQS::Queue": (("QueueName",), "sqs_queue"),
    "AWS::Logs::LogGroup": (("LogGroupName",), "log_group"),
    "AWS::Events::Rule": (("Name",), "events_rule"),
    "AWS::KMS::Alias": (("AliasName",), "kms_alias"),
    "AWS::Athena::WorkGroup": (("Name",), "athena_workgroup"),
    "AWS::CloudWatch::Alarm": (("AlarmName",), "cloudwatch_alarm"),
    "AWS::OpenSearchService::Domain": (("DomainName",), "opensearch_domain"),
    "AWS::DynamoDB::Table": (("TableName",), "dynamodb_table"),
    "AWS::ApiGatewayV2::Api": (("Name",), "http_api"),
    "AWS::ApiGatewayV2::Stage": (("StageName",), "api_stage"),
    "AWS::IAM::Policy": (("PolicyName",), "iam_inline_policy"),
    "AWS::Athena::NamedQuery": (("Name",), "athena_named_query"),
    "AWS::QuickSight::DataSource": (("Name",), "quicksight_resource"),
    "AWS::QuickSight::DataSet": (("Name",), "quicksight_resource"),
    "AWS::QuickSight::Analysis": (("Name",), "quicksight_analysis"),
    "AWS::QuickSight::Dashboard": (("Name",), "quicksight_dashboard"),
    "AWS::SecretsManager::Secret": (("Name",), "secret"),
    "AWS::Cognito::UserPool": (("UserPoolName",), "cognito_user_pool"),
    "AWS::Cognito::UserPoolClient": (("ClientName",), "cognito_client"),
    "AWS::Cognito::UserPoolGroup": (("GroupName",), "cognito_group"),
}

UUID_LENGTH = 36  # States.UUID(): 8-4-4-4-12 hex digits with hyphens
# The fixed part of every processing job name: "<prefix>-" + a UUID fills the rest of the 63.
PROCESSING_JOB_PREFIX_MAX = NAME_LIMITS["processing_job"].max_length - 1 - UUID_LENGTH  # 26
ACCOUNT_ID_LENGTH = 12


def name_problem(kind: str, name: str) -> str | None:
    """Why `name` is not a valid `kind` name, or None."""
    limit = NAME_LIMITS[kind]
    if not limit.min_length <= len(name) <= limit.max_length:
        return (f"{name!r} is {len(name)} characters; a {kind.replace('_', ' ')} name has "
                f"{limit.min_length}-{limit.max_length} ({limit.source})")
    if not re.fullmatch(limit.pattern, name):
        return f"{name!r} is not a valid {kind.replace('_', ' ')} name (pattern {limit.pattern}; {limit.source})"
    return None


def checked(kind: str, name: str, *, setting: str = "prefix") -> str:
    """`name` if AWS accepts it as a `kind` name; otherwise ConfigError naming the setting it comes from."""
    problem = name_problem(kind, name)
    if problem:
        raise ConfigError(f"{setting}: {problem}; choose a shorter {setting}")
    return name


def fitted(name: str, max_length: int) -> str:
    """`name`, or when longer than max_length its head and a short hash of the whole: deterministic,
    distinct for distinct names, letters/digits/hyphens kept as they were."""
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[:max_length - len(digest) - 1].rstrip('-')}-{digest}"


def processing_job_prefix(resource_prefix: str, stage: str) -> str:
    """The fixed part of a stage's SageMaker processing job names (the state machine appends "-<UUID>")."""
    prefix = fitted(f"{resource_prefix}-{stage.replace('_', '-')}", PROCESSING_JOB_PREFIX_MAX)
    checked("processing_job", f"{prefix}-{'0' * UUID_LENGTH}")
    return prefix


def bucket_name(resource_prefix: str, purpose: str, account: str) -> str:
    """`<prefix>-<purpose>-<account>`; `account` may be a deploy-time token (checked as 12 digits)."""
    known = account if re.fullmatch(r"\d{12}", account) else "0" * ACCOUNT_ID_LENGTH
    checked("s3_bucket", f"{resource_prefix}-{purpose}-{known}")
    return f"{resource_prefix}-{purpose}-{account}"
