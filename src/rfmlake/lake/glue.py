"""The Glue Data Catalog as the lake's pointer store on AWS (docs/adr/0002-versioned-tables.md).

A table's current version is its Glue table's location. Committing a version updates that location
(and the columns, read from the version's Parquet schema) in one UpdateTable call, which Athena
picks up atomically per query; tables that dbt-athena builds are read the same way. Databases are
`<prefix>_<zone>`, as the catalog stack creates them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rfmlake.errors import RfmlakeError

if TYPE_CHECKING:
    import boto3

_PARQUET_STORAGE = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


# What GetTable returns that TableInput takes back (the rest is read-only: CreateTime, VersionId, ...).
_TABLE_INPUT_KEYS = ("Name", "Description", "Owner", "Retention", "StorageDescriptor", "PartitionKeys",
                     "ViewOriginalText", "ViewExpandedText", "TableType", "Parameters", "TargetTable")


class CatalogError(RfmlakeError):
    """The Glue catalog refused a read or a commit."""


def hive_type(arrow_type: pa.DataType) -> str:
    """The Hive/Athena DDL type for an Arrow type, as Glue stores it."""
    t = arrow_type
    simple = [
        (pa.types.is_boolean, "boolean"), (pa.types.is_int8, "tinyint"), (pa.types.is_int16, "smallint"),
        (pa.types.is_int32, "int"), (pa.types.is_int64, "bigint"), (pa.types.is_uint8, "smallint"),
        (pa.types.is_uint16, "int"), (pa.types.is_uint32, "bigint"), (pa.types.is_uint64, "decimal(20,0)"),
        (pa.types.is_float16, "float"), (pa.types.is_float32, "float"), (pa.types.is_float64, "double"),
        (pa.types.is_string, "string"), (pa.types.is_large_string, "string"), (pa.types.is_binary, "binary"),
        (pa.types.is_large_binary, "binary"), (pa.types.is_date, "date"), (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_null, "string"),
    ]
    for check, name in simple:
        if check(t):
            return name
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{hive_type(t.key_type)},{hive_type(t.item_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.type)}" for f in t) + ">"
    raise CatalogError(f"no Glue/Athena type for Arrow type {t}")


class GlueCatalog:
    """Read and swap table locations in the Glue Data Catalog. `boto3_session` as in awswrangler."""

    def __init__(self, prefix: str, boto3_session: boto3.Session | None = None) -> None:
        self.prefix = prefix
        self._session = boto3_session
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:  # created on first use, never at import
            import boto3

            self._client = (self._session or boto3.Session()).client("glue")
        return self._client

    def database(self, zone: str) -> str:
        return f"{self.prefix}_{zone}"

    def _call(self, what: str, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "EntityNotFoundException":
                raise
            raise CatalogError(f"Glue {operation} for {what} failed: {code}: "
                               f"{exc.response.get('Error', {}).get('Message', '')}") from None
        except BotoCoreError as exc:
            raise CatalogError(f"Glue {operation} for {what} failed: {exc}") from None

    def location(self, zone: str, name: str) -> str | None:
        """The table's current location, or None when the table does not exist."""
        try:
            table = self._call(f"{zone}.{name}", "get_table", DatabaseName=self.database(zone), Name=name)["Table"]
        except self.client.exceptions.EntityNotFoundException:
            return None
        location = table.get("StorageDescriptor", {}).get("Location")
        return str(location).rstrip("/") if location else None

    def table(self, zone: str, name: str) -> dict[str, Any] | None:
        """The table's definition as UpdateTable takes it back (TableInput fields only), or None when
        it does not exist: what a run records at its start to restore after a failure."""
        try:
            table = self._call(f"{zone}.{name}", "get_table", DatabaseName=self.database(zone), Name=name)["Table"]
        except self.client.exceptions.EntityNotFoundException:
            return None
        return {key: table[key] for key in _TABLE_INPUT_KEYS if key in table}

    def put_table(self, zone: str, name: str, table_input: dict[str, Any]) -> None:
        """Make the table's definition `table_input` again (creating the table if it was dropped)."""
        database = self.database(zone)
        try:
            self._call(f"{zone}.{name}", "update_table", DatabaseName=database, TableInput=table_input)
        except self.client.exceptions.EntityNotFoundException:
            self._call(f"{zone}.{name}", "create_table", DatabaseName=database, TableInput=table_input)

    def drop_table(self, zone: str, name: str) -> bool:
        """Delete the table (and its partitions) from the catalog, not its data; False if it was absent."""
        try:
            self._call(f"{zone}.{name}", "delete_table", DatabaseName=self.database(zone), Name=name)
        except self.client.exceptions.EntityNotFoundException:
            return False
        return True

    def table_names(self, zone: str) -> list[str]:
        names: list[str] = []
        try:
            pages = self.client.get_paginator("get_tables").paginate(DatabaseName=self.database(zone))
            for page in pages:
                names.extend(t["Name"] for t in page["TableList"])
        except self.client.exceptions.EntityNotFoundException:
            return []
        return sorted(names)

    def set_location(self, zone: str, name: str, location: str, schema: pa.Schema, version: str) -> None:
        """Point the table at `location` with `schema`'s columns; creates the table the first time."""
        table_input = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "rfmlake_version": version,
                           "rfmlake_committed_at": f"{time.time():.3f}"},
            "StorageDescriptor": {
                "Columns": [{"Name": f.name.lower(), "Type": hive_type(f.type)} for f in schema],
                "Location": location.rstrip("/") + "/",
                **_PARQUET_STORAGE,
            },
        }
        database = self.database(zone)
        try:
            self._call(f"{zone}.{name}", "update_table", DatabaseName=database, TableInput=table_input)
        except self.client.exceptions.EntityNotFoundException:
            try:
                self._call(f"{zone}.{name}", "create_table", DatabaseName=database, TableInput=table_input)
            except self.client.exceptions.EntityNotFoundException:
                raise CatalogError(f"Glue database {database} does not exist; deploy the catalog stack "
                                   f"or check the settings prefix ({self.prefix!r})") from None

    def set_partitions(self, zone: str, name: str, table_uri: str, partition_by: tuple[str, ...], schema: pa.Schema,
                       partitions: dict[tuple[tuple[str, str], ...], str], version: str) -> None:
        """Make the Glue table's partitions those of the lake's pointer: create the table (partition
        keys apart from the columns, as Athena wants them), then create, update and delete partitions
        so each points at its committed version folder. The pointer object in the lake is the
        commit; this follows it and is idempotent, so a crash part-way is repaired by the next
        commit (docs/adr/0010)."""
        database = self.database(zone)
        what = f"{zone}.{name}"
        columns = [{"Name": f.name.lower(), "Type": hive_type(f.type)} for f in schema if f.name not in partition_by]
        table_input = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "rfmlake_version": version,
                           "rfmlake_committed_at": f"{time.time():.3f}"},
            "PartitionKeys": [{"Name": c, "Type": hive_type(schema.field(c).type)} for c in partition_by],
            "StorageDescriptor": {"Columns": columns, "Location": table_uri.rstrip("/") + "/",
                                  **_PARQUET_STORAGE},
        }
        try:
            self._call(what, "update_table", DatabaseName=database, TableInput=table_input)
        except self.client.exceptions.EntityNotFoundException:
            try:
                self._call(what, "create_table", DatabaseName=database, TableInput=table_input)
            except self.client.exceptions.EntityNotFoundException:
                raise CatalogError(f"Glue database {database} does not exist; deploy the catalog stack "
                                   f"or check the settings prefix ({self.prefix!r})") from None
        existing: dict[tuple[str, ...], str] = {}
        pages = self.client.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name)
        for page in pages:
            for partition in page["Partitions"]:
                existing[tuple(partition["Values"])] = partition["StorageDescriptor"]["Location"].rstrip("/")
        wanted = {tuple(v for _, v in values): uri.rstrip("/") for values, uri in partitions.items()}

        def partition_input(values: tuple[str, ...], uri: str) -> dict[str, Any]:
            return {"Values": list(values),
                    "StorageDescriptor": {"Columns": columns, "Location": uri + "/", **_PARQUET_STORAGE}}

        create = [partition_input(v, u) for v, u in sorted(wanted.items()) if v not in existing]
        update = [(v, u) for v, u in sorted(wanted.items()) if v in existing and existing[v] != u]
        delete = [list(v) for v in sorted(existing) if v not in wanted]
        for chunk in _chunks(create, 100):
            response = self._call(what, "batch_create_partition", DatabaseName=database, TableName=name,
                                  PartitionInputList=chunk)
            _raise_partition_errors(what, "BatchCreatePartition", response)
        for chunk in _chunks(update, 100):
            entries = [{"PartitionValueList": list(v), "PartitionInput": partition_input(v, u)} for v, u in chunk]
            response = self._call(what, "batch_update_partition", DatabaseName=database, TableName=name,
                                  Entries=entries)
            _raise_partition_errors(what, "BatchUpdatePartition", response)
        for chunk in _chunks(delete, 25):
            response = self._call(what, "batch_delete_partition", DatabaseName=database, TableName=name,
                                  PartitionsToDelete=[{"Values": v} for v in chunk])
            _raise_partition_errors(what, "BatchDeletePartition", response)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _raise_partition_errors(what: str, operation: str, response: dict[str, Any]) -> None:
    errors = response.get("Errors") or []
    if errors:
        first = errors[0].get("ErrorDetail", {})
        raise CatalogError(f"Glue {operation} for {what} failed for {len(errors)} partitions: "
                           f"{first.get('ErrorCode', '')}: {first.get('ErrorMessage', '')}")
