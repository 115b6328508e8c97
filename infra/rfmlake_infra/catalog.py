"""Catalog: one Glue database per lake zone (`<prefix>_bronze`, `_silver`, `_gold`), one per dbt layer
that is not a zone (`_staging`, `_intermediate`), and the Athena
workgroup analysts and dbt use (results encrypted in the Athena results bucket, settings enforced)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from constructs import Construct

from rfmlake.deploy import Environment
from rfmlake.deploy.names import checked
from rfmlake_infra.storage import StorageStack

ZONES: tuple[str, ...] = ("bronze", "silver", "gold")


def database_name(environment: Environment, zone: str) -> str:
    return checked("glue_database", f"{environment.prefix}_{zone}")


class CatalogStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Environment,
        storage: StorageStack,
        dbt_layers: tuple[str, ...] = (),
        **kwargs: object,
    ) -> None:
        """`dbt_layers`: the schemas the dbt project builds (rfmlake.modeling.project.dbt_schemas); those
        that are not lake zones (staging, intermediate: views only) get a database of their own."""
        super().__init__(scope, construct_id, **kwargs)
        self.databases: dict[str, glue.CfnDatabase] = {}
        self.dbt_layers = tuple(layer for layer in dbt_layers if layer not in ZONES)
        # (name, description, location): the zones hold the lake's data; dbt's layers only views
        databases = [(zone, f"rfmlake {zone} zone", f"s3://{storage.lake.bucket_name}/{zone}/") for zone in ZONES]
        databases += [(layer, f"rfmlake dbt {layer} models (views over silver; dbt-athena builds them)", None)
                      for layer in self.dbt_layers]
        for name, description, location in databases:
            self.databases[name] = glue.CfnDatabase(
                self,
                f"{name.title()}Database",
                catalog_id=self.account,
                database_input=glue.CfnDatabase.DatabaseInputProperty(
                    name=database_name(environment, name), description=description, location_uri=location,
                    # Lake Formation alone governs the tables created here (docs/adr/0014): no default
                    # IAMAllowedPrincipals grant on new tables, whatever the account's defaults say.
                    create_table_default_permissions=[],
                ),
            )
        self.workgroup_name = checked("athena_workgroup", environment.resource_prefix)
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=self.workgroup_name,
            description="rfmlake queries (dbt on Athena, analysts)",
            recursive_delete_option=environment.deploy.removal == "destroy",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{storage.athena_results.bucket_name}/results/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS",
                        kms_key=storage.key.key_arn,
                    ),
                ),
            ),
        )
