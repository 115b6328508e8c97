"""Record every AWS request a code path sends to the moto server, and turn each into the authorization AWS
would make (rfmlake.deploy.iam_check.ApiCall): the IAM action, every resource ARN and the condition keys.

Recording happens on the server (moto's recorder), so it sees every client: boto3 in this process and in
subprocesses (the processing jobs), pyarrow's and DuckDB's S3 traffic, which botocore hooks cannot see.
S3 requests are mapped from their REST form; JSON and query protocol requests from their operation
(X-Amz-Target or Action) and parameters."""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rfmlake.deploy.iam_check import ApiCall, call_from_request, denials

REGION, ACCOUNT = "eu-west-1", "123456789012"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")


@contextmanager
def recorded(endpoint: str) -> Iterator[list[dict[str, Any]]]:
    """The requests the moto server receives inside the block (filled in when it ends)."""

    def post(path: str) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/recorder/{path}", method="POST"))

    # The server runs in this process (tests/aws_lake.py): its recorder writes to a file of ours, not
    # to ./moto_recording in the working directory.
    from moto.moto_api import recorder

    recorder._location = str(Path(tempfile.gettempdir()) / f"rfmlake-moto-recording-{os.getpid()}.jsonl")
    post("reset-recording")
    post("start-recording")
    requests: list[dict[str, Any]] = []
    try:
        yield requests
    finally:
        post("stop-recording")
        with urllib.request.urlopen(f"{endpoint}/moto-api/recorder/download-recording") as response:
            requests += [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]


def api_calls(requests: list[dict[str, Any]], *, buckets: Mapping[str, str], source: str) -> list[ApiCall]:
    """The authorizations of the recorded requests, the test's bucket names replaced by the deployed ones."""
    calls: list[ApiCall] = []
    for request in requests:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        scope = _SCOPE.search(headers.get("authorization", ""))
        if scope is None:
            raise AssertionError(f"an unsigned request reached moto: {request['method']} {request['url']}")
        body = request.get("body") or ""
        if request.get("body_encoded"):
            body = base64.b64decode(body)
        if scope["service"] == "s3":
            calls += s3_calls(request["method"], request["url"], headers, body, buckets, source)
            continue
        rest = rest_operation(scope["service"], request["method"], request["url"], body)
        if rest is not None:
            operation, params = rest
        elif "x-amz-target" in headers:
            operation = headers["x-amz-target"].rsplit(".", 1)[1]
            params = json.loads(body or "{}")
        else:  # query protocol: Action=...&...
            form = urllib.parse.parse_qs(body.decode() if isinstance(body, bytes) else body)
            operation = form.get("Action", [""])[0]
            params = {k: v[0] for k, v in form.items()}
            if not operation:
                raise AssertionError(f"cannot tell the operation of {request['method']} {request['url']}")
        call = call_from_request(scope["service"], operation, params, region=scope["region"], account=ACCOUNT,
                                 source=source)
        if call is not None:
            calls.append(call)
    return calls


# Signing name -> the REST-JSON API whose operations are told apart by method and path (SES v2 signs as
# "ses", like the query-protocol SES v1, whose requests carry an Action instead).
REST_APIS = {"ses": "sesv2"}


def rest_operation(signing_name: str, method: str, url: str, body: bytes | str) -> tuple[str, dict[str, Any]] | None:
    """(operation, parameters) of a REST-JSON request, matched against botocore's service model: the
    operation whose HTTP method and request URI fit; parameters from the path labels and the JSON body."""
    service = REST_APIS.get(signing_name)
    if service is None:
        return None
    import botocore.session

    path = urllib.parse.urlsplit(url).path
    model = botocore.session.get_session().get_service_model(service)
    for name in model.operation_names:
        http = model.operation_model(name).http
        template = http["requestUri"].split("?", 1)[0]
        pattern = re.sub(r"\\\{(\w+)(\\\+)?\\\}", lambda m: f"(?P<{m[1]}>{'.+' if m[2] else '[^/]+'})",
                         re.escape(template))
        match = re.fullmatch(pattern, path)
        if http["method"] == method and match:
            text = body.decode() if isinstance(body, bytes) else body
            params = json.loads(text) if text.strip().startswith("{") else {}
            return name, {**params, **{k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}}
    raise AssertionError(f"no {service} operation matches {method} {path}: extend tests/aws_calls.py")


