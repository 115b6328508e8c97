"""DuckDB reading a lake on S3 where it lies: the httpfs extension from its PyPI wheel
(`duckdb-extension-httpfs`, pinned with duckdb, docs/adr/0001) and an S3 secret from boto3's
credential chain, with the endpoint variables rfmlake.lake.storage honours (a moto server in tests).

The extension is LOADed from the wheel's file rather than INSTALLed: INSTALL copies it into
~/.duckdb, which a Lambda cannot write, and nothing is ever downloaded (autoinstall is off).
"""

from __future__ import annotations

import importlib.resources
import os
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from rfmlake.lake.storage import StorageError

if TYPE_CHECKING:
    import boto3
    import duckdb

_SECRET = "rfmlake_s3"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def httpfs_extension_file(version: str) -> str:
    """The httpfs extension binary of the `duckdb-extension-httpfs` wheel for a DuckDB version."""
    try:
        import duckdb_extension_httpfs
    except ImportError:
        raise StorageError("reading a lake on S3 with DuckDB needs the httpfs extension: "
                           "pip install duckdb-extension-httpfs==<the duckdb version>") from None
    path = importlib.resources.files(duckdb_extension_httpfs) / "extensions" / version / "httpfs.duckdb_extension"
    if not path.is_file():
        raise StorageError(f"duckdb-extension-httpfs has no build for DuckDB {version}; install the version "
                           "that matches duckdb (docs/adr/0001)")
    return str(path)


def enable_s3(con: duckdb.DuckDBPyConnection, boto3_session: boto3.Session | None = None) -> None:
    """Let `con` read s3:// URIs: load httpfs and create a session-scoped S3 secret from the
    session's (or the default chain's) credentials and region, and the endpoint in
    AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL if set."""
    try:
        import boto3
    except ImportError:
        raise StorageError("reading a lake on S3 needs boto3 (pip install 'rfmlake[aws]')") from None
    con.execute("SET autoinstall_known_extensions = false")
    version = con.execute("PRAGMA version").fetchone()[0]  # type: ignore[index]
    con.execute(f"LOAD {_literal(httpfs_extension_file(version))}")

    session = boto3_session or boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise StorageError("no AWS credentials found for reading the lake on S3 (environment, profile or role)")
    frozen = credentials.get_frozen_credentials()
    region = session.region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    options = {"KEY_ID": frozen.access_key, "SECRET": frozen.secret_key, "REGION": region}
    if frozen.token:
        options["SESSION_TOKEN"] = frozen.token
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint)
        options["ENDPOINT"] = parsed.netloc or parsed.path
        options["URL_STYLE"] = "path"  # emulators serve buckets as paths, not as host names
        options["USE_SSL"] = "true" if (parsed.scheme or "https") == "https" else "false"
    rendered = ", ".join(f"{k} {v if k == 'USE_SSL' else _literal(v)}" for k, v in options.items())
    con.execute(f"CREATE OR REPLACE SECRET {_SECRET} (TYPE s3, {rendered})")
