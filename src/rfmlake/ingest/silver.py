"""Bronze -> silver, merged by business key: classify bronze rows, write silver tables, the
quarantine and the reconciliation, check rows in = accepted + quarantined per file, then commit.

Silver tables and the quarantine are partitioned like bronze, by the landing file a row came from
(docs/adr/0011). An incremental run recomputes only the keys its changes can affect: the keys of
rows in new or changed landing files, of rows their earlier versions produced, and of rows
quarantined as implausible_date (the window moves with the run date). Every row with such a key is
classified again from bronze with the same rules as a full run (latest version wins, conflicting
duplicates quarantined), so any sequence of incremental runs gives the lake one full run over the
same files gives. Only the partitions holding those keys are rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rfmlake.contract.currencies import ISO_4217_CODES
from rfmlake.contract.entities import ENTITIES, QuarantineReason
from rfmlake.errors import PipelineError
from rfmlake.ingest import access_logs, aws_guidance, conform
from rfmlake.ingest.bronze import MANIFEST_TABLE, PARTITION_BY, ManifestEntry, read_manifest
from rfmlake.ingest.conform import ConformRules, accepted, quarantined, slim
from rfmlake.ingest.engine import Engine
from rfmlake.ingest.pii import resolve_pii_key
from rfmlake.ingest.sql import clean, col, ident, lit
from rfmlake.lake.storage import Storage

if TYPE_CHECKING:
    from rfmlake.lake import Lake
    from rfmlake.lake.tables import TableRef
    from rfmlake.pipeline.context import RunContext

log = logging.getLogger(__name__)

SILVER_OUTPUTS: tuple[str, ...] = (
    "customers", "orders", "order_items", "products", "events", "access_logs", "currency_rates",
)
PARTITIONED: tuple[str, ...] = ("customers", "orders", "order_items", "products", "events", "access_logs",
                                "currency_rates")
RECONCILIATION_TABLE = "ingest_reconciliation"
QUARANTINE_TABLE = "quarantine"
STATE_FILE: tuple[str, ...] = ("ingest", "silver_state.json")  # under _system/
# The key each silver table is merged by (access logs have none: a changed file replaces its rows).
# A SQL expression over the table's columns (currency_rates: conform.currency_rate_key's text).
TABLE_KEY: dict[str, str | None] = {"customers": "customer_id", "orders": "order_id", "order_items": "order_id",
                                    "products": "product_id", "events": "event_id", "access_logs": None,
                                    "currency_rates": "(CAST(rate_date AS VARCHAR) || '|' || base_currency || '|' "
                                                      "|| currency)"}
# The key namespace of each entity's quarantine rows (`record_key`).
ENTITY_KEYS: dict[str, str | None] = {"customers": "customers", "orders": "orders", "order_items": "order_items",
                                      "products": "products", "events": "events", "aws_rfm_guidance": "guidance",
                                      "currency_rates": "currency_rates", "access_logs": None}
# Where an accepted landed row of each entity lands (derived rows, such as the orders the guidance
# file's lines make up, are not landed rows and do not count in the reconciliation).
PRIMARY: dict[str, tuple[str, ...]] = {"customers": ("customers",), "orders": ("orders",),
                                       "order_items": ("order_items",), "products": ("products",),
                                       "events": ("events",), "access_logs": ("access_logs",),
                                       "currency_rates": ("currency_rates",),
                                       "aws_rfm_guidance": ("order_items", "events")}
QUARANTINE_SCHEMA = pa.schema([
    ("entity", pa.string()), ("source_file", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("raw", pa.string()), ("record_key", pa.string()), ("_row_hash", pa.string()),
    ("_loaded_at", pa.timestamp("us", tz="UTC")), ("_load_date", pa.string()), ("_file", pa.string()),
])
RECONCILIATION_SCHEMA = pa.schema([
    ("entity", pa.string()), ("source_file", pa.string()), ("rows_in", pa.int64()), ("rows_accepted", pa.int64()),
    ("rows_quarantined", pa.int64()), ("file_key", pa.string()), ("ingest_id", pa.string()),
    ("_loaded_at", pa.timestamp("us", tz="UTC")),
])
_ARROW_TYPES = {"string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32(),
                "int": pa.int32(), "bigint": pa.int64(), "boolean": pa.bool_(), "double": pa.float64()}


@dataclass(frozen=True)
class ReconciliationRow:
    entity: str
    source_file: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_accepted + self.rows_quarantined


@dataclass
class SilverReport:
    reconciliation: list[ReconciliationRow] = field(default_factory=list)
    quarantine_counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (entity, reason) -> rows
    table_rows: dict[str, int] = field(default_factory=dict)  # silver table -> rows
    mode: str = "full"  # full | incremental | unchanged
    files_conformed: list[str] = field(default_factory=list)  # landing files (re)classified in this run
    keys_recomputed: dict[str, int] = field(default_factory=dict)
    plausible_until: str = ""  # timestamps from this date on were quarantined as implausible_date

    @property
    def rows_in(self) -> int:
        return sum(r.rows_in for r in self.reconciliation)

    @property
    def rows_quarantined(self) -> int:
        return sum(r.rows_quarantined for r in self.reconciliation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rows_in": self.rows_in,
            "rows_accepted": sum(r.rows_accepted for r in self.reconciliation),
            "rows_quarantined": self.rows_quarantined,
            "tables": dict(self.table_rows),
            "quarantine": {f"{e}/{r}": n for (e, r), n in sorted(self.quarantine_counts.items())},
            "files_conformed": len(self.files_conformed),
            "keys_recomputed": dict(sorted(self.keys_recomputed.items())),
            "plausible_until": self.plausible_until,
            "reconciliation": [r.__dict__ for r in self.reconciliation],
        }


def silver_schema(table: str) -> pa.Schema:
    from rfmlake.ingest.conform import silver_types

    def arrow(type_name: str) -> pa.DataType:
        if type_name.startswith("decimal"):
            precision, scale = type_name[8:-1].split(",")
            return pa.decimal128(int(precision), int(scale))
        return _ARROW_TYPES[type_name]

    fields = [pa.field(n, arrow(t)) for n, t in silver_types(table).items()]
    return pa.schema([*fields, *(pa.field(c, pa.string()) for c in PARTITION_BY)])


def conform_rules(ctx: RunContext) -> ConformRules:
    ingest = ctx.settings.ingest
    run_date = ctx.started_at.astimezone(UTC).date()
    return ConformRules(
        key=resolve_pii_key(ctx.lake, ctx.settings),
        default_currency=ctx.settings.default_currency,
        currencies=ISO_4217_CODES,
        earliest=ingest.earliest_date,
        latest=run_date + timedelta(days=ingest.max_days_ahead + 1),  # exclusive: the whole last day counts
    )


def _fingerprint(rules: ConformRules) -> str:
    # The window's end moves with the run date by design (implausible rows are revisited each
    # run); everything else changes what rows already conformed would become.
    stable = {k: v for k, v in rules.fingerprint().items() if k != "latest"}
    payload = json.dumps({"rules": stable, "version": TRANSFORM_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


TRANSFORM_VERSION = "2026-12-08.1"  # bump when a transform's result for existing rows changes


def _read_state(lake: Lake) -> dict[str, Any]:
    raw = lake.read_system(*STATE_FILE)
    return json.loads(raw) if raw else {}


def _write_state(lake: Lake, state: dict[str, Any]) -> None:
    lake.write_system(json.dumps(state).encode(), *STATE_FILE)


def partitions_written(lake: Lake, run_id: str) -> dict[str, list[str]] | None:
    """The `_file` keys of the partitions run `run_id` wrote per table ("silver.orders"), for
    checks that look only at what changed; None when that run rebuilt silver in full (or is not the
    last one that conformed it): then everything changed."""
    state = _read_state(lake)
    if state.get("run_id") != run_id or state.get("mode") not in ("incremental", "unchanged"):
        return None
    return {table: list(keys) for table, keys in state.get("written", {}).items()}


def _old_reconciliation(lake: Lake) -> dict[str, dict[str, Any]]:
    ref = lake.current("silver", RECONCILIATION_TABLE)
    if ref is None:
        return {}
    table = lake.read_arrow(ref)
    if "ingest_id" not in table.column_names:
        return {}  # a lake from before incremental ingestion: rebuilt in full
    return {row["source_file"]: row for row in table.to_pylist()}


def _partitioned(lake: Lake, zone: str, name: str) -> TableRef | None:
    ref = lake.current(zone, name)
    return ref if ref is not None and ref.is_partitioned else None


def _file_keys(ref: TableRef | None) -> dict[str, set[str]]:
    """`_file` value -> partition keys of a partitioned table's current partitions (one, unless a
    crashed run left another load date's)."""
    found: dict[str, set[str]] = {}
    for p in ref.partitions if ref is not None else ():
        found.setdefault(dict(p.values)["_file"], set()).add(p.key)
    return found


