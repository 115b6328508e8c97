"""Synthesize every stack offline and check what the platform promises: encrypted private buckets,
Glue jobs on the real scripts and wheel, the state machine = the local pipeline, least privilege,
Lake Formation grants = lakeformation/*.yaml, every Lambda a handler of the one image asset, and
cfn-lint clean templates. (Synth records the image asset; only `cdk deploy` needs Docker.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from infra_synth import REPO, Synth, resources  # noqa: E402
from rfmlake.pipeline.definition import PIPELINE, stage_names  # noqa: E402
from rfmlake.pipeline.stepfunctions import task_state_names  # noqa: E402


def all_resources(synth: Synth, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for stack, template in synth.templates.items():
        found.update({f"{stack}/{k}": v for k, v in resources(template, kind).items()})
    return found


def test_every_stack_synthesizes(synth: Synth) -> None:
    assert {s.split("Dev", 1)[1] for s in synth.templates} == {
        "Storage", "Catalog", "Compute", "Governance", "Orchestration", "Analytics", "Serving", "MarketingApp"}


def test_every_bucket_is_encrypted_private_versioned_and_tls_only(synth: Synth) -> None:
    from aws_cdk.assertions import Match, Template

    storage = Template.from_stack(synth.platform.storage)
    buckets = all_resources(synth, "AWS::S3::Bucket")
    assert len(buckets) == 5
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        algorithm = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        assert algorithm == ("AES256" if "Logs" in name else "aws:kms"), name
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["LifecycleConfiguration"]["Rules"], name
    policies = resources(synth.templates[synth.platform.storage.stack_name], "AWS::S3::BucketPolicy")
    assert len(policies) == 5  # one TLS-only policy per bucket
    storage.resource_count_is("AWS::S3::BucketPolicy", 5)
    storage.all_resources_properties("AWS::S3::BucketPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})
    storage.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_glue_jobs_point_at_the_real_scripts_and_the_wheel(synth: Synth) -> None:
    jobs = all_resources(synth, "AWS::Glue::Job")
    spark = [s for s in PIPELINE if s.runtime == "spark"]
    assert len(jobs) == len(spark)
    by_name = {j["Properties"]["Name"]: j["Properties"] for j in jobs.values()}
    for stage in spark:
        props = by_name[f"rfmlake-dev-{stage.name.replace('_', '-')}"]
        assert props["GlueVersion"] == "5.0"
        script = json.dumps(props["Command"]["ScriptLocation"])
        assert script.endswith(f'/glue/{Path(stage.glue_script).name}"]]}}'), script
        assert (REPO / stage.glue_script).is_file()
        wheel = json.dumps(props["DefaultArguments"]["--additional-python-modules"])
        assert f"/wheels/{synth.wheel_name}" in wheel
    # the uploaded glue/ folder is the repo's glue_jobs/ (the asset holds the real files)
    compute = synth.templates[synth.platform.compute.stack_name]
    assert resources(compute, "Custom::CDKBucketDeployment")


def test_only_the_roles_that_tokenize_may_read_the_pii_key_secret(synth: Synth) -> None:
    secret = synth.platform.environment.deploy.serving.pii_key_secret
    readers = set()
    for stack, template in synth.templates.items():
        for policy in resources(template, "AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if "secretsmanager:GetSecretValue" in json.dumps(statement["Action"]):
                    if statement["Sid"] == "SessionKeyRead":  # the marketing app's own cookie key, nothing else
                        own = synth.platform.marketing_app.session_secret_name
                        assert json.dumps(statement["Resource"]).endswith(f':secret:{own}-??????"]]}}')
                        continue
                    assert statement["Sid"] == "PiiKeySecretRead"
                    assert json.dumps(statement["Resource"]).endswith(f':secret:{secret}-??????"]]}}')
                    readers |= {(stack, role["Ref"]) for role in policy["Properties"]["Roles"]}
    compute, serving = synth.platform.compute, synth.platform.serving
    # Glue (ingest tokenizes PII), the stage function (identity tokenizes customer ids to find their
    # access-log users) and the profile API (an email lookup is tokenized); no other role.
    assert readers == {(compute.stack_name, compute.get_logical_id(compute.glue_role.node.default_child)),
                       (compute.stack_name, compute.get_logical_id(compute.stage_function_role.node.default_child)),
                       (serving.stack_name, serving.get_logical_id(serving.api_role.node.default_child))}


def test_state_machine_has_every_stage_in_order_with_retries_and_a_failure_path(synth: Synth) -> None:
    (machine,) = resources(synth.templates[synth.platform.orchestration.stack_name],
                           "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["DefinitionString"]  # rendered from the same definition object below
    definition = synth.platform.orchestration.definition
    assert task_state_names(definition) == stage_names()
    states = definition["States"]
    for stage in PIPELINE:
        assert states[stage.name]["Retry"][0]["MaxAttempts"] == stage.max_attempts - 1
        # the rollback (tests/functional/infra/test_failed_run_rollback_on_aws.py), the run summary
        # (tests/functional/infra/test_run_summary_on_aws.py), then the notification
        assert states[states[stage.name]["Catch"][0]["Next"]]["Next"] == "RollBackRun"
    assert states["RollBackRun"]["Next"] == "RecordFailedRunSummary"
    assert states["RecordFailedRunSummary"]["Next"] == "NotifyFailure"
    # both ends give the run lease back first (tests/functional/infra/test_one_run_at_a_time.py)
    assert states[states["NotifyFailure"]["Next"]]["Next"] == "RunFailed"
    assert states[states[PIPELINE[-1].name]["Next"]]["Next"] == "RecordRunSummary"
    assert states[states["RecordRunSummary"]["Next"]]["Next"] == "RunSucceeded"
    rendered = json.dumps(machine["Properties"]["DefinitionString"])
    for stage in PIPELINE:
        assert f'\\"{stage.name}\\"' in rendered


def test_landing_trigger_is_debounced_and_scheduled(synth: Synth) -> None:
    template = synth.templates[synth.platform.orchestration.stack_name]
    (mapping,) = resources(template, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["MaximumBatchingWindowInSeconds"] == synth.platform.environment.deploy.debounce_seconds
    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()]
    assert any(r.get("ScheduleExpression") == "cron(0 3 * * ? *)" for r in rules)
    assert any(r.get("EventPattern", {}).get("detail-type") == ["Object Created"] for r in rules)
    assert len(resources(template, "AWS::CloudWatch::Alarm")) >= 3


def _statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for stack, template in synth.templates.items():
        for name, resource in template["Resources"].items():
            if resource["Type"] == "AWS::IAM::Policy":
                docs = [resource["Properties"]["PolicyDocument"]]
            elif resource["Type"] == "AWS::IAM::Role":
                docs = [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
            else:
                continue
            for doc in docs:
                found += [(f"{stack}/{name}", s) for s in doc["Statement"]]
    return found


# CDK's own helper functions (asset upload, bucket auto-delete, log retention) use its fixed policies.
CDK_INTERNAL = ("CustomCDKBucketDeployment", "CustomS3AutoDeleteObjects", "BucketNotificationsHandler")


def test_iam_policies_have_no_unexplained_wildcards(synth: Synth) -> None:
    from rfmlake_infra.policies import ANY_RESOURCE_SIDS

    statements = _statements(synth)
    assert len(statements) > 30
    offenders = []
    for where, statement in statements:
        if any(part in where for part in CDK_INTERNAL):
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources_ = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if any("*" in a for a in actions) and statement.get("Sid") not in ANY_RESOURCE_SIDS:
            offenders.append((where, statement.get("Sid"), actions))
        if "*" in resources_ and statement.get("Sid") not in ANY_RESOURCE_SIDS:
            offenders.append((where, statement.get("Sid"), "Resource *"))
    assert offenders == []


def test_lake_formation_grants_match_the_yaml(synth: Synth) -> None:
    from rfmlake.governance.lakeformation import desired_grants
    from rfmlake.governance.model import load_governance

    config = load_governance(REPO / "lakeformation")
    template = synth.templates[synth.platform.governance.stack_name]
    tags = {t["Properties"]["TagKey"]: t["Properties"]["TagValues"] for t in resources(template, "AWS::LakeFormation::Tag").values()}
    assert tags == {k: list(v) for k, v in config.tags.lf_tags.items()}
    roles = {k: v["Properties"]["RoleName"] for k, v in resources(template, "AWS::IAM::Role").items()
             if "RoleName" in v["Properties"]}  # the personas (the data access role has a generated name)
    rendered = set()
    for grant in resources(template, "AWS::LakeFormation::PrincipalPermissions").values():
        props = grant["Properties"]
        policy = props["Resource"].get("LFTagPolicy")
        if policy is None:
            continue  # a pipeline role's own database/location grant
        role = roles[props["Principal"]["DataLakePrincipalIdentifier"]["Fn::GetAtt"][0]]
        expression = tuple(sorted((e["TagKey"], tuple(e["TagValues"])) for e in policy["Expression"]))
        rendered.add((role, policy["ResourceType"], expression, tuple(props["Permissions"])))
    expected = set()
    for (principal, (resource_type, expression)), (_resource, permissions) in desired_grants(config).items():
        expected.add((principal.rsplit("/", 1)[1], resource_type, expression, tuple(sorted(permissions))))
    assert rendered == expected
    associations = resources(template, "AWS::LakeFormation::TagAssociation")
    assert len(associations) == 3  # the layer tag on each zone database


def test_every_function_runs_a_handler_of_the_one_lambda_image(synth: Synth) -> None:
    import ast

    from rfmlake_infra.functions import DOCKERFILE

    ours = {k: v["Properties"] for k, v in all_resources(synth, "AWS::Lambda::Function").items()
            if not any(part in k for part in CDK_INTERNAL)}
    assert {p["FunctionName"] for p in ours.values()} == {
        "rfmlake-dev-pipeline-stage", "rfmlake-dev-start-pipeline", "rfmlake-dev-profile-indexer",
        "rfmlake-dev-profile-api", "rfmlake-dev-marketing-app"}
    images = set()
    for where, props in ours.items():
        assert props["PackageType"] == "Image", where
        assert not {"Runtime", "Handler", "Layers"} & set(props), where
        assert props["Architectures"] == ["x86_64"], where
        assert props["MemorySize"] and props["Timeout"] and props["Role"], where
        (cmd,) = props["ImageConfig"]["Command"]
        module, function = cmd.rsplit(".", 1)
        name, leaf = module.split(".")
        handler = REPO / "lambdas" / name / f"{leaf}.py"
        assert handler.is_file(), f"{where}: CMD {cmd} names no file in lambdas/"
        defined = {n.name for n in ast.parse(handler.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert function in defined, f"{where}: lambdas/{name}/{leaf}.py defines no {function}()"
        images.add(json.dumps(props["Code"]["ImageUri"]))
    assert len(images) == 1, images  # one image asset (one hash) for every function
    # no zip package layer left (the Upload*AwsCliLayer layers belong to CDK's BucketDeployment)
    assert [k for k in all_resources(synth, "AWS::Lambda::LayerVersion") if "AwsCliLayer" not in k] == []
    # the cloud assembly: one image asset, built from the repository root with lambdas/Dockerfile for
    # x86_64; its staged build context holds the package and the handlers, and nothing of .venv or data
    sources = {}
    for manifest in synth.outdir.glob("*.assets.json"):
        for asset_hash, asset in json.loads(manifest.read_text()).get("dockerImages", {}).items():
            sources[asset_hash] = asset["source"]
    (asset_hash, source), = sources.items()
    assert asset_hash in images.pop()
    assert source["dockerFile"] == DOCKERFILE and source["platform"] == "linux/amd64"
    context = synth.outdir / source["directory"]
    assert {p.name for p in context.iterdir()} == {"pyproject.toml", "README.md", "src", "lambdas", "lakeformation",
                                                 ".dockerignore"}
    assert (context / DOCKERFILE).is_file() and (context / "src" / "rfmlake" / "__init__.py").is_file()
    assert {p.parent.name for p in (context / "lambdas").glob("*/handler.py")} == {
        p.parent.name for p in (REPO / "lambdas").glob("*/handler.py")}
    assert not list(context.rglob("__pycache__"))


def test_cfn_lint_passes(synth_env: Synth) -> None:
    """Every environment in config/ (synth_env is parametrized over them)."""
    templates = sorted(str(p) for p in synth_env.outdir.glob("*.template.json"))
    assert len(templates) == 8  # the stacks of rfmlake_infra.platform.Platform
    # W3005: CDK adds an explicit DependsOn next to a GetAtt on purpose (role before function).
    done = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", "W3005", "--", *templates],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_role_reaches_exactly_the_zones_its_stages_declare(synth: Synth) -> None:
    """IAM (S3 prefixes, Glue databases) and Lake Formation grants of every runtime's role follow the
    reads/writes of its stages in rfmlake.pipeline.definition: a stage that works locally has what it
    needs on AWS, and no role reaches a zone its stages do not touch."""
    from rfmlake.pipeline.definition import zone_access

    compute = synth.platform.compute
    template = synth.templates[compute.stack_name]
    prefix = synth.platform.environment.prefix
    zones = ("bronze", "silver", "gold")
    grants = [g["Properties"] for g in resources(synth.templates[synth.platform.governance.stack_name],
                                                "AWS::LakeFormation::PrincipalPermissions").values()
              if "LFTagPolicy" not in g["Properties"]["Resource"]]
    read_tables, write_tables = ["DESCRIBE", "SELECT"], ["ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT"]
    for runtime, role in compute.runtime_roles.items():
        reads, writes = zone_access(runtime)
        role_id = compute.get_logical_id(role.node.default_child)
        (policy,) = [p["Properties"]["PolicyDocument"]["Statement"] for p in resources(template, "AWS::IAM::Policy").values()
                     if p["Properties"]["Roles"] == [{"Ref": role_id}]]
        by_sid = {s["Sid"]: json.dumps(s["Resource"]) for s in policy if "Sid" in s}  # CodeBuild adds its own

        def zones_in(sid: str, pattern: str, by_sid: dict[str, str] = by_sid) -> set[str]:
            return {z for z in zones if pattern.format(zone=z) in by_sid.get(sid, "")}

        assert zones_in("LakeReadObjects", "/{zone}/*") == set(reads), runtime
        assert zones_in("LakeWriteObjects", "/{zone}/*") == set(writes), runtime
        assert zones_in("CatalogRead", f":database/{prefix}_{{zone}}") == set(reads), runtime
        assert zones_in("CatalogWrite", f":database/{prefix}_{{zone}}") == set(writes), runtime
        layers = synth.platform.catalog.dbt_layers if runtime == "dbt" else ()  # dbt's views: staging, ...
        tables: dict[str, list[str]] = {}
        for grant in grants:
            table = grant["Resource"].get("Table")
            if table and role_id in json.dumps(grant["Principal"]):
                (zone,) = [z for z in (*zones, *layers) if f"{z.title()}Database" in json.dumps(table["DatabaseName"])]
                tables[zone] = sorted(grant["Permissions"])
        assert tables == {**{z: read_tables for z in reads}, **{z: write_tables for z in (*writes, *layers)}}, runtime


def test_dbt_runs_the_pipeline_stage_into_databases_the_catalog_creates(synth: Synth) -> None:
    """CodeBuild runs the dbt_build stage through rfmlake (vars from the deployed settings), and every
    layer the dbt project builds into is a Glue database of the catalog stack the dbt role may write."""
    from rfmlake.modeling.project import dbt_schemas

    prefix = synth.platform.environment.prefix
    catalog = resources(synth.templates[synth.platform.catalog.stack_name], "AWS::Glue::Database")
    names = {d["Properties"]["DatabaseInput"]["Name"] for d in catalog.values()}
    layers = dbt_schemas(REPO / "dbt")
    assert {"staging", "intermediate", "gold"} <= set(layers)
    assert names == {f"{prefix}_{layer}" for layer in {"bronze", "silver", *layers}}
    compute = synth.platform.compute
    (project,) = resources(synth.templates[compute.stack_name], "AWS::CodeBuild::Project").values()
    spec = json.loads(project["Properties"]["Source"]["BuildSpec"])
    assert spec["phases"]["build"]["commands"][-1] == (
        "python -m rfmlake.pipeline.remote --stage dbt_build --config settings.yaml")
    env = {v["Name"]: v["Value"] for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    assert {"RFMLAKE_LAKE", "RFMLAKE_ATHENA_WORK_GROUP", "RFMLAKE_ATHENA_S3_STAGING_DIR"} <= set(env)
    assert json.dumps(env["RFMLAKE_ATHENA_S3_DATA_DIR"]).endswith('/gold/_dbt/"]]}')  # inside the gold zone
    role_id = compute.get_logical_id(compute.dbt_role.node.default_child)
    (policy,) = [p["Properties"]["PolicyDocument"]["Statement"]
                 for p in resources(synth.templates[compute.stack_name], "AWS::IAM::Policy").values()
                 if p["Properties"]["Roles"] == [{"Ref": role_id}]]
    (layer_write,) = [st for st in policy if st.get("Sid") == "CatalogDbtLayersWrite"]
    for layer in ("staging", "intermediate"):
        assert f":database/{prefix}_{layer}" in json.dumps(layer_write["Resource"])
