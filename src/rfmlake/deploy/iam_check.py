"""Evaluate AWS API calls, each with the resource ARNs AWS authorizes it against and its condition keys,
against the IAM policies a role has in the synthesized templates, with a real policy evaluator
(NCC Group's Principal Mapper local simulation: explicit deny, Action/NotAction, Resource/NotResource
wildcards, Condition operators with IfExists/ForAnyValue, policy variables), not a hand-written matcher.

What is evaluated: the role's identity policies (inline, customer managed, and AWS managed ones, whose
documents come from moto's copy of AWS's managed policies) and, for S3, the bucket's policy (its TLS-only
deny, and the grants CDK's auto-delete helper gets there); S3 calls are made over TLS. Not evaluated:
the KMS key policy (it delegates to IAM), SCPs and session policies.

Calls come from two sources (tests/functional/infra/test_iam_check.py): recorded on a moto server while
each runtime's code runs (rfmlake's own calls, pyarrow's and DuckDB's S3 traffic, subprocesses), and
declared for what moto cannot run (Athena and dbt-athena's Glue calls, Spark's S3 access on Glue, the
state machine's service integrations, the calls AWS services make with a role they assume).

The evaluator is a test dependency (`pip install 'rfmlake[dev]'`): nothing here is imported at run time.
"""

from __future__ import annotations

import collections
import collections.abc
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from functools import cache
from typing import Any

from rfmlake.deploy.cfn import Templates
from rfmlake.errors import ConfigError


@dataclass(frozen=True)
class ApiCall:
    """One authorization AWS makes: an IAM action on every resource ARN it checks, with condition keys."""

    action: str
    resources: tuple[str, ...] = ("*",)
    context: tuple[tuple[str, str], ...] = ()
    source: str = ""  # where the call was recorded or why it is declared

    @classmethod
    def of(cls, action: str, *resources: str, source: str = "", **context: str) -> ApiCall:
        keys = tuple(sorted((k.replace("__", ":"), v) for k, v in context.items()))
        return cls(action, tuple(resources) or ("*",), keys, source)

    def describe(self) -> str:
        context = ", ".join(f"{k}={v!r}" for k, v in self.context)
        return f"{self.action} on {', '.join(self.resources)}" + (f" [{context}]" if context else "")


@dataclass
class Role:
    """A role of the templates with every statement of every policy attached to it."""

    stack: str
    logical_id: str
    arn: str
    trust: dict[str, Any]
    statements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.stack}/{self.logical_id}"


@dataclass(frozen=True)
class Denial:
    role: str
    call: ApiCall
    resource: str

    def describe(self) -> str:
        context = "".join(f" [{k}={v!r}]" for k, v in self.call.context)
        return (f"{self.role} may not {self.call.action} on {self.resource}{context} "
                f"({self.call.source or 'declared'})")


def roles(templates: Templates) -> dict[str, Role]:
    """Every AWS::IAM::Role of the templates, by `<stack>/<logical id>`, with its policies' statements."""
    found: dict[str, Role] = {}
    by_arn: dict[str, Role] = {}
    for stack, logical, resource in templates.resources("AWS::IAM::Role"):
        props = templates.resolve(stack, resource["Properties"])
        role = Role(stack, logical, templates.resolve(stack, {"Fn::GetAtt": [logical, "Arn"]}),
                    props["AssumeRolePolicyDocument"])
        for policy in props.get("Policies", []):
            role.statements += _statements(policy["PolicyDocument"])
        for arn in props.get("ManagedPolicyArns", []):
            if ":iam::aws:policy/" not in arn:
                continue  # a customer managed policy of the templates: attached from its own side below
            role.statements += _statements(aws_managed_policy(arn))
        found[role.name] = by_arn[role.arn] = role
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for stack, logical, resource in templates.resources(kind):
            props = templates.resolve(stack, resource["Properties"])
            for name in props.get("Roles", []):
                matches = [r for r in by_arn.values() if r.arn.rsplit("/", 1)[1] == name]
                if not matches:
                    raise ConfigError(f"{stack}/{logical} is attached to role {name!r}, which no template creates")
                for role in matches:
                    role.statements += _statements(props["PolicyDocument"])
    return found


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return list(statements) if isinstance(statements, list) else [statements]


