"""Landing -> bronze, incrementally: every landed row as text, one partition per landing file.

The lake keeps a manifest of ingested landing files (`bronze.ingest_files`: path, size, stamp,
checksum, ingest id), the same idea as Glue job bookmarks. A run reads only files that are new or
changed; a changed file's new partition supersedes its earlier one. Bronze is append-only per file,
partitioned by load date and file (docs/adr/0010, 0011). `--full` drops every partition and reads
every landing file again. A file that disappeared from the landing keeps its rows (landing may have
a retention policy) until `--full`; the run summary names such files.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from rfmlake.contract.entities import ENTITIES
from rfmlake.contract.landing import LandingFile
from rfmlake.errors import LandingError
from rfmlake.ingest.engine import CORRUPT_COLUMN, MAX_LINE_BYTES, Engine, RawFile
from rfmlake.ingest.sql import col, file_id, ident, lit, row_hash
from rfmlake.lake import Lake
from rfmlake.lake.storage import Storage, StorageError
from rfmlake.lake.tables import partition_key

if TYPE_CHECKING:
    from rfmlake.pipeline.context import RunContext

log = logging.getLogger(__name__)

LOG_LINE_COLUMN = "line"  # the one raw column of access_logs
BRONZE_LINEAGE: tuple[str, ...] = ("_source_file", "_loaded_at", "_row_hash")
PARTITION_BY: tuple[str, str] = ("_load_date", "_file")
MANIFEST_TABLE = "ingest_files"
_CHUNK = 8 * 1024 * 1024
_HEADER_READ_SIZE = 64 * 1024  # one read covers any real header (one ranged GET on S3)

MANIFEST_SCHEMA = pa.schema([
    ("entity", pa.string()), ("source_file", pa.string()), ("file_key", pa.string()), ("size", pa.int64()),
    ("modified", pa.string()), ("checksum", pa.string()), ("encoding", pa.string()), ("ingest_id", pa.string()),
    ("load_date", pa.string()), ("loaded_at", pa.timestamp("us", tz="UTC")), ("run_id", pa.string()),
    ("rows", pa.int64()), ("suppressed", pa.int64()),
])


@dataclass(frozen=True)
class ManifestEntry:
    """One ingested landing file: what was read, when, and where its rows are."""

    entity: str
    source_file: str
    file_key: str       # the `_file` partition value
    size: int
    modified: str       # the listing's stamp when it was read
    checksum: str       # SHA-256 of its bytes
    encoding: str
    ingest_id: str      # changes whenever the file's bronze partition is rewritten
    load_date: str      # the `_load_date` partition value
    loaded_at: datetime
    run_id: str
    rows: int           # rows in bronze
    suppressed: int     # rows of erased customers left out (bronze.suppressed_rows)

    @property
    def partition(self) -> str:
        return partition_key({"_load_date": self.load_date, "_file": self.file_key})


@dataclass
class BronzeResult:
    entity: str
    table: str  # qualified name, e.g. bronze.orders
    files: int
    rows: int
    rows_by_file: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0  # rows of erased customers left out (bronze.suppressed_rows)
    files_read: int = 0  # new or changed files read in this run


@dataclass(frozen=True)
class IngestPlan:
    read: list[LandingFile]            # new or changed: read in this run
    unchanged: list[LandingFile]
    vanished: list[ManifestEntry]      # ingested earlier, no longer in the landing (kept until --full)
    touched: dict[str, str]            # relative path -> new stamp: same bytes, re-delivered


def contract_columns(entity_name: str) -> tuple[str, ...]:
    """The raw columns of an entity in canonical (contract) order, lower-cased."""
    if entity_name == "access_logs":
        return (LOG_LINE_COLUMN,)
    return tuple(c.lower() for c in ENTITIES[entity_name].column_names)


def csv_header(landing_file: LandingFile, storage: Storage | None = None) -> list[str]:
    """The header row, read through storage (a local file or an S3 object: a ranged read of its
    first bytes, not the whole object), in the file's encoding."""
    storage = storage or Storage.for_location(landing_file.uri)
    encoding = landing_file.encoding
    try:
        with storage.open_input(landing_file.uri) as raw, io.TextIOWrapper(
            io.BufferedReader(raw, buffer_size=_HEADER_READ_SIZE),
            encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="",
        ) as handle:
            header = next(csv.reader(handle), [])
    except UnicodeDecodeError:
        raise LandingError(f"landing file {landing_file.relative_path} is not {encoding} text") from None
    except (OSError, StorageError) as exc:
        raise LandingError(f"landing file {landing_file.relative_path} cannot be read: {exc}") from None
    return [name.strip() or f"_c{i}" for i, name in enumerate(header)]


