"""schemathesis against the served OpenAPI document: generated requests for every operation, with a
valid key, never get a 5xx. Bounded: a few examples per operation, a fixed seed."""

from __future__ import annotations

import hypothesis
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.runner import events


def test_fuzzing_the_openapi_finds_no_server_error(served):
    key = {"X-API-Key": served["keys"]["full"]}  # the document itself needs the key
    schema = schemathesis.from_uri(served["base"] + "/openapi.json", base_url=served["base"], force_schema_version="30",
                                   headers=key)
    runner = schemathesis.runner.from_schema(
        schema,
        checks=(not_a_server_error,),
        headers=key,
        hypothesis_settings=hypothesis.settings(max_examples=25, deadline=None, database=None,
                                                suppress_health_check=list(hypothesis.HealthCheck)),
        seed=7,
        request_timeout=10_000,
    )
    failures, operations = [], 0
    for event in runner.execute():
        if isinstance(event, events.AfterExecution):
            operations += 1
            if event.status.name != "success":
                failures.append((event.result.verbose_name, [c.message for c in event.result.checks
                                                             if c.value.name != "success"][:3],
                                 [e.exception for e in event.result.errors][:1]))
        if isinstance(event, events.InternalError):
            failures.append(("internal", event.message, event.exception))
    assert operations == 6  # the five profile routes and GET /customers/{id}/recommendations
    assert failures == []
