"""Erasure: remove one person from every copy the lake holds, record an audit entry without PII,
and keep them out of later runs (the suppression list).

Under the lake's run lock (no pipeline run reads or writes meanwhile):
1. The suppression list gains the person's tokens: the customer id, the email given, and every
   email and phone any of their CRM records carried (so the same person under another customer
   id, in bronze or the quarantine, goes too), their order ids, and the devices (anonymous ids)
   the identity graph joined to them (their anonymous history goes too; a shared device is no
   one's member and stays).
2. Bronze: each landing file's partition holding their rows is rewritten without them, exactly as
   ingestion suppresses them (rfmlake.ingest.suppression: one rule); the rows' lineage goes to
   bronze.suppressed_rows and the manifest records the new partition.
3. Silver and the quarantine are merged again for those files (rfmlake.ingest.silver), so their
   rows leave silver and the quarantine keeps only lineage (reason erased_customer), and every
   file still reconciles.
4. Gold: rows with their customer id, their orders, their email token or their id's token go; so
   does their person (docs/identity.md): every row with their person id (the identity graph, its
   changes, the per-person marts and profile), the person-level rows keyed by the person's primary
   customer id, and the rows of their devices (anonymous ids) in every zone. The next run rebuilds
   the person's other customer ids, if any, as people of their own; the report names those ids.
5. Every older table version, the dbt working database (rebuilt by the next run), the inputs the
   recommendations stage keeps per person (docs/recommendations.md), the profile store, the
   activation exports and state, the journeys' state and outbox, and the run reports lose them too.
"""

from __future__ import annotations

import getpass
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rfmlake.errors import RfmlakeError
from rfmlake.governance.downstream import check_no_sync_in_flight, erase_from_activation, erase_from_profile_store
from rfmlake.governance.tokens import customer_id_token, lake_key
from rfmlake.ingest.pii import tokenize
from rfmlake.ingest.suppression import SUPPRESSION_LIST, read_suppression_list
from rfmlake.journeys.erasure import check_no_tick_in_flight, erase_from_journeys
from rfmlake.lake.locks import lake_lock
from rfmlake.lake.tables import Lake
from rfmlake.profiles.indexer import embedded_store
from rfmlake.profiles.store import ProfileStore
from rfmlake.settings import Settings

CUSTOMER_ID_COLUMNS: tuple[str, ...] = ("customer_id", "customerid")
ORDER_ID_COLUMN = "order_id"
EMAIL_TOKEN_COLUMNS: tuple[str, ...] = ("email_token",)
CUSTOMER_TOKEN_COLUMNS: tuple[str, ...] = ("remote_user_token",)  # tokens of the customer id (kind "user")
# Other columns holding a customer id: the identity tables and the per-person marts (docs/identity.md).
MEMBER_CUSTOMER_COLUMNS: tuple[str, ...] = ("customer_id_l", "customer_id_r", "order_customer_id",
                                            "primary_customer_id", "person_customer_id")
PERSON_COLUMNS: tuple[str, ...] = ("person_id", "other_person_id")
DEVICE_COLUMNS: tuple[str, ...] = ("anonymous_id",)
# Identity graph columns holding a member of any kind: a customer id, a device id or a log user's token.
MEMBER_COLUMNS: tuple[str, ...] = ("member_id", "linked_to_id")


def governance_dir(lake: Lake) -> Path:
    return lake.system_dir / "governance"


def suppression_path(lake: Lake) -> Path:
    return lake.system_dir.joinpath(*SUPPRESSION_LIST)


AUDIT_LOG: tuple[str, ...] = ("governance", "erasure_audit.jsonl")  # under _system/


def audit_path(lake: Lake) -> Path:
    return lake.system_dir.joinpath(*AUDIT_LOG)


