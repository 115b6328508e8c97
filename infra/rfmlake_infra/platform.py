"""Assemble the stacks of one environment (config/<env>.yaml) into a CDK app."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from rfmlake.deploy import Environment, load_environment
from rfmlake.governance.model import load_governance
from rfmlake.modeling.project import dbt_schemas
from rfmlake.pipeline.definition import zone_access
from rfmlake_infra.analytics import AnalyticsStack
from rfmlake_infra.build import REPO_ROOT, BuildArtifacts, build_artifacts
from rfmlake_infra.catalog import CatalogStack
from rfmlake_infra.compute import ComputeStack
from rfmlake_infra.governance import GovernanceStack, PipelineAccess
from rfmlake_infra.marketing_app import MarketingAppStack
from rfmlake_infra.orchestration import OrchestrationStack
from rfmlake_infra.personalize import PersonalizeStack
from rfmlake_infra.serving import ServingStack
from rfmlake_infra.storage import StorageStack

FEATURE_FLAGS: dict[str, bool] = {
    # Access logs are delivered under a bucket policy, not the legacy LogDelivery ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
}


@dataclass
class Platform:
    environment: Environment
    storage: StorageStack
    catalog: CatalogStack
    compute: ComputeStack
    governance: GovernanceStack
    orchestration: OrchestrationStack
    analytics: AnalyticsStack
    serving: ServingStack
    marketing_app: MarketingAppStack
    personalize: PersonalizeStack | None = None  # recommendations.personalize.enabled

    @property
    def stacks(self) -> list[cdk.Stack]:
        return [
            self.storage, self.catalog, self.compute, self.governance, self.orchestration, self.analytics, self.serving,
            self.marketing_app,
            *([self.personalize] if self.personalize else []),
        ]


def build_platform(
    app: Construct,
    *,
    env_name: str = "dev",
    repo_root: Path = REPO_ROOT,
    artifacts: BuildArtifacts | None = None,
    environment: Environment | None = None,
) -> Platform:
    environment = environment or load_environment(env_name, repo_root / "config")
    if artifacts is None:
        artifacts = build_artifacts(Path(tempfile.mkdtemp(prefix="rfmlake-build-")), repo_root)
    deploy = environment.deploy
    for flag, value in FEATURE_FLAGS.items():  # also in cdk.json; set here so tests and app.py agree
        app.node.set_context(flag, value)
    # account None: environment-agnostic templates (synth without credentials); `cdk deploy` fills them in.
    env = cdk.Environment(account=deploy.account, region=deploy.region) if deploy.account else None
    name = f"{environment.resource_prefix.title().replace('-', '')}"
    common = {"env": env}
    storage = StorageStack(app, f"{name}Storage", environment=environment, **common)
    catalog = CatalogStack(
        app, f"{name}Catalog", environment=environment, storage=storage,
        dbt_layers=dbt_schemas(repo_root / "dbt"), **common,
    )
    compute = ComputeStack(
        app,
        f"{name}Compute",
        environment=environment,
        storage=storage,
        catalog=catalog,
        artifacts=artifacts,
        repo_root=repo_root,
        **common,
    )
    governance = GovernanceStack(
        app,
        f"{name}Governance",
        environment=environment,
        config=load_governance(repo_root / "lakeformation"),
        storage=storage,
        catalog=catalog,
        # Each runtime's role gets the zones its stages declare (the same as its IAM policy in compute).
        pipeline={
            **{runtime: PipelineAccess(role, *zone_access(runtime)) for runtime, role in compute.runtime_roles.items()},
            "dbt_layers": PipelineAccess(compute.dbt_role, reads=(), writes=catalog.dbt_layers),  # dbt's own views
        },
        **common,
    )
    orchestration = OrchestrationStack(
        app,
        f"{name}Orchestration",
        environment=environment,
        storage=storage,
        compute=compute,
        repo_root=repo_root,
        **common,
    )
    analytics = AnalyticsStack(
        app, f"{name}Analytics", environment=environment, work_group=catalog.workgroup_name, **common
    )
    analytics.node.add_dependency(catalog)  # the named queries live in the catalog's workgroup
    serving = ServingStack(
        app,
        f"{name}Serving",
        environment=environment,
        storage=storage,
        alarm_topic=orchestration.topic,
        repo_root=repo_root,
        **common,
    )
    marketing_app = MarketingAppStack(
        app, f"{name}MarketingApp", environment=environment, storage=storage, alarm_topic=orchestration.topic,
        settings_uri=compute.settings_uri, repo_root=repo_root, **common,
    )
    platform = Platform(environment, storage, catalog, compute, governance, orchestration, analytics, serving,
                        marketing_app)
    if environment.settings.recommendations.personalize.enabled:
        platform.personalize = PersonalizeStack(
            app, f"{name}Personalize", environment=environment, pipeline_role=compute.runtime_roles["segmentation"],
            **common)
    for stack in platform.stacks:
        for key, value in sorted({**deploy.tags, "rfmlake:environment": deploy.name}.items()):
            cdk.Tags.of(stack).add(key, value)
    return platform
