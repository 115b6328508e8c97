"""Analytics: the saved queries as Athena named queries in the catalog's workgroup
(rfmlake.analytics.named_query_params), and, when config/<env>.yaml has a `deploy.quicksight`
section, the segment dashboard as code (rfmlake.dashboard.quicksight.all_requests): one Athena data
source, the custom-SQL datasets, the analysis and the dashboard. The request params are the
CloudFormation properties (AWS::QuickSight::* take the API's field names), so nothing is re-typed."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from constructs import Construct

from rfmlake.analytics import named_query_params
from rfmlake.dashboard.quicksight import QuickSightConfig, all_requests
from rfmlake.deploy import Environment

# QuickSightConfig wants a 12-digit account; environment-agnostic templates (deploy.account null) get
# this placeholder, replaced below by the stack's AWS::AccountId in every string of the params.
ACCOUNT_PLACEHOLDER = "000000000000"

# operation -> (CloudFormation type, the params key naming the resource)
QUICKSIGHT_RESOURCES: dict[str, tuple[str, str]] = {
    "create_data_source": ("AWS::QuickSight::DataSource", "DataSourceId"),
    "create_data_set": ("AWS::QuickSight::DataSet", "DataSetId"),
    "create_analysis": ("AWS::QuickSight::Analysis", "AnalysisId"),
    "create_dashboard": ("AWS::QuickSight::Dashboard", "DashboardId"),
}
NO_QUICKSIGHT = "not configured: no deploy.quicksight section, so only the Athena named queries are deployed"


def _replace_in_strings(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _replace_in_strings(v, old, new) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_in_strings(v, old, new) for v in value]
    return value


def _logical_id(resource_id: str) -> str:
    return "".join(part.title() for part in resource_id.replace("_", "-").split("-"))


class AnalyticsStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Environment,
        work_group: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        deploy = environment.deploy
        self.named_queries: dict[str, athena.CfnNamedQuery] = {}
        for params in named_query_params(environment.prefix, work_group):
            self.named_queries[params["Name"]] = athena.CfnNamedQuery(
                self,
                f"Query{_logical_id(params['Name'].removeprefix(environment.resource_prefix))}",
                name=params["Name"],
                description=params["Description"],
                database=params["Database"],
                query_string=params["QueryString"],
                work_group=params["WorkGroup"],
            )
        self.quicksight: dict[str, cdk.CfnResource] = {}
        if deploy.quicksight is None:
            cdk.Annotations.of(self).add_info(f"QuickSight {NO_QUICKSIGHT}")
            cdk.CfnOutput(self, "QuickSight", value=NO_QUICKSIGHT)
            return
        account = deploy.account or ACCOUNT_PLACEHOLDER
        self.quicksight_config = QuickSightConfig(
            aws_account_id=account,
            region=deploy.region,
            prefix=environment.prefix,
            athena_work_group=work_group,
            horizon_days=deploy.quicksight.horizon_days,
            principals=tuple(p.format(account=account, region=deploy.region) for p in deploy.quicksight.principals),
            import_mode=deploy.quicksight.import_mode,
        )
        data_source: cdk.CfnResource | None = None
        data_sets: list[cdk.CfnResource] = []
        for operation, params in all_requests(self.quicksight_config):
            kind, id_key = QUICKSIGHT_RESOURCES[operation]
            properties = params if deploy.account else _replace_in_strings(params, ACCOUNT_PLACEHOLDER, self.account)
            resource = cdk.CfnResource(
                self, f"{kind.split('::')[-1]}{_logical_id(params[id_key])}", type=kind, properties=properties
            )
            # The params reference each other by ARN strings, not Refs: order them explicitly.
            if operation == "create_data_source":
                data_source = resource
            elif operation == "create_data_set":
                assert data_source is not None
                resource.node.add_dependency(data_source)
                data_sets.append(resource)
            else:
                for dependency in data_sets:
                    resource.node.add_dependency(dependency)
            self.quicksight[f"{kind.split('::')[-1]}/{params[id_key]}"] = resource
        dashboard_id = self.quicksight_config.resource_id("segments")
        cdk.CfnOutput(
            self,
            "QuickSight",
            value=f"https://{deploy.region}.quicksight.aws.amazon.com/sn/dashboards/{dashboard_id}",
        )