@dataclass
class ErasureReport:
    customer_id_token: str
    email_given: bool
    erased_at: str
    actor: str
    rows_removed: dict[str, int] = field(default_factory=dict)  # zone.table -> rows fewer
    rows_added: dict[str, int] = field(default_factory=dict)  # lineage-only rows (erased_customer, suppressed_rows)
    phones_found: int = 0  # other contact details of the person found and suppressed
    emails_found: int = 0
    # other customer ids whose CRM records carried the person's email or phone: those records go,
    # their orders stay (a shared phone is not the same person); erase the id too if it is them
    other_customer_ids: list[str] = field(default_factory=list)
    # the identity graph's view of them (docs/identity.md): their person ids, how many devices went,
    # and the person's other customer ids (their gold rows went with the person; erase them too if
    # the match was right, else the next run rebuilds them as people of their own)
    person_ids: int = 0
    devices_found: int = 0
    person_customer_ids: list[str] = field(default_factory=list)
    # profile store and activation files (paths relative to the lake) -> rows
    downstream_removed: dict[str, int] = field(default_factory=dict)
    versions_purged: int = 0
    # a lake on S3: what went beyond the lake's current objects (rfmlake.governance.erasure_aws),
    # e.g. noncurrent object versions, Glue table versions, Athena results -> count
    aws_removed: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows_removed.values())


def _suppression(lake: Lake) -> dict[str, list[str]]:
    return read_suppression_list(lake)


def suppressed_customer_tokens(lake: Lake) -> set[str]:
    return set(_suppression(lake)["customer_id_tokens"])


def suppressed_email_tokens(lake: Lake) -> set[str]:
    return set(_suppression(lake)["email_tokens"])


@dataclass(frozen=True)
class _Person:
    customer_id: str
    id_token: str
    email: str | None
    email_tokens: frozenset[str]
    phone_tokens: frozenset[str]
    order_ids: frozenset[str]
    found: bool
    other_ids: frozenset[str] = frozenset()
    person_ids: frozenset[str] = frozenset()
    anonymous_ids: frozenset[str] = frozenset()
    primary_ids: frozenset[str] = frozenset()  # the person's primary customer ids (gold grain keys)
    person_customer_ids: frozenset[str] = frozenset()


def _find_in_graph(lake: Lake, customer_id: str) -> tuple[set[str], set[str], set[str], set[str]]:
    """(person ids, device ids, primary customer ids, other customer ids) of the customer id in
    gold.identity_graph (and the earlier version vacuum keeps): empty without a graph."""
    from rfmlake.lake.catalog import connect
    from rfmlake.lake.duck import fetch

    if lake.current("gold", "identity_graph") is None:
        return set(), set(), set(), set()
    con = connect(lake, zones=("gold",))
    try:
        rows = fetch(con, """
            SELECT person_id, member_kind, member_id, primary_customer_id FROM gold.identity_graph
            WHERE person_id IN (SELECT person_id FROM gold.identity_graph
                                WHERE member_kind = 'customer_id' AND member_id = ?)""", [customer_id]).fetchall()
    finally:
        con.close()
    people = {r[0] for r in rows}
    devices = {r[2] for r in rows if r[1] == "anonymous_id"}
    primaries = {r[3] for r in rows if r[3]}
    others = {r[2] for r in rows if r[1] == "customer_id" and r[2] != customer_id}
    return people, devices, primaries, others


