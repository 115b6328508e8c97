"""The sync engine: incremental, idempotent and resumable delivery of segment membership.

State per destination lives in `<lake>/_system/activation/<destination>/`:
  state.json               the last successful sync: gold version, sync id, snapshot file
  snapshot-<sync>.parquet  what the destination holds after it: customer_id, segment, fingerprint
  inflight/                a sync under way: meta.json, plan.parquet, journal.jsonl (one line per batch)
  dead_letter.jsonl        records that failed for good, with the reason (never an address)

A sync is keyed on the gold.customer_rfm version id: a second trigger for the same version finds it
in state.json and sends nothing. A crash leaves `inflight/`; the next run for the same version
continues after the last journaled batch. A run for a newer version first folds the batches the
crashed sync delivered into the snapshot (a destination that publishes at close, the file export,
publishes them first), so nothing is lost or sent twice. A crash between a
delivered batch and its journal line replays that one batch, which destinations absorb (every
operation is an upsert or carries a deterministic id).

Nothing here holds every member in Python: the audience streams through rfmlake.activation.audience
into a Parquet file of fingerprints, DuckDB computes the plan and the next snapshot from Parquet
files, and batches are sent from one streamed query (docs/adr/0015-gold-stages-bounded-memory.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from rfmlake.activation.audience import (
    FINGERPRINT_SCHEMA,
    SavedAudience,
    accepted_addresses_sql,
    audience_sql,
    connect,
    gold_ref,
    member_from_row,
    normalize_email,
    normalize_phone,
    rows,
    write_fingerprints,
)
from rfmlake.activation.destinations.base import Destination, SyncSession
from rfmlake.activation.errors import ActivationError, PermanentError, RetryableError
from rfmlake.activation.model import Change, RecordFailure, SyncReport
from rfmlake.activation.retry import RetryPolicy
from rfmlake.lake import Lake
from rfmlake.lake.duck import fetch
from rfmlake.lake.locks import exclusive_lock

SKIP_NO_LONGER_ELIGIBLE = "no_longer_eligible"
_SNAPSHOT_SCHEMA = FINGERPRINT_SCHEMA  # customer_id, segment, fingerprint


def state_dir(lake: Lake, destination: str) -> Path:
    return lake.system_dir / "activation" / destination


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _quote(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _copy_atomic(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> None:
    """DuckDB writes the query's rows to a Parquet file, renamed into place once complete."""
    tmp = path.with_name(f".{path.name}.tmp")
    con.execute(f"COPY ({sql}) TO {_quote(tmp)} (FORMAT parquet)")
    os.replace(tmp, path)


def _exclusive(directory: Path) -> contextlib.AbstractContextManager[None]:
    return exclusive_lock(directory / ".lock",
                          ActivationError(f"a sync of destination {directory.name!r} is already running"))


def _ids_table(ids: Sequence[str]) -> pa.Table:
    return pa.table({"customer_id": pa.array(sorted(set(ids)), pa.string())})


class _Store:
    """The files of one destination's state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inflight = root / "inflight"

    def state(self) -> dict[str, Any]:
        path = self.root / "state.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def snapshot_sql(self) -> str:
        """The destination's holdings after the last sync, as a DuckDB table expression."""
        name = self.state().get("snapshot")
        if not name:
            columns = ", ".join(f"CAST(NULL AS VARCHAR) AS {f.name}" for f in _SNAPSHOT_SCHEMA)
            return f"(SELECT {columns} WHERE false)"
        return f"read_parquet({_quote(self.root / name)})"

    def plan_sql(self) -> str:
        # file_row_number is the plan position: batch i holds rows [i * batch_size, (i + 1) * batch_size).
        return f"read_parquet({_quote(self.inflight / 'plan.parquet')}, file_row_number = true)"

    def journal(self) -> list[dict[str, Any]]:
        path = self.inflight / "journal.jsonl"
        if not path.is_file():
            return []
        entries = []
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from a crash mid-write: that batch is replayed
        return entries

    def append_journal(self, entry: dict[str, Any]) -> None:
        with open(self.inflight / "journal.jsonl", "a") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def commit(self, con: duckdb.DuckDBPyConnection, sync_id: str, gold_version: str, snapshot_sql: str,
               dead: list[dict[str, Any]]) -> None:
        name = f"snapshot-{sync_id}.parquet"
        _copy_atomic(con, f"SELECT customer_id, segment, fingerprint FROM {snapshot_sql} ORDER BY customer_id",
                     self.root / name)
        if dead:
            with open(self.root / "dead_letter.jsonl", "a") as fh:
                fh.writelines(json.dumps(d, sort_keys=True) + "\n" for d in dead)
        old = self.state().get("snapshot")
        _write_atomic(self.root / "state.json", json.dumps({
            "gold_version": gold_version, "sync_id": sync_id, "snapshot": name, "synced_at": time.time(),
        }, indent=2).encode())
        shutil.rmtree(self.inflight, ignore_errors=True)
        if old and old != name:
            (self.root / old).unlink(missing_ok=True)


