"""The analytics stack (Athena named queries, QuickSight as code) and the serving stack (OpenSearch in a
VPC, the profile indexer and the IAM-authorized profile API), checked on the session's synthesized app
(tests/infra_synth.py). cfn-lint and the IAM wildcard check cover these templates in test_infra_synth."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from infra_synth import Synth, resources  # noqa: E402
from rfmlake.analytics import named_query_params, query_names  # noqa: E402
from rfmlake.dashboard.datasets import DATASETS  # noqa: E402


def analytics(synth: Synth) -> dict[str, Any]:
    return synth.templates[synth.platform.analytics.stack_name]


def serving(synth: Synth) -> dict[str, Any]:
    return synth.templates[synth.platform.serving.stack_name]


def ref_of(stack: Any, construct: Any) -> str:
    return stack.get_logical_id(construct.node.default_child)


# -- analytics ------------------------------------------------------------------------------------
def test_every_saved_query_is_a_named_query_in_the_catalogs_workgroup(synth: Synth) -> None:
    workgroup = synth.platform.catalog.workgroup_name
    deployed = {
        q["Properties"]["Name"]: q["Properties"]
        for q in resources(analytics(synth), "AWS::Athena::NamedQuery").values()
    }
    expected = {p["Name"]: p for p in named_query_params("rfmlake_dev", workgroup)}
    assert len(expected) == len(query_names()) == len(deployed)
    assert deployed == expected
    assert all(p["WorkGroup"] == "rfmlake-dev" and p["Database"] == "rfmlake_dev_gold" for p in deployed.values())
    assert synth.platform.catalog in synth.platform.analytics.dependencies


def test_quicksight_datasets_carry_the_dashboard_sql_and_feed_the_analysis_and_dashboard(synth: Synth) -> None:
    template = analytics(synth)
    horizon = synth.platform.environment.deploy.quicksight.horizon_days
    (source_id, source), = resources(template, "AWS::QuickSight::DataSource").items()
    assert source["Properties"]["Type"] == "ATHENA"
    assert source["Properties"]["DataSourceParameters"] == {"AthenaParameters": {"WorkGroup": "rfmlake-dev"}}
    data_sets = resources(template, "AWS::QuickSight::DataSet")
    sql = {}
    for logical_id, data_set in data_sets.items():
        (table,) = data_set["Properties"]["PhysicalTableMap"].values()
        sql[table["CustomSql"]["Name"]] = table["CustomSql"]["SqlQuery"]
        assert data_set["DependsOn"] == [source_id], logical_id
        # environment-agnostic: the account is the stack's, never the placeholder
        assert data_set["Properties"]["AwsAccountId"] == {"Ref": "AWS::AccountId"}
    assert sql == {d.name: d.render("rfmlake_dev_", horizon) for d in DATASETS}
    assert all("rfmlake_dev_gold." in text for text in sql.values())
    for kind in ("AWS::QuickSight::Analysis", "AWS::QuickSight::Dashboard"):
        (resource,) = resources(template, kind).values()
        assert sorted(resource["DependsOn"]) == sorted(data_sets)
        declarations = resource["Properties"]["Definition"]["DataSetIdentifierDeclarations"]
        assert {d["Identifier"] for d in declarations} == {d.name for d in DATASETS}
        for declaration in declarations:
            arn = json.dumps(declaration["DataSetArn"])
            assert f":dataset/rfmlake-dev-{declaration['Identifier'].replace('_', '-')}" in arn
        segments, journeys = resource["Properties"]["Definition"]["Sheets"]
        # sizes, revenue share, heat map, migration, value distribution, value by segment, engagement
        assert len(segments["Visuals"]) == 7
        # rate per group, lift, rate by day, results table; the latest-day filter
        assert len(journeys["Visuals"]) == 4
        assert [g["FilterGroupId"] for g in resource["Properties"]["Definition"]["FilterGroups"]] == [
            "journeys-latest-day"]
        assert "group/default/rfmlake-analysts" in json.dumps(resource["Properties"]["Permissions"])
    assert "000000000000" not in json.dumps(template)


def test_without_a_quicksight_section_only_named_queries_are_deployed_and_the_stack_says_so(synth: Synth) -> None:
    import aws_cdk as cdk
    from aws_cdk.assertions import Annotations, Match, Template
    from rfmlake_infra.analytics import NO_QUICKSIGHT, AnalyticsStack

    environment = synth.platform.environment
    plain = environment.model_copy(update={"deploy": environment.deploy.model_copy(update={"quicksight": None})})
    stack = AnalyticsStack(cdk.App(), "NoQuickSight", environment=plain, work_group="wg")
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::Athena::NamedQuery", len(query_names()))
    assert not [t for t in template.to_json()["Resources"].values() if t["Type"].startswith("AWS::QuickSight::")]
    template.has_output("QuickSight", {"Value": NO_QUICKSIGHT})
    Annotations.from_stack(stack).has_info("*", Match.string_like_regexp("QuickSight not configured"))


# -- serving --------------------------------------------------------------------------------------
def test_opensearch_is_encrypted_https_only_in_the_vpc_and_admits_only_the_two_roles(synth: Synth) -> None:
    stack = synth.platform.serving
    template = serving(synth)
    (domain,) = resources(template, "AWS::OpenSearchService::Domain").values()
    props = domain["Properties"]
    assert props["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert props["EncryptionAtRestOptions"] == {"Enabled": True}
    assert props["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert props["DomainEndpointOptions"]["TLSSecurityPolicy"].startswith("Policy-Min-TLS-1-2")
    subnets = props["VPCOptions"]["SubnetIds"]
    assert len(subnets) == 2 and props["ClusterConfig"]["ZoneAwarenessEnabled"] is True
    isolated = {k for k, v in resources(template, "AWS::EC2::Subnet").items()
                if v["Properties"]["MapPublicIpOnLaunch"] is False}
    assert {s["Ref"] for s in subnets} == isolated
    assert not resources(template, "AWS::EC2::InternetGateway") and not resources(template, "AWS::EC2::NatGateway")
    statements = {s["Sid"]: s for s in props["AccessPolicies"]["Statement"]}
    assert set(statements) == {"IndexerReadWrite", "ApiRead"}
    indexer, api = ref_of(stack, stack.indexer_role), ref_of(stack, stack.api_role)
    assert statements["IndexerReadWrite"]["Principal"] == {"AWS": {"Fn::GetAtt": [indexer, "Arn"]}}
    assert statements["ApiRead"]["Principal"] == {"AWS": {"Fn::GetAtt": [api, "Arn"]}}
    assert not {"es:ESHttpPut", "es:ESHttpDelete"} & set(statements["ApiRead"]["Action"])
    assert all(json.dumps(s["Resource"]).endswith(':domain/rfmlake-dev-profiles/*"]]}') for s in statements.values())


def test_the_api_in_its_isolated_subnets_can_reach_secrets_manager(synth: Synth) -> None:
    """The API reads the PII key at cold start; without a NAT its only route is an interface endpoint."""
    stack, template = synth.platform.serving, serving(synth)
    (endpoint,) = [e["Properties"] for e in resources(template, "AWS::EC2::VPCEndpoint").values()
                   if e["Properties"].get("VpcEndpointType") == "Interface"]
    assert "secretsmanager" in json.dumps(endpoint["ServiceName"]) and endpoint["PrivateDnsEnabled"] is True
    isolated = {k for k, v in resources(template, "AWS::EC2::Subnet").items() if v["Properties"]["MapPublicIpOnLaunch"] is False}
    assert {s["Ref"] for s in endpoint["SubnetIds"]} == isolated
    (group,) = endpoint["SecurityGroupIds"]
    rules = [r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupIngress").values()
             if r["Properties"]["GroupId"] == group]
    functions = ref_of(stack, stack.api_function.connections.security_groups[0])
    assert [(r["FromPort"], r["SourceSecurityGroupId"]) for r in rules] == [(443, {"Fn::GetAtt": [functions, "GroupId"]})]


def test_opensearch_error_logs_reach_cloudwatch_under_a_policy_for_that_group_only(synth: Synth) -> None:
    stack = synth.platform.serving
    template = serving(synth)
    (domain,) = resources(template, "AWS::OpenSearchService::Domain").values()
    group = ref_of(stack, stack.domain_logs)
    assert domain["Properties"]["LogPublishingOptions"] == {
        "ES_APPLICATION_LOGS": {"CloudWatchLogsLogGroupArn": {"Fn::GetAtt": [group, "Arn"]}, "Enabled": True}}
    assert template["Resources"][group]["Properties"]["LogGroupName"] == "/aws/vendedlogs/opensearch/rfmlake-dev-profiles"
    (policy_id, policy), = resources(template, "AWS::Logs::ResourcePolicy").items()
    assert policy_id in domain["DependsOn"]  # in place before the service checks it
    # the document is one string joined around the log group's ARN and the account: fill those in
    parts = policy["Properties"]["PolicyDocument"]["Fn::Join"][1]
    filled = "".join(p if isinstance(p, str) else
                     "arn:aws:logs:eu-west-1:123456789012:log-group:G" if p == {"Fn::GetAtt": [group, "Arn"]} else
                     {"AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1"}[p["Ref"]] for p in parts)
    (statement,) = json.loads(filled)["Statement"]
    assert statement["Principal"] == {"Service": "es.amazonaws.com"}
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == "arn:aws:logs:eu-west-1:123456789012:log-group:G"  # that group only
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"].endswith(":123456789012:domain/rfmlake-dev-profiles")


def test_the_indexer_runs_when_a_profile_version_is_committed(synth: Synth) -> None:
    from rfmlake_infra.serving import PROFILE_POINTER_KEY

    from rfmlake.profiles import aws

    stack, template = synth.platform.serving, serving(synth)
    (rule,) = resources(template, "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"]["key"] == [PROFILE_POINTER_KEY]
    assert "LakeBucket" in json.dumps(pattern["detail"]["bucket"]["name"])
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [stack.get_logical_id(stack.indexer.node.default_child), "Arn"]}
    assert target["DeadLetterConfig"] and target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert aws._POINTER_KEY.match(PROFILE_POINTER_KEY)  # the handler accepts the key the rule sends
    storage = synth.templates[synth.platform.storage.stack_name]
    lake = next(v for k, v in resources(storage, "AWS::S3::Bucket").items() if k.startswith("LakeBucket"))
    assert lake["Properties"]["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    functions = {v["Properties"]["FunctionName"]: v["Properties"] for v in resources(template, "AWS::Lambda::Function").values()}
    indexer = functions["rfmlake-dev-profile-indexer"]
    assert indexer["VpcConfig"]["SubnetIds"] and indexer["Environment"]["Variables"]["RFMLAKE_OPENSEARCH_ENDPOINT"]


def test_the_api_requires_iam_auth_is_throttled_logged_and_alarmed(synth: Synth) -> None:
    from rfmlake_infra.serving import ROUTES

    template = serving(synth)
    deploy = synth.platform.environment.deploy
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {f"GET {path}" for path in ROUTES}
    assert all(r["AuthorizationType"] == "AWS_IAM" for r in routes.values())
    (stage,) = resources(template, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == deploy.serving.api.rate_limit
    assert settings["ThrottlingBurstLimit"] == deploy.serving.api.burst_limit
    log_format = stage["Properties"]["AccessLogSettings"]["Format"]
    assert "$context.routeKey" in log_format and "querystring" not in log_format.lower()
    assert "$context.path" not in log_format  # a path can carry a customer id; the route template cannot
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    (five_xx,) = [a for a in alarms if a["MetricName"] == "5xx"]
    assert five_xx["Namespace"] == "AWS/ApiGateway" and five_xx["AlarmActions"]
    assert {d["Name"] for d in five_xx["Dimensions"]} == {"ApiId", "Stage"}
    functions = {v["Properties"]["FunctionName"]: v["Properties"] for v in resources(template, "AWS::Lambda::Function").values()}
    variables = functions["rfmlake-dev-profile-api"]["Environment"]["Variables"]
    # the API reads the key at cold start: neither the template nor the function configuration holds it
    assert variables["RFMLAKE_PII_KEY_SECRET"] == deploy.serving.pii_key_secret
    assert "RFMLAKE_PII_KEY" not in variables and "resolve:secretsmanager" not in json.dumps(synth.templates)


def test_serving_roles_are_scoped(synth: Synth) -> None:
    stack, template = synth.platform.serving, serving(synth)
    policies = {p["Properties"]["Roles"][0]["Ref"]: p["Properties"]["PolicyDocument"]["Statement"]
                for p in resources(template, "AWS::IAM::Policy").values()}
    indexer = {s["Sid"]: s for s in policies[ref_of(stack, stack.indexer_role)]}
    api = {s["Sid"]: s for s in policies[ref_of(stack, stack.api_role)]}
    assert set(api) == {"OpenSearchRead", "PiiKeySecretRead", "OwnLogs", "VpcNetworkInterfacesAnyResource"}
    assert api["PiiKeySecretRead"]["Action"] == "secretsmanager:GetSecretValue"
    assert json.dumps(api["PiiKeySecretRead"]["Resource"]).endswith(':secret:rfmlake/dev/pii-key-??????"]]}')
    assert "PiiKeySecretRead" not in indexer  # the indexer loads tokens, it never makes one
    assert "ProfileTableReadObjects" in indexer and "OpenSearchReadWrite" in indexer
    assert json.dumps(indexer["ProfileTableReadObjects"]["Resource"]).count("/gold/customer_profile/*") == 1
    for role in resources(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]  # no AWS-managed policy with Resource "*"
    (invoke,) = resources(template, "AWS::IAM::ManagedPolicy").values()
    (statement,) = invoke["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    assert all("/$default/GET/" in json.dumps(r) for r in statement["Resource"])


def test_api_gateway_routes_every_route_the_app_serves() -> None:
    """A route the app has and API Gateway lacks is a 404 on AWS only: the two lists must agree."""
    from rfmlake_infra.serving import ROUTES

    from rfmlake.profiles.app import ApiConfig, create_app
    from rfmlake.profiles.embedded import EmbeddedProfileStore

    app = create_app(EmbeddedProfileStore("/nonexistent"), ApiConfig(auth="gateway"), lambda email: None)
    # The API's routes; its schema and docs page (/openapi.json, /docs: not in the schema) are not routed.
    served = {route.path for route in app.routes
              if "GET" in getattr(route, "methods", set()) and getattr(route, "include_in_schema", True)}
    assert served == set(ROUTES)