class LineEndings:
    """The kinds of line ending (LF, CRLF, CR) a text file uses, outside quoted CSV fields, fed
    decoded text chunk by chunk. DuckDB's readers split a file that mixes them into wrong records
    (a CSV fails to parse; a bare CR after LF lines swallows a character of the next line), so a
    mixed file is refused before any engine reads it (the same on Spark)."""

    def __init__(self, quoted: bool) -> None:
        self.quoted = quoted
        self.in_quote = False
        self.carry = ""  # a CR at the end of a chunk: the next chunk says whether it was a CRLF
        self.kinds: set[str] = set()

    def feed(self, text: str) -> None:
        outside = self.carry + (self._unquoted(text) if self.quoted else text)
        self.carry = ""
        if outside.endswith("\r"):
            outside, self.carry = outside[:-1], "\r"
        crlf = outside.count("\r\n")
        for kind, count in (("CRLF", crlf), ("LF", outside.count("\n") - crlf), ("CR", outside.count("\r") - crlf)):
            if count:
                self.kinds.add(kind)

    def _unquoted(self, text: str) -> str:
        """`text` without the quoted fields (a doubled quote inside one is two quoted pieces)."""
        if self.in_quote:
            end = text.find('"')
            if end < 0:
                return ""
            text, self.in_quote = text[end + 1:], False
        text = _QUOTED.sub("", text)
        opening = text.find('"')  # a field whose closing quote is in a later chunk
        if opening >= 0:
            text, self.in_quote = text[:opening], True
        return text

    def mixed(self) -> str:
        if self.carry:
            self.kinds.add("CR")
            self.carry = ""
        return " and ".join(sorted(self.kinds)) if len(self.kinds) > 1 else ""


_QUOTED = re.compile(r'"[^"]*"')


class LongestLine:
    """The longest run of bytes without a line end (LF or CR) in a file fed chunk by chunk, as far as
    it matters: a line inside one chunk is shorter than the chunk (_CHUNK < MAX_LINE_BYTES), so only
    the runs across chunk ends are counted."""

    def __init__(self) -> None:
        self.run = 0
        self.longest = 0

    def feed(self, chunk: bytes) -> None:
        ends = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
        if not ends:
            self.run += len(chunk)
            self.longest = max(self.longest, self.run)
            return
        self.longest = max(self.longest, self.run + min(ends))
        self.run = len(chunk) - max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) - 1
        self.longest = max(self.longest, self.run)


def inspect_file(landing_file: LandingFile, encoding: str, storage: Storage | None = None) -> str:
    """Read the whole file once: its SHA-256, after checking that a text file is valid in its
    encoding everywhere (not only in the first bytes) and ends its lines one way, and that a
    Parquet file decodes. Raises LandingError naming the file and, for an encoding error, the byte
    offset of the first invalid byte."""
    storage = storage or Storage.for_location(landing_file.uri)
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict") if landing_file.format != "parquet" else None
    endings = LineEndings(quoted=landing_file.format == "csv")
    longest = LongestLine()
    offset = 0
    try:
        with storage.open_input(landing_file.uri) as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                if decoder is not None:
                    longest.feed(chunk)
                    try:
                        endings.feed(decoder.decode(chunk))
                    except UnicodeDecodeError as exc:
                        raise LandingError(
                            f"landing file {landing_file.relative_path} is not valid {encoding}: byte "
                            f"{offset + exc.start} ({chunk[exc.start:exc.start + 1].hex()}) cannot be decoded; "
                            f"convert it, or declare its encoding in settings ingest.encodings."
                            f"{landing_file.entity} (utf-8, latin-1, utf-16)"
                        ) from None
                offset += len(chunk)
            if decoder is not None:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    raise LandingError(f"landing file {landing_file.relative_path} is not valid {encoding}: it "
                                       "ends inside a multi-byte character") from None
                if longest.longest > MAX_LINE_BYTES:
                    raise LandingError(
                        f"landing file {landing_file.relative_path} has a line of {longest.longest:,} bytes, more "
                        f"than the {MAX_LINE_BYTES:,} a line may have; split the record, or land the data as "
                        "Parquet")
                mixed = endings.mixed()
                if mixed:
                    raise LandingError(
                        f"landing file {landing_file.relative_path} ends its lines in more than one way ({mixed}); "
                        "convert it to one (LF, CRLF or CR), e.g. with dos2unix: the readers split such a "
                        "file into the wrong records")
        if landing_file.format == "parquet" and landing_file.size:
            import pyarrow.parquet as pq

            with storage.open_input(landing_file.uri) as handle:
                for _ in pq.ParquetFile(handle).iter_batches(batch_size=65_536):
                    pass
    except (OSError, StorageError, pa.ArrowException) as exc:
        raise LandingError(f"landing file {landing_file.relative_path} cannot be read: "
                           f"{str(exc).splitlines()[0][:300]}") from None
    return digest.hexdigest()