@cache
def _managed_policies() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return dict(json.loads(aws_managed_policies_data))


def aws_managed_policy(arn: str) -> dict[str, Any]:
    """The document of an AWS managed policy, e.g. service-role/AWSLambdaBasicExecutionRole."""
    name = arn.rsplit("/", 1)[1]
    data = _managed_policies().get(name)
    if data is None:
        raise ConfigError(f"AWS managed policy {arn} is unknown to moto's copy of AWS's managed policies")
    return dict(data["Document"])


def _evaluator() -> Any:
    # principalmapper 1.1.5 imports Mapping and friends from `collections`, where Python 3.10 removed them.
    for name in ("Mapping", "MutableMapping", "Iterable", "Sequence"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    try:
        from principalmapper.common import Node, Policy
        from principalmapper.querying.query_interface import local_check_authorization_full
    except ImportError:
        raise ConfigError("the IAM check needs principalmapper: pip install 'rfmlake[dev]'") from None
    return Node, Policy, local_check_authorization_full


def bucket_policies(templates: Templates) -> dict[str, dict[str, Any]]:
    """bucket name -> its bucket policy document."""
    found = {}
    for stack, _logical, resource in templates.resources("AWS::S3::BucketPolicy"):
        props = templates.resolve(stack, resource["Properties"])
        found[str(props["Bucket"])] = props["PolicyDocument"]
    return found


def denials(role: Role, calls: Iterable[ApiCall], *, bucket_policies: Mapping[str, Any] | None = None,
            account: str = "123456789012") -> list[Denial]:
    """Every (call, resource) the role's policies (and, for S3, the bucket's policy) do not allow."""
    node_cls, policy_cls, check = _evaluator()
    policy = policy_cls(role.arn, "synthesized", {"Version": "2012-10-17", "Statement": role.statements})
    node = node_cls(role.arn, f"AROA{abs(hash(role.arn)) % 10**16:016d}", [policy], [], role.trust, None, 0, False,
                    False, None, False, None)
    found = []
    for call in calls:
        for resource in call.resources:
            context = dict(call.context)
            policy = None
            if resource.startswith("arn:aws:s3:::"):
                context.setdefault("aws:SecureTransport", "true")
                policy = (bucket_policies or {}).get(resource.removeprefix("arn:aws:s3:::").split("/", 1)[0])
            allowed = check(node, call.action, resource, context, resource_policy=policy,
                            resource_owner=account if policy else None)
            if not allowed:
                found.append(Denial(role.name, call, resource))
    return found


# -- from an API request to the authorizations AWS makes ------------------------------------------------
# Signing names whose IAM prefix differs.
IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "execute-api"}
# Calls that need no IAM permission.
NO_PERMISSION = {"sts:GetCallerIdentity"}


def glue_resources(operation: str, params: Mapping[str, Any], region: str, account: str) -> tuple[str, ...]:
    """The ARNs Glue authorizes a Data Catalog call against: the catalog, the database, the table(s)
    (AWS Glue developer guide, "Specifying AWS Glue resource ARNs")."""
    base = f"arn:aws:glue:{region}:{account}"
    database = params.get("DatabaseName") or (params.get("Name") if "Database" in operation else None)
    if operation in ("CreateDatabase", "UpdateDatabase"):
        database = (params.get("DatabaseInput") or {}).get("Name") or params.get("Name")
    table = params.get("TableName") or (params.get("TableInput") or {}).get("Name")
    if table is None and operation in ("GetTable", "DeleteTable"):
        table = params.get("Name")
    resources = [f"{base}:catalog"]
    if database:
        resources.append(f"{base}:database/{database}")
        if table:
            resources.append(f"{base}:table/{database}/{table}")
        elif operation in ("GetTables", "SearchTables", "BatchDeleteTable"):
            resources.append(f"{base}:table/{database}/*")
    return tuple(resources)


