"""`governance plan|apply` against Lake Formation and Glue served by moto in server mode."""

from __future__ import annotations

import shutil
import socket
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from rfmlake.governance import lakeformation as lfm
from rfmlake.governance.model import GovernanceConfig, load_governance

REPO_CONFIG = Path(__file__).resolve().parents[3] / "lakeformation"
REGION = "eu-west-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.lakeformation.models import LakeFormationBackend
    from moto.server import ThreadedMotoServer

    # moto 5.2 raises KeyError (HTTP 500) from GetResourceLFTags on a database or table that has
    # no tags yet, where Lake Formation answers with empty lists; give its stores a default.
    original_init = LakeFormationBackend.__init__

    def init(self, region_name: str, account_id: str) -> None:
        original_init(self, region_name, account_id)
        self.lf_database_tags = defaultdict(list)
        self.lf_table_tags = defaultdict(list)

    LakeFormationBackend.__init__ = init  # type: ignore[method-assign]
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        LakeFormationBackend.__init__ = original_init  # type: ignore[method-assign]


@pytest.fixture()
def session(moto_endpoint: str) -> boto3.Session:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"))
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def _create_glue(session: boto3.Session, endpoint: str, config: GovernanceConfig, skip: str | None = None) -> None:
    glue = session.client("glue", endpoint_url=endpoint)
    for zone, database in config.assignments.databases.items():
        name = lfm.database_name(config, zone)
        glue.create_database(DatabaseInput={"Name": name})
        for table_name, table in database.tables.items():
            if f"{zone}.{table_name}" == skip:
                continue
            glue.create_table(DatabaseName=name, TableInput={
                "Name": table_name,
                "StorageDescriptor": {"Columns": [{"Name": c, "Type": "string"} for c in table.columns]},
            })


def test_first_apply_creates_everything_and_second_changes_nothing(session: boto3.Session, moto_endpoint: str) -> None:
    config = load_governance(REPO_CONFIG)
    _create_glue(session, moto_endpoint, config)

    first = lfm.apply(config, boto3_session=session, endpoint_url=moto_endpoint)
    actions = {c.action for c in first.changes}
    assert {"create LF-tag", "register location", "add tags", "add column tags", "grant"} <= actions
    assert not first.skipped

    lf = session.client("lakeformation", endpoint_url=moto_endpoint)
    tags = {t["TagKey"]: sorted(t["TagValues"]) for t in lf.list_lf_tags()["LFTags"]}
    assert tags == {k: sorted(v) for k, v in config.tags.lf_tags.items()}
    column_tags = lf.get_resource_lf_tags(Resource={"TableWithColumns": {
        "DatabaseName": "rfmlake_bronze", "Name": "customers", "ColumnNames": ["email", "country"]}})
    by_column = {c["Name"]: c["LFTags"][0]["TagValues"] for c in column_tags["LFTagsOnColumns"]}
    assert by_column == {"email": ["pii"], "country": ["public"]}
    db_tags = lf.get_resource_lf_tags(Resource={"Database": {"Name": "rfmlake_gold"}})["LFTagOnDatabase"]
    assert [(t["TagKey"], t["TagValues"]) for t in db_tags] == [("layer", ["gold"])]
    registered = {r["ResourceArn"] for r in lf.list_resources()["ResourceInfoList"]}
    assert registered == {f"arn:aws:s3:::rfmlake-lake-123456789012/{z}" for z in ("bronze", "silver", "gold")}
    grants = lf.list_permissions()["PrincipalResourcePermissions"]
    analyst = [g for g in grants if g["Principal"]["DataLakePrincipalIdentifier"].endswith("rfmlake-analyst")
               and g["Resource"]["LFTagPolicy"]["ResourceType"] == "TABLE"]
    assert len(analyst) == 1 and sorted(analyst[0]["Permissions"]) == ["DESCRIBE", "SELECT"]
    assert analyst[0]["Resource"]["LFTagPolicy"]["Expression"] == [
        {"TagKey": "layer", "TagValues": ["gold", "silver"]},
        {"TagKey": "sensitivity", "TagValues": ["confidential", "public"]},
    ]

    second = lfm.plan(config, boto3_session=session, endpoint_url=moto_endpoint)
    assert second.is_empty, second.describe()
    assert lfm.apply(config, boto3_session=session, endpoint_url=moto_endpoint).is_empty