class _Merge:
    """One bronze -> silver run on an engine: the relations it registers and the SQL it runs."""

    def __init__(self, engine: Engine, ctx: RunContext, rules: ConformRules, manifest: dict[str, ManifestEntry],
                 changed: set[str], retracted: set[str], full: bool) -> None:
        self.engine, self.ctx, self.lake, self.rules = engine, ctx, ctx.lake, rules
        self.manifest, self.changed, self.retracted, self.full = manifest, changed, retracted, full
        self.revisit = False  # classify implausible_date rows again (the window moved)

    # -- inputs -----------------------------------------------------------------------------------
    def register_inputs(self) -> None:
        e, lake = self.engine, self.lake
        e.register_rows("files", {"source_file": "VARCHAR", "entity": "VARCHAR", "_load_date": "VARCHAR",
                                  "_file": "VARCHAR"},
                        [(m.source_file, m.entity, m.load_date, m.file_key) for m in self.manifest.values()])
        e.register_rows("changed_files", {"source_file": "VARCHAR"}, [(f,) for f in sorted(self.changed)])
        e.register_rows("retracted_files", {"source_file": "VARCHAR"}, [(f,) for f in sorted(self.retracted)])
        for name in ENTITIES:
            ref = lake.current("bronze", name)
            columns = [f.name for f in lake.table_schema(ref)] if ref is not None else []
            # Alias columns (Entity.aliases) are read whether or not a file has them (null if not),
            # so what a row becomes never depends on which other files are in bronze.
            columns += [a for a in ENTITIES[name].aliases if a not in columns]
            e.scan(f"bronze_{name}", ref, columns, exclude=PARTITION_BY)
        if self.full:
            return
        for table in PARTITIONED:
            ref = _partitioned(lake, "silver", table)
            e.scan(f"old_{table}", ref, [f.name for f in silver_schema(table)], exclude=PARTITION_BY)
        e.scan("old_quarantine", _partitioned(lake, "bronze", QUARANTINE_TABLE), QUARANTINE_SCHEMA.names,
               exclude=PARTITION_BY)

    # -- which keys to recompute ------------------------------------------------------------------
    def compute_keys(self) -> dict[str, int]:
        """Temp tables keys_<namespace>(k): every key whose rows must be classified again."""
        e = self.engine
        in_changed = "_source_file IN (SELECT source_file FROM changed_files)"
        retracted = "_source_file IN (SELECT source_file FROM retracted_files)"

        def changed_rows(entity_name: str) -> str:
            # Rows of new or changed files, and, when the plausible window has moved since the
            # last run (it ends at the run date), rows quarantined as implausible_date.
            if not self.revisit:
                return f"(SELECT * FROM bronze_{entity_name} WHERE {in_changed})"
            return (f"(SELECT * FROM bronze_{entity_name} WHERE {in_changed} OR (_source_file, _row_hash) IN "
                    f"(SELECT source_file, _row_hash FROM old_quarantine WHERE entity = {lit(entity_name)} "
                    f"AND reason = {lit(QuarantineReason.IMPLAUSIBLE_DATE.value)}))")

        def quarantined_keys(entity_name: str) -> str:
            return (f"SELECT record_key AS k FROM old_quarantine WHERE entity = {lit(entity_name)} AND "
                    f"source_file IN (SELECT source_file FROM retracted_files)")

        guidance = changed_rows("aws_rfm_guidance")
        order_of_guidance = aws_guidance.guidance_order_id(clean(col("customerid")), col("date"))
        sources: dict[str, list[str]] = {
            "customers": [f"SELECT {clean(col('customer_id'))} AS k FROM {changed_rows('customers')} AS c",
                          f"SELECT {clean(col('customerid'))} AS k FROM {guidance} AS g",
                          f"SELECT customer_id AS k FROM old_customers WHERE {retracted}",
                          quarantined_keys("customers")],
            "orders": [f"SELECT {clean(col('order_id'))} AS k FROM {changed_rows('orders')} AS o",
                       f"SELECT {order_of_guidance} AS k FROM {guidance} AS g",
                       f"SELECT order_id AS k FROM old_orders WHERE {retracted}",
                       quarantined_keys("orders")],
            "products": [f"SELECT {clean(col('product_id'))} AS k FROM {changed_rows('products')} AS p",
                         f"SELECT product_id AS k FROM old_products WHERE {retracted}",
                         quarantined_keys("products")],
            "events": [f"SELECT {conform.event_key()} AS k FROM {changed_rows('events')} AS ev",
                       f"SELECT _row_hash AS k FROM {guidance} AS g",
                       f"SELECT event_id AS k FROM old_events WHERE {retracted}",
                       quarantined_keys("events")],
            "currency_rates": [
                f"SELECT {conform.currency_rate_key(self._raw_columns('currency_rates'))} AS k "
                f"FROM {changed_rows('currency_rates')} AS r",
                f"SELECT {TABLE_KEY['currency_rates']} AS k FROM old_currency_rates WHERE {retracted}",
                quarantined_keys("currency_rates")],
            "guidance": [f"SELECT _row_hash AS k FROM {guidance} AS g",
                         quarantined_keys("aws_rfm_guidance"),
                         f"SELECT _row_hash AS k FROM old_order_items WHERE {retracted}",
                         f"SELECT _row_hash AS k FROM old_events WHERE {retracted}"],
        }
        for namespace, parts in sources.items():
            e.create(f"keys_{namespace}", f"SELECT DISTINCT k FROM ({' UNION ALL '.join(parts)}) AS u "
                                          "WHERE k IS NOT NULL")
        # Lines follow their order: a line's status depends on whether its order is accepted.
        e.create("keys_order_items", "SELECT DISTINCT k FROM ("
                 f"SELECT {clean(col('order_id'))} AS k FROM {changed_rows('order_items')} AS i UNION ALL "
                 f"SELECT k FROM keys_orders UNION ALL SELECT order_id AS k FROM old_order_items WHERE {retracted} "
                 f"UNION ALL {quarantined_keys('order_items')}) AS u WHERE k IS NOT NULL")
        counts = e.rows(" UNION ALL ".join(f"SELECT {lit(n)} AS n, count(*) AS c FROM keys_{n}" for n in
                                           ("customers", "orders", "order_items", "products", "events",
                                            "currency_rates", "guidance")))
        return {r["n"]: int(r["c"]) for r in counts}

    def _in(self, expr: str, namespace: str) -> str:
        return "true" if self.full else f"{expr} IN (SELECT k FROM keys_{namespace})"

    # -- classification ---------------------------------------------------------------------------
    def classify(self) -> None:
        e, rules = self.engine, self.rules
        in_changed = "true" if self.full else "_source_file IN (SELECT source_file FROM changed_files)"

        def candidates(entity_name: str, key_sql: str, namespace: str) -> str:
            if self.full:
                return f"bronze_{entity_name}"
            return f"(SELECT * FROM bronze_{entity_name} WHERE {self._in(key_sql, namespace)} OR {in_changed})"

        order_of_guidance = aws_guidance.guidance_order_id(clean(col("customerid")), col("date"))
        guidance_candidates = "bronze_aws_rfm_guidance" if self.full else (
            f"(SELECT * FROM bronze_aws_rfm_guidance WHERE {self._in(clean(col('customerid')), 'customers')} OR "
            f"{self._in(order_of_guidance, 'orders')} OR {self._in('_row_hash', 'events')} OR "
            f"{self._in('_row_hash', 'guidance')} OR {in_changed})")

        def classified(name: str, query: str) -> None:
            # Materialised slim: typed values, lineage, reason, raw JSON of quarantined rows only.
            e.create(f"cls_{name}", f"SELECT * FROM {slim(query, name, self._raw_columns(name))}")

        classified("customers", conform.classify_customers(candidates("customers", clean(col("customer_id")),
                                                                      "customers"), rules))
        classified("orders", conform.classify_orders(candidates("orders", clean(col("order_id")), "orders"), rules))
        classified("products", conform.classify_products(candidates("products", clean(col("product_id")), "products"),
                                                         rules))
        classified("events", conform.classify_events(candidates("events", conform.event_key(), "events"), rules))
        # The guidance file feeds four tables from its raw columns: they stay (it is small).
        guidance_keep = [*self._raw_columns("aws_rfm_guidance"),
            "_event_name", "_purchased", "_ts", conform.V + "customer_id", conform.V + "product_id",
            conform.V + "quantity", conform.V + "unit_price"]
        e.create("cls_guidance", f"SELECT * FROM {slim(aws_guidance.classify_guidance(guidance_candidates, rules), None, self._raw_columns('aws_rfm_guidance'), guidance_keep)}")  # noqa: E501
        rate_columns = self._raw_columns("currency_rates")
        classified("currency_rates", conform.classify_currency_rates(
            candidates("currency_rates", conform.currency_rate_key(rate_columns), "currency_rates"), rules,
            rate_columns))
        # Access-log lines have no key: a changed file (or one with implausible lines to revisit)
        # is classified whole.
        access = "bronze_access_logs" if self.full else f"(SELECT * FROM bronze_access_logs WHERE {in_changed})"
        classified("access_logs", access_logs.classify_access_logs(access, rules))

        e.create("guidance_items", f"SELECT * FROM {aws_guidance.guidance_order_items('cls_guidance')} AS g")
        e.create("orders_out", f"SELECT * FROM ({accepted('cls_orders', 'orders')} UNION ALL SELECT * FROM "
                               f"{aws_guidance.guidance_orders('guidance_items', rules.default_currency)} AS go) AS o "
                               f"WHERE {self._in('order_id', 'orders')}")
        # Whether an order line's order is accepted: this run's orders for recomputed order ids,
        # silver's for the rest.
        accepted_ids = "(SELECT order_id FROM orders_out)" if self.full else (
            "(SELECT order_id FROM orders_out UNION ALL SELECT order_id FROM old_orders "
            "WHERE order_id NOT IN (SELECT k FROM keys_orders))")
        items = candidates("order_items", clean(col("order_id")), "order_items")
        classified("order_items", conform.classify_order_items(items, accepted_ids))
        crm = f"(SELECT customer_id FROM ({accepted('cls_customers', 'customers')}) AS crm)"
        outputs = {
            "customers": (f"SELECT * FROM ({accepted('cls_customers', 'customers')} UNION ALL SELECT * FROM "
                          f"{aws_guidance.guidance_customers('cls_guidance', rules.key, crm)} AS gc) AS c "
                          f"WHERE {self._in('customer_id', 'customers')}"),
            "orders": "SELECT * FROM orders_out",
            "order_items": (f"SELECT * FROM ({accepted('cls_order_items', 'order_items')} UNION ALL SELECT "
                            f"{', '.join(ident(c) for c in conform.silver_columns('order_items'))} FROM guidance_items)"
                            f" AS i WHERE {self._in('order_id', 'order_items')}"),
            "products": accepted("cls_products", "products"),
            "events": (f"SELECT * FROM ({accepted('cls_events', 'events')} UNION ALL SELECT * FROM "
                       f"{aws_guidance.guidance_events('cls_guidance')} AS ge) AS ev "
                       f"WHERE {self._in('event_id', 'events')}"),
            "access_logs": accepted("cls_access_logs", "access_logs"),
            "currency_rates": accepted("cls_currency_rates", "currency_rates"),
        }
        for table, query in outputs.items():
            e.view(f"new_{table}", query)

        def quarantine(entity_name: str, relation: str) -> str:
            namespace = ENTITY_KEYS[entity_name]
            rows = quarantined(relation, entity_name)
            if self.full or namespace is None:
                return rows
            return (f"SELECT * FROM ({rows}) AS q WHERE record_key IS NULL OR "
                    f"{self._in('record_key', namespace)}")

        parts = [quarantine(name, f"cls_{name}") for name in
                 ("customers", "orders", "order_items", "products", "events", "access_logs", "currency_rates")]
        parts.append(quarantine("aws_rfm_guidance", "cls_guidance"))
        suppressed = self.lake.current("bronze", "suppressed_rows")
        e.scan("suppressed", suppressed, ["entity", "_source_file", "_row_hash", "_loaded_at"], exclude=PARTITION_BY)
        parts.append(
            f"SELECT entity, _source_file AS source_file, {lit(QuarantineReason.ERASED_CUSTOMER.value)} AS reason, "
            "CAST(NULL AS VARCHAR) AS detail, CAST(NULL AS VARCHAR) AS raw, CAST(NULL AS VARCHAR) AS record_key, "
            f"_row_hash, CAST(_loaded_at AS TIMESTAMPTZ) AS _loaded_at FROM suppressed WHERE {in_changed}"
        )
        e.view("new_quarantine", " UNION ALL ".join(f"SELECT * FROM ({p}) AS q{i}" for i, p in enumerate(parts)))

    def _raw_columns(self, entity_name: str) -> list[str]:
        return [c for c in self.engine.columns(f"bronze_{entity_name}")
                if c not in ("_source_file", "_loaded_at", "_row_hash", *PARTITION_BY)]

    # -- writes -----------------------------------------------------------------------------------
    def write_table(self, zone: str, table: str, source_column: str, key: str | None,
                    namespace: str | None) -> tuple[str, dict[str, str], set[str]]:
        """Write the partitions this run changes; returns (version folder, partitions added, file
        keys whose partition is replaced or dropped)."""
        e = self.engine
        new = f"new_{table}"
        version_dir = self.lake.new_version(zone, table)
        with_partitions = (f"SELECT n.*, f._load_date, f._file FROM {{rows}} AS n "
                           f"JOIN files AS f ON n.{source_column} = f.source_file")
        if self.full:
            e.write(with_partitions.format(rows=new), version_dir, PARTITION_BY)
            touched: set[str] = set()
        else:
            old = f"old_{table}"
            if key is None:  # access logs: whole files
                stale = "false"
            elif table == QUARANTINE_TABLE:
                stale = "(" + " OR ".join(
                    f"(entity = {lit(entity_name)} AND record_key IN (SELECT k FROM keys_{ns}))"
                    for entity_name, ns in ENTITY_KEYS.items() if ns is not None) + ")"
            else:
                stale = f"{key} IN (SELECT k FROM keys_{namespace})"
            # Files whose partition changes: those of new rows, of rows being replaced, retracted ones.
            e.create(f"touched_{table}", f"SELECT DISTINCT {source_column} AS source_file FROM {new} UNION "
                     f"SELECT DISTINCT {source_column} FROM {old} WHERE {stale} UNION "
                     "SELECT source_file FROM retracted_files")
            kept = (f"SELECT * FROM {old} WHERE {source_column} IN (SELECT source_file FROM touched_{table}) "
                    f"AND {source_column} NOT IN (SELECT source_file FROM retracted_files) "
                    f"AND NOT coalesce({stale}, false)")
            e.write(with_partitions.format(rows=f"(SELECT * FROM {new} UNION ALL {kept})"), version_dir, PARTITION_BY)
            touched = {r["source_file"] for r in e.rows(f"SELECT source_file FROM touched_{table}")}
        written = _written_partitions(self.lake, version_dir)
        replaced = {m.file_key for f, m in self.manifest.items() if f in touched}
        replaced |= {_file_of(f) for f in self.retracted}
        return version_dir, written, replaced