def _find_person(lake: Lake, customer_id: str, email: str | None, key: bytes) -> _Person:
    """The person's contact tokens and orders, from every CRM record and order the lake holds."""
    from rfmlake.lake.catalog import connect
    from rfmlake.lake.duck import fetch

    emails: set[str] = {t for t in [tokenize(email, key, "email") if email else None] if t}
    phones: set[str] = set()
    orders: set[str] = set()
    found = False
    con = connect(lake, zones=("bronze", "silver"))

    def has(table: str, *names: str) -> bool:
        if table not in tables:
            return False
        present = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
        return set(names) <= present

    try:
        tables = {r[0] for r in fetch(con, "SELECT schema_name || '.' || view_name FROM duckdb_views()").fetchall()}
        if has("silver.customers", "customer_id", "email_token", "phone_token"):
            for email_token, phone_token in fetch(con,
                    "SELECT email_token, phone_token FROM silver.customers WHERE customer_id = ?",
                    [customer_id]).fetchall():
                found = True
                emails |= {email_token} - {None}
                phones |= {phone_token} - {None}
        if has("bronze.customers", "customer_id", "email", "phone"):
            for raw_email, raw_phone in fetch(con,
                    "SELECT email, phone FROM bronze.customers WHERE trim(customer_id) = ?", [customer_id]).fetchall():
                found = True
                emails |= {tokenize(raw_email, key, "email")} - {None}
                phones |= {tokenize(raw_phone, key, "phone")} - {None}
        for table, column in (("silver.orders", "customer_id"), ("bronze.orders", "trim(customer_id)")):
            if has(table, "customer_id", "order_id"):
                rows = fetch(con, f"SELECT DISTINCT trim(order_id) FROM {table} WHERE {column} = ?",
                                   [customer_id]).fetchall()
                orders |= {r[0] for r in rows if r[0]}
                found = found or bool(rows)
        others: set[str] = set()
        if has("silver.customers", "customer_id", "email_token", "phone_token") and (emails or phones):
            placeholders = ", ".join("?" for _ in [*emails, *phones])
            others = {r[0] for r in fetch(con,
                f"SELECT DISTINCT customer_id FROM silver.customers WHERE customer_id <> ? AND "
                f"(email_token IN ({placeholders}) OR phone_token IN ({placeholders}))",
                [customer_id, *emails, *phones, *emails, *phones]).fetchall()}
        if has("bronze.customers", "customer_id", "email", "phone"):
            for other_id, raw_email, raw_phone in fetch(con,
                    "SELECT DISTINCT trim(customer_id), email, phone FROM bronze.customers "
                    "WHERE trim(customer_id) <> ?", [customer_id]).fetchall():
                if (tokenize(raw_email, key, "email") in emails or tokenize(raw_phone, key, "phone") in phones) \
                        and other_id:
                    others.add(other_id)
    finally:
        con.close()
    people, devices, primaries, members = _find_in_graph(lake, customer_id)
    return _Person(customer_id, customer_id_token(customer_id, key), email, frozenset(emails), frozenset(phones),
                   frozenset(orders), found or bool(people), frozenset(others), frozenset(people),
                   frozenset(devices), frozenset(primaries), frozenset(members))


def _write_suppression(lake: Lake, person: _Person, key: bytes) -> None:
    suppression = _suppression(lake)

    def extend(name: str, tokens: set[str] | frozenset[str]) -> None:
        suppression[name] = sorted(set(suppression.get(name, [])) | set(tokens))

    extend("customer_id_tokens", {person.id_token})
    extend("email_tokens", person.email_tokens)
    extend("phone_tokens", person.phone_tokens)
    extend("order_id_tokens", {t for t in (tokenize(o, key, "user") for o in person.order_ids) if t})
    extend("device_tokens", {t for t in (tokenize(d, key, "user") for d in person.anonymous_ids) if t})
    governance_dir(lake).mkdir(parents=True, exist_ok=True)
    tmp = suppression_path(lake).with_suffix(".tmp")
    tmp.write_text(json.dumps(suppression, indent=1, sort_keys=True))
    tmp.replace(suppression_path(lake))


