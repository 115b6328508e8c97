"""Amazon Personalize, behind the setting recommendations.personalize.enabled (off by default):
the exchange bucket, the dataset group with its three datasets (schemas from
rfmlake.recommend.personalize.SCHEMAS) and a solution, and the cycle that runs when the
recommendations stage has exported a run (runs/<run_id>/ready.json lands): a Step Functions state
machine importing the three datasets, training a solution version and running the batch inference
job, whose task parameters are the adapter's own request functions. The next pipeline run imports the
newest finished batch results into gold.product_recommendations (docs/recommendations.md)."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_personalize as personalize
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from rfmlake.deploy import Environment
from rfmlake.deploy.names import bucket_name
from rfmlake.recommend.personalize import (
    BATCH_INPUT,
    DATASET_TYPES,
    READY,
    SCHEMAS,
    batch_inference_request,
    dataset_import_request,
    solution_version_request,
)

POLL_SECONDS = 300
CYCLE_TIMEOUT = cdk.Duration.hours(24)
_RUN_ID = "States.ArrayGetItem(States.StringSplit($.detail.object.key, '/'), 1)"  # runs/<run_id>/ready.json


def _upper(name: str) -> str:
    return name[0].upper() + name[1:]


def _pascal(value: Any) -> Any:
    """Step Functions' AWS SDK integrations take (and return) the API's members in PascalCase."""
    if isinstance(value, dict):
        return {_upper(k): _pascal(v) for k, v in value.items()}
    return value


def _dynamic(request: dict[str, Any], **paths: str) -> dict[str, Any]:
    """A request with some members taken from the state input: member -> JSONPath or intrinsic."""
    out = {k: v for k, v in request.items() if k not in paths}
    out.update({f"{k}.$": v for k, v in paths.items()})
    return out


def _s3_path(bucket: str, template: str) -> str:
    return f"States.Format('s3://{bucket}/{template}', $.run_id)"


def _poll_chain(states: dict[str, Any], name: str, *, create: str, request: dict[str, Any], arn_member: str,
                describe: str, describe_key: str, next_state: str | None) -> str:
    """create -> wait -> describe -> ACTIVE: next | *FAILED: fail | else wait. Returns the first state."""
    sdk = "arn:aws:states:::aws-sdk:personalize:"
    arn = _upper(arn_member)
    states[name] = {"Type": "Task", "Resource": sdk + create, "Parameters": _pascal(request),
                    "ResultSelector": {"arn.$": f"$.{arn}"}, "ResultPath": f"$.{name}", "Next": f"{name}Wait"}
    states[f"{name}Wait"] = {"Type": "Wait", "Seconds": POLL_SECONDS, "Next": f"{name}Describe"}
    states[f"{name}Describe"] = {
        "Type": "Task", "Resource": sdk + describe, "Parameters": {f"{arn}.$": f"$.{name}.arn"},
        "ResultSelector": {"status.$": f"$.{describe_key}.Status", "arn.$": f"$.{describe_key}.{arn}"},
        "ResultPath": f"$.{name}", "Next": f"{name}Done",
        "Retry": [{"ErrorEquals": ["Personalize.LimitExceededException", "States.Timeout"], "MaxAttempts": 5,
                   "IntervalSeconds": 30, "BackoffRate": 2.0}],
    }
    states[f"{name}Done"] = {"Type": "Choice", "Choices": [
        {"Variable": f"$.{name}.status", "StringEquals": "ACTIVE", "Next": next_state or f"{name}Succeeded"},
        {"Variable": f"$.{name}.status", "StringMatches": "*FAILED", "Next": f"{name}Failed"},
    ], "Default": f"{name}Wait"}
    states[f"{name}Failed"] = {"Type": "Fail", "Error": f"{name}Failed", "Cause": f"Personalize {create} failed"}
    if next_state is None:
        states[f"{name}Succeeded"] = {"Type": "Succeed"}
    return name


def cycle_definition(*, dataset_arns: dict[str, str], solution_arn: str, role_arn: str, bucket: str,
                     num_results: int) -> dict[str, Any]:
    """The state machine: its input is the EventBridge event of runs/<run_id>/ready.json."""
    branches = []
    for kind in DATASET_TYPES:
        lower = kind.lower()
        states: dict[str, Any] = {}
        request = _dynamic(dataset_import_request(dataset_arns[kind], "", role_arn, ""),
                           jobName=f"States.Format('rfmlake-import-{lower}-{{}}', $.run_id)")
        request["dataSource"] = {"dataLocation.$": _s3_path(bucket, f"runs/{{}}/{lower}/")}
        start = _poll_chain(states, f"Import{kind}", create="createDatasetImportJob", request=request,
                            arn_member="datasetImportJobArn", describe="describeDatasetImportJob",
                            describe_key="DatasetImportJob", next_state=None)
        branches.append({"StartAt": start, "States": states})
    states = {
        "RunId": {"Type": "Pass", "Parameters": {"run_id.$": _RUN_ID}, "Next": "Imports"},
        "Imports": {"Type": "Parallel", "Branches": branches, "ResultPath": None, "Next": "Train"},
    }
    _poll_chain(states, "Train", create="createSolutionVersion", request=solution_version_request(solution_arn),
                arn_member="solutionVersionArn", describe="describeSolutionVersion", describe_key="SolutionVersion",
                next_state="Batch")
    batch = batch_inference_request("", "", "", "", role_arn, num_results)
    batch = _dynamic(batch, jobName="States.Format('rfmlake-batch-{}', $.run_id)", solutionVersionArn="$.Train.arn")
    batch["jobInput"] = {"s3DataSource": {"path.$": _s3_path(bucket, f"runs/{{}}/{BATCH_INPUT}")}}
    batch["jobOutput"] = {"s3DataDestination": {"path.$": _s3_path(bucket, "output/{}/")}}
    _poll_chain(states, "Batch", create="createBatchInferenceJob", request=batch, arn_member="batchInferenceJobArn",
                describe="describeBatchInferenceJob", describe_key="BatchInferenceJob", next_state=None)
    return {"Comment": "rfmlake: Personalize imports -> solution version -> batch inference for one exported run",
            "StartAt": "RunId", "TimeoutSeconds": int(CYCLE_TIMEOUT.to_seconds()), "States": states}


class PersonalizeStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, environment: Environment,
                 pipeline_role: iam.IRole, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = environment.settings.recommendations.personalize
        prefix = environment.resource_prefix
        retain = environment.deploy.removal == "retain"
        self.bucket = s3.Bucket(
            self, "Exchange", bucket_name=bucket_name(prefix, "personalize", self.account),
            encryption=s3.BucketEncryption.S3_MANAGED, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True, event_bridge_enabled=True, versioned=False,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(30))],  # each run exports anew
        )
        service = iam.ServicePrincipal("personalize.amazonaws.com")
        # Personalize reads the exports and writes batch results under a bucket policy of its own.
        self.bucket.add_to_resource_policy(iam.PolicyStatement(
            principals=[service], actions=["s3:GetObject", "s3:ListBucket", "s3:PutObject"],
            resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
            conditions={"StringEquals": {"aws:SourceAccount": self.account}}))
        self.role = iam.Role(self, "PersonalizeRole", assumed_by=service,
                             description="Amazon Personalize reads rfmlake's exports and writes batch results")
        self.bucket.grant_read_write(self.role)

        group = personalize.CfnDatasetGroup(self, "DatasetGroup", name=f"{prefix}-recommendations")
        self.dataset_arns: dict[str, str] = {}
        datasets = []
        for kind in DATASET_TYPES:
            schema = personalize.CfnSchema(self, f"{kind}Schema", name=f"{prefix}-{kind.lower()}",
                                           schema=json.dumps(SCHEMAS[kind], separators=(",", ":")))
            dataset = personalize.CfnDataset(self, f"{kind}Dataset", name=f"{prefix}-{kind.lower()}",
                                             dataset_type=kind, dataset_group_arn=group.attr_dataset_group_arn,
                                             schema_arn=schema.attr_schema_arn)
            self.dataset_arns[kind] = dataset.attr_dataset_arn
            datasets.append(dataset)
        solution = personalize.CfnSolution(
            self, "Solution", name=f"{prefix}-recommendations", dataset_group_arn=group.attr_dataset_group_arn,
            recipe_arn=f"arn:aws:personalize:::recipe/{config.recipe}")
        for dataset in datasets:
            solution.node.add_dependency(dataset)
        self.solution_arn = solution.attr_solution_arn

        machine_role = iam.Role(self, "CycleRole", assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
        machine_role.add_to_policy(iam.PolicyStatement(
            actions=["personalize:CreateDatasetImportJob", "personalize:DescribeDatasetImportJob",
                     "personalize:CreateSolutionVersion", "personalize:DescribeSolutionVersion",
                     "personalize:CreateBatchInferenceJob", "personalize:DescribeBatchInferenceJob"],
            resources=[f"arn:{self.partition}:personalize:{self.region}:{self.account}:*"]))
        machine_role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "personalize.amazonaws.com"}}))
        self.definition = cycle_definition(dataset_arns=self.dataset_arns, solution_arn=self.solution_arn,
                                           role_arn=self.role.role_arn, bucket=self.bucket.bucket_name,
                                           num_results=config.num_results)
        self.state_machine = sfn.CfnStateMachine(
            self, "Cycle", role_arn=machine_role.role_arn, state_machine_name=f"{prefix}-personalize-cycle",
            definition_string=cdk.Stack.of(self).to_json_string(self.definition))
        rule_role = iam.Role(self, "TriggerRole", assumed_by=iam.ServicePrincipal("events.amazonaws.com"))
        rule_role.add_to_policy(iam.PolicyStatement(actions=["states:StartExecution"],
                                                    resources=[self.state_machine.attr_arn]))
        events.CfnRule(self, "OnExport", description="a run's Personalize export is complete: start the cycle",
                       event_pattern={"source": ["aws.s3"], "detail-type": ["Object Created"],
                                      "detail": {"bucket": {"name": [self.bucket.bucket_name]},
                                                 "object": {"key": [{"wildcard": f"runs/*/{READY}"}]}}},
                       targets=[events.CfnRule.TargetProperty(id="cycle", arn=self.state_machine.attr_arn,
                                                              role_arn=rule_role.role_arn)])

        # The recommendations stage (the pipeline's SageMaker role) exports runs and reads results: a
        # policy of this stack attached to that role, so the compute stack needs nothing from this one.
        iam.Policy(self, "PipelineAccess", roles=[pipeline_role], statements=[
            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")]),
            iam.PolicyStatement(actions=["personalize:ListSolutionVersions", "personalize:ListBatchInferenceJobs",
                                         "personalize:DescribeBatchInferenceJob"],
                                resources=[f"arn:{self.partition}:personalize:{self.region}:{self.account}:*"]),
        ])
        cdk.CfnOutput(self, "ExchangeUri", value=f"s3://{self.bucket.bucket_name}",
                      description="recommendations.personalize.exchange_uri")
        cdk.CfnOutput(self, "SolutionArn", value=self.solution_arn,
                      description="recommendations.personalize.solution_arn")
        cdk.CfnOutput(self, "DatasetGroupArn", value=group.attr_dataset_group_arn)
        cdk.CfnOutput(self, "PersonalizeRoleArn", value=self.role.role_arn)
