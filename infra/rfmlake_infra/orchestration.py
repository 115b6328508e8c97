"""Orchestration and monitoring: the state machine rendered from PIPELINE
(rfmlake.pipeline.stepfunctions), the failure topic, the one trigger (landing events and the schedule
-> EventBridge -> one SQS queue, batched -> the start Lambda -> at most one execution, guarded by the
run lease in DynamoDB: rfmlake.pipeline.trigger), and alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from rfmlake.deploy import Environment
from rfmlake.deploy.names import checked
from rfmlake.monitoring import NAMESPACE as METRICS_NAMESPACE
from rfmlake.monitoring import QUARANTINE_RATE
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.remote import STATUS_CHANGE_SOURCE, STATUS_CHANGE_TYPE, STOPPED_STATUSES
from rfmlake.pipeline.stepfunctions import render_state_machine
from rfmlake.pipeline.trigger import LEASE_KEY, SCHEDULE_MESSAGE
from rfmlake_infra.compute import ComputeStack
from rfmlake_infra.functions import ARCHITECTURE, function_code
from rfmlake_infra.monitoring import alarm_above, alarm_on_any
from rfmlake_infra.storage import StorageStack


class OrchestrationStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Environment,
        storage: StorageStack,
        compute: ComputeStack,
        repo_root: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        deploy, prefix = environment.deploy, environment.resource_prefix
        topic_key = kms.Key(
            self,
            "TopicKey",
            enable_key_rotation=True,
            description="rfmlake failure topic",
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
            # Alarms and EventBridge publish to the encrypted topic (key policies require Resource "*").
            topic_key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Allow{service.split('.')[0].title()}Publish",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=["*"],
                )
            )
        self.topic = sns.Topic(
            self, "FailureTopic", topic_name=checked("sns_topic", f"{prefix}-failures"), master_key=topic_key,
            enforce_ssl=True,
        )
        if deploy.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(deploy.alarm_email))

        # One item: the execution that may run (rfmlake.pipeline.trigger takes it, the state machine gives it back).
        self.lease_table = dynamodb.Table(
            self,
            "RunLease",
            table_name=checked("dynamodb_table", f"{prefix}-run-lease"),
            partition_key=dynamodb.Attribute(name=LEASE_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=cdk.RemovalPolicy.DESTROY,  # holds nothing but the current run's name
        )
        self.definition = render_state_machine(
            PIPELINE, resources={"failure_topic_arn": self.topic.topic_arn, "stages": compute.stage_resources,
                                 # the stage Lambda writes each run's summary (its role reads every zone:
                                 # rfmlake.pipeline.definition.RUN_SUMMARY_READS)
                                 "run_summary_function_arn": compute.stage_function.function_arn,
                                 "run_lease_table": self.lease_table.table_name}
        )
        self.role = iam.Role(
            self,
            "StateMachineRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="rfmlake pipeline state machine: starts its own jobs only",
        )
        for statement in self._state_machine_statements(compute, topic_key):
            self.role.add_to_policy(statement)
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            log_group_name=f"/aws/vendedlogs/states/{prefix}-pipeline",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.CfnStateMachine(
            self,
            "Pipeline",
            state_machine_name=checked("state_machine", f"{prefix}-pipeline"),
            state_machine_type="STANDARD",
            role_arn=self.role.role_arn,
            definition_string=cdk.Stack.of(self).to_json_string(self.definition),
            logging_configuration=sfn.CfnStateMachine.LoggingConfigurationProperty(
                level="ERROR",
                include_execution_data=False,  # execution data may quote rows: keep it out of logs
                destinations=[
                    sfn.CfnStateMachine.LogDestinationProperty(
                        cloud_watch_logs_log_group=sfn.CfnStateMachine.CloudWatchLogsLogGroupProperty(
                            log_group_arn=log_group.log_group_arn
                        )
                    )
                ],
            ),
            tracing_configuration=sfn.CfnStateMachine.TracingConfigurationProperty(enabled=True),
        )
        self.state_machine.node.add_dependency(self.role)

        # The one trigger, debounced: files arriving within debounce_seconds, and the schedule's ticks,
        # reach one queue; its consumer starts at most one execution at a time.
        self.queue = sqs.Queue(
            self,
            "LandingEvents",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.minutes(6),
            retention_period=cdk.Duration.days(4),
        )
        events.Rule(
            self,
            "LandingObjectCreated",
            description="landing file arrived -> debounce queue",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [storage.landing.bucket_name]}},
            ),
            targets=[targets.SqsQueue(self.queue)],
        )
        start_role = iam.Role(self, "StartFunctionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        start_logs = logs.LogGroup(
            self,
            "StartFunctionLogs",
            log_group_name=f"/aws/lambda/{prefix}-start-pipeline",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        for statement in [
            iam.PolicyStatement(
                sid="StartPipeline", actions=["states:StartExecution"], resources=[self.state_machine.attr_arn]
            ),
            iam.PolicyStatement(  # is the lease holder still running?
                sid="DescribePipelineRuns",
                actions=["states:DescribeExecution"],
                resources=[f"arn:aws:states:{self.region}:{self.account}:execution:"
                           f"{self.state_machine.state_machine_name}:*"],
            ),
            iam.PolicyStatement(
                sid="RunLease",
                actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"],
                resources=[self.lease_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="ConsumeLandingEvents",
                resources=[self.queue.queue_arn],
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
            ),
            iam.PolicyStatement(
                sid="OwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[start_logs.log_group_arn],
            ),
        ]:
            start_role.add_to_policy(statement)
        self.start_function = lambda_.DockerImageFunction(
            self,
            "StartFunction",
            function_name=checked("lambda_function", f"{prefix}-start-pipeline"),
            code=function_code(repo_root, "start_pipeline"),
            architecture=ARCHITECTURE,
            role=start_role,
            log_group=start_logs,
            memory_size=256,  # boto3 and one StartExecution call
            timeout=cdk.Duration.minutes(1),
            environment={"RFMLAKE_STATE_MACHINE_ARN": self.state_machine.attr_arn,
                         "RFMLAKE_RUN_LEASE_TABLE": self.lease_table.table_name},
            reserved_concurrent_executions=1,  # the lease decides; one poller at a time keeps retries few
        )
        self.start_function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=10_000,
                max_batching_window=cdk.Duration.seconds(deploy.debounce_seconds),
                report_batch_item_failures=False,
            )
        )
        if deploy.schedule:
            events.Rule(
                self,
                "Schedule",
                description="scheduled pipeline run",
                schedule=events.Schedule.expression(deploy.schedule),
                # Through the queue, like landing events: the same lease guards both (no second entry point).
                targets=[targets.SqsQueue(self.queue, message=events.RuleTargetInput.from_object(SCHEDULE_MESSAGE))],
            )

        # Monitoring: any failed job or run, and errors of the functions, reach the topic.
        events.Rule(
            self,
            "GlueJobFailed",
            description="a Glue job of this platform failed",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={
                    "state": ["FAILED", "TIMEOUT", "ERROR"],
                    "jobName": sorted(j.ref for j in compute.glue_jobs.values()),
                },
            ),
            targets=[targets.SnsTopic(self.topic)],
        )
        # An execution stopped by hand or timed out never reaches its summary state: the stage function
        # writes its summary from the status change (rfmlake.pipeline.remote.summarize_stopped_execution),
        # so the Runs page says "stopped" instead of "running" for ever.
        self.stopped_run_rule = events.Rule(
            self,
            "RunStoppedSummary",
            description="an execution stopped by hand or timed out -> its run summary",
            event_pattern=events.EventPattern(
                source=[STATUS_CHANGE_SOURCE],
                detail_type=[STATUS_CHANGE_TYPE],
                detail={"status": sorted(STOPPED_STATUSES), "stateMachineArn": [self.state_machine.attr_arn]},
            ),
            targets=[targets.LambdaFunction(compute.stage_function, retry_attempts=2)],
        )
        metrics: dict[str, cloudwatch.IMetric] = {
            "ExecutionsFailed": cloudwatch.Metric(
                namespace="AWS/States",
                metric_name="ExecutionsFailed",
                dimensions_map={"StateMachineArn": self.state_machine.attr_arn},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            ),
            "ExecutionsTimedOut": cloudwatch.Metric(
                namespace="AWS/States",
                metric_name="ExecutionsTimedOut",
                dimensions_map={"StateMachineArn": self.state_machine.attr_arn},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            ),
            "StageFunctionErrors": compute.stage_function.metric_errors(period=cdk.Duration.minutes(5)),
            "StartFunctionErrors": self.start_function.metric_errors(period=cdk.Duration.minutes(5)),
        }
        self.alarms = alarm_on_any(self, prefix, metrics, self.topic)
        # Published by the bronze_to_silver Glue job (rfmlake.monitoring, `--metrics cloudwatch`), once a run.
        threshold = deploy.alarms.quarantine_rate_percent
        self.alarms["QuarantineRate"] = alarm_above(
            self,
            prefix,
            "QuarantineRate",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=QUARANTINE_RATE,
                dimensions_map={"Environment": environment.prefix},
                statistic="Maximum",
                period=cdk.Duration.minutes(5),
            ),
            threshold,
            self.topic,
            f"a bronze -> silver run quarantined more than {threshold:g} % of its rows "
            "(see bronze.quarantine and the run's metrics per entity)",
        )
        cdk.CfnOutput(self, "StateMachineArn", value=self.state_machine.attr_arn)
        cdk.CfnOutput(self, "FailureTopicArn", value=self.topic.topic_arn)

    def _state_machine_statements(self, compute: ComputeStack, topic_key: kms.IKey) -> list[iam.PolicyStatement]:
        region, account = self.region, self.account
        statements = [
            iam.PolicyStatement(sid="NotifyFailure", actions=["sns:Publish"], resources=[self.topic.topic_arn]),
            iam.PolicyStatement(  # HoldRunLease / ReleaseRunLease
                sid="RunLease", actions=["dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[self.lease_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="NotifyFailureKey", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[topic_key.key_arn]
            ),
            iam.PolicyStatement(
                sid="VendedLogDeliveryAnyResource",
                resources=["*"],
                actions=[
                    # AWS: CloudWatch Logs delivery for Step Functions requires Resource "*".
                    "logs:CreateLogDelivery",
                    "logs:GetLogDelivery",
                    "logs:UpdateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:DescribeResourcePolicies",
                    "logs:DescribeLogGroups",
                ],
            ),
            iam.PolicyStatement(
                sid="XRayAnyResource",
                resources=["*"],
                actions=[
                    # AWS: X-Ray tracing APIs have no resource-level permissions.
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                ],
            ),
        ]
        if compute.glue_jobs:
            statements.append(
                iam.PolicyStatement(
                    sid="RunGlueJobs",
                    actions=["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"],
                    resources=[f"arn:aws:glue:{region}:{account}:job/{j.ref}" for j in compute.glue_jobs.values()],
                )
            )
        dbt = [r["project_name"] for r in compute.stage_resources.values() if "project_name" in r]
        if dbt:
            statements += [
                iam.PolicyStatement(
                    sid="RunDbtBuild",
                    actions=["codebuild:StartBuild", "codebuild:StopBuild", "codebuild:BatchGetBuilds"],
                    resources=[f"arn:aws:codebuild:{region}:{account}:project/{p}" for p in dbt],
                ),
                iam.PolicyStatement(
                    sid="SyncCodeBuildRule",
                    actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                    resources=[
                        f"arn:aws:events:{region}:{account}:rule/StepFunctionsGetEventForCodeBuildStartBuildRule"
                    ],
                ),
            ]
        prefixes = [r["job_prefix"] for r in compute.stage_resources.values() if "processing" in r]
        if prefixes:
            statements += [
                iam.PolicyStatement(
                    sid="RunProcessingJobs",
                    actions=[
                        "sagemaker:CreateProcessingJob",
                        "sagemaker:DescribeProcessingJob",
                        "sagemaker:StopProcessingJob",
                        "sagemaker:AddTags",
                    ],
                    resources=[f"arn:aws:sagemaker:{region}:{account}:processing-job/{p.lower()}-*" for p in prefixes],
                ),
                iam.PolicyStatement(
                    sid="SyncProcessingRule",
                    actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                    resources=[
                        f"arn:aws:events:{region}:{account}:rule/StepFunctionsGetEventsForSageMakerProcessingJobsRule"
                    ],
                ),
                iam.PolicyStatement(
                    sid="PassProcessingRole",
                    actions=["iam:PassRole"],
                    resources=[compute.sagemaker_role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                ),
            ]
        statements.append(
            iam.PolicyStatement(
                sid="InvokeStageFunction",
                actions=["lambda:InvokeFunction"],
                resources=[compute.stage_function.function_arn],
            )
        )
        return statements


def definition_json(stack: OrchestrationStack) -> str:
    return json.dumps(stack.definition, indent=2, default=str)