def _file_of(source_file: str) -> str:
    from rfmlake.ingest.sql import file_id

    return file_id(source_file)


def _written_partitions(lake: Lake, version_dir: str) -> dict[str, str]:
    """Partition key -> version folder of every partition a write produced."""
    found: dict[str, str] = {}
    for load_date, is_dir in lake.storage.children(version_dir):
        if not is_dir or not load_date.startswith("_load_date="):
            continue
        for file_part, is_file_dir in lake.storage.children(Storage.join(version_dir, load_date)):
            if is_file_dir and file_part.startswith("_file="):
                found[f"{load_date}/{file_part}"] = version_dir
    return found


def _commit_plan(lake: Lake, zone: str, table: str, written: dict[str, str], replaced: set[str],
                 full: bool) -> tuple[dict[str, str], set[str]]:
    current = None if full else _partitioned(lake, zone, table)
    by_file = _file_keys(current)
    drop = {key for f in replaced for key in by_file.get(f, ())}
    return written, drop - set(written)


def _partition_counts(lake: Lake, ref_partitions: dict[str, str], files: set[str]) -> dict[str, int]:
    """Rows per file key among `files`, from the Parquet footers of each partition's folder."""
    counts: dict[str, int] = {}
    for key, uri in ref_partitions.items():
        file_key = key.rsplit("_file=", 1)[1]
        if file_key in files:
            counts[file_key] = counts.get(file_key, 0) + lake.count_rows(uri)
    return counts


