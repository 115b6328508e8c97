"""The IAM check: every AWS API call of every role's code path, evaluated with its resource ARNs against
that role's synthesized policies by a real policy evaluator (rfmlake.deploy.iam_check). A missing
permission fails and names the call and the role.

Calls moto can serve are recorded on the moto server while the deployed code runs, in every environment
of config/, each test asserting no denial and putting one fault back to see it named:
- the Glue role: both Glue entry scripts with their job arguments (test_glue_jobs_run.py);
- the dbt role: the CodeBuild buildspec's `aws s3 cp` commands and rfmlake.pipeline.remote
  (test_dbt_project_runs.py);
- the SageMaker role: every processing job (test_processing_jobs_run.py);
- the stage function's role: every stage it runs (test_stage_function_runs.py);
- the start function's role (test_one_run_at_a_time.py); the marketing app's (test_marketing_app_runs.py);
- the profile indexer's and API's, with their OpenSearch requests (test_serving_functions_run.py).

Declared here, per role, is only what moto cannot run, each with its reason: Athena and dbt-athena's own
Glue, S3 and Athena calls; what Spark and the Glue service do on Glue; the state machine's service
integrations; what AWS services do with the roles they assume (SageMaker pulling the image and inputs,
CodeBuild and Lambda writing logs and attaching VPC interfaces, Lake Formation vending credentials, the
SQS event source); the personas' Athena queries; CDK's own helper functions. Every role of every
template must have calls here: none is left unchecked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from infra_synth import Synth
from rfmlake.deploy.cfn import Templates
from rfmlake.deploy.iam_check import ApiCall, Role, bucket_keys, bucket_policies, denials, roles, with_implied_calls

pytest.importorskip("aws_cdk")
pytest.importorskip("principalmapper")


@dataclass
class Names:
    """What the deployed platform is called, resolved from the templates."""

    templates: Templates
    synth: Synth

    def __post_init__(self) -> None:
        self.region, self.account = self.templates.region, self.templates.account
        platform = self.synth.platform
        storage = platform.storage
        self.buckets = {name: self.templates.physical_name(storage.stack_name,
                                                           storage.get_logical_id(bucket.node.default_child))
                        for name, bucket in storage.buckets.items()}
        self.key = self.att(storage, storage.key.node.default_child, "Arn")
        self.prefix = platform.environment.prefix
        self.resource_prefix = platform.environment.resource_prefix
        self.workgroup = f"arn:aws:athena:{self.region}:{self.account}:workgroup/{platform.catalog.workgroup_name}"

    def att(self, stack: Any, construct: Any, attribute: str) -> str:
        return self.templates.resolve(stack.stack_name, {"Fn::GetAtt": [stack.get_logical_id(construct), attribute]})

    def obj(self, bucket: str, key: str) -> str:
        return f"arn:aws:s3:::{self.buckets[bucket]}/{key}"

    def bucket(self, bucket: str) -> str:
        return f"arn:aws:s3:::{self.buckets[bucket]}"

    def db(self, zone: str) -> str:
        return f"{self.prefix}_{zone}"

    def glue(self, database: str, table: str | None = None) -> tuple[str, ...]:
        base = f"arn:aws:glue:{self.region}:{self.account}"
        return (f"{base}:catalog", f"{base}:database/{database}",
                *((f"{base}:table/{database}/{table}",) if table else ()))

    def log_stream(self, group: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}:log-stream:2026/12/01/abc"


def call(action: str, *resources: str, why: str, **context: str) -> ApiCall:
    return ApiCall.of(action, *resources, source=why, **context)


def s3_reads(n: Names, bucket: str, key: str, prefix: str, why: str) -> list[ApiCall]:
    return [call("s3:ListBucket", n.bucket(bucket), why=why, s3__prefix=prefix),
            call("s3:GetObject", n.obj(bucket, key), why=why)]


def s3_writes(n: Names, bucket: str, key: str, why: str) -> list[ApiCall]:
    return [call("s3:PutObject", n.obj(bucket, key), why=why), call("s3:DeleteObject", n.obj(bucket, key), why=why),
            call("s3:AbortMultipartUpload", n.obj(bucket, key), why=why)]


def logs(n: Names, group: str, why: str) -> list[ApiCall]:
    return [call(a, n.log_stream(group), why=why) for a in ("logs:CreateLogStream", "logs:PutLogEvents")]


def declared_calls(synth: Synth, n: Names) -> dict[str, list[ApiCall]]:
    platform = synth.platform
    compute, orchestration, governance, serving = (platform.compute, platform.orchestration, platform.governance,
                                                   platform.serving)

    def key(stack: Any, role: Any) -> str:
        return f"{stack.stack_name}/{stack.get_logical_id(role.node.default_child)}"

    region, account, rp = n.region, n.account, n.resource_prefix
    declared: dict[str, list[ApiCall]] = {}

    # -- Glue: the service and Spark (recorded: the scripts' own calls, test_glue_jobs_run.py) ---------
    spark = "Spark's S3A on Glue (local Spark has no S3 connector)"
    declared[key(compute, compute.glue_role)] = [
        *s3_reads(n, "artifacts", "glue/landing_to_bronze.py", "glue/", "the Glue service fetches the job script"),
        *s3_reads(n, "artifacts", f"wheels/{synth.wheel_name}", "wheels/", "the Glue service: --additional-python-modules"),
        *s3_reads(n, "artifacts", "glue-python/pydantic-2.0-py3-none-any.whl", "glue-python/",
                  "the Glue service installs the bundle"),
        *s3_reads(n, "artifacts", "config/settings.yaml", "config/", "the Glue service: --extra-files settings.yaml"),
        *s3_writes(n, "artifacts", "glue-temp/spark-123/x", "Spark on Glue: --TempDir"),
        call("s3:GetBucketLocation", n.bucket("lake"), why=spark),
        call("cloudwatch:PutMetricData", "*", why="the Glue service: --enable-metrics", cloudwatch__namespace="Glue"),
        *logs(n, "/aws-glue/jobs/output", "the Glue service: continuous logging"),
        *logs(n, "/aws-glue/jobs/error", "the Glue service: continuous logging"),
    ]

    # -- dbt on CodeBuild: dbt-athena 1.11.1's own calls, and Athena's with the role's credentials (moto
    #    runs no Athena query); recorded: the buildspec's copies and the run report (test_dbt_project_runs.py)
    gold, silver = n.db("gold"), n.db("silver")
    layers = [n.db(layer) for layer in platform.catalog.dbt_layers]
    dbt = "dbt-athena"
    athena = "Athena (forward access session)"
    declared[key(compute, compute.dbt_role)] = [
        *logs(n, f"/aws/codebuild/{rp}-dbt-build", "the CodeBuild service writes the build's logs"),
        *[call(a, n.workgroup, why=dbt) for a in ("athena:GetWorkGroup", "athena:StartQueryExecution",
                                                   "athena:GetQueryExecution", "athena:GetQueryResults",
                                                   "athena:StopQueryExecution")],
        # create_schemas: list_schemas pages GetDatabases over the catalog, then GetDatabase per schema
        *[call("glue:GetDatabases", *n.glue(db), why=f"{dbt}: list_schemas (GetDatabases paginator)")
          for db in (gold, silver, *layers)],
        *[call("glue:GetDatabase", *n.glue(db), why=f"{dbt}: schema exists") for db in (gold, *layers)],
        *[call("glue:GetTables", *n.glue(db), why=f"{dbt}: list_relations_without_caching")
          for db in (gold, silver, *layers)],
        *[call(a, *n.glue(gold, t), why=f"{dbt}: table materialization (swap, persist_docs, drop)")
          for t in ("customer_rfm_features", "customer_rfm_features__ha") for a in (
              "glue:GetTable", "glue:UpdateTable", "glue:DeleteTable", "glue:GetPartitions",
              "glue:BatchCreatePartition", "glue:BatchDeletePartition")],
        *[call(a, *n.glue(gold, "customer_rfm_features"), why=f"{dbt}: expire_glue_table_versions")
          for a in ("glue:GetTableVersions", "glue:DeleteTableVersion")],
        *[call(a, *n.glue(layer, "stg_orders"), why=f"{dbt}: views") for layer in layers
          for a in ("glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable",
                    "glue:GetTableVersions", "glue:DeleteTableVersion")],
        call("glue:CreateTable", *n.glue(gold, "customer_rfm_features__ha"), why=f"{athena}: CTAS"),
        call("glue:GetTable", *n.glue(silver, "orders"), why=f"{athena}: reads silver"),
        *s3_reads(n, "lake", "silver/orders/versions/v1/part-0.parquet", "silver/orders/", f"{athena}: reads silver"),
        *s3_writes(n, "lake", "gold/_dbt/rfmlake_dev_gold/customer_rfm_features/abc/0.parquet", f"{athena}: CTAS data"),
        call("s3:ListBucket", n.bucket("lake"), why=f"{dbt}: delete_from_s3", s3__prefix="gold/_dbt/x/"),
        *s3_reads(n, "lake", "gold/customer_rfm_features/_current", "gold/", "dbt tests read gold"),
        *s3_writes(n, "athena-results", "results/abc.csv", f"{athena}: query results"),
        *s3_reads(n, "athena-results", "results/abc.csv", "results/", f"{dbt}: results"),
        call("s3:GetBucketLocation", n.bucket("athena-results"), why=f"{athena}: results location"),
        call("s3:ListMultipartUploadParts", n.obj("athena-results", "results/abc.csv"), why=f"{athena}: results"),
        call("lakeformation:GetDataAccess", why=f"{athena}: Lake Formation credential vending"),
    ]

    # -- SageMaker: what the service does with the role before and around the container ----------------
    image_repo = n.templates.resolve(compute.stack_name, _repository_arn(compute))
    declared[key(compute, compute.sagemaker_role)] = [
        *s3_reads(n, "artifacts", "models/segmentation/processing.py", "models/segmentation/", "ProcessingInput code"),
        *s3_reads(n, "artifacts", "config/settings.yaml", "config/", "ProcessingInput config"),
        call("ecr:GetAuthorizationToken", why="SageMaker pulls the image"),
        *[call(a, image_repo, why="SageMaker pulls the image")
          for a in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")],
        *logs(n, "/aws/sagemaker/ProcessingJobs", "the container's logs"),
        call("cloudwatch:PutMetricData", why="instance metrics", cloudwatch__namespace="/aws/sagemaker/ProcessingJobs"),
    ]

    # -- the stage and start functions: what Lambda does with their roles --------------------------------
    declared[key(compute, compute.stage_function_role)] = [
        *logs(n, f"/aws/lambda/{rp}-pipeline-stage", "Lambda writes the function's logs"),
        call("lakeformation:GetDataAccess", why="Lake Formation vends credentials for registered locations (no LF in moto)"),
    ]
    queue = n.att(orchestration, orchestration.queue.node.default_child, "Arn")
    start_role = orchestration.start_function.role
    declared[key(orchestration, start_role)] = [
        *[call(a, queue, why="the SQS event source mapping polls with the function's role")
          for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")],
        *logs(n, f"/aws/lambda/{rp}-start-pipeline", "Lambda writes the function's logs"),
    ]

    # -- the state machine's service integrations ----------------------------------------------------------
    sm = []
    for stage, resource in compute.stage_resources.items():
        if "job_name" in resource:
            sm += [call(a, f"arn:aws:glue:{region}:{account}:job/{rp}-{stage.replace('_', '-')}", why="glue:startJobRun.sync")
                   for a in ("glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun")]
        if "project_name" in resource:
            sm += [call(a, f"arn:aws:codebuild:{region}:{account}:project/{rp}-{stage.replace('_', '-')}",
                        why="codebuild:startBuild.sync") for a in ("codebuild:StartBuild", "codebuild:StopBuild",
                                                                   "codebuild:BatchGetBuilds")]
            sm += [call(a, f"arn:aws:events:{region}:{account}:rule/StepFunctionsGetEventForCodeBuildStartBuildRule",
                        why=".sync on CodeBuild") for a in ("events:PutTargets", "events:PutRule", "events:DescribeRule")]
        if "processing" in resource:
            job = f"arn:aws:sagemaker:{region}:{account}:processing-job/{resource['job_prefix']}-0f8fad5b-d9cb-469f-a165-70867728950e"
            sm += [call(a, job, why="sagemaker:createProcessingJob.sync")
                   for a in ("sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                             "sagemaker:StopProcessingJob", "sagemaker:AddTags")]
            sm += [call(a, f"arn:aws:events:{region}:{account}:rule/StepFunctionsGetEventsForSageMakerProcessingJobsRule",
                        why=".sync on SageMaker") for a in ("events:PutTargets", "events:PutRule", "events:DescribeRule")]
            sm.append(call("iam:PassRole", n.att(compute, compute.sagemaker_role.node.default_child, "Arn"),
                           why="CreateProcessingJob RoleArn", iam__PassedToService="sagemaker.amazonaws.com"))
        if "function_arn" in resource:
            sm.append(call("lambda:InvokeFunction", n.att(compute, compute.stage_function.node.default_child, "Arn"),
                           why="lambda:invoke"))
    lease = n.att(orchestration, orchestration.lease_table.node.default_child, "Arn")
    topic = n.templates.resolve(orchestration.stack_name,
                                {"Ref": orchestration.get_logical_id(orchestration.topic.node.default_child)})
    topic_key = [r for s, lid, r in n.templates.resources("AWS::KMS::Key") if s == orchestration.stack_name]
    sm += [
        call("dynamodb:UpdateItem", lease, why="HoldRunLease"), call("dynamodb:DeleteItem", lease, why="ReleaseRunLease"),
        call("sns:Publish", topic, why="NotifyFailure"),
        call("kms:GenerateDataKey", f"arn:aws:kms:{region}:{account}:key/{_topic_key_id(n, orchestration)}",
             why="NotifyFailure on the encrypted topic"),
        call("logs:CreateLogDelivery", why="vended logs"), call("xray:PutTraceSegments", why="tracing"),
    ]
    assert topic_key
    declared[key(orchestration, orchestration.role)] = sm

    # -- Lake Formation vends credentials for the registered locations with this role ----------------------
    declared[key(governance, governance.data_access_role)] = [
        *[c for zone in ("bronze", "silver", "gold") for c in
          s3_reads(n, "lake", f"{zone}/t/versions/v1/part-0.parquet", f"{zone}/t/", "vended read")
          + s3_writes(n, "lake", f"{zone}/t/versions/v2/part-0.parquet", "vended write")],
        call("kms:Decrypt", n.key, why="the lake bucket's key"), call("kms:GenerateDataKey", n.key, why="the lake bucket's key"),
    ]

    # -- personas: an Athena query; Lake Formation decides what it sees -----------------------------------
    for persona, role in governance.persona_roles.items():
        why = f"{persona} queries in Athena"
        declared[key(governance, role)] = [
            *[call(a, n.workgroup, why=why) for a in ("athena:StartQueryExecution", "athena:GetQueryExecution",
                                                     "athena:GetQueryResults", "athena:GetWorkGroup")],
            *[call(a, *n.glue(db, t), why=why) for db in (gold, silver) for t in (None, "customer_rfm")
              for a in (("glue:GetTable", "glue:GetPartitions") if t else ("glue:GetDatabase", "glue:GetDatabases"))],
            call("lakeformation:GetDataAccess", why=why),
            *s3_writes(n, "athena-results", "results/q1.csv", f"{why}: results"),
            *s3_reads(n, "athena-results", "results/q1.csv", "results/", f"{why}: results"),
            call("s3:GetBucketLocation", n.bucket("athena-results"), why=why),
        ]

    # -- serving: what Lambda does with the roles (recorded: S3, the secret and every OpenSearch request,
    #    test_serving_functions_run.py) -------------------------------------------------------------
    declared[key(serving, serving.indexer_role)] = [
        *logs(n, f"/aws/lambda/{rp}-profile-indexer", "Lambda writes the function's logs"),
        call("ec2:CreateNetworkInterface", why="Lambda attaches a function in a VPC"),
    ]
    declared[key(serving, serving.api_role)] = [
        *logs(n, f"/aws/lambda/{rp}-profile-api", "Lambda writes the function's logs"),
        call("ec2:CreateNetworkInterface", why="Lambda attaches a function in a VPC"),
    ]

    # -- the marketing app: what Lambda does with its role (recorded: test_marketing_app_runs.py) ---------
    app = platform.marketing_app
    declared[key(app, app.role)] = logs(n, f"/aws/lambda/{rp}-marketing-app", "Lambda writes the function's logs")

    # -- CDK's helper functions (their handlers' calls, aws-cdk-lib 2.275) --------------------------------
    for stack, logical, _resource in n.templates.resources("AWS::IAM::Role"):
        if logical.startswith("CustomS3AutoDeleteObjectsCustomResourceProviderRole"):
            declared[f"{stack}/{logical}"] = [
                c for bucket in n.buckets for c in (
                    call("s3:ListBucket", n.bucket(bucket), why="auto-delete: list objects"),
                    call("s3:DeleteObject", n.obj(bucket, "any/key"), why="auto-delete: empty the bucket"),
                    call("s3:GetBucketTagging", n.bucket(bucket), why="auto-delete: owned by the stack?"),
                    call("s3:PutBucketPolicy", n.bucket(bucket), why="auto-delete: deny new writes"))
            ] + logs(n, "/aws/lambda/auto-delete", "Lambda logs")
        if logical.startswith("CustomCDKBucketDeployment"):
            declared[f"{stack}/{logical}"] = [
                call("s3:GetObject", f"arn:aws:s3:::cdk-hnb659fds-assets-{account}-{region}/asset.zip",
                     why="BucketDeployment reads the asset"),
                call("s3:ListBucket", n.bucket("artifacts"), why="BucketDeployment: aws s3 sync"),
                *s3_writes(n, "artifacts", "glue/landing_to_bronze.py", "BucketDeployment: aws s3 sync"),
                *logs(n, "/aws/lambda/bucket-deployment", "Lambda logs"),
            ]
    return declared


def _repository_arn(compute: Any) -> Any:
    for statement in compute.sagemaker_role.node.find_child("DefaultPolicy").document.to_json()["Statement"]:
        if statement.get("Sid") == "EcrPullProcessingImage":
            return compute.resolve(statement["Resource"])
    raise AssertionError("no EcrPullProcessingImage statement")


def _topic_key_id(n: Names, orchestration: Any) -> str:
    (logical,) = [lid for s, lid, _r in n.templates.resources("AWS::KMS::Key") if s == orchestration.stack_name]
    return logical


@dataclass
class Checked:
    roles: dict[str, Role]
    declared: dict[str, list[ApiCall]]
    names: Names
    bucket_policies: dict[str, Any]

    def denials(self, role: Role, calls: list[ApiCall]) -> list[Any]:
        return denials(role, calls, bucket_policies=self.bucket_policies, account=self.names.account)


@pytest.fixture(scope="module")
def checked(synth_env: Synth) -> Checked:
    deploy = synth_env.platform.environment.deploy
    templates = Templates(synth_env.templates, account=deploy.account or "123456789012", region=deploy.region)
    names = Names(templates, synth_env)
    keys = bucket_keys(templates)
    declared = {role: with_implied_calls(calls, keys) for role, calls in declared_calls(synth_env, names).items()}
    return Checked(roles(templates), declared, names, bucket_policies(templates))


def test_every_role_in_the_templates_is_checked(checked: Checked) -> None:
    all_roles, declared = checked.roles, checked.declared
    assert len(all_roles) >= 15  # prod keeps its buckets: no auto-delete helper
    assert set(declared) == set(all_roles), "a role without calls here is a role nobody checked"
    assert all(declared.values())


def test_no_role_misses_a_permission_its_code_path_needs(checked: Checked) -> None:
    missing = [d.describe() for role, calls in sorted(checked.declared.items())
               for d in checked.denials(checked.roles[role], calls)]
    assert missing == []


def test_the_check_finds_the_permission_dbt_lacked(checked: Checked) -> None:
    """The faults of issue 14, put back: the dbt role without GetDatabases and the table-version calls
    fails on create_schemas and on every materialization, and names the call and the role."""
    all_roles, declared = checked.roles, checked.declared
    (dbt,) = [r for name, r in all_roles.items() if "/DbtRole" in name]
    lacking = Role(dbt.stack, dbt.logical_id, dbt.arn, dbt.trust, [
        {**s, "Action": [a for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
                         if a not in ("glue:GetDatabases", "glue:GetTableVersions", "glue:DeleteTableVersion")]}
        for s in dbt.statements])
    found = {d.call.action for d in checked.denials(lacking, declared[dbt.name])}
    assert found == {"glue:GetDatabases", "glue:GetTableVersions", "glue:DeleteTableVersion"}
    message = checked.denials(lacking, declared[dbt.name])[0].describe()
    assert "/DbtRole" in message and " may not glue:" in message and "dbt-athena" in message
