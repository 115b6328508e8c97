"""Erasure: remove one customer from every table of every zone, purge the older versions that
still hold them, record an audit entry without PII, and add them to the suppression list.

A row belongs to the customer when its customer id column equals the id, when it is a line of one
of their orders, when a token column equals their email token, or when any text cell mentions the
id as a JSON value or the email address (raw landed rows in bronze and bronze.quarantine), when a
token of the id is stored (silver.access_logs.remote_user_token), or when an access-log line names
the id as its authenticated user. Beyond the tables, the profile store and the activation outbox
and sync state lose the customer too (rfmlake.governance.downstream).
"""

from __future__ import annotations

import getpass
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rfmlake.errors import RfmlakeError
from rfmlake.governance.downstream import check_no_sync_in_flight, erase_from_activation, erase_from_profile_store
from rfmlake.governance.tokens import customer_id_token, lake_key
from rfmlake.ingest.pii import tokenize
from rfmlake.ingest.suppression import SUPPRESSION_LIST, read_suppression_list
from rfmlake.lake.tables import Lake, TableRef
from rfmlake.profiles.indexer import embedded_store

CUSTOMER_ID_COLUMNS: tuple[str, ...] = ("customer_id", "customerid")
ORDER_ID_COLUMN = "order_id"
EMAIL_TOKEN_COLUMNS: tuple[str, ...] = ("email_token",)
CUSTOMER_TOKEN_COLUMNS: tuple[str, ...] = ("remote_user_token",)  # tokens of the customer id (kind "user")


def governance_dir(lake: Lake) -> Path:
    return lake.system_dir / "governance"


def suppression_path(lake: Lake) -> Path:
    return lake.system_dir.joinpath(*SUPPRESSION_LIST)


def audit_path(lake: Lake) -> Path:
    return governance_dir(lake) / "erasure_audit.jsonl"


@dataclass
class ErasureReport:
    customer_id_token: str
    email_given: bool
    erased_at: str
    actor: str
    rows_removed: dict[str, int] = field(default_factory=dict)  # zone.table -> rows
    # profile store and activation files (paths relative to the lake) -> rows
    downstream_removed: dict[str, int] = field(default_factory=dict)
    versions_purged: int = 0

    @property
    def total_rows(self) -> int:
        return sum(self.rows_removed.values())


def _suppression(lake: Lake) -> dict[str, list[str]]:
    return read_suppression_list(lake)


def suppressed_customer_tokens(lake: Lake) -> set[str]:
    return set(_suppression(lake)["customer_id_tokens"])


def suppressed_email_tokens(lake: Lake) -> set[str]:
    return set(_suppression(lake)["email_tokens"])


def _read(ref: TableRef) -> pa.Table:
    return pq.read_table(sorted(ref.path.glob("*.parquet")))


def _text_mentions(column: pa.ChunkedArray, patterns: list[str]) -> pa.ChunkedArray:
    mask = pc.is_in(column, value_set=pa.array([], type=pa.string()))  # all false
    for pattern in patterns:
        mask = pc.or_(mask, pc.fill_null(pc.match_substring_regex(column, pattern, ignore_case=True), False))
    return mask


def _rows_of_customer(table: pa.Table, customer_id: str, order_ids: set[str], email: str | None,
                      email_token: str | None, id_token: str | None = None) -> pa.ChunkedArray | pa.Array:
    mask = pa.array([False] * table.num_rows, type=pa.bool_())  # typed: an empty table has rows of no type
    names = {n.lower(): n for n in table.column_names}
    for name in CUSTOMER_ID_COLUMNS:
        if name in names:
            mask = pc.or_(mask, pc.fill_null(pc.equal(table[names[name]].cast(pa.string()), customer_id), False))
    if ORDER_ID_COLUMN in names and order_ids:
        mask = pc.or_(mask, pc.fill_null(pc.is_in(table[names[ORDER_ID_COLUMN]].cast(pa.string()),
                                                  value_set=pa.array(sorted(order_ids))), False))
    if id_token:
        for name in CUSTOMER_TOKEN_COLUMNS:
            if name in names:
                mask = pc.or_(mask, pc.fill_null(pc.equal(table[names[name]], id_token), False))
    if email_token:
        for name in EMAIL_TOKEN_COLUMNS:
            if name in names:
                mask = pc.or_(mask, pc.fill_null(pc.equal(table[names[name]], email_token), False))
    # Raw text (bronze rows as strings, quarantine raw/detail, corrupt records): a JSON value equal
    # to the id or one of their order ids, or the email address anywhere.
    patterns = [rf'"(customer_?id)"\s*:\s*"{re.escape(customer_id)}"',
                # an access-log line (Combined Log Format) of the customer as authenticated user
                rf'(^|"line"\s*:\s*")\S+ \S+ {re.escape(customer_id)} \[']
    if order_ids:
        patterns.append(rf'"order_id"\s*:\s*"({"|".join(re.escape(o) for o in sorted(order_ids))})"')
    if email:
        # the address as a whole, not inside a longer one (RE2 has no look-behind)
        patterns.append(rf"(^|[^A-Za-z0-9._%+-]){re.escape(email.strip())}($|[^A-Za-z0-9-])")
    for name in table.column_names:
        if pa.types.is_string(table.schema.field(name).type) and name.lower() not in CUSTOMER_ID_COLUMNS:
            mask = pc.or_(mask, _text_mentions(table[name], patterns))
    return mask