def plan_sql(audience: str, snapshot: str, *, full: bool) -> str:
    """The changes that bring a destination from `snapshot` to `audience` (both DuckDB table
    expressions of customer_id, segment, fingerprint): exits first, then entries (a move between
    segments is an entry with its previous segment), then changes of what a member carries."""
    changed = "'entered'" if full else "CASE WHEN s.fingerprint <> a.fingerprint THEN 'changed' END"
    return f"""
        SELECT kind, customer_id, segment, previous_segment, fingerprint FROM (
            SELECT CASE WHEN s.customer_id IS NULL OR s.segment <> a.segment THEN 'entered' ELSE {changed} END AS kind,
                   a.customer_id, a.segment,
                   CASE WHEN s.segment <> a.segment THEN s.segment END AS previous_segment, a.fingerprint
            FROM {audience} AS a LEFT JOIN {snapshot} AS s USING (customer_id)
            UNION ALL
            SELECT 'exited', s.customer_id, s.segment, NULL, ''
            FROM {snapshot} AS s ANTI JOIN {audience} AS a USING (customer_id)
        ) WHERE kind IS NOT NULL
        ORDER BY CASE kind WHEN 'exited' THEN 0 WHEN 'entered' THEN 1 ELSE 2 END, customer_id
    """


def folded_snapshot_sql(con: duckdb.DuckDBPyConnection, store: _Store, batch_size: int,
                        journal: list[dict[str, Any]]) -> str:
    """The snapshot with the plan's journaled batches applied, except the records that failed or
    were skipped (the next sync sees those differences and sends them again)."""
    con.register("done_batches", pa.table({"batch": pa.array(sorted({int(e["batch"]) for e in journal}), pa.int64())}))
    con.register("not_applied", _ids_table([d["customer_id"] for e in journal for d in e["failed"]]
                                           + [cid for e in journal for cid in e.get("skipped_ids", [])]))
    delivered = (f"(SELECT p.* FROM {store.plan_sql()} AS p "
                 f"SEMI JOIN done_batches AS d ON d.batch = p.file_row_number // {int(batch_size)} "
                 "ANTI JOIN not_applied AS n USING (customer_id))")
    snapshot = store.snapshot_sql()
    return (f"(SELECT customer_id, segment, fingerprint FROM {snapshot} AS s ANTI JOIN {delivered} AS d "
            f"USING (customer_id) UNION ALL SELECT customer_id, segment, fingerprint FROM {delivered} AS d "
            "WHERE kind <> 'exited')")


def deliver(destination: Destination, changes: Sequence[Change], policy: RetryPolicy,
            report: SyncReport) -> list[tuple[Change, str]]:
    """Send one batch; retry retryable failures with backoff; return (change, reason) that failed for good."""
    pending = list(changes)
    gave_up: list[tuple[Change, str]] = []
    attempt = 0
    while pending:
        try:
            failures = destination.send(pending)
        except RetryableError as exc:
            failures = [RecordFailure(c.customer_id, exc.reason, retryable=True) for c in pending]
        except PermanentError as exc:
            failures = [RecordFailure(c.customer_id, exc.reason) for c in pending]
        by_id = {c.customer_id: c for c in pending}
        unknown = [f.customer_id for f in failures if f.customer_id not in by_id]
        if unknown:
            raise ActivationError(f"destination {destination.name} reported failures for records it was not sent: "
                                  f"{unknown[:3]}")
        retry = [by_id[f.customer_id] for f in failures if f.retryable]
        gave_up.extend((by_id[f.customer_id], f.reason) for f in failures if not f.retryable)
        if not retry:
            break
        attempt += 1
        if attempt >= policy.max_attempts:
            reasons = {f.customer_id: f.reason for f in failures if f.retryable}
            gave_up.extend((c, f"{reasons[c.customer_id]} (gave up after {attempt} attempts)") for c in retry)
            break
        report.retries += 1
        policy.backoff(attempt - 1)
        pending = retry
    return gave_up


