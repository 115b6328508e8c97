"""Governance: renders lakeformation/*.yaml (rfmlake.governance.load_governance) into Lake Formation:
registered lake locations, LF-tags, the layer tag on each zone database, the persona roles and
their LF-tag-policy grants, and the pipeline roles' own database/location grants.

Permission mode (docs/adr/0014): Lake Formation only, no hybrid access mode. The lake locations are
registered with a role of our own that may use the lake bucket's customer-managed KMS key (the
service-linked role may not); the catalog stack creates the databases without default table
permissions, so no table is ever open to IAMAllowedPrincipals; `rfmlake governance apply` revokes the
database-level IAMAllowedPrincipals grant an account's defaults may add.

Table and column tag assignments (assignments.yaml `tables:`) are not here: those tables are
created by the pipeline's first run, after the deploy; `rfmlake governance apply` assigns them."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lakeformation as lf
from constructs import Construct

from rfmlake.deploy import Environment
from rfmlake.deploy.names import checked
from rfmlake.governance.lakeformation import desired_grants
from rfmlake.governance.model import GovernanceConfig
from rfmlake_infra.catalog import ZONES, CatalogStack
from rfmlake_infra.policies import kms_use, lake_formation_data_access, s3_write
from rfmlake_infra.storage import StorageStack

# Lake Formation table permissions of a role that writes a zone: DROP for the tables dbt-athena replaces
# (DeleteTable on its __ha/tmp tables) and ALTER for every commit (UpdateTable).
WRITE_TABLE_PERMISSIONS = ["ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT"]
READ_TABLE_PERMISSIONS = ["DESCRIBE", "SELECT"]


@dataclass(frozen=True)
class PipelineAccess:
    """What one pipeline role may do in the catalog: read some zones, write others."""

    role: iam.IRole
    reads: tuple[str, ...]
    writes: tuple[str, ...]


def persona_role_name(config: GovernanceConfig, persona: str) -> str:
    """The IAM role name lakeformation/account.yaml `role_arn` gives a persona (apply and infra agree)."""
    name = config.account.role_arn.split(":role/", 1)[1].format(persona=persona, account_id="")
    return checked("iam_role", name, setting="lakeformation/account.yaml role_arn")


class GovernanceStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Environment,
        config: GovernanceConfig,
        storage: StorageStack,
        catalog: CatalogStack,
        pipeline: dict[str, PipelineAccess],
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Athena, dbt and the personas read the lake through credentials Lake Formation vends with the
        # role a location is registered with: it must reach the zones and use the bucket's KMS key.
        self.data_access_role = iam.Role(
            self,
            "LakeFormationDataAccessRole",
            assumed_by=iam.ServicePrincipal("lakeformation.amazonaws.com"),
            description="rfmlake: the role Lake Formation vends lake credentials with (registered locations)",
        )
        for statement in [*s3_write("LakeZones", storage.lake, *(f"{zone}/" for zone in ZONES)),
                          kms_use(storage.key)]:
            self.data_access_role.add_to_policy(statement)
        self.locations: dict[str, lf.CfnResource] = {}
        for zone in ZONES:
            self.locations[zone] = lf.CfnResource(
                self,
                f"{zone.title()}Location",
                resource_arn=f"{storage.lake.bucket_arn}/{zone}",
                use_service_linked_role=False,
                role_arn=self.data_access_role.role_arn,
                hybrid_access_enabled=False,
            )
            self.locations[zone].node.add_dependency(self.data_access_role)
        self.lf_tags: dict[str, lf.CfnTag] = {}
        for key, values in sorted(config.tags.lf_tags.items()):
            self.lf_tags[key] = lf.CfnTag(
                self, f"Tag{key.title()}", catalog_id=self.account, tag_key=key, tag_values=list(values)
            )
        for zone in ZONES:
            assignment = config.assignments.databases.get(zone)
            if assignment is None or not assignment.tags:
                continue
            association = lf.CfnTagAssociation(
                self,
                f"{zone.title()}DatabaseTags",
                lf_tags=[
                    lf.CfnTagAssociation.LFTagPairProperty(catalog_id=self.account, tag_key=k, tag_values=[v])
                    for k, v in sorted(assignment.tags.items())
                ],
                resource=lf.CfnTagAssociation.ResourceProperty(
                    database=lf.CfnTagAssociation.DatabaseResourceProperty(
                        catalog_id=self.account, name=catalog.databases[zone].ref
                    )
                ),
            )
            for key in assignment.tags:
                association.node.add_dependency(self.lf_tags[key])

        self.persona_roles: dict[str, iam.Role] = {}
        for persona in sorted(config.personas.personas):
            self.persona_roles[persona] = iam.Role(
                self,
                f"Persona{persona.title().replace('_', '')}",
                role_name=persona_role_name(config, persona),
                description=f"rfmlake persona {persona}: data access through Lake Formation grants only",
                assumed_by=iam.AccountRootPrincipal(),  # who may assume it is decided by the account's IAM/SSO
            )
        self.persona_query_policy = self._persona_query_policy(environment, storage, catalog)
        self.grants: list[lf.CfnPrincipalPermissions] = []
        template_account = config.account.account_id
        for index, ((principal, _key), (resource, permissions)) in enumerate(
            sorted(desired_grants(config).items(), key=lambda item: (item[0][0], str(item[0][1])))
        ):
            persona = next(
                p for p in config.personas.personas if principal.endswith("/" + persona_role_name(config, p))
            )
            policy = resource["LFTagPolicy"]
            assert policy["CatalogId"] == template_account
            grant = lf.CfnPrincipalPermissions(
                self,
                f"Grant{index:02d}{persona.title().replace('_', '')}",
                principal=lf.CfnPrincipalPermissions.DataLakePrincipalProperty(
                    data_lake_principal_identifier=self.persona_roles[persona].role_arn
                ),
                resource=lf.CfnPrincipalPermissions.ResourceProperty(
                    lf_tag_policy=lf.CfnPrincipalPermissions.LFTagPolicyResourceProperty(
                        catalog_id=self.account,
                        resource_type=policy["ResourceType"],
                        expression=[
                            lf.CfnPrincipalPermissions.LFTagProperty(tag_key=e["TagKey"], tag_values=e["TagValues"])
                            for e in policy["Expression"]
                        ],
                    )
                ),
                permissions=sorted(permissions),
                permissions_with_grant_option=[],
            )
            for expression in policy["Expression"]:
                grant.node.add_dependency(self.lf_tags[expression["TagKey"]])
            self.grants.append(grant)

        for name, access in sorted(pipeline.items()):
            self._pipeline_grants(name, access, catalog)

    def _persona_query_policy(self, environment: Environment, storage: StorageStack,
                              catalog: CatalogStack) -> iam.ManagedPolicy:
        """What every persona needs in IAM to query through Athena: the workgroup, the catalog's metadata of
        the zones (Lake Formation decides which databases, tables and columns it sees), credentials vended
        by Lake Formation, and the query results. No S3 access to the lake itself: that comes from Lake
        Formation's grants only."""
        region, account = self.region, self.account
        databases = [catalog.databases[zone].ref for zone in ZONES]
        policy = iam.ManagedPolicy(
            self,
            "PersonaQueryAccess",
            description=f"rfmlake {environment.deploy.name}: query the lake through Athena and Lake Formation",
            statements=[
                iam.PolicyStatement(
                    sid="AthenaWorkGroup",
                    actions=["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                             "athena:StopQueryExecution", "athena:GetWorkGroup", "athena:ListNamedQueries",
                             "athena:BatchGetNamedQuery", "athena:GetNamedQuery"],
                    resources=[f"arn:aws:athena:{region}:{account}:workgroup/{catalog.workgroup_name}"],
                ),
                iam.PolicyStatement(
                    sid="CatalogMetadata",
                    actions=["glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables",
                             "glue:GetPartition", "glue:GetPartitions"],
                    resources=[f"arn:aws:glue:{region}:{account}:catalog",
                               *(f"arn:aws:glue:{region}:{account}:database/{db}" for db in databases),
                               *(f"arn:aws:glue:{region}:{account}:table/{db}/*" for db in databases)],
                ),
                lake_formation_data_access(),
                *s3_write("QueryResults", storage.athena_results, "results/"),
                kms_use(storage.key),  # the workgroup encrypts results with the data key
            ],
            roles=list(self.persona_roles.values()),
        )
        return policy

    def _pipeline_grants(self, name: str, access: PipelineAccess, catalog: CatalogStack) -> None:
        principal = lf.CfnPrincipalPermissions.DataLakePrincipalProperty(
            data_lake_principal_identifier=access.role.role_arn
        )
        label = name.title().replace("_", "")
        for zone in sorted(set(access.reads) | set(access.writes)):
            writes = zone in access.writes
            database = catalog.databases[zone].ref
            lf.CfnPrincipalPermissions(
                self,
                f"{label}{zone.title()}Database",
                principal=principal,
                resource=lf.CfnPrincipalPermissions.ResourceProperty(
                    database=lf.CfnPrincipalPermissions.DatabaseResourceProperty(catalog_id=self.account, name=database)
                ),
                permissions=["CREATE_TABLE", "DESCRIBE"] if writes else ["DESCRIBE"],
                permissions_with_grant_option=[],
            )
            lf.CfnPrincipalPermissions(
                self,
                f"{label}{zone.title()}Tables",
                principal=principal,
                resource=lf.CfnPrincipalPermissions.ResourceProperty(
                    table=lf.CfnPrincipalPermissions.TableResourceProperty(
                        catalog_id=self.account, database_name=database, table_wildcard={}
                    )
                ),  # every table of this zone: the job creates them at run time
                permissions=WRITE_TABLE_PERMISSIONS if writes else READ_TABLE_PERMISSIONS,
                permissions_with_grant_option=[],
            )
            if writes and zone in self.locations:  # dbt's view-only layers have no data location
                location = lf.CfnPrincipalPermissions(
                    self,
                    f"{label}{zone.title()}LocationAccess",
                    principal=principal,
                    resource=lf.CfnPrincipalPermissions.ResourceProperty(
                        data_location=lf.CfnPrincipalPermissions.DataLocationResourceProperty(
                            catalog_id=self.account, resource_arn=self.locations[zone].resource_arn
                        )
                    ),
                    permissions=["DATA_LOCATION_ACCESS"],
                    permissions_with_grant_option=[],
                )
                location.node.add_dependency(self.locations[zone])