def read_manifest(lake: Lake) -> dict[str, ManifestEntry]:
    ref = lake.current("bronze", MANIFEST_TABLE)
    if ref is None:
        return {}
    return {row["source_file"]: ManifestEntry(**row) for row in lake.read_arrow(ref).to_pylist()}


def write_manifest(lake: Lake, entries: Sequence[ManifestEntry]) -> str:
    """Write the manifest as an uncommitted version; returns its folder."""
    rows = [asdict(e) for e in sorted(entries, key=lambda e: e.source_file)]
    version = lake.new_version("bronze", MANIFEST_TABLE)
    lake.write_version(version, pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA))
    return version


def plan_ingest(files: Sequence[LandingFile], manifest: dict[str, ManifestEntry], *, full: bool,
                checksum: dict[str, str]) -> IngestPlan:
    """Which files to read. `checksum` has the SHA-256 of every file whose size or stamp differs
    from the manifest (same bytes re-delivered: nothing to read, the stamp is updated)."""
    read: list[LandingFile] = []
    unchanged: list[LandingFile] = []
    touched: dict[str, str] = {}
    for f in files:
        known = manifest.get(f.relative_path)
        if full or known is None:
            read.append(f)
        elif (known.size, known.modified) == (f.size, f.modified):
            unchanged.append(f)
        elif checksum.get(f.relative_path) == known.checksum and known.encoding == f.encoding:
            unchanged.append(f)
            touched[f.relative_path] = f.modified
        else:
            read.append(f)
    present = {f.relative_path for f in files}
    vanished = [] if full else [e for p, e in sorted(manifest.items()) if p not in present]
    return IngestPlan(read, unchanged, vanished, touched)


def bronze_select(raw: str, entity_name: str, columns: Sequence[str], loaded_at: datetime) -> str:
    """The bronze rows of a relation of landed text rows: contract columns in canonical order
    (absent ones null), the file's extra columns, the corrupt record text, lineage, the row hash."""
    contract = contract_columns(entity_name)
    present = set(columns)
    extras = extra_columns(entity_name, columns)
    filled = ", ".join([
        *[ident(c) if c in present else f"CAST(NULL AS VARCHAR) AS {ident(c)}" for c in contract],
        *[ident(c) for c in extras],
        ident(CORRUPT_COLUMN), "_source_file", "_load_date", "_file",
    ])
    loaded = loaded_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return (f"SELECT *, CAST({lit(loaded + '+00')} AS TIMESTAMPTZ) AS _loaded_at, "
            f"{row_hash(contract, extras, CORRUPT_COLUMN)} AS _row_hash FROM (SELECT {filled} FROM {raw}) AS filled")


def extra_columns(entity_name: str, columns: Sequence[str]) -> list[str]:
    """The landed columns outside the contract (kept in bronze, ignored after), sorted."""
    known = {*contract_columns(entity_name), CORRUPT_COLUMN, *PARTITION_BY, *BRONZE_LINEAGE}
    return sorted(c for c in columns if c not in known)


__all__ = [
    "BRONZE_LINEAGE", "CORRUPT_COLUMN", "LOG_LINE_COLUMN", "MANIFEST_TABLE", "PARTITION_BY", "BronzeResult",
    "IngestPlan", "ManifestEntry", "RawFile", "bronze_select", "extra_columns", "contract_columns", "csv_header",
    "file_id", "inspect_file", "plan_ingest", "read_manifest", "write_manifest", "col",
]


