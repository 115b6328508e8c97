"""rfmlake.deploy.names: the one table of AWS name limits agrees with botocore's service models, and
the names built from a prefix fit (or are refused naming the setting)."""

from __future__ import annotations

import string

import botocore.session
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rfmlake.deploy.names import (
    NAME_LIMITS,
    PROCESSING_JOB_PREFIX_MAX,
    bucket_name,
    checked,
    fitted,
    name_problem,
    processing_job_prefix,
)
from rfmlake.errors import ConfigError
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.trigger import execution_name


@pytest.mark.parametrize("kind", sorted(k for k, v in NAME_LIMITS.items() if v.source.startswith("botocore ")))
def test_limits_agree_with_botocore(kind: str) -> None:
    limit = NAME_LIMITS[kind]
    _, service, where = limit.source.split(" ", 2)
    operation, *members = where.split(".")
    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape
    for member in members:
        shape = shape.members[member]
    metadata = shape.metadata
    if "max" in metadata:
        assert limit.max_length == metadata["max"], (kind, metadata)
    elif "pattern" in metadata:  # the length is in the pattern only (Athena: {1,128})
        assert f"{{1,{limit.max_length}}}" in metadata["pattern"], (kind, metadata)
    else:  # ... or in the shape's name only (API Gateway: StringWithLengthBetween1And128)
        assert shape.name.endswith(f"Between{limit.min_length}And{limit.max_length}"), (kind, shape.name)
    if "min" in metadata:
        assert limit.min_length == metadata["min"], (kind, metadata)


def test_processing_job_prefixes_leave_room_for_the_uuid() -> None:
    assert PROCESSING_JOB_PREFIX_MAX == 26
    # the case: "rfmlake-prod-customer-value" is 27 characters
    prefix = processing_job_prefix("rfmlake-prod", "customer_value")
    assert len(prefix) <= 26 and prefix.startswith("rfmlake-prod-custom")
    assert name_problem("processing_job", f"{prefix}-{'a' * 8}-{'b' * 4}-{'c' * 4}-{'d' * 4}-{'e' * 12}") is None
    stages = [s.name for s in PIPELINE if s.runtime == "segmentation"]
    long = "rfmlake-a-very-long-environment-prefix"
    assert len({processing_job_prefix(long, s) for s in stages}) == len(stages)  # still distinct


@given(st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=120))
def test_fitted_names_fit_and_stay_distinct(name: str) -> None:
    short = fitted(name, 26)
    assert len(short) <= 26
    assert (short == name) == (len(name) <= 26)
    if len(name) > 26:
        assert fitted(name + "x", 26) != short


def test_a_prefix_that_makes_a_name_too_long_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^prefix: 'x{60}-athena-results-0{12}' is 88 characters; a s3 bucket"):
        bucket_name("x" * 60, "athena-results", "${Token[AWS.AccountId.1]}")
    with pytest.raises(ConfigError, match="lambda function name has 1-64"):
        checked("lambda_function", "f" * 65)
    assert bucket_name("rfmlake-prod", "lake", "123456789012") == "rfmlake-prod-lake-123456789012"


@given(st.lists(st.text(min_size=1, max_size=1100), max_size=50))
def test_execution_names_always_fit(objects: list[str]) -> None:
    name = execution_name(sorted(set(objects)))
    assert name_problem("execution", name) is None
    assert name_problem("execution", name.replace("landing-", "schedule-", 1)) is None
