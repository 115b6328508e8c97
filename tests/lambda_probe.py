"""Run one lambdas/<name>/handler.py offline, the way its trigger calls it, and print as JSON the
top-level modules it imported (tests/functional/infra/test_lambda_image_dependencies.py maps them to
distributions and checks that the Lambda image installs them).

    python -I tests/lambda_probe.py <name> <empty work folder> [<blocked.json>]   # -> <work folder>/probe.json

Loading the handler records its import-time modules; calling it with representative events records
the lazily imported ones (Mangum, the stage functions, boto3, opensearch-py ...). Calls that need AWS
fail fast after importing what they need: every AWS and OpenSearch endpoint is a closed local port.
Their errors are expected and only summarised; an ImportError is reported as such. Only the
standard library is imported before the handler, so nothing the probe loads is counted.

blocked.json lists top-level module names that cannot be imported in this run (as if their
distributions were not installed): the test blocks everything the Lambda image does not install.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CLOSED = "127.0.0.1:1"  # nothing listens on port 1: connections are refused at once
S3_LAKE = "s3://rfmlake-probe-lake/rfmlake"
OFFLINE_ENV = {
    "AWS_ACCESS_KEY_ID": "probe",
    "AWS_SECRET_ACCESS_KEY": "probe",
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ENDPOINT_URL": f"http://{CLOSED}",
    "AWS_MAX_ATTEMPTS": "1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "RFMLAKE_OPENSEARCH_ENDPOINT": f"https://{CLOSED}",
    "RFMLAKE_PII_KEY": "probe-key-not-a-secret",
    "RFMLAKE_STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:probe",
    "RFMLAKE_RUN_LEASE_TABLE": "probe-run-lease",
    "DO_NOT_TRACK": "1",
}


def _s3_created(bucket: str, key: str) -> dict[str, Any]:
    return {"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": bucket}, "object": {"key": key}}}


def _http_get(path: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event from an IAM-authorized caller."""
    context = {"http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1",
                        "userAgent": "probe"}, "requestId": "probe", "stage": "$default", "accountId": "1",
               "apiId": "a", "domainName": "x", "domainPrefix": "x", "time": "", "timeEpoch": 0,
               "routeKey": "$default",
               "authorizer": {"iam": {"userArn": "arn:aws:iam::123456789012:role/probe", "accountId": "1"}}}
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": {"host": "x"}, "requestContext": context, "isBase64Encoded": False}


class Context:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    function_name = "probe"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:probe"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/probe"
    log_stream_name = "probe"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class Blocker:
    """A meta path finder that refuses the blocked top-level modules, like a missing distribution."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked: not installed)", name=fullname)
        return None


def exercises(name: str, work: Path) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(label, event, extra environment) for each call of handler `name`; the lake is empty."""
    local_lake = str(work / "lake")
    if name == "pipeline_stage":
        from rfmlake.pipeline.definition import PIPELINE  # loaded by the handler already

        return [(f"{stage.name} on {lake}", {"stage": stage.name, "run_id": "probe"}, {"RFMLAKE_LAKE": lake})
                for stage in PIPELINE if stage.runtime == "python" for lake in (local_lake, S3_LAKE)]
    if name == "start_pipeline":
        record = {"body": json.dumps(_s3_created("landing", "orders/2026-05-01.csv"))}
        return [("landing batch", {"Records": [record]}, {})]
    if name == "activate_segments":
        event = _s3_created("lake", "rfmlake/gold/customer_rfm/_current")
        return [(f"new gold version on {lake}", event, {"RFMLAKE_LAKE": lake}) for lake in (local_lake, S3_LAKE)]
    if name == "profile_indexer":
        return [("profile pointer written", _s3_created("rfmlake-probe-lake", "gold/customer_profile/_current"), {})]
    if name == "profile_api":
        return [(f"GET {path}", _http_get(path), {}) for path in ("/health", "/profiles/C000001", "/segments")]
    if name == "marketing_app":
        app_env = {"RFMLAKE_LAKE": local_lake, "RFMLAKE_COGNITO_USER_POOL_ID": "eu-west-1_probe",
                   "RFMLAKE_COGNITO_CLIENT_ID": "probe", "RFMLAKE_APP_SESSION_KEY": "probe-session-key-not-a-secret"}
        sign_in = {**_http_get("/login"), "body": "username=mia&password=probe-password&csrf_token=x",
                   "headers": {"host": "x", "content-type": "application/x-www-form-urlencoded"}}
        sign_in["requestContext"] = {**sign_in["requestContext"],
                                     "http": {**sign_in["requestContext"]["http"], "method": "POST"}}
        return [("GET /login", _http_get("/login"), app_env), ("POST /login", sign_in, app_env),
                ("GET /segments", _http_get("/segments"), app_env)]
    raise SystemExit(f"lambda_probe: no exercises for lambdas/{name}; add them here")


def main(name: str, work: Path, blocked: set[str]) -> dict[str, Any]:
    os.environ.update(OFFLINE_ENV)
    os.environ.pop("AWS_PROFILE", None)
    os.chdir(work)  # whatever a library writes to the working directory lands in the work folder
    (work / "lake").mkdir(exist_ok=True)
    already = set(sys.modules)
    sys.meta_path.insert(0, Blocker(blocked))
    spec = importlib.util.spec_from_file_location(f"{name}.handler", REPO / "lambdas" / name / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    import_errors: list[str] = []
    outcomes: list[str] = []
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        import_errors.append(f"import: {exc!r}")
    else:
        for label, event, env in exercises(name, work):
            label = label.replace(str(work), "<work>")
            os.environ.update(env)
            try:
                result = module.handler(event, Context())
                outcomes.append(f"{label}: returned {str(result).replace(str(work), '<work>')[:120]}")
            except ImportError as exc:
                import_errors.append(f"{label}: {exc!r}")
            except Exception as exc:  # expected: no AWS, an empty lake
                outcomes.append(f"{label}: {type(exc).__name__}: {str(exc).replace(str(work), '<work>')[:160]}")
    top_level = {m.split(".")[0] for m in set(sys.modules) - already} - {name}
    # where each top-level module came from: None for built-in and synthetic modules
    modules = {m: getattr(sys.modules.get(m), "__file__", None) for m in sorted(top_level)}
    modules = {m: origin for m, origin in modules.items() if origin != __file__}  # __mp_main__: this script
    return {"handler": name, "modules": modules, "import_errors": import_errors, "outcomes": outcomes}


if __name__ == "__main__":
    folder = Path(sys.argv[2]).resolve()
    blocked = set(json.loads(Path(sys.argv[3]).read_text())) if len(sys.argv) > 3 else set()
    report = main(sys.argv[1], folder, blocked)
    (folder / "probe.json").write_text(json.dumps(report, indent=1))
