"""Read synthesized CloudFormation templates as the deployed account would see them: intrinsic functions
(Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::ImportValue, Fn::Select, Fn::Split) resolved to concrete
values for a given account and region. Used to check names against AWS limits and to evaluate each
role's policies (rfmlake.deploy.iam_check) on the templates `rfmlake deploy --synth` writes.

Physical names CloudFormation generates (a resource without a name property) resolve to
`<logical id>-generated`: long enough to be realistic in ARNs, and never mistaken for a chosen name."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rfmlake.errors import ConfigError

# CloudFormation type -> the property that names it (Ref returns the name for these types).
_NAME_PROPERTY: dict[str, str] = {
    "AWS::S3::Bucket": "BucketName", "AWS::IAM::Role": "RoleName", "AWS::Lambda::Function": "FunctionName",
    "AWS::Glue::Job": "Name", "AWS::CodeBuild::Project": "Name", "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Events::Rule": "Name", "AWS::SNS::Topic": "TopicName", "AWS::SQS::Queue": "QueueName",
    "AWS::StepFunctions::StateMachine": "StateMachineName", "AWS::DynamoDB::Table": "TableName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName", "AWS::Athena::WorkGroup": "Name",
    "AWS::OpenSearchService::Domain": "DomainName", "AWS::KMS::Alias": "AliasName",
}


@dataclass
class Templates:
    """The templates of one app (stack name -> template), resolved for one account and region."""

    templates: dict[str, dict[str, Any]]
    account: str = "123456789012"
    region: str = "eu-west-1"
    partition: str = "aws"
    _exports: dict[str, tuple[str, Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for stack, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if isinstance(export, str):
                    self._exports[export] = (stack, output["Value"])

    @classmethod
    def from_dir(cls, out_dir: Path, **where: str) -> Templates:
        return cls({p.name.removesuffix(".template.json"): json.loads(p.read_text())
                    for p in sorted(out_dir.glob("*.template.json"))}, **where)

    def resources(self, kind: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        """(stack, logical id, resource) of every resource, or of one type."""
        return [(stack, logical, resource) for stack, template in self.templates.items()
                for logical, resource in template.get("Resources", {}).items()
                if kind is None or resource["Type"] == kind]

    # -- resolution ----------------------------------------------------------------------------
    def resolve(self, stack: str, value: Any) -> Any:
        """`value` (a property of a resource of `stack`) with every intrinsic function resolved."""
        if isinstance(value, list):
            return [self.resolve(stack, v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref(stack, arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(stack, logical, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(stack, p)) for p in self.resolve(stack, parts))
            if key == "Fn::Sub":
                return self._sub(stack, arg)
            if key == "Fn::ImportValue":
                name = self.resolve(stack, arg)
                if name not in self._exports:
                    raise ConfigError(f"{stack}: Fn::ImportValue {name!r} is exported by no stack")
                other, exported = self._exports[name]
                return self.resolve(other, exported)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(stack, items)[int(self.resolve(stack, index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(stack, text)).split(separator)
            if key.startswith("Fn::"):
                raise ConfigError(f"{stack}: cannot resolve {key} (add it to rfmlake.deploy.cfn)")
        return {k: self.resolve(stack, v) for k, v in value.items()}

    def _pseudo(self, name: str) -> str | None:
        return {"AWS::AccountId": self.account, "AWS::Region": self.region, "AWS::Partition": self.partition,
                "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "stack", "AWS::NoValue": ""}.get(name)

    def _resource(self, stack: str, logical: str) -> dict[str, Any]:
        try:
            return self.templates[stack]["Resources"][logical]
        except KeyError:
            raise ConfigError(f"{stack}: no resource {logical!r}") from None

    def physical_name(self, stack: str, logical: str) -> str:
        resource = self._resource(stack, logical)
        props = resource.get("Properties", {})
        prop = _NAME_PROPERTY.get(resource["Type"])
        if resource["Type"] == "AWS::Glue::Database":
            return str(self.resolve(stack, props["DatabaseInput"]["Name"]))
        if prop and prop in props:
            return str(self.resolve(stack, props[prop]))
        return f"{logical}-generated"

    def _ref(self, stack: str, name: str) -> Any:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        parameters = self.templates[stack].get("Parameters", {})
        if name in parameters:
            return parameters[name].get("Default", f"{name}-parameter")
        kind = self._resource(stack, name)["Type"]
        physical = self.physical_name(stack, name)
        if kind == "AWS::SNS::Topic":
            return f"arn:{self.partition}:sns:{self.region}:{self.account}:{physical}"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{physical}"
        if kind == "AWS::StepFunctions::StateMachine":
            return self._get_att(stack, name, "Arn")
        return physical

    def _get_att(self, stack: str, logical: str, attribute: str) -> str:
        kind = self._resource(stack, logical)["Type"]
        name = self.physical_name(stack, logical)
        p, r, a = self.partition, self.region, self.account
        arns = {
            "AWS::S3::Bucket": f"arn:{p}:s3:::{name}",
            "AWS::IAM::Role": f"arn:{p}:iam::{a}:role/{name}",
            "AWS::IAM::ManagedPolicy": f"arn:{p}:iam::{a}:policy/{name}",
            "AWS::Lambda::Function": f"arn:{p}:lambda:{r}:{a}:function:{name}",
            "AWS::KMS::Key": f"arn:{p}:kms:{r}:{a}:key/{logical}",
            "AWS::SQS::Queue": f"arn:{p}:sqs:{r}:{a}:{name}",
            "AWS::SNS::Topic": f"arn:{p}:sns:{r}:{a}:{name}",
            "AWS::StepFunctions::StateMachine": f"arn:{p}:states:{r}:{a}:stateMachine:{name}",
            "AWS::Logs::LogGroup": f"arn:{p}:logs:{r}:{a}:log-group:{name}:*",
            "AWS::DynamoDB::Table": f"arn:{p}:dynamodb:{r}:{a}:table/{name}",
            "AWS::CodeBuild::Project": f"arn:{p}:codebuild:{r}:{a}:project/{name}",
            "AWS::Events::Rule": f"arn:{p}:events:{r}:{a}:rule/{name}",
            "AWS::OpenSearchService::Domain": f"arn:{p}:es:{r}:{a}:domain/{name}",
            "AWS::SecretsManager::Secret": f"arn:{p}:secretsmanager:{r}:{a}:secret:{name}-AbCdEf",
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        special = {
            ("AWS::S3::Bucket", "DomainName"): f"{name}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"): f"{name}.s3.{r}.amazonaws.com",
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SQS::Queue", "QueueUrl"): f"https://sqs.{r}.amazonaws.com/{a}/{name}",
            ("AWS::KMS::Key", "KeyId"): logical,
            ("AWS::IAM::Role", "RoleId"): f"AROA{logical.upper()[:17]}",
            ("AWS::StepFunctions::StateMachine", "Name"): name,
            ("AWS::OpenSearchService::Domain", "DomainEndpoint"): f"vpc-{name}.{r}.es.amazonaws.com",
            ("AWS::DynamoDB::Table", "StreamArn"): f"arn:{p}:dynamodb:{r}:{a}:table/{name}/stream/0",
        }
        if (kind, attribute) in special:
            return special[(kind, attribute)]
        return f"{logical}.{attribute}"  # an attribute no check reads (an endpoint, an id)

    def _sub(self, stack: str, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(stack, variables[name]))
            if "." in name:
                logical, attribute = name.split(".", 1)
                return self._get_att(stack, logical, attribute)
            return str(self._ref(stack, name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)


def get_path(mapping: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = mapping
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value