def call_from_request(signing_name: str, operation: str, params: Mapping[str, Any], *, region: str, account: str,
                      source: str = "") -> ApiCall | None:
    """The authorization AWS makes for one JSON or query API request (S3 is mapped from its REST form by the
    recorder); None for calls that need no permission. Raises ConfigError for a call it cannot map, so an
    unmapped call is never let through."""
    prefix = IAM_PREFIX.get(signing_name, signing_name)
    action = f"{prefix}:{operation}"
    if action in NO_PERMISSION:
        return None
    base = f"{region}:{account}"
    if prefix == "glue":
        return ApiCall.of(action, *glue_resources(operation, params, region, account), source=source)
    if prefix == "dynamodb" and "TableName" in params:
        return ApiCall.of(action, f"arn:aws:dynamodb:{base}:table/{params['TableName']}", source=source)
    if prefix == "states":
        arn = params.get("stateMachineArn") or params.get("executionArn")
        if arn:
            return ApiCall.of(action, str(arn), source=source)
    if prefix == "events" and operation == "PutEvents":
        buses = sorted({str(e.get("EventBusName") or "default") for e in params.get("Entries", [])})
        return ApiCall.of(action, *(b if b.startswith("arn:") else f"arn:aws:events:{base}:event-bus/{b}"
                                     for b in buses), source=source)
    if action == "ses:SendEmail":  # SES v2: the sender's identity, and the configuration set and list it names
        address = parseaddr(str(params.get("FromEmailAddress", "")))[1]
        resources = [f"arn:aws:ses:{base}:identity/{address}"]
        if params.get("ConfigurationSetName"):
            resources.append(f"arn:aws:ses:{base}:configuration-set/{params['ConfigurationSetName']}")
        contact_list = (params.get("ListManagementOptions") or {}).get("ContactListName")
        if contact_list:
            resources.append(f"arn:aws:ses:{base}:contact-list/{contact_list}")
        return ApiCall.of(action, *resources, source=source)
    if prefix == "sqs" and "QueueUrl" in params:
        return ApiCall.of(action, f"arn:aws:sqs:{base}:{str(params['QueueUrl']).rstrip('/').rsplit('/', 1)[1]}",
                          source=source)
    if prefix == "secretsmanager" and "SecretId" in params:
        secret = str(params["SecretId"])
        arn = secret if secret.startswith("arn:") else f"arn:aws:secretsmanager:{base}:secret:{secret}-AbCdEf"
        return ApiCall.of(action, arn, source=source)
    if prefix == "cloudwatch" and operation == "PutMetricData":
        return ApiCall.of(action, "*", source=source, cloudwatch__namespace=str(params.get("Namespace", "")))
    if action == "lakeformation:GetDataAccess":
        return ApiCall.of(action, "*", source=source)
    raise ConfigError(f"rfmlake.deploy.iam_check cannot tell which resources {action} is authorized against "
                      f"(params {sorted(params)}): add it to call_from_request")


def bucket_keys(templates: Templates) -> dict[str, str]:
    """bucket name -> the ARN of the KMS key that encrypts it by default (SSE-KMS buckets only)."""
    keys = {}
    for stack, logical, resource in templates.resources("AWS::S3::Bucket"):
        props = templates.resolve(stack, resource["Properties"])
        for rule in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
            default = rule.get("ServerSideEncryptionByDefault", {})
            if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
                keys[templates.physical_name(stack, logical)] = str(default["KMSMasterKeyID"])
    return keys


_READS = {"s3:GetObject", "s3:GetObjectVersion"}
_WRITES = {"s3:PutObject"}


def with_implied_calls(calls: Iterable[ApiCall], keys: Mapping[str, str]) -> list[ApiCall]:
    """`calls` and the KMS calls S3 makes on the caller's behalf for objects of SSE-KMS buckets: reading
    needs kms:Decrypt, writing kms:GenerateDataKey (and kms:Decrypt to complete a multipart upload)."""
    out = list(calls)
    for call in list(out):
        for resource in call.resources:
            if not resource.startswith("arn:aws:s3:::") or "/" not in resource:
                continue
            key = keys.get(resource.removeprefix("arn:aws:s3:::").split("/", 1)[0])
            if key is None:
                continue
            source = f"{call.source} (SSE-KMS)"
            if call.action in _READS | _WRITES:
                out.append(ApiCall.of("kms:Decrypt", key, source=source))
            if call.action in _WRITES:
                out.append(ApiCall.of("kms:GenerateDataKey", key, source=source))
    return out