def _empty_bronze_schema(entity_name: str) -> pa.Schema:
    names = [*contract_columns(entity_name), CORRUPT_COLUMN, "_source_file"]
    return pa.schema([pa.field(n, pa.string()) for n in names]
                     + [pa.field("_loaded_at", pa.timestamp("us", tz="UTC")), pa.field("_row_hash", pa.string())]
                     + [pa.field(c, pa.string()) for c in PARTITION_BY])


def _suppressed_schema() -> pa.Schema:
    from rfmlake.ingest.suppression import SUPPRESSED_COLUMNS

    return pa.schema([pa.field(n, pa.timestamp("us", tz="UTC") if n == "_loaded_at" else pa.string())
                      for n in (*SUPPRESSED_COLUMNS, *PARTITION_BY)])


def _partition_rows(lake: Lake, version_dir: str, key: str) -> int:
    folder = Storage.join(version_dir, key)
    return lake.count_rows(folder) if lake.storage.is_dir(folder) else 0


def load_bronze(engine: Engine, ctx: RunContext, files: Sequence[LandingFile], *,
                full: bool = False) -> tuple[dict[str, BronzeResult], IngestPlan]:
    """Read the new and changed landing files into bronze (one partition per file), write the
    manifest, and commit all of it after everything is written, so a crash mid-stage leaves the
    previous bronze visible. Rows of customers on the erasure suppression list are left out
    (rfmlake.ingest.suppression)."""
    from dataclasses import replace

    from rfmlake.ingest.pii import resolve_pii_key
    from rfmlake.ingest.suppression import SUPPRESSED_TABLE, load_suppression, suppressed_condition

    unknown = sorted({f.entity for f in files} - set(ENTITIES))
    if unknown:
        raise LandingError(f"unknown entities {unknown}; known: {sorted(ENTITIES)}")
    lake = ctx.lake
    if not full and lake.current("bronze", MANIFEST_TABLE) is None and any(
            lake.current("bronze", name) is not None for name in ENTITIES):
        log.info("bronze predates the ingest manifest: reading every landing file (as --full)")
        full = True
    encodings = ctx.settings.ingest.encodings
    files = [replace(f, encoding=encodings.get(f.entity, "utf-8")) for f in files]
    manifest = {} if full else read_manifest(lake)
    storage = Storage.for_location(files[0].uri) if files else None
    checksum = {
        f.relative_path: inspect_file(f, f.encoding, storage) for f in files
        if full or f.relative_path not in manifest
        or (manifest[f.relative_path].size, manifest[f.relative_path].modified) != (f.size, f.modified)
    }
    plan = plan_ingest(files, manifest, full=full, checksum=checksum)
    suppression = load_suppression(lake)
    key = None if suppression.empty else resolve_pii_key(lake, ctx.settings)
    load_date = ctx.started_at.astimezone(UTC).date().isoformat()

    entries = dict(manifest)
    for path, stamp in plan.touched.items():
        entries[path] = replace(entries[path], modified=stamp)
    adds: dict[str, dict[str, str]] = {name: {} for name in (*ENTITIES, SUPPRESSED_TABLE)}
    suppressed_dir = lake.new_version("bronze", SUPPRESSED_TABLE)
    read_by_entity: dict[str, list[LandingFile]] = {}
    for f in plan.read:
        read_by_entity.setdefault(f.entity, []).append(f)
    suppressed_orders: str | None = None
    for entity_name in sorted(read_by_entity, key=lambda e: (e != "orders", e)):  # orders first: order_items need them
        entity_files = read_by_entity[entity_name]
        version_dir = lake.new_version("bronze", entity_name)
        readable = [RawFile(f, load_date, file_id(f.relative_path)) for f in entity_files if not f.is_empty]
        if readable:
            raw = f"raw_{entity_name}"
            engine.read_landing(raw, readable)
            if key is None:
                engine.write(bronze_select(raw, entity_name, engine.columns(raw), ctx.started_at), version_dir,
                             PARTITION_BY)
                rejected = engine.rejected(raw)
                if rejected is not None:
                    engine.write(bronze_select(rejected, entity_name, engine.columns(rejected), ctx.started_at),
                                 version_dir, PARTITION_BY)
            else:
                # Erased customers: classify every row first, then write the kept rows to bronze and
                # only the lineage of the others to bronze.suppressed_rows.
                staged = f"staged_{entity_name}"
                condition = suppressed_condition(entity_name, key, suppression, suppressed_orders)
                engine.create(staged, f"SELECT *, {condition} AS _suppressed FROM "
                                      f"({bronze_select(raw, entity_name, engine.columns(raw), ctx.started_at)}) AS b")
                rejected = engine.rejected(raw)
                if rejected is not None:
                    selected = bronze_select(rejected, entity_name, engine.columns(rejected), ctx.started_at)
                    engine.create(staged, f"SELECT * FROM {staged} UNION ALL BY NAME "
                                          f"SELECT *, {condition} AS _suppressed FROM ({selected}) AS r")
                kept = [c for c in engine.columns(staged) if c != "_suppressed"]
                engine.write(f"SELECT {', '.join(ident(c) for c in kept)} FROM {staged} WHERE NOT _suppressed",
                             version_dir, PARTITION_BY)
                engine.write(f"SELECT {lit(entity_name)} AS entity, _source_file, _row_hash, _loaded_at, "
                             f"_load_date, _file FROM {staged} WHERE _suppressed", suppressed_dir, PARTITION_BY)
                if entity_name == "orders":
                    suppressed_orders = "suppressed_order_ids"
                    engine.create(suppressed_orders, f"SELECT DISTINCT trim(order_id) AS order_id FROM {staged} "
                                                     "WHERE _suppressed AND trim(order_id) <> ''")
        for f in entity_files:
            file_key = file_id(f.relative_path)
            partition = partition_key({"_load_date": load_date, "_file": file_key})
            rows = _partition_rows(lake, version_dir, partition) if not f.is_empty else 0
            suppressed = _partition_rows(lake, suppressed_dir, partition) if key is not None else 0
            if rows:
                adds[entity_name][partition] = version_dir
            if suppressed:
                adds[SUPPRESSED_TABLE][partition] = suppressed_dir
            entries[f.relative_path] = ManifestEntry(
                entity=f.entity, source_file=f.relative_path, file_key=file_key, size=f.size, modified=f.modified,
                checksum=checksum[f.relative_path], encoding=f.encoding, ingest_id=f"{ctx.run_id}-{file_key}",
                load_date=load_date, loaded_at=ctx.started_at, run_id=ctx.run_id, rows=rows, suppressed=suppressed,
            )
    if full:
        entries = {path: e for path, e in entries.items() if path in {f.relative_path for f in files}}
    manifest_dir = write_manifest(lake, list(entries.values())) if full or entries != manifest else None

    # Everything is written; only now does it become visible, every table together. The manifest
    # decides what each table holds: any other partition (a superseded file's) is dropped.
    with lake.transaction():
        for name in (*sorted(ENTITIES), SUPPRESSED_TABLE):
            schema = _suppressed_schema() if name == SUPPRESSED_TABLE else _empty_bronze_schema(name)
            expected = {e.partition for e in entries.values()
                        if (e.suppressed if name == SUPPRESSED_TABLE else e.rows and e.entity == name)}
            current = None if full else lake.current("bronze", name)
            present = {p.key for p in current.partitions} if current is not None and current.is_partitioned else set()
            drop = present - expected - set(adds[name])
            if current is not None and not adds[name] and not drop:
                continue  # nothing new: the table keeps its version
            lake.commit_partitions("bronze", name, PARTITION_BY, add=adds[name], drop=drop, schema=schema,
                                   replace=full)
        if manifest_dir is not None:
            lake.commit("bronze", MANIFEST_TABLE, manifest_dir)

    results: dict[str, BronzeResult] = {}
    for entity_name in sorted(ENTITIES):
        mine = [e for e in entries.values() if e.entity == entity_name]
        results[entity_name] = BronzeResult(
            entity=entity_name, table=f"bronze.{entity_name}", files=len(mine), rows=sum(e.rows for e in mine),
            rows_by_file={e.source_file: e.rows for e in sorted(mine, key=lambda e: e.source_file)},
            suppressed=sum(e.suppressed for e in mine), files_read=len(read_by_entity.get(entity_name, [])),
        )
        if results[entity_name].files_read:
            log.info("bronze.%s: %d files read, %d rows in all", entity_name, results[entity_name].files_read,
                     results[entity_name].rows)
    if plan.vanished:
        log.warning("%d landing files ingested earlier are gone from the landing; their rows stay until a --full run",
                    len(plan.vanished))
    return results, plan
