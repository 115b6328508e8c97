"""Every Task of the generated state machine, as Step Functions will send it: its Parameters with the
JSONPath and intrinsic fields filled in the way the service fills them, validated against botocore's
model of the API the integration calls (unknown or misspelt fields, missing required ones, types and
lengths). Step Functions itself has no local emulator here; this is what a wrong field in the
rendering would fail on at the first run."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from infra_synth import Synth
from rfmlake.pipeline.stepfunctions import NOTIFY_STATE

INTEGRATIONS = {  # Task Resource -> (botocore service, operation)
    "arn:aws:states:::glue:startJobRun.sync": ("glue", "StartJobRun"),
    "arn:aws:states:::codebuild:startBuild.sync": ("codebuild", "StartBuild"),
    "arn:aws:states:::sagemaker:createProcessingJob.sync": ("sagemaker", "CreateProcessingJob"),
    "arn:aws:states:::lambda:invoke": ("lambda", "Invoke"),
    "arn:aws:states:::sns:publish": ("sns", "Publish"),
    "arn:aws:states:::dynamodb:updateItem": ("dynamodb", "UpdateItem"),  # the run lease
    "arn:aws:states:::dynamodb:deleteItem": ("dynamodb", "DeleteItem"),
}
EXECUTION_NAME = "landing-2026-12-01-0123abcd"
_TOKEN = re.compile(r"\$\{Token\[[^\]]+\]\}")
DEPLOY_TIME_VALUE = "arn:aws:iam::123456789012:role/resolved-at-deploy"
_FORMAT_WITH_UUID = re.compile(r"^States\.Format\('(?P<template>[^']*)', States\.UUID\(\)\)$")


def fill(value: Any) -> Any:
    """Parameters as the service receives them: `key.$` fields replaced by a value of their kind."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.endswith(".$"):
                match = _FORMAT_WITH_UUID.match(item)
                if match:
                    out[key[:-2]] = match["template"].replace("{}", str(uuid.uuid4()))
                elif item == "$$.Execution.Name":
                    out[key[:-2]] = EXECUTION_NAME
                elif item == "$$.Execution.StartTime":
                    out[key[:-2]] = "2026-12-01T03:00:00.000Z"
                else:  # a path into the state input or the context object: some JSON value
                    out[key[:-2]] = {"from": item}
            else:
                out[key] = fill(item)
        return out
    if isinstance(value, list):
        return [fill(v) for v in value]
    if isinstance(value, str):  # a deploy-time value (a role ARN, a bucket, a job name): something as long
        return _TOKEN.sub(DEPLOY_TIME_VALUE, value)
    return value


def api_names(value: Any, shape: Any) -> Any:
    """Step Functions writes every service's parameters in PascalCase, also where the API is camelCase
    (CodeBuild: ProjectName -> projectName): map keys to the model's member names, case-insensitively."""
    if shape.type_name == "structure" and isinstance(value, dict):
        members = {name.lower(): name for name in shape.members}
        out = {}
        for key, item in value.items():
            name = members.get(key.lower(), key)  # an unknown key stays as it is, for the validator to name
            out[name] = api_names(item, shape.members[name]) if name in shape.members else item
        return out
    if shape.type_name == "list" and isinstance(value, list):
        return [api_names(item, shape.member) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: api_names(v, shape.value) for k, v in value.items()}
    return value


def test_every_task_is_a_valid_request_of_its_service(synth: Synth) -> None:
    states = synth.platform.orchestration.definition["States"]
    session = botocore.session.get_session()
    checked = set()
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        service, operation = INTEGRATIONS[state["Resource"]]
        params = fill(state["Parameters"])
        if service == "lambda":  # the optimized integration serializes the JSON payload itself
            params["Payload"] = json.dumps(params["Payload"]).encode()
        if service == "sns":
            params["Message"] = json.dumps(params["Message"])
        shape = session.get_service_model(service).operation_model(operation).input_shape
        report = ParamValidator().validate(api_names(params, shape), shape)
        assert not report.has_errors(), f"{name}: {report.generate_report()}"
        checked.add(name)
    assert NOTIFY_STATE in checked and len(checked) == len([s for s in states.values() if s["Type"] == "Task"])


@pytest.mark.parametrize("stage", ["segmentation", "customer_value", "recommendations"])
def test_processing_job_names_fit_sagemaker(synth: Synth, stage: str) -> None:
    name = fill(synth.platform.orchestration.definition["States"][stage]["Parameters"])["ProcessingJobName"]
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name), name  # CreateProcessingJob's pattern