def sync(lake: Lake, destination: Destination, *, full: bool = False, policy: RetryPolicy | None = None,
         clock: Callable[[], float] = time.monotonic, audience: str | None = None) -> SyncReport:
    """Bring `destination` up to date with the current gold.customer_rfm version. With `audience` (a
    saved audience of gold.audiences: rfmlake.audiences), only its members are synced, under the
    audience's name instead of their segment, with their own state (`<destination>@<audience>`); a
    re-saved definition is a new version to sync, as a new gold version is."""
    started = clock()
    policy = policy or RetryPolicy()
    version = gold_ref(lake).version
    name = destination.name
    if audience is not None:
        from rfmlake.audiences import get_audience
        from rfmlake.audiences.store import TABLE

        get_audience(lake, audience)  # a clear error for an unknown audience
        version = f"{version}+{lake.require(*TABLE).version}"
        name = f"{destination.name}@{audience}"
    store = _Store(state_dir(lake, name))
    store.root.mkdir(parents=True, exist_ok=True)
    with _exclusive(store.root):
        con = connect(lake)
        try:
            saved = _saved_audience(lake, store, audience) if audience is not None else None
            report = _sync_locked(lake, con, destination, store, version, full, policy, saved)
        finally:
            con.close()
    report.seconds = round(clock() - started, 3)
    return report


def _saved_audience(lake: Lake, store: _Store, audience_id: str) -> SavedAudience:
    """The saved audience's members of the current gold tables, in a file beside the sync state (a
    resumed sync reads the same members: its version names the gold and the audience versions)."""
    from rfmlake.audiences import get_audience, resolve_members

    label = get_audience(lake, audience_id).name
    path = store.root / "audience_members.parquet"
    import io

    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"customer_id": pa.array(resolve_members(lake, audience_id), pa.string())}), buffer)
    _write_atomic(path, buffer.getvalue())
    return SavedAudience(path, label)


def _sync_locked(lake: Lake, con: duckdb.DuckDBPyConnection, destination: Destination, store: _Store, version: str,
                 full: bool, policy: RetryPolicy, saved: SavedAudience | None = None) -> SyncReport:
    report = SyncReport(destination=store.root.name, gold_version=version, full=full)
    state = store.state()
    meta_path = store.inflight / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is not None and meta["sync_id"] == state.get("sync_id"):
        shutil.rmtree(store.inflight)  # committed, crashed before cleaning up
        meta = None
    if meta is not None and meta["gold_version"] == version and (meta["full"] or not full):
        report.resumed, report.full = True, meta["full"]
    elif meta is not None:
        # An unfinished sync of an older version (or a full resync asked over an incremental one):
        # what it delivered is part of the destination's state now. A destination that publishes at
        # close (the file export stages its batches) publishes them first: they are not sent again.
        if any(entry["sent"] for entry in store.journal()):
            destination.close(SyncSession(lake_root=lake.root, gold_version=meta["gold_version"],
                                          as_of=meta.get("as_of") or "", sync_id=meta["sync_id"], segments=(),
                                          full=meta["full"]))
        folded = folded_snapshot_sql(con, store, int(meta["batch_size"]), store.journal())
        store.commit(con, f"{meta['sync_id']}-partial", str(state.get("gold_version", "")), folded, [])
        state = store.state()
        meta = None
    elif state.get("gold_version") == version and not full:
        report.status = "up_to_date"
        return report

    store.inflight.mkdir(parents=True, exist_ok=True)
    audience_path = store.inflight / "audience.parquet"  # ids, segments, fingerprints: no address
    summary = write_fingerprints(lake, destination.channel, audience_path, saved)
    report.skipped.update(summary.skipped)
    if meta is None:
        sync_id = f"{version}-full" if full else version
        _copy_atomic(con, plan_sql(f"read_parquet({_quote(audience_path)})", store.snapshot_sql(), full=full),
                     store.inflight / "plan.parquet")
        _write_atomic(meta_path, json.dumps({"gold_version": version, "full": full, "sync_id": sync_id,
                                             "batch_size": destination.batch_size,
                                             "as_of": summary.as_of}).encode())
        meta = json.loads(meta_path.read_text())
    audience_path.unlink(missing_ok=True)
    planned = fetch(con, f"SELECT kind, count(*) FROM {store.plan_sql()} GROUP BY 1 ORDER BY 1").fetchall()
    report.planned = {kind: int(n) for kind, n in planned}
    session = SyncSession(lake_root=lake.root, gold_version=version, as_of=summary.as_of, sync_id=meta["sync_id"],
                          segments=summary.segments, full=meta["full"])
    batch_size = int(meta["batch_size"])
    done = {int(e["batch"]): e for e in store.journal()}
    destination.open(session)
    dead: list[dict[str, Any]] = []
    batches = _plan_batches(lake, con, store, batch_size, destination.channel != "none", saved)
    for index, plan_rows in batches:
        if index in done:
            entry = done[index]
        else:
            entry = _send_batch(index, plan_rows, destination, policy, report, meta["sync_id"])
            store.append_journal(entry)
        report.batches += 1
        report.sent += entry["sent"]
        report.failed += len(entry["failed"])
        report.skipped.update(entry.get("skipped", {}))
        dead.extend(entry["failed"])
    destination.close(session)
    store.commit(con, meta["sync_id"], version, folded_snapshot_sql(con, store, batch_size, store.journal()), dead)
    if dead:
        report.dead_letter = str(store.root / "dead_letter.jsonl")
    return report