def conform_silver(engine: Engine, ctx: RunContext, *, full: bool = False) -> SilverReport:
    """Bronze -> silver for every entity, incrementally unless `full` (or the rules changed, or the
    lake predates incremental ingestion). Writes silver.<table>, silver.ingest_reconciliation and
    bronze.quarantine (raw values are PII, so it stays in bronze), committed only after all are
    written and every file reconciles."""
    lake = ctx.lake
    rules = conform_rules(ctx)
    fingerprint = _fingerprint(rules)
    manifest = read_manifest(lake)
    if lake.current("bronze", MANIFEST_TABLE) is None:
        raise PipelineError(f"bronze has not been loaded in the lake at {lake}; run the ingest_bronze stage first")
    old_recon = _old_reconciliation(lake)
    state = _read_state(lake)
    reasons = []
    if full:
        reasons.append("--full")
    elif state.get("fingerprint") != fingerprint:
        reasons.append("the lake was built with other rules" if state else "first run")
    elif not old_recon or any(_partitioned(lake, z, t) is None for z, t in
                              [("bronze", QUARANTINE_TABLE), *[("silver", t) for t in PARTITIONED]]):
        reasons.append("the silver tables predate incremental ingestion")
    full = bool(reasons)
    if full:
        changed = set(manifest)
        retracted = set(old_recon) - set(manifest)
    else:
        changed = {f for f, m in manifest.items() if old_recon.get(f, {}).get("ingest_id") != m.ingest_id}
        retracted = (changed & set(old_recon)) | (set(old_recon) - set(manifest))
    report = SilverReport(mode="full" if full else "incremental", files_conformed=sorted(changed),
                          plausible_until=rules.latest.isoformat())
    if full:
        log.info("silver: full rebuild (%s)", ", ".join(reasons))

    merge = _Merge(engine, ctx, rules, manifest, changed, retracted, full)
    merge.register_inputs()
    if not full:
        # Rows outside the plausible window are classified again once the window has moved.
        merge.revisit = state.get("plausible_until") != rules.latest.isoformat()
        implausible = [] if not merge.revisit else engine.rows(
            f"SELECT entity, source_file, count(*) AS n FROM old_quarantine WHERE reason = "
            f"{lit(QuarantineReason.IMPLAUSIBLE_DATE.value)} GROUP BY 1, 2")
        # Access-log lines have no key: their files are classified again whole.
        revisit = {r["source_file"] for r in implausible if r["entity"] == "access_logs"} & set(manifest)
        if revisit - changed:
            merge.changed = changed = changed | revisit
            merge.retracted = retracted = retracted | revisit
            engine.register_rows("changed_files", {"source_file": "VARCHAR"}, [(f,) for f in sorted(changed)])
            engine.register_rows("retracted_files", {"source_file": "VARCHAR"}, [(f,) for f in sorted(retracted)])
            report.files_conformed = sorted(changed)
        if not changed and not retracted and not implausible:
            report.mode = "unchanged"
            _write_state(lake, {**state, "run_id": ctx.run_id, "mode": "unchanged", "written": {}})
            return _finish_report(engine, lake, report, old_recon_rows(old_recon))
        report.keys_recomputed = merge.compute_keys()
    merge.classify()

    writes: dict[tuple[str, str], tuple[str, dict[str, str], set[str]]] = {}
    for table in PARTITIONED:
        key = TABLE_KEY[table]
        writes[("silver", table)] = merge.write_table("silver", table, "_source_file", key,
                                                      table if key else None)
    writes[("bronze", QUARANTINE_TABLE)] = merge.write_table("bronze", QUARANTINE_TABLE, "source_file", "record_key",
                                                             None)

    # The final partition map of each table, to count rows per file before anything is committed.
    final: dict[tuple[str, str], dict[str, str]] = {}
    plans: dict[tuple[str, str], tuple[dict[str, str], set[str]]] = {}
    touched_files: set[str] = {_file_of(f) for f in changed | retracted}
    for (zone, table), (_, written, replaced) in writes.items():
        add, drop = _commit_plan(lake, zone, table, written, replaced, full)
        plans[(zone, table)] = (add, drop)
        current = None if full else _partitioned(lake, zone, table)
        partitions = {p.key: p.uri for p in current.partitions} if current is not None else {}
        for key in drop:
            partitions.pop(key, None)
        partitions.update({key: Storage.join(uri, key) for key, uri in add.items()})
        final[(zone, table)] = partitions
        touched_files |= {k.rsplit("_file=", 1)[1] for k in (*add, *drop)}

    recon = _reconcile(lake, manifest, old_recon, final, touched_files)
    unbalanced = [r for r in recon if not r.balanced]
    if unbalanced:
        lines = "; ".join(
            f"{r.entity} {r.source_file}: in={r.rows_in} accepted={r.rows_accepted} quarantined={r.rows_quarantined}"
            for r in unbalanced
        )
        raise PipelineError(f"ingest reconciliation failed (rows in != accepted + quarantined): {lines}")

    # All tables are written and reconcile; only now do they become visible, all together.
    recon_rows = [
        {"entity": r.entity, "source_file": r.source_file, "rows_in": r.rows_in, "rows_accepted": r.rows_accepted,
         "rows_quarantined": r.rows_quarantined, "file_key": manifest[r.source_file].file_key,
         "ingest_id": manifest[r.source_file].ingest_id,
         "_loaded_at": old_recon.get(r.source_file, {}).get("_loaded_at") if r.source_file not in changed
         and r.source_file in old_recon else ctx.started_at}
        for r in recon
    ]
    with lake.transaction():
        for (zone, table), (add, drop) in plans.items():
            schema = QUARANTINE_SCHEMA if table == QUARANTINE_TABLE else silver_schema(table)
            lake.commit_partitions(zone, table, PARTITION_BY, add=add, drop=drop, schema=schema, replace=full)
        lake.write_arrow("silver", RECONCILIATION_TABLE,
                         pa.Table.from_pylist(recon_rows, schema=RECONCILIATION_SCHEMA))
    written = {f"{zone}.{table}": sorted({key.rsplit("_file=", 1)[1] for key in add})
               for (zone, table), (add, _) in plans.items()}
    _write_state(lake, {"fingerprint": fingerprint, "run_id": ctx.run_id, "plausible_until": rules.latest.isoformat(),
                        "mode": report.mode, "written": written})
    report.reconciliation = recon
    return _finish_report(engine, lake, report, recon)


