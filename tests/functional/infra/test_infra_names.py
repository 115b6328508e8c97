"""Every name AWS limits, in every environment of config/, against rfmlake.deploy.names.NAME_LIMITS:
the names in the templates (resolved for the environment's account and region) and the names the
state machine builds at run time, for the longest execution name Step Functions accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra_synth import Synth
from rfmlake.deploy.cfn import Templates, get_path
from rfmlake.deploy.names import NAME_LIMITS, RESOURCE_NAMES, UUID_LENGTH, name_problem

pytest.importorskip("aws_cdk")

# Properties ending in "Name" of types outside RESOURCE_NAMES: each names something else (a reference,
# a fixed value), not the resource itself, so no name limit of ours applies. Reviewed one by one.
NOT_OWN_NAMES = {
    ("AWS::Logs::ResourcePolicy", "PolicyName"),        # no limit in the API model; checked below (255)
    ("AWS::Lambda::Permission", "FunctionName"),        # refers to a function
    ("AWS::Lambda::EventSourceMapping", "FunctionName"),
    ("AWS::EC2::VPCEndpoint", "ServiceName"),           # an AWS service's endpoint name
    ("Custom::CDKBucketDeployment", "DestinationBucketName"),  # refers to a bucket
    ("Custom::S3AutoDeleteObjects", "BucketName"),
}


def templates_of(synth: Synth) -> Templates:
    deploy = synth.platform.environment.deploy
    return Templates(synth.templates, account=deploy.account or "123456789012", region=deploy.region)


def test_every_named_resource_fits_aws_limits(synth_env: Synth) -> None:
    templates = templates_of(synth_env)
    checked, problems, unreviewed = 0, [], set()
    for stack, logical, resource in templates.resources():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind in RESOURCE_NAMES:
            path, limit = RESOURCE_NAMES[kind]
            value = get_path(props, path)
            if value is None:
                continue  # CloudFormation generates a name that fits
            name = templates.resolve(stack, value)
            checked += 1
            if problem := name_problem(limit, name):
                problems.append(f"{stack}/{logical}: {problem}")
        else:
            unreviewed |= {(kind, p) for p in props if p.endswith("Name") and (kind, p) not in NOT_OWN_NAMES}
    assert problems == []
    assert unreviewed == set(), "a resource type names itself: add it to rfmlake.deploy.names.RESOURCE_NAMES"
    assert checked >= 25, checked
    for stack, logical, resource in templates.resources("AWS::Logs::ResourcePolicy"):
        assert len(templates.resolve(stack, resource["Properties"]["PolicyName"])) <= 255, logical


_INTRINSIC = re.compile(r"^States\.Format\('(?P<template>[^']*)', (?P<args>.+)\)$")
WORST_CASE = {  # the longest value each run-time source can take, in characters AWS allows there
    "States.UUID()": "f" * 8 + "-" + "-".join(["ffff"] * 3) + "-" + "f" * 12,
    "$$.Execution.Name": "x" * NAME_LIMITS["execution"].max_length,
}


def run_time_names(parameters: dict[str, Any]) -> dict[str, str]:
    """Each `...Name.$` parameter of a Task as the longest value it can take at run time."""
    names = {}
    for key, value in parameters.items():
        if not key.endswith("Name.$"):
            continue
        if value in WORST_CASE:
            names[key[:-2]] = WORST_CASE[value]
            continue
        match = _INTRINSIC.match(value)
        assert match, f"{key}: {value!r} is neither a known source nor States.Format: extend this test"
        args = [a.strip() for a in match["args"].split(",")]
        assert all(a in WORST_CASE for a in args), args
        template = match["template"]
        for arg in args:
            template = template.replace("{}", WORST_CASE[arg], 1)
        names[key[:-2]] = template
    return names


def test_every_name_the_state_machine_builds_fits_for_any_execution_name(synth_env: Synth) -> None:
    """`rfmlake deploy --env <env> --synth`: the processing job names fit SageMaker's 63 characters and
    pattern whatever the execution name (up to 80 characters) the run was started with."""
    definition = synth_env.platform.orchestration.definition
    seen = {}
    for name, state in definition["States"].items():
        for parameter, value in run_time_names(state.get("Parameters", {})).items():
            if parameter == "ProcessingJobName":
                assert name_problem("processing_job", value) is None, (name, value)
                assert len(value) == len(value.rsplit("-", 5)[0]) + 1 + UUID_LENGTH
                seen[name] = value
    assert set(seen) == {"segmentation", "customer_value", "recommendations"}
    assert len(set(v.rsplit("-", 5)[0] for v in seen.values())) == 3  # distinct prefixes per stage