def _suppress_in_bronze(lake: Lake, key: bytes, run_id: str) -> set[str]:
    """Rewrite each bronze partition holding rows the suppression list now names (one rule with
    ingestion); their lineage joins bronze.suppressed_rows. Returns the landing files changed."""
    from dataclasses import replace

    from rfmlake.contract.entities import ENTITIES
    from rfmlake.ingest.bronze import MANIFEST_TABLE, PARTITION_BY, read_manifest, write_manifest
    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.ingest.sql import clean, col, ident
    from rfmlake.ingest.suppression import SUPPRESSED_TABLE, load_suppression, suppressed_condition

    manifest = read_manifest(lake)
    suppression = load_suppression(lake)
    engine = DuckEngine(temp_dir=lake.system_dir / "tmp" / run_id)
    changed: dict[str, tuple[int, int]] = {}
    try:
        engine.register_rows("files", {"source_file": "VARCHAR", "_load_date": "VARCHAR", "_file": "VARCHAR"},
                             [(m.source_file, m.load_date, m.file_key) for m in manifest.values()])
        suppressed_ref = lake.current("bronze", SUPPRESSED_TABLE)
        engine.scan("old_suppressed", suppressed_ref, ["entity", "_source_file", "_row_hash", "_loaded_at"],
                    exclude=PARTITION_BY)
        bronze_dir = {name: lake.new_version("bronze", name) for name in ENTITIES}
        engine.create("erased_orders", "SELECT CAST(NULL AS VARCHAR) AS order_id WHERE false")
        suppressed_dir = lake.new_version("bronze", SUPPRESSED_TABLE)
        adds: dict[str, dict[str, str]] = {name: {} for name in (*ENTITIES, SUPPRESSED_TABLE)}
        for entity_name in sorted(ENTITIES, key=lambda e: (e != "orders", e)):  # orders first: their lines follow
            ref = lake.current("bronze", entity_name)
            if ref is None or not ref.partitions:
                continue
            engine.scan(f"b_{entity_name}", ref, [f.name for f in lake.table_schema(ref)], exclude=PARTITION_BY)
            orders = "erased_orders" if entity_name == "order_items" else None
            condition = suppressed_condition(entity_name, key, suppression, orders)
            engine.create(f"flag_{entity_name}", f"SELECT *, {condition} AS _erase FROM b_{entity_name}")
            if entity_name == "orders":
                engine.create("erased_orders", f"SELECT DISTINCT {clean(col('order_id'))} AS order_id "
                                               "FROM flag_orders WHERE _erase")
            hits = engine.rows(f"SELECT _source_file, count(*) AS n FROM flag_{entity_name} WHERE _erase GROUP BY 1")
            if not hits:
                continue
            files = ", ".join(f"'{h['_source_file'].replace(chr(39), chr(39) * 2)}'" for h in hits)
            kept = ", ".join(f"b.{ident(c)}" for c in engine.columns(f"b_{entity_name}"))
            engine.write(f"SELECT {kept}, f._load_date, f._file FROM flag_{entity_name} b JOIN files f "
                         f"ON b._source_file = f.source_file WHERE b._source_file IN ({files}) AND NOT b._erase",
                         bronze_dir[entity_name], PARTITION_BY)
            lineage = (f"SELECT entity, _source_file, _row_hash, _loaded_at FROM old_suppressed WHERE _source_file "
                       f"IN ({files}) UNION ALL SELECT '{entity_name}', _source_file, _row_hash, _loaded_at "
                       f"FROM flag_{entity_name} WHERE _erase")
            engine.write(f"SELECT s.*, f._load_date, f._file FROM ({lineage}) s JOIN files f "
                         "ON s._source_file = f.source_file", suppressed_dir, PARTITION_BY)
            for hit in hits:
                entry = manifest[hit["_source_file"]]
                changed[entry.source_file] = (entry.rows - int(hit["n"]), entry.suppressed + int(hit["n"]))
                if entry.rows > int(hit["n"]):
                    adds[entity_name][entry.partition] = bronze_dir[entity_name]
                adds[SUPPRESSED_TABLE][entry.partition] = suppressed_dir
    finally:
        engine.close()
    if not changed:
        return set()
    entries = dict(manifest)
    for path, (rows, suppressed) in changed.items():
        entries[path] = replace(entries[path], rows=rows, suppressed=suppressed,
                                ingest_id=f"{run_id}-{entries[path].file_key}")
    manifest_dir = write_manifest(lake, list(entries.values()))
    for name, add in adds.items():
        ref = lake.current("bronze", name)
        mine = {manifest[p].partition for p in changed if name == SUPPRESSED_TABLE or manifest[p].entity == name}
        drop = ({p.key for p in ref.partitions} & mine) - set(add) if ref is not None else set()
        if add or drop:
            lake.commit_partitions("bronze", name, PARTITION_BY, add=add, drop=drop)
    lake.commit("bronze", MANIFEST_TABLE, manifest_dir)
    return set(changed)