def s3_calls(method: str, url: str, headers: Mapping[str, str], body: bytes | str, buckets: Mapping[str, str],
             source: str) -> list[ApiCall]:
    """IAM actions of one S3 REST request (path-style, as clients address a local endpoint)."""
    parsed = urllib.parse.urlsplit(url)
    path = parsed.path.lstrip("/")
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    bucket, _, key = path.partition("/")
    bucket = buckets.get(bucket, bucket)
    key = urllib.parse.unquote(key)
    obj, arn = f"arn:aws:s3:::{bucket}/{key}", f"arn:aws:s3:::{bucket}"

    def call(action: str, resource: str, **context: str) -> ApiCall:
        return ApiCall.of(action, resource, source=f"{source}: {method} {path[:80]}", **context)

    if key:
        if method in ("GET", "HEAD"):
            return [call("s3:GetObjectVersion" if "versionId" in query else "s3:GetObject", obj)]
        if method == "PUT" or (method == "POST" and ("uploads" in query or "uploadId" in query)):
            calls = [call("s3:PutObject", obj)]
            source_object = headers.get("x-amz-copy-source")
            if source_object:
                src_bucket, _, src_key = urllib.parse.unquote(source_object).lstrip("/").partition("/")
                calls.append(call("s3:GetObject", f"arn:aws:s3:::{buckets.get(src_bucket, src_bucket)}/{src_key}"))
            return calls
        if method == "DELETE":
            return [call("s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject", obj)]
    else:
        if method == "GET" and "location" in query:
            return [call("s3:GetBucketLocation", arn)]
        if method == "GET" and "uploads" in query:
            return [call("s3:ListBucketMultipartUploads", arn)]
        if method == "GET" and "versions" in query:
            return [call("s3:ListBucketVersions", arn, **_prefix(query))]
        if method == "GET" or method == "HEAD":  # ListObjects(V2); HeadBucket needs s3:ListBucket
            return [call("s3:ListBucket", arn, **_prefix(query))]
        if method == "POST" and "delete" in query:
            text = body.decode() if isinstance(body, bytes) else body
            keys = [urllib.parse.unquote(k) for k in re.findall(r"<Key>([^<]*)</Key>", text)]
            return [call("s3:DeleteObject", f"{arn}/{k}") for k in keys]
    raise AssertionError(f"no IAM action known for S3 request {method} {url}: extend tests/aws_calls.py")


def _prefix(query: Mapping[str, list[str]]) -> dict[str, str]:
    return {"s3__prefix": query["prefix"][0]} if "prefix" in query else {}


def _role_check(synth: Any, stack: Any, role: Any) -> tuple[Any, Any, Any]:
    """(the role of the templates, the templates, the bucket policies) for a role construct."""
    from rfmlake.deploy.cfn import Templates
    from rfmlake.deploy.iam_check import bucket_policies, roles

    deploy = synth.platform.environment.deploy
    templates = Templates(synth.templates, account=deploy.account or ACCOUNT, region=deploy.region)
    role_name = f"{stack.stack_name}/{stack.get_logical_id(role.node.default_child)}"
    return roles(templates)[role_name], templates, bucket_policies(templates)


def assert_role_allows(synth: Any, stack: Any, role: Any, requests: list[dict[str, Any]], *,
                       buckets: Mapping[str, str], source: str) -> list[ApiCall]:
    """Every recorded request (with the S3 calls' implied KMS calls) is allowed by `role`'s synthesized
    policies; the test's bucket names (keys of `buckets`) stand for the platform's buckets (the values:
    bucket constructs of the storage stack). Returns the calls checked."""
    from rfmlake.deploy.iam_check import bucket_keys, with_implied_calls

    checked_role, templates, policies = _role_check(synth, stack, role)
    storage = synth.platform.storage
    deployed = {test_name: templates.physical_name(storage.stack_name, storage.get_logical_id(bucket.node.default_child))
                for test_name, bucket in buckets.items()}
    calls = with_implied_calls(api_calls(requests, buckets=deployed, source=source), bucket_keys(templates))
    assert calls, f"{source}: no AWS call was recorded"
    return assert_calls_allowed(synth, stack, role, calls)


def assert_calls_allowed(synth: Any, stack: Any, role: Any, calls: list[ApiCall]) -> list[ApiCall]:
    """Every call is allowed by `role`'s synthesized policies (for calls recorded off the moto server)."""
    checked_role, templates, policies = _role_check(synth, stack, role)
    denied = denials(checked_role, calls, bucket_policies=policies, account=templates.account)
    assert not denied, "missing permissions:\n" + "\n".join(sorted({d.describe() for d in denied}))
    return calls


def denials_without(synth: Any, stack: Any, role: Any, calls: list[ApiCall], sids: set[str]) -> list[str]:
    """A fault put back: what `calls` would be denied if `role` lacked its statements `sids`."""
    from rfmlake.deploy.iam_check import Role

    checked_role, templates, policies = _role_check(synth, stack, role)
    assert sids <= {s.get("Sid") for s in checked_role.statements}, f"{checked_role.name} has no statement {sids}"
    lacking = Role(checked_role.stack, checked_role.logical_id, checked_role.arn, checked_role.trust,
                   [s for s in checked_role.statements if s.get("Sid") not in sids])
    return sorted({d.describe() for d in denials(lacking, calls, bucket_policies=policies, account=templates.account)})