def old_recon_rows(old_recon: dict[str, dict[str, Any]]) -> list[ReconciliationRow]:
    return [ReconciliationRow(r["entity"], r["source_file"], int(r["rows_in"]), int(r["rows_accepted"]),
                              int(r["rows_quarantined"])) for _, r in sorted(old_recon.items())]


def _reconcile(lake: Lake, manifest: dict[str, ManifestEntry], old_recon: dict[str, dict[str, Any]],
               final: dict[tuple[str, str], dict[str, str]], touched: set[str]) -> list[ReconciliationRow]:
    """One row per landed file (empty files included): rows in (bronze rows + rows of erased
    customers) = accepted (rows in the silver tables the entity's rows land in) + quarantined,
    recounted from Parquet footers for the files this run touched, kept for the others."""
    counts = {key: _partition_counts(lake, partitions, touched) for key, partitions in final.items()}
    rows: list[ReconciliationRow] = []
    for path, entry in sorted(manifest.items()):
        old = old_recon.get(path)
        if entry.file_key not in touched and old is not None and old.get("ingest_id") == entry.ingest_id:
            rows.append(ReconciliationRow(entry.entity, path, int(old["rows_in"]), int(old["rows_accepted"]),
                                          int(old["rows_quarantined"])))
            continue
        accepted_rows = sum(counts[("silver", t)].get(entry.file_key, 0) for t in PRIMARY[entry.entity])
        quarantined_rows = counts[("bronze", QUARANTINE_TABLE)].get(entry.file_key, 0)
        rows.append(ReconciliationRow(entry.entity, path, entry.rows + entry.suppressed, accepted_rows,
                                      quarantined_rows))
    return rows


def _finish_report(engine: Engine, lake: Lake, report: SilverReport,
                   recon: list[ReconciliationRow]) -> SilverReport:
    report.reconciliation = recon
    for table in SILVER_OUTPUTS:
        ref = lake.current("silver", table)
        report.table_rows[table] = lake.count_rows(ref) if ref is not None else 0
    engine.scan("final_quarantine", lake.current("bronze", QUARANTINE_TABLE), ["entity", "reason"])
    for row in engine.rows("SELECT entity, reason, count(*) AS n FROM final_quarantine GROUP BY 1, 2"):
        report.quarantine_counts[(row["entity"], row["reason"])] = int(row["n"])
    log.info("silver (%s): %s rows in, %s quarantined", report.mode, report.rows_in, report.rows_quarantined)
    return report


__all__ = ["QUARANTINE_TABLE", "RECONCILIATION_TABLE", "SILVER_OUTPUTS", "ReconciliationRow", "SilverReport",
           "conform_silver", "silver_schema"]