def _person_predicate(columns: dict[str, str], person: _Person, zone: str = "") -> str | None:
    """SQL (DuckDB): true for a row of the person in a table with these columns (name -> type):
    their customer id, one of their orders, one of their email tokens or their id's token, their
    person id or one of their devices, in gold a row keyed by their person's primary customer id,
    or text that names them (a raw JSON record, a corrupt record, an access-log line, a quarantine
    detail)."""
    from rfmlake.ingest.sql import ident, lit, lit_list

    tests: list[str] = []
    # Gold tables per person are keyed by the person's primary customer id (docs/identity.md).
    keys = sorted({person.customer_id} | (set(person.primary_ids) if zone == "gold" else set()))
    members = sorted({person.customer_id, person.id_token} | set(person.anonymous_ids))
    for name, kind in columns.items():
        lowered, column = name.lower(), ident(name)
        if lowered in CUSTOMER_ID_COLUMNS:
            tests.append(f"trim(CAST({column} AS VARCHAR)) IN ({lit_list(keys)})")
        elif lowered in MEMBER_CUSTOMER_COLUMNS:
            tests.append(f"CAST({column} AS VARCHAR) IN ({lit_list(keys)})")
        elif lowered in PERSON_COLUMNS and person.person_ids:
            tests.append(f"CAST({column} AS VARCHAR) IN ({lit_list(sorted(person.person_ids))})")
        elif lowered in MEMBER_COLUMNS:
            tests.append(f"CAST({column} AS VARCHAR) IN ({lit_list(members)})")
        elif lowered in DEVICE_COLUMNS and person.anonymous_ids:
            tests.append(f"trim(CAST({column} AS VARCHAR)) IN ({lit_list(sorted(person.anonymous_ids))})")
        elif lowered == ORDER_ID_COLUMN and person.order_ids:
            tests.append(f"trim(CAST({column} AS VARCHAR)) IN ({lit_list(sorted(person.order_ids))})")
        elif lowered in CUSTOMER_TOKEN_COLUMNS:
            tests.append(f"{column} = {lit(person.id_token)}")
        elif lowered in EMAIL_TOKEN_COLUMNS and person.email_tokens:
            tests.append(f"{column} IN ({lit_list(sorted(person.email_tokens))})")
        elif kind == "VARCHAR":
            patterns = [rf'"(customer_?id)"\s*:\s*"{re.escape(person.customer_id)}"',
                        # an access-log line (Combined Log Format) of the customer as authenticated user
                        rf'(^|"line"\s*:\s*")\S+ \S+ {re.escape(person.customer_id)} \[',
                        # a quarantine detail naming the key
                        rf"(key |customer_id='){re.escape(person.customer_id)}([|)']|$)"]
            if person.order_ids:
                ids = "|".join(re.escape(o) for o in sorted(person.order_ids))
                patterns.append(rf'"order_id"\s*:\s*"({ids})"')
                patterns.append(rf"(key |order_id='|O)({ids})([|)']|$)")
            if person.email:
                # the address as a whole, not inside a longer one (RE2 has no look-behind)
                patterns.append(rf"(^|[^A-Za-z0-9._%+-]){re.escape(person.email.strip())}($|[^A-Za-z0-9-])")
            tests.extend(f"coalesce(regexp_matches({column}, {lit(p)}, 'i'), false)" for p in patterns)
    return " OR ".join(f"coalesce({t}, false)" for t in tests) if tests else None