def test_grant_removed_from_yaml_is_revoked_and_changes_are_applied(
    session: boto3.Session, moto_endpoint: str, tmp_path: Path
) -> None:
    config_dir = tmp_path / "lakeformation"
    shutil.copytree(REPO_CONFIG, config_dir)
    config = load_governance(config_dir)
    _create_glue(session, moto_endpoint, config)
    lfm.apply(config, boto3_session=session, endpoint_url=moto_endpoint)

    personas = yaml.safe_load((config_dir / "personas.yaml").read_text())
    personas["personas"]["data_scientist"]["grants"].pop(1)  # its TABLE grant
    (config_dir / "personas.yaml").write_text(yaml.safe_dump(personas))
    assignments = yaml.safe_load((config_dir / "assignments.yaml").read_text())
    assignments["databases"]["gold"]["tables"]["fct_orders"]["columns"]["customer_id"] = "confidential"
    (config_dir / "assignments.yaml").write_text(yaml.safe_dump(assignments))
    changed = load_governance(config_dir)

    pending = lfm.plan(changed, boto3_session=session, endpoint_url=moto_endpoint)
    assert [(c.action, c.operation) for c in pending.changes] == [
        ("add column tags", "add_lf_tags_to_resource"),
        ("revoke", "revoke_permissions"),
    ], pending.describe()
    assert "rfmlake-data_scientist TABLE" in pending.changes[1].target
    lfm.apply(changed, boto3_session=session, endpoint_url=moto_endpoint)

    lf = session.client("lakeformation", endpoint_url=moto_endpoint)
    scientist = [g for g in lf.list_permissions()["PrincipalResourcePermissions"]
                 if g["Principal"]["DataLakePrincipalIdentifier"].endswith("rfmlake-data_scientist")]
    assert [g["Resource"]["LFTagPolicy"]["ResourceType"] for g in scientist] == ["DATABASE"]
    column = lf.get_resource_lf_tags(Resource={"TableWithColumns": {
        "DatabaseName": "rfmlake_gold", "Name": "fct_orders", "ColumnNames": ["customer_id"]}})
    assert column["LFTagsOnColumns"][0]["LFTags"][0]["TagValues"] == ["confidential"]
    assert lfm.plan(changed, boto3_session=session, endpoint_url=moto_endpoint).is_empty


def test_tables_missing_in_glue_are_skipped_not_failed(session: boto3.Session, moto_endpoint: str) -> None:
    config = load_governance(REPO_CONFIG)
    _create_glue(session, moto_endpoint, config, skip="gold.customer_rfm")
    result = lfm.plan(config, boto3_session=session, endpoint_url=moto_endpoint)
    assert result.skipped == ["table rfmlake_gold.customer_rfm does not exist in Glue"]
    assert not any("customer_rfm " in c.target or "customer_rfm." in c.target for c in result.changes)


def test_an_unmanaged_principal_is_left_alone(session: boto3.Session, moto_endpoint: str) -> None:
    config = load_governance(REPO_CONFIG)
    _create_glue(session, moto_endpoint, config)
    lfm.apply(config, boto3_session=session, endpoint_url=moto_endpoint)
    lf = session.client("lakeformation", endpoint_url=moto_endpoint)
    lf.grant_permissions(
        Principal={"DataLakePrincipalIdentifier": "arn:aws:iam::123456789012:role/someone-else"},
        Resource={"LFTagPolicy": {"ResourceType": "TABLE", "Expression": [{"TagKey": "layer", "TagValues": ["gold"]}]}},
        Permissions=["SELECT"],
    )
    assert lfm.plan(config, boto3_session=session, endpoint_url=moto_endpoint).is_empty


def test_iam_allowed_principals_is_revoked_from_our_databases_only(session: boto3.Session, moto_endpoint: str) -> None:
    """The permission mode of docs/adr/0014: what the account's defaults gave IAMAllowedPrincipals on
    rfmlake's databases and tables is revoked; another team's database keeps it."""
    config = load_governance(REPO_CONFIG)
    _create_glue(session, moto_endpoint, config)
    glue = session.client("glue", endpoint_url=moto_endpoint)
    glue.create_database(DatabaseInput={"Name": "someone_elses"})
    lf = session.client("lakeformation", endpoint_url=moto_endpoint)
    everyone = {"DataLakePrincipalIdentifier": lfm.IAM_ALLOWED_PRINCIPALS}
    gold = lfm.database_name(config, "gold")
    table = next(iter(config.assignments.databases["gold"].tables))
    for resource in ({"Database": {"Name": gold}}, {"Database": {"Name": "someone_elses"}},
                     {"Table": {"DatabaseName": gold, "Name": table}}):
        lf.grant_permissions(Principal=everyone, Resource=resource, Permissions=["ALL"])

    plan = lfm.plan(config, boto3_session=session, endpoint_url=moto_endpoint)
    revokes = sorted(c.target for c in plan.changes if "IAMAllowedPrincipals" in c.target)
    assert revokes == [f"IAMAllowedPrincipals on database {gold}", f"IAMAllowedPrincipals on table {gold}.{table}"]
    lfm.apply(config, boto3_session=session, endpoint_url=moto_endpoint)
    left = [p["Resource"] for p in lf.list_permissions()["PrincipalResourcePermissions"]
            if p["Principal"] == everyone]
    assert [r.get("Database", {}).get("Name") for r in left] == ["someone_elses"]
    assert lfm.plan(config, boto3_session=session, endpoint_url=moto_endpoint).is_empty
