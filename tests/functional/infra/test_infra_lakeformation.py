"""Lake Formation as deployed, in every environment: the lake locations are registered with a role that
may use the lake bucket's KMS key (not the service-linked role), one permission mode (Lake Formation
only, docs/adr/0014: no hybrid access, no default IAMAllowedPrincipals on any table), and grants for
every pipeline role and every persona."""

from __future__ import annotations

from typing import Any

import pytest

from infra_synth import REPO, Synth
from rfmlake.deploy.cfn import Templates

pytest.importorskip("aws_cdk")


def templates_of(synth: Synth) -> Templates:
    deploy = synth.platform.environment.deploy
    return Templates(synth.templates, account=deploy.account or "123456789012", region=deploy.region)


def role_policies(templates: Templates, role_arn: str) -> list[dict[str, Any]]:
    """Every statement of the inline and managed policies attached to the role with this ARN."""
    role_name = role_arn.rsplit("/", 1)[1]
    statements = []
    for kind, key in (("AWS::IAM::Policy", "Roles"), ("AWS::IAM::ManagedPolicy", "Roles")):
        for stack, _logical, resource in templates.resources(kind):
            props = templates.resolve(stack, resource["Properties"])
            if role_name in props.get(key, []):
                statements += props["PolicyDocument"]["Statement"]
    return statements


def test_locations_are_registered_with_a_role_that_can_use_the_lake_key(synth_env: Synth) -> None:
    templates = templates_of(synth_env)
    storage = synth_env.platform.storage
    lake = templates.physical_name(storage.stack_name, storage.get_logical_id(storage.lake.node.default_child))
    key_arn = templates.resolve(storage.stack_name,
                                {"Fn::GetAtt": [storage.get_logical_id(storage.key.node.default_child), "Arn"]})
    governance = synth_env.platform.governance.stack_name
    registered = {}
    for stack, logical, resource in templates.resources("AWS::LakeFormation::Resource"):
        props = templates.resolve(stack, resource["Properties"])
        assert props["UseServiceLinkedRole"] is False and props["HybridAccessEnabled"] is False, logical
        registered[props["ResourceArn"]] = props["RoleArn"]
    assert set(registered) == {f"arn:aws:s3:::{lake}/{zone}" for zone in ("bronze", "silver", "gold")}
    (role_arn,) = set(registered.values())
    (role,) = [r for s, _l, r in templates.resources("AWS::IAM::Role")
               if s == governance and templates.resolve(s, {"Fn::GetAtt": [_l, "Arn"]}) == role_arn]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lakeformation.amazonaws.com"}]
    statements = role_policies(templates, role_arn)
    kms = [s for s in statements if "kms:Decrypt" in s["Action"]]
    assert kms and all(s["Resource"] == key_arn for s in kms)
    objects = [s for s in statements if "s3:GetObject" in s["Action"]]
    assert sorted(objects[0]["Resource"]) == sorted(f"arn:aws:s3:::{lake}/{z}/*" for z in ("bronze", "silver", "gold"))


def test_no_table_is_ever_open_to_iam_allowed_principals(synth_env: Synth) -> None:
    templates = templates_of(synth_env)
    databases = templates.resources("AWS::Glue::Database")
    assert len(databases) == 5
    for _stack, logical, resource in databases:
        assert resource["Properties"]["DatabaseInput"]["CreateTableDefaultPermissions"] == [], logical
    for _stack, _logical, resource in templates.resources("AWS::LakeFormation::PrincipalPermissions"):
        principal = resource["Properties"]["Principal"]["DataLakePrincipalIdentifier"]
        assert principal != "IAM_ALLOWED_PRINCIPALS"


def test_every_pipeline_role_and_persona_has_its_grants(synth_env: Synth) -> None:
    templates = templates_of(synth_env)
    platform = synth_env.platform
    compute, governance = platform.compute, platform.governance
    grants: dict[str, set[str]] = {}
    for stack, _logical, resource in templates.resources("AWS::LakeFormation::PrincipalPermissions"):
        props = templates.resolve(stack, resource["Properties"])
        grants.setdefault(props["Principal"]["DataLakePrincipalIdentifier"], set()).update(props["Resource"])

    def arn(stack: Any, role: Any) -> str:
        return templates.resolve(stack.stack_name, {"Fn::GetAtt": [stack.get_logical_id(role.node.default_child), "Arn"]})

    for runtime, role in compute.runtime_roles.items():
        from rfmlake.pipeline.definition import zone_access

        expected = {"Database", "Table"} | ({"DataLocation"} if zone_access(runtime)[1] else set())
        assert grants.get(arn(compute, role)) == expected, runtime
    query_policy = governance.get_logical_id(governance.persona_query_policy.node.default_child)
    (policy,) = [r for s, logical, r in templates.resources("AWS::IAM::ManagedPolicy") if logical == query_policy]
    attached = {ref["Ref"] for ref in policy["Properties"]["Roles"]}
    for persona, role in governance.persona_roles.items():
        assert grants.get(arn(governance, role)) == {"LFTagPolicy"}, persona
        assert governance.get_logical_id(role.node.default_child) in attached, persona


def test_the_permission_mode_is_recorded() -> None:
    (adr,) = sorted((REPO / "docs" / "adr").glob("*-lake-formation-permission-mode.md"))
    text = adr.read_text()
    assert "hybrid access mode" in text and "IAMAllowedPrincipals" in text and "Status: accepted" in text