def _order_ids(lake: Lake, customer_id: str) -> set[str]:
    ids: set[str] = set()
    for ref in lake.tables():
        table = _read(ref)
        names = {n.lower(): n for n in table.column_names}
        if ORDER_ID_COLUMN in names and "customer_id" in names:
            mask = pc.fill_null(pc.equal(table[names["customer_id"]].cast(pa.string()), customer_id), False)
            ids |= {v for v in table.filter(mask)[names[ORDER_ID_COLUMN]].cast(pa.string()).to_pylist() if v}
    return ids


def _purge_old_versions(lake: Lake, ref: TableRef) -> int:
    """Delete every version but the current one: older versions still hold the erased rows."""
    purged = 0
    for version in (ref.path.parent).iterdir():
        if version.is_dir() and version.name != ref.path.name:
            shutil.rmtree(version)
            purged += 1
    return purged


def erase_customer(lake: Lake, customer_id: str, email: str | None = None, actor: str | None = None) -> ErasureReport:
    """Remove the customer from every zone, atomically per table; then audit and suppress."""
    customer_id = customer_id.strip()
    if not customer_id:
        raise RfmlakeError("--customer-id is empty")
    if not lake.is_local:
        raise RfmlakeError(
            f"rfmlake erase works on a local lake; the lake at {lake.location} is on S3. Erasing there "
            "(rewriting every table version, the profile store and the suppression list) is not supported yet."
        )
    if not lake.root.is_dir():
        raise RfmlakeError(f"no lake at {lake}")
    key = lake_key(lake)
    id_token = customer_id_token(customer_id, key)
    email_token = tokenize(email, key, "email") if email else None
    report = ErasureReport(customer_id_token=id_token, email_given=email is not None,
                           erased_at=datetime.now(UTC).isoformat(timespec="seconds"),
                           actor=actor or getpass.getuser())
    check_no_sync_in_flight(lake)  # before anything changes
    order_ids = _order_ids(lake, customer_id)
    for ref in lake.tables():
        table = _read(ref)
        mask = _rows_of_customer(table, customer_id, order_ids, email, email_token, id_token)
        removed = int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)
        if removed == 0:
            continue
        kept = table.filter(pc.invert(mask))
        new_ref = lake.write_arrow(ref.zone, ref.name, kept)
        report.rows_removed[ref.qualified_name] = removed
        report.versions_purged += _purge_old_versions(lake, new_ref)

    profiles = erase_from_profile_store(embedded_store(lake), customer_id, email_token)
    if profiles:
        report.downstream_removed["profile_store"] = profiles
    report.downstream_removed.update(erase_from_activation(lake, customer_id, email))

    suppression = _suppression(lake)
    if id_token not in suppression["customer_id_tokens"]:
        suppression["customer_id_tokens"].append(id_token)
    if email_token and email_token not in suppression["email_tokens"]:
        suppression["email_tokens"].append(email_token)
    governance_dir(lake).mkdir(parents=True, exist_ok=True)
    tmp = suppression_path(lake).with_suffix(".tmp")
    tmp.write_text(json.dumps(suppression, indent=1, sort_keys=True))
    tmp.replace(suppression_path(lake))
    with audit_path(lake).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(report), sort_keys=True) + "\n")
    return report
