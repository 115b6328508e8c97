"""Erasure on a lake on S3 (the AWS runtime): the local erasure on a working copy, then what only
S3, Glue, Athena and OpenSearch keep.

Under the lake's lock (rfmlake.lake.locks: an S3 lease every stage, sync and erasure takes):
1. Working copy: every committed table and the lake's files outside the tables (`_system/`, the
   activation exports, the journeys' outbox) are copied to a local folder, as a stage's workspace
   does (rfmlake.lake.workspace), and the local erasure runs there unchanged
   (rfmlake.governance.erasure.erase_held). An unknown id, or a sync or journeys tick waiting to
   be resumed, is refused here, before anything on S3 changed.
2. Publish: the tables it rewrote are committed on S3 as new versions (Glue location, then pointer:
   a normal lake commit); the files it changed are written back and those it deleted (the dbt
   working database, older profile generations) deleted.
3. Older table versions on S3: vacuumed, uncommitted ones included; the data dbt-athena left under
   its data folder (`gold/_dbt/`) that no current table reads is deleted (the next run rebuilds
   it); every Glue table version but the current one is deleted (old versions point at old data).
4. Athena's query results (`athena_results`, the workgroup's output location) are deleted: a query
   result may hold any row that was queried.
5. The OpenSearch profile store (if given) gets a generation without them (erase_from_profile_store)
   and the older indices are deleted.
6. The audit entry is appended; then every noncurrent object version and delete marker under the
   lake, the dbt data folder and the results location is deleted for good (versioned buckets keep
   the old bytes of every overwritten or deleted object), and unfinished multipart uploads there
   are aborted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rfmlake.errors import RfmlakeError
from rfmlake.ingest.pii import resolve_pii_key
from rfmlake.lake.dbt_data import dbt_data_location, delete_unread_dbt_data
from rfmlake.lake.locks import lake_lock
from rfmlake.lake.storage import is_s3
from rfmlake.lake.tables import ZONES, Lake
from rfmlake.settings import Settings

if TYPE_CHECKING:
    from rfmlake.governance.erasure import ErasureReport
    from rfmlake.profiles.store import ProfileStore

# Lake-relative folders outside the tables that hold people: lake state, activation exports,
# journeys outbox (rfmlake.activation.destinations.file, rfmlake.journeys.channels).
FILE_FOLDERS: tuple[str, ...] = ("_system", "gold/_activation", "gold/_journeys")
ATHENA_RESULTS_ENV = "RFMLAKE_ATHENA_S3_STAGING_DIR"  # what dbt-athena and the workgroup write results to
def athena_results_from_env(env: dict[str, str] | None = None) -> str | None:
    value = (os.environ if env is None else env).get(ATHENA_RESULTS_ENV)
    return value.rstrip("/") if value else None


def _split(location: str) -> tuple[str, str]:
    """(bucket, the key prefix of everything under the location: "" at a bucket's root)."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _client(lake: Lake, service: str) -> Any:
    import boto3

    return (lake.boto3_session or boto3.Session()).client(service)


def erase_on_s3(lake: Lake, customer_id: str, email: str | None, actor: str | None, *, allow_missing: bool,
                profile_store: ProfileStore | None, athena_results: str | None,
                settings: Settings | None = None, scratch: str | Path | None = None) -> ErasureReport:
    from rfmlake.governance.erasure import append_audit, erase_from_external_store, erase_held
    from rfmlake.lake.workspace import copy_tables, pull_files, push_files

    if athena_results is not None and not is_s3(athena_results):
        raise RfmlakeError(f"--athena-results {athena_results!r} is not an s3://bucket/prefix location")
    if athena_results is not None:
        # every version of every object under it is deleted: it must hold neither the lake nor
        # dbt's data, nor lie inside them
        for kept in (lake.location, dbt_data_location(lake)):
            a, b = athena_results.rstrip("/") + "/", kept.rstrip("/") + "/"
            if a.startswith(b) or b.startswith(a):
                raise RfmlakeError(f"--athena-results {athena_results} overlaps {kept}: erasure empties the "
                                   "results location entirely, so it must be a folder of its own")
    if not lake.storage.exists(lake.location):
        raise RfmlakeError(f"no lake at {lake}")
    with lake_lock(lake, RfmlakeError(f"a pipeline stage, sync or erasure is using the lake at {lake}; "
                                      "erase after it ends")):
        from rfmlake.lake.rollback import ROLLBACK_STARTED, read_in_flight

        # Between two stages of a run on AWS the lock is free, but the run's rollback needs the
        # versions it started from, which this erasure would vacuum (rfmlake.pipeline.rollback).
        in_flight = read_in_flight(lake)
        if in_flight is not None and in_flight.get(ROLLBACK_STARTED) is not None:
            raise RfmlakeError(f"pipeline run {in_flight['run_id']} was not rolled back on the lake at {lake}; "
                               "erase after its rollback is finished or given up (docs/deployment.md, "
                               "\"Watching a run\")")
        if in_flight is not None:
            raise RfmlakeError(f"pipeline run {in_flight.get('run_id')} is in flight on the lake at {lake}; erase "
                               "after it ends")
        lake.recover()
        resolve_pii_key(lake, settings or Settings())  # no key, or another key than the lake's: refused first
        folder = Path(tempfile.mkdtemp(prefix="rfmlake-erasure-", dir=scratch))
        try:
            local = Lake(folder / "lake", label=lake.label)
            pulled = copy_tables(lake, local, ("*",))
            held = {ref.qualified_name: frozenset(p.key for p in ref.partitions)
                    for ref in local.tables() if ref.is_partitioned}
            files = pull_files(lake, local, FILE_FOLDERS)
            report, email_token = erase_held(local, customer_id, email, actor, allow_missing=allow_missing,
                                             settings=settings)
            pushed = copy_tables(Lake(local.location), lake, ("*",), skip=pulled, held=held)
            written, deleted = push_files(local, lake, FILE_FOLDERS, files)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        aws = report.aws_removed
        aws["tables_committed"] = len(pushed)
        aws["lake_files_written"], aws["lake_files_deleted"] = written, deleted
        report.versions_purged += len(lake.vacuum(keep=1, min_age_seconds=0.0))
        aws["dbt_data_files_deleted"] = delete_unread_dbt_data(lake)
        aws["glue_table_versions_deleted"] = _delete_old_glue_versions(lake)
        if athena_results:
            aws["athena_result_objects_deleted"] = _delete_everything(lake, athena_results)
        if profile_store is not None:
            erase_from_external_store(report, profile_store, customer_id, email_token)
        append_audit(lake, report)
        # Last: every write above (the audit too) left a noncurrent version of what it replaced.
        locations = [lake.location, dbt_data_location(lake), *([athena_results] if athena_results else [])]
        aws["multipart_uploads_aborted"] = sum(_abort_uploads(lake, loc) for loc in _outermost(locations))
        aws["noncurrent_object_versions_deleted"] = sum(_delete_noncurrent(lake, loc) for loc in _outermost(locations))
    return report


def _outermost(locations: list[str]) -> list[str]:
    """The locations not inside another of them (the dbt folder is usually inside the lake)."""
    unique = sorted({loc.rstrip("/") for loc in locations})
    return [loc for loc in unique if not any(loc != other and loc.startswith(other + "/") for other in unique)]


def _delete_old_glue_versions(lake: Lake) -> int:
    """Every Glue table version but the current one, for each table of the lake's databases."""
    if lake.catalog is None:
        return 0
    glue = lake.catalog.client
    removed = 0
    for zone in ZONES:
        database = lake.catalog.database(zone)
        for name in lake.catalog.table_names(zone):
            ids: list[int] = []
            for page in glue.get_paginator("get_table_versions").paginate(DatabaseName=database, TableName=name):
                ids.extend(int(v["VersionId"]) for v in page["TableVersions"])
            for version in sorted(ids)[:-1]:
                glue.delete_table_version(DatabaseName=database, TableName=name, VersionId=str(version))
                removed += 1
    return removed


def _delete_versions(client: Any, bucket: str, objects: list[dict[str, str]]) -> None:
    for i in range(0, len(objects), 1000):
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": objects[i:i + 1000], "Quiet": True})
        errors = response.get("Errors") or []
        if errors:
            raise RfmlakeError(f"S3 refused to delete {len(errors)} object versions in s3://{bucket}; first: "
                               f"{errors[0].get('Key')}: {errors[0].get('Code')} {errors[0].get('Message')}")


def _versions(client: Any, location: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    bucket, prefix = _split(location)
    versions: list[dict[str, Any]] = []
    markers: list[dict[str, Any]] = []
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        versions.extend(page.get("Versions", []))
        markers.extend(page.get("DeleteMarkers", []))
    return bucket, versions, markers


def _delete_everything(lake: Lake, location: str) -> int:
    """Every object under the location, every version of it."""
    client = _client(lake, "s3")
    bucket, versions, markers = _versions(client, location)
    objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in [*versions, *markers]]
    _delete_versions(client, bucket, objects)
    return len(versions)


def _delete_noncurrent(lake: Lake, location: str) -> int:
    """Noncurrent versions (the bytes of overwritten and deleted objects) and delete markers."""
    client = _client(lake, "s3")
    bucket, versions, markers = _versions(client, location)
    old = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions if not v.get("IsLatest")]
    _delete_versions(client, bucket, old + [{"Key": m["Key"], "VersionId": m["VersionId"]} for m in markers])
    return len(old)


def _abort_uploads(lake: Lake, location: str) -> int:
    client = _client(lake, "s3")
    bucket, prefix = _split(location)
    aborted = 0
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            aborted += 1
    return aborted