def _sweep(lake: Lake, person: _Person, *, dry_run: bool = False) -> dict[str, int]:
    """Rows of the person in every table of every zone, rewritten without them unless `dry_run`
    (a partitioned table: only the partitions that hold them). Returns rows found per table."""
    import duckdb

    from rfmlake.lake.duck import fetch
    from rfmlake.lake.tables import parquet_scan

    found: dict[str, int] = {}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        for ref in lake.tables():
            scan = parquet_scan(ref)
            columns = {name: str(kind) for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
            predicate = _person_predicate({c: t for c, t in columns.items() if c not in ref.partition_by}, person,
                                          ref.zone)
            if predicate is None:
                continue
            n = con.execute(f"SELECT count(*) FROM {scan} WHERE {predicate}").fetchone()[0]  # type: ignore[index]
            if not n:
                continue
            found[ref.qualified_name] = int(n)
            if dry_run:
                continue
            keep = f"SELECT * FROM {scan} WHERE NOT ({predicate})"
            if not ref.is_partitioned:
                lake.write_arrow(ref.zone, ref.name, fetch(con, keep).fetch_arrow_table())
                continue
            by = ", ".join(f'"{c}"' for c in ref.partition_by)
            hit = fetch(con, f"SELECT DISTINCT {by} FROM {scan} WHERE {predicate}").fetchall()
            keys = {"/".join(f"{c}={v}" for c, v in zip(ref.partition_by, values, strict=True)) for values in hit}
            where = " OR ".join("(" + " AND ".join(f'CAST("{c}" AS VARCHAR) = \'{v}\''
                                               for c, v in zip(ref.partition_by, values, strict=True)) + ")"
                                for values in hit)
            rows = fetch(con, f"{keep} AND ({where})").fetch_arrow_table()
            lake.write_partitions(ref.zone, ref.name, ref.partition_by, rows, drop=keys)
    finally:
        con.close()
    return found


def _purge(lake: Lake) -> int:
    """Delete every table version but the current ones (older versions still hold the person), the
    dbt working database (a cache the next run rebuilds), the inputs the recommendations stage
    kept per person (the next run scores everyone with its stored fit) and the customer records the
    identity stage compared (the next run scores every pair)."""
    from rfmlake.identity import reuse
    from rfmlake.recommend.job import forget_person_inputs

    removed = len(lake.vacuum(keep=1, min_age_seconds=0.0)) + forget_person_inputs(lake) + reuse.forget(lake)
    dbt_dir = lake.system_dir / "dbt"
    for database in (*dbt_dir.glob("*.duckdb"), *dbt_dir.glob("*.duckdb.wal")):
        database.unlink()
        removed += 1
    shutil.rmtree(dbt_dir / "target", ignore_errors=True)
    return removed


def _redact_reports(lake: Lake, person: _Person) -> int:
    """Run reports (quality examples, summaries) that name the person: the value is replaced."""
    needles = [re.escape(person.customer_id)] + ([re.escape(person.email.strip())] if person.email else [])
    pattern = re.compile(rf"(?<![A-Za-z0-9._%+-])({'|'.join(needles)})(?![A-Za-z0-9-])", re.IGNORECASE)
    changed = 0
    for path in sorted(lake.runs_dir.rglob("*")) if lake.runs_dir.is_dir() else []:
        if not path.is_file() or path.suffix not in (".json", ".txt", ".log", ".html"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        redacted, n = pattern.subn("[erased]", text)
        if n:
            path.write_text(redacted, encoding="utf-8")
            changed += 1
    return changed


def _counts(lake: Lake) -> dict[str, int]:
    return {ref.qualified_name: lake.count_rows(ref) for ref in lake.tables()}


def erase_customer(lake: Lake, customer_id: str, email: str | None = None, actor: str | None = None, *,
                   allow_missing: bool = False, profile_store: ProfileStore | None = None,
                   athena_results: str | None = None, settings: Settings | None = None) -> ErasureReport:
    """Remove the person from every copy the lake holds, under the run lock; then audit. A lake on
    S3 (rfmlake.governance.erasure_aws) also loses them from the object versions its buckets keep,
    the Glue table versions, Athena's query results (`athena_results`) and `profile_store` (the
    OpenSearch profile store; locally the embedded store in the lake is always erased). `settings`
    say where the PII key comes from (on AWS: its Secrets Manager secret)."""
    customer_id = customer_id.strip()
    if not customer_id:
        raise RfmlakeError("--customer-id is empty")
    if not lake.is_local:
        from rfmlake.governance.erasure_aws import erase_on_s3

        return erase_on_s3(lake, customer_id, email, actor, allow_missing=allow_missing,
                           profile_store=profile_store, athena_results=athena_results, settings=settings)
    if not lake.root.is_dir():
        raise RfmlakeError(f"no lake at {lake}")
    with lake_lock(lake, RfmlakeError(f"a pipeline run is using the lake at {lake}; erase after it ends")):
        lake.recover()  # a killed run's half-applied commit is rolled back first
        report, email_token = erase_held(lake, customer_id, email, actor, allow_missing=allow_missing,
                                         settings=settings)
        if profile_store is not None:
            erase_from_external_store(report, profile_store, customer_id, email_token)
        append_audit(lake, report)
    return report


def erase_from_external_store(report: ErasureReport, store: ProfileStore, customer_id: str,
                              email_token: str | None) -> None:
    """The profile store the API serves from outside the lake (OpenSearch on AWS)."""
    removed = erase_from_profile_store(store, customer_id, email_token)
    if removed:
        report.downstream_removed["profile_store_opensearch"] = removed


def append_audit(lake: Lake, report: ErasureReport) -> None:
    """One JSON line per erasure (tokens and counts only), appended to the lake's audit log."""
    line = json.dumps(asdict(report), sort_keys=True) + "\n"
    old = lake.read_system(*AUDIT_LOG) or b""
    lake.write_system(old + line.encode("utf-8"), *AUDIT_LOG)


def erase_held(lake: Lake, customer_id: str, email: str | None, actor: str | None, *,
               allow_missing: bool, settings: Settings | None = None) -> tuple[ErasureReport, str | None]:
    """The erasure in a local lake whose run lock the caller holds (a lake on S3: its local working
    copy); the audit entry is the caller's to append. Returns the report and the email token that
    finds the person's profile."""
    from rfmlake.pipeline.context import RunContext, new_run_id

    settings = settings or Settings()
    key = lake_key(lake, settings)
    person = _find_person(lake, customer_id, email, key)
    already = person.id_token in _suppression(lake)["customer_id_tokens"]  # a repeat (or a resumed) erasure
    if not (person.found or already or allow_missing or _sweep(lake, person, dry_run=True)):
        raise RfmlakeError(
            f"customer id {customer_id!r} is in no table of the lake at {lake}; check the id "
            "(ids are case-sensitive), or pass --allow-missing to keep them out of later runs anyway"
        )
    check_no_sync_in_flight(lake)  # before anything changes
    check_no_tick_in_flight(lake)
    report = ErasureReport(customer_id_token=person.id_token, email_given=email is not None,
                           erased_at=datetime.now(UTC).isoformat(timespec="seconds"),
                           actor=actor or getpass.getuser(),
                           emails_found=len(person.email_tokens - {tokenize(email, key, "email")}),
                           phones_found=len(person.phone_tokens), other_customer_ids=sorted(person.other_ids),
                           person_ids=len(person.person_ids), devices_found=len(person.anonymous_ids),
                           person_customer_ids=sorted(person.person_customer_ids))
    before = _counts(lake)
    _write_suppression(lake, person, key)  # first: a crash part-way still keeps them out of later runs
    run_id = f"{new_run_id()}-erasure"
    from rfmlake.ingest.bronze import MANIFEST_TABLE

    # A lake built by ingestion: bronze and silver as ingestion would have made them without the
    # person (so every landing file still reconciles); then any copy left anywhere.
    changed = _suppress_in_bronze(lake, key, run_id) if lake.current("bronze", MANIFEST_TABLE) else set()
    if changed:
        from rfmlake.ingest.engine import DuckEngine
        from rfmlake.ingest.silver import conform_silver

        engine = DuckEngine(temp_dir=lake.system_dir / "tmp" / run_id)
        try:
            conform_silver(engine, RunContext(landing_dir=".", lake=lake, settings=settings, run_id=run_id))
        finally:
            engine.close()
    _sweep(lake, person)
    after = _counts(lake)
    report.rows_removed = {t: before[t] - after.get(t, 0) for t in before if before[t] > after.get(t, 0)}
    report.rows_added = {t: after[t] - before.get(t, 0) for t in after if after[t] > before.get(t, 0)}
    report.versions_purged = _purge(lake)

    store = embedded_store(lake)
    store.discard_unactivated()  # a generation a killed run loaded but never swapped in holds them too
    email_token = next(iter(sorted(person.email_tokens)), None)
    profiles = erase_from_profile_store(store, customer_id, email_token)
    if profiles:
        report.downstream_removed["profile_store"] = profiles
    report.downstream_removed.update(erase_from_activation(lake, customer_id, email))
    report.downstream_removed.update(erase_from_journeys(lake, customer_id))
    reports = _redact_reports(lake, person)
    if reports:
        report.downstream_removed["run_reports"] = reports
    return report, email_token