def _plan_batches(lake: Lake, con: duckdb.DuckDBPyConnection, store: _Store, batch_size: int,
                  with_exit_addresses: bool, saved: SavedAudience | None = None
                  ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """The plan in order, batch by batch, each row with what sending it needs: the member's
    current audience row (entries and changes) or the accepted address (exits, to unsubscribe
    them whatever their consent is now). One DuckDB query, streamed."""
    # Equi-joins on customer_id only (a condition on the plan's kind in ON makes DuckDB fall back to
    # a slow join); the kind picks the columns instead: an exit's address, never anyone else's.
    exits = f"LEFT JOIN ({accepted_addresses_sql(lake)}) AS x ON x.customer_id = p.customer_id" \
        if with_exit_addresses else ""
    exit_columns = ("CASE WHEN p.kind = 'exited' THEN x.email END AS exit_email, "
                    "CASE WHEN p.kind = 'exited' THEN x.phone END AS exit_phone") if with_exit_addresses else \
        "CAST(NULL AS VARCHAR) AS exit_email, CAST(NULL AS VARCHAR) AS exit_phone"
    sql = f"""
        SELECT p.file_row_number AS position, p.kind, p.customer_id AS plan_customer_id,
               p.segment AS plan_segment, p.previous_segment, a.*, {exit_columns}
        FROM {store.plan_sql()} AS p
        LEFT JOIN ({audience_sql(lake, saved)}) AS a ON a.customer_id = p.customer_id
        {exits}
        ORDER BY p.file_row_number
    """
    batch: list[dict[str, Any]] = []
    index = 0
    for row in rows(con, sql):
        if int(row["position"]) // batch_size != index:
            yield index, batch
            batch, index = [], int(row["position"]) // batch_size
        batch.append(row)
    if batch:
        yield index, batch


def _send_batch(index: int, plan_rows: Sequence[dict[str, Any]], destination: Destination, policy: RetryPolicy,
                report: SyncReport, sync_id: str) -> dict[str, Any]:
    changes: list[Change] = []
    skipped_ids: list[str] = []
    for row in plan_rows:
        cid, segment = row["plan_customer_id"], row["plan_segment"]
        if row["kind"] == "exited":
            changes.append(Change("exited", cid, segment, email=normalize_email(row["exit_email"]),
                                  phone=normalize_phone(row["exit_phone"])))
            continue
        member = member_from_row(row, destination.channel)[0] if row["customer_id"] is not None else None
        if member is None or member.segment != segment:
            skipped_ids.append(cid)  # consent withdrawn or data changed since the plan: the next sync catches up
            continue
        changes.append(Change(row["kind"], cid, segment, previous_segment=row["previous_segment"],
                              member=member, email=member.email, phone=member.phone))
    gave_up = deliver(destination, changes, policy, report) if changes else []
    failed = [{"sync_id": sync_id, "batch": index, "customer_id": c.customer_id, "kind": c.kind,
               "segment": c.segment, "reason": reason} for c, reason in gave_up]
    return {"batch": index, "sent": len(changes) - len(gave_up), "failed": failed,
            "skipped": {SKIP_NO_LONGER_ELIGIBLE: len(skipped_ids)} if skipped_ids else {},
            "skipped_ids": skipped_ids}
