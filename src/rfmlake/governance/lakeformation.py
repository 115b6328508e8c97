"""Plan and apply lakeformation/*.yaml to an AWS account's Lake Formation: LF-tags, tags on
databases/tables/columns, grants by LF-tag expression, registered S3 locations.

`plan` reads the account and returns the calls that would make it match the YAML; `apply` makes
them. Both are idempotent: after an apply, a new plan is empty. AWS calls the awswrangler way:
every function takes an optional `boto3_session` and creates its clients when called.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rfmlake.governance.model import SENSITIVITY, GovernanceConfig, GovernanceError

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

Tags = dict[str, str]


@dataclass(frozen=True)
class Change:
    """One Lake Formation API call: what it does, in words, and its exact parameters."""

    action: str  # e.g. "create LF-tag", "grant", "revoke"
    target: str  # human-readable subject
    operation: str  # boto3 client method name
    params: dict[str, Any]

    def describe(self) -> str:
        return f"{self.action:<22} {self.target}"


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # assignments whose Glue resource is absent

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def describe(self) -> str:
        lines = [c.describe() for c in self.changes] or ["no changes: the account matches lakeformation/"]
        lines += [f"skipped: {s}" for s in self.skipped]
        return "\n".join(lines)


# -- desired state ------------------------------------------------------------------------------
def database_name(config: GovernanceConfig, zone: str) -> str:
    return config.account.glue_database.format(zone=zone)


def role_arn(config: GovernanceConfig, persona: str) -> str:
    return config.account.role_arn.format(account_id=config.account.account_id, persona=persona)


def _managed_principal(config: GovernanceConfig) -> re.Pattern[str]:
    template = re.escape(config.account.role_arn).replace(r"\{account_id\}", re.escape(config.account.account_id))
    return re.compile("^" + template.replace(r"\{persona\}", r"[A-Za-z0-9_+=,.@-]+") + "$")


def _policy_resource(config: GovernanceConfig, resource_type: str, expression: dict[str, tuple[str, ...]]) -> dict:
    return {"LFTagPolicy": {
        "CatalogId": config.account.account_id,
        "ResourceType": resource_type,
        "Expression": [{"TagKey": k, "TagValues": sorted(v)} for k, v in sorted(expression.items())],
    }}


def _policy_key(resource: dict) -> tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]:
    policy = resource["LFTagPolicy"]
    expression = tuple(sorted((e["TagKey"], tuple(sorted(e["TagValues"]))) for e in policy["Expression"]))
    return policy["ResourceType"], expression


def desired_grants(config: GovernanceConfig) -> dict[tuple[str, Any], tuple[dict, frozenset[str]]]:
    """(principal, policy key) -> (resource, permissions); grants with one expression merge."""
    grants: dict[tuple[str, Any], tuple[dict, frozenset[str]]] = {}
    for name, persona in sorted(config.personas.personas.items()):
        principal = role_arn(config, name)
        for grant in persona.grants:
            resource = _policy_resource(config, grant.resource_type, grant.expression)
            key = (principal, _policy_key(resource))
            previous = grants.get(key, (resource, frozenset()))[1]
            grants[key] = (resource, previous | frozenset(grant.permissions))
    return grants


# -- reading the account ------------------------------------------------------------------------
def _clients(boto3_session: boto3.Session | None, endpoint_url: str | None, region: str | None) -> tuple[Any, Any]:
    import boto3

    session = boto3_session or boto3.Session(region_name=region)
    kwargs: dict[str, Any] = {}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if region:
        kwargs["region_name"] = region
    return session.client("lakeformation", **kwargs), session.client("glue", **kwargs)


def _pages(call: Any, key: str, **params: Any) -> Iterator[dict]:
    token: str | None = None
    while True:
        response = call(**params, **({"NextToken": token} if token else {}))
        yield from response.get(key, [])
        token = response.get("NextToken")
        if not token:
            return


def _as_tags(items: list[dict] | None) -> Tags:
    tags: Tags = {}
    for item in items or []:
        values = item.get("TagValues") or []
        if len(values) != 1:
            raise GovernanceError(f"LF-tag {item.get('TagKey')} is assigned {len(values)} values; expected one")
        tags[item["TagKey"]] = values[0]
    return tags


def _tag_list(config: GovernanceConfig, tags: Tags) -> list[dict]:
    return [{"CatalogId": config.account.account_id, "TagKey": k, "TagValues": [v]} for k, v in sorted(tags.items())]


def _glue_tables(glue: Any, database: str) -> dict[str, set[str]] | None:
    """Table -> column names of a Glue database, or None when the database does not exist."""
    try:
        glue.get_database(Name=database)
    except glue.exceptions.EntityNotFoundException:
        return None
    tables: dict[str, set[str]] = {}
    for table in _pages(glue.get_tables, "TableList", DatabaseName=database):
        columns = table.get("StorageDescriptor", {}).get("Columns", []) + table.get("PartitionKeys", [])
        tables[table["Name"]] = {c["Name"] for c in columns}
    return tables


# -- planning -----------------------------------------------------------------------------------
def plan(
    config: GovernanceConfig,
    boto3_session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
) -> Plan:
    lf, glue = _clients(boto3_session, endpoint_url, region)
    return _plan(config, lf, glue)


def _plan(config: GovernanceConfig, lf: Any, glue: Any) -> Plan:
    result = Plan()
    catalog = config.account.account_id
    changes = result.changes

    # LF-tags: create and update first (assignments and grants need them), delete last.
    current_tags = {t["TagKey"]: set(t["TagValues"]) for t in _pages(lf.list_lf_tags, "LFTags", CatalogId=catalog)}
    desired_tags = {k: set(v) for k, v in config.tags.lf_tags.items()}
    for key, values in sorted(desired_tags.items()):
        if key not in current_tags:
            changes.append(Change("create LF-tag", f"{key} = {sorted(values)}", "create_lf_tag",
                                  {"CatalogId": catalog, "TagKey": key, "TagValues": sorted(values)}))
        elif current_tags[key] != values:
            add, delete = sorted(values - current_tags[key]), sorted(current_tags[key] - values)
            params: dict[str, Any] = {"CatalogId": catalog, "TagKey": key}
            if add:
                params["TagValuesToAdd"] = add
            if delete:
                params["TagValuesToDelete"] = delete
            changes.append(Change("update LF-tag", f"{key} +{add} -{delete}", "update_lf_tag", params))

    registered = {r["ResourceArn"] for r in _pages(lf.list_resources, "ResourceInfoList")}
    for template in config.account.locations:
        arn = template.format(account_id=catalog)
        if arn not in registered:
            changes.append(Change("register location", arn, "register_resource",
                                  {"ResourceArn": arn, "UseServiceLinkedRole": True}))

    for zone, database in sorted(config.assignments.databases.items()):
        db_name = database_name(config, zone)
        glue_tables = _glue_tables(glue, db_name)
        if glue_tables is None:
            result.skipped.append(f"database {db_name} (zone {zone}) does not exist in Glue")
            continue
        current = _as_tags(lf.get_resource_lf_tags(
            CatalogId=catalog, Resource={"Database": {"CatalogId": catalog, "Name": db_name}}, ShowAssignedLFTags=True,
        ).get("LFTagOnDatabase"))
        db_resource = {"Database": {"CatalogId": catalog, "Name": db_name}}
        changes.extend(_tag_changes(config, f"database {db_name}", db_resource, current, database.tags))
        for table_name, table in sorted(database.tables.items()):
            if table_name not in glue_tables:
                result.skipped.append(f"table {db_name}.{table_name} does not exist in Glue")
                continue
            table_resource = {"Table": {"CatalogId": catalog, "DatabaseName": db_name, "Name": table_name}}
            desired_table = dict(table.tags)
            if table.other_columns is not None:
                desired_table[SENSITIVITY] = table.other_columns  # columns not listed inherit it
            response = lf.get_resource_lf_tags(CatalogId=catalog, Resource=table_resource, ShowAssignedLFTags=True)
            changes.extend(_tag_changes(config, f"table {db_name}.{table_name}", table_resource,
                                        _as_tags(response.get("LFTagsOnTable")), desired_table))
            columns = sorted(c for c in table.columns if c in glue_tables[table_name])
            missing = sorted(set(table.columns) - glue_tables[table_name])
            if missing:
                result.skipped.append(f"columns {missing} of {db_name}.{table_name} do not exist in Glue")
            if not columns:
                continue
            response = lf.get_resource_lf_tags(
                CatalogId=catalog, ShowAssignedLFTags=True,
                Resource={"TableWithColumns": {"CatalogId": catalog, "DatabaseName": db_name, "Name": table_name,
                                               "ColumnNames": columns}},
            )
            current_columns = {c["Name"]: _as_tags(c.get("LFTags")) for c in response.get("LFTagsOnColumns") or []}
            changes.extend(_column_changes(config, db_name, table_name, columns, current_columns, table.columns))

    changes.extend(_grant_changes(config, lf))
    changes.extend(_iam_allowed_principals_changes(config, lf))

    for key in sorted(set(current_tags) - set(desired_tags)):
        changes.append(Change("delete LF-tag", key, "delete_lf_tag", {"CatalogId": catalog, "TagKey": key}))
    return result


def _tag_changes(config: GovernanceConfig, target: str, resource: dict, current: Tags, desired: Tags) -> list[Change]:
    changes: list[Change] = []
    stale = {k: v for k, v in current.items() if k not in desired}
    if stale:
        changes.append(Change("remove tags", f"{target} {stale}", "remove_lf_tags_from_resource",
                              {"CatalogId": config.account.account_id, "Resource": resource,
                               "LFTags": _tag_list(config, stale)}))
    if any(current.get(k) != v for k, v in desired.items()):
        # AddLFTagsToResource overwrites a key's value, so one call sets the whole desired set.
        changes.append(Change("add tags", f"{target} {desired}", "add_lf_tags_to_resource",
                              {"CatalogId": config.account.account_id, "Resource": resource,
                               "LFTags": _tag_list(config, desired)}))
    return changes


def _column_changes(config: GovernanceConfig, database: str, table: str, columns: list[str],
                    current: dict[str, Tags], desired: dict[str, str]) -> list[Change]:
    changes: list[Change] = []
    catalog = config.account.account_id
    by_value: dict[str, list[str]] = {}
    for column in columns:
        want = {SENSITIVITY: desired[column]}
        have = current.get(column, {})
        stale = {k: v for k, v in have.items() if k not in want}
        if stale:
            changes.append(Change("remove column tags", f"{database}.{table}.{column} {stale}",
                                  "remove_lf_tags_from_resource",
                                  {"CatalogId": catalog, "LFTags": _tag_list(config, stale),
                                   "Resource": {"TableWithColumns": {"CatalogId": catalog, "DatabaseName": database,
                                                                     "Name": table, "ColumnNames": [column]}}}))
        if have.get(SENSITIVITY) != desired[column]:
            by_value.setdefault(desired[column], []).append(column)
    for value, names in sorted(by_value.items()):
        changes.append(Change("add column tags", f"{database}.{table}.{{{', '.join(names)}}} sensitivity={value}",
                              "add_lf_tags_to_resource",
                              {"CatalogId": catalog, "LFTags": _tag_list(config, {SENSITIVITY: value}),
                               "Resource": {"TableWithColumns": {"CatalogId": catalog, "DatabaseName": database,
                                                                 "Name": table, "ColumnNames": names}}}))
    return changes


def _grant_changes(config: GovernanceConfig, lf: Any) -> list[Change]:
    catalog = config.account.account_id
    managed = _managed_principal(config)
    current: dict[tuple[str, Any], tuple[dict, frozenset[str]]] = {}
    for entry in _pages(lf.list_permissions, "PrincipalResourcePermissions", CatalogId=catalog):
        principal = entry.get("Principal", {}).get("DataLakePrincipalIdentifier", "")
        resource = entry.get("Resource", {})
        if "LFTagPolicy" not in resource or not managed.match(principal):
            continue
        key = (principal, _policy_key(resource))
        previous = current.get(key, (resource, frozenset()))[1]
        current[key] = (resource, previous | frozenset(entry.get("Permissions") or []))
    desired = desired_grants(config)
    changes: list[Change] = []
    for key in sorted(set(current) | set(desired), key=repr):
        principal, (resource_type, expression) = key
        have_resource, have = current.get(key, ({}, frozenset()))
        want_resource, want = desired.get(key, (have_resource, frozenset()))
        label = f"{principal.rsplit('/', 1)[-1]} {resource_type} {dict(expression)}"
        if have - want:
            changes.append(Change("revoke", f"{label} {sorted(have - want)}", "revoke_permissions",
                                  {"CatalogId": catalog, "Principal": {"DataLakePrincipalIdentifier": principal},
                                   "Resource": have_resource, "Permissions": sorted(have - want)}))
        if want - have:
            changes.append(Change("grant", f"{label} {sorted(want - have)}", "grant_permissions",
                                  {"CatalogId": catalog, "Principal": {"DataLakePrincipalIdentifier": principal},
                                   "Resource": want_resource, "Permissions": sorted(want - have)}))
    return changes


IAM_ALLOWED_PRINCIPALS = "IAM_ALLOWED_PRINCIPALS"


def _iam_allowed_principals_changes(config: GovernanceConfig, lf: Any) -> list[Change]:
    """Lake Formation permission mode (docs/adr/0014): rfmlake's databases and their tables are governed
    by Lake Formation alone. The infra creates each database with no default table permissions, so the
    tables the pipeline creates never get IAMAllowedPrincipals; the grant the account's default gives a
    new database, and any a table got before, are revoked here."""
    catalog = config.account.account_id
    ours = {database_name(config, zone) for zone in config.assignments.databases}
    changes: list[Change] = []
    for entry in _pages(lf.list_permissions, "PrincipalResourcePermissions", CatalogId=catalog):
        if entry.get("Principal", {}).get("DataLakePrincipalIdentifier") != IAM_ALLOWED_PRINCIPALS:
            continue
        resource = entry.get("Resource", {})
        database = (resource.get("Database") or {}).get("Name") or (resource.get("Table") or {}).get("DatabaseName")
        if database not in ours or not entry.get("Permissions"):
            continue
        what = f"database {database}" if "Database" in resource else f"table {database}.{resource['Table'].get('Name')}"
        principal = {"DataLakePrincipalIdentifier": IAM_ALLOWED_PRINCIPALS}
        changes.append(Change("revoke", f"IAMAllowedPrincipals on {what}", "revoke_permissions",
                              {"CatalogId": catalog, "Principal": principal, "Resource": resource,
                               "Permissions": sorted(entry["Permissions"])}))
    return changes


# -- applying -----------------------------------------------------------------------------------
def apply(
    config: GovernanceConfig,
    boto3_session: boto3.Session | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
) -> Plan:
    """Plan, then make every call in order. Returns the plan that was applied."""
    from botocore.exceptions import ClientError

    lf, glue = _clients(boto3_session, endpoint_url, region)
    result = _plan(config, lf, glue)
    for change in result.changes:
        try:
            response = getattr(lf, change.operation)(**change.params)
        except ClientError as exc:
            raise GovernanceError(f"{change.action} {change.target} failed: {exc}") from None
        failures = (response or {}).get("Failures") or []
        if failures:
            raise GovernanceError(f"{change.action} {change.target} failed: {failures}")
        log.info("applied: %s", change.describe())
    return result
