"""The sync engine: incremental, idempotent and resumable delivery of segment membership.

State per destination lives in `<lake>/_system/activation/<destination>/`:
  state.json               the last successful sync: gold version, sync id, snapshot file
  snapshot-<sync>.parquet  what the destination holds after it: customer_id, segment, fingerprint
  inflight/                a sync under way: meta.json, plan.parquet, journal.jsonl (one line per batch)
  dead_letter.jsonl        records that failed for good, with the reason (never an address)

A sync is keyed on the gold.customer_rfm version id: a second trigger for the same version finds it
in state.json and sends nothing. A crash leaves `inflight/`; the next run for the same version
continues after the last journaled batch. A run for a newer version first folds the batches the
crashed sync delivered into the snapshot, so nothing is lost or sent twice. A crash between a
delivered batch and its journal line replays that one batch, which destinations absorb (every
operation is an upsert or carries a deterministic id).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rfmlake.activation.audience import Audience, load_audience, load_exit_addresses
from rfmlake.activation.destinations.base import Destination, SyncSession
from rfmlake.activation.errors import ActivationError, PermanentError, RetryableError
from rfmlake.activation.model import Change, RecordFailure, SyncReport
from rfmlake.activation.retry import RetryPolicy
from rfmlake.lake import Lake
from rfmlake.lake.locks import exclusive_lock

SKIP_NO_LONGER_ELIGIBLE = "no_longer_eligible"
_KIND_ORDER = {"exited": 0, "entered": 1, "changed": 2}
_PLAN_SCHEMA = pa.schema([
    ("kind", pa.string()), ("customer_id", pa.string()), ("segment", pa.string()),
    ("previous_segment", pa.string()), ("fingerprint", pa.string()),
])
_SNAPSHOT_SCHEMA = pa.schema([("customer_id", pa.string()), ("segment", pa.string()), ("fingerprint", pa.string())])


@dataclass(frozen=True)
class Held:
    segment: str
    fingerprint: str


def state_dir(lake: Lake, destination: str) -> Path:
    return lake.system_dir / "activation" / destination


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_parquet_atomic(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _exclusive(directory: Path) -> contextlib.AbstractContextManager[None]:
    return exclusive_lock(directory / ".lock",
                          ActivationError(f"a sync of destination {directory.name!r} is already running"))


class _Store:
    """The files of one destination's state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inflight = root / "inflight"

    def state(self) -> dict[str, Any]:
        path = self.root / "state.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def snapshot(self) -> dict[str, Held]:
        name = self.state().get("snapshot")
        if not name:
            return {}
        table = pq.read_table(self.root / name).to_pylist()
        return {r["customer_id"]: Held(r["segment"], r["fingerprint"]) for r in table}

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

    def commit(self, sync_id: str, gold_version: str, snapshot: dict[str, Held], dead: list[dict[str, Any]]) -> None:
        name = f"snapshot-{sync_id}.parquet"
        ids = sorted(snapshot)
        _write_parquet_atomic(self.root / name, pa.table({
            "customer_id": ids, "segment": [snapshot[i].segment for i in ids],
            "fingerprint": [snapshot[i].fingerprint for i in ids]}, schema=_SNAPSHOT_SCHEMA))
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


def plan_changes(audience_fps: dict[str, tuple[str, str]], previous: dict[str, Held], *, full: bool) -> pa.Table:
    """The changes that bring a destination from `previous` to the audience (customer -> (segment, fingerprint))."""
    rows: list[tuple[str, str, str, str | None, str]] = []
    for cid, (segment, fp) in audience_fps.items():
        held = previous.get(cid)
        if held is None:
            rows.append(("entered", cid, segment, None, fp))
        elif held.segment != segment:
            rows.append(("entered", cid, segment, held.segment, fp))
        elif full:
            rows.append(("entered", cid, segment, None, fp))
        elif held.fingerprint != fp:
            rows.append(("changed", cid, segment, None, fp))
    for cid, held in previous.items():
        if cid not in audience_fps:
            rows.append(("exited", cid, held.segment, None, ""))
    rows.sort(key=lambda r: (_KIND_ORDER[r[0]], r[1]))
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in _PLAN_SCHEMA]
    return pa.table({f.name: list(col) for f, col in zip(_PLAN_SCHEMA, columns, strict=True)}, schema=_PLAN_SCHEMA)


def _apply(snapshot: dict[str, Held], plan_rows: Sequence[dict[str, Any]], failed: set[str]) -> None:
    for row in plan_rows:
        if row["customer_id"] in failed:
            continue  # not delivered: the next sync sees the difference and sends it again
        if row["kind"] == "exited":
            snapshot.pop(row["customer_id"], None)
        else:
            snapshot[row["customer_id"]] = Held(row["segment"], row["fingerprint"])


def _batches(rows: Sequence[dict[str, Any]], size: int) -> list[Sequence[dict[str, Any]]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


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
         clock: Callable[[], float] = time.monotonic) -> SyncReport:
    """Bring `destination` up to date with the current gold.customer_rfm version."""
    started = clock()
    policy = policy or RetryPolicy()
    gold_ref = lake.current("gold", "customer_rfm")
    if gold_ref is None:
        raise ActivationError(f"gold.customer_rfm does not exist in the lake at {lake}; run the pipeline first")
    version = gold_ref.path.name
    store = _Store(state_dir(lake, destination.name))
    with _exclusive(store.root):
        report = _sync_locked(lake, destination, store, version, full, policy)
    report.seconds = round(clock() - started, 3)
    return report


def _sync_locked(lake: Lake, destination: Destination, store: _Store, version: str, full: bool,
                 policy: RetryPolicy) -> SyncReport:
    report = SyncReport(destination=destination.name, gold_version=version, full=full)
    state = store.state()
    snapshot = store.snapshot()
    meta_path = store.inflight / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is not None and meta["sync_id"] == state.get("sync_id"):
        shutil.rmtree(store.inflight)  # committed, crashed before cleaning up
        meta = None
    if meta is not None and meta["gold_version"] == version and (meta["full"] or not full):
        report.resumed, report.full = True, meta["full"]
    elif meta is not None:
        # An unfinished sync of an older version (or a full resync asked over an incremental one):
        # what it delivered is part of the destination's state now.
        plan_rows = pq.read_table(store.inflight / "plan.parquet").to_pylist()
        done_failed = _journal_outcome(store.journal(), destination.batch_size, plan_rows)
        _apply(snapshot, done_failed[0], done_failed[1])
        shutil.rmtree(store.inflight)
        meta = None
    elif state.get("gold_version") == version and not full:
        report.status = "up_to_date"
        return report

    audience = load_audience(lake, destination.channel)
    report.skipped.update(audience.skipped)
    if meta is None:
        sync_id = f"{version}-full" if full else version
        fps = {cid: (m.segment, m.fingerprint(destination.channel)) for cid, m in audience.members.items()}
        plan = plan_changes(fps, snapshot, full=full)
        store.inflight.mkdir(parents=True, exist_ok=True)
        _write_parquet_atomic(store.inflight / "plan.parquet", plan)
        _write_atomic(meta_path, json.dumps({"gold_version": version, "full": full, "sync_id": sync_id,
                                             "batch_size": destination.batch_size}).encode())
        meta = json.loads(meta_path.read_text())
    plan_rows = pq.read_table(store.inflight / "plan.parquet").to_pylist()
    report.planned = dict(sorted(Counter(r["kind"] for r in plan_rows).items()))
    session = SyncSession(lake_root=lake.root, gold_version=version, as_of=audience.as_of, sync_id=meta["sync_id"],
                          segments=audience.segments, full=meta["full"])
    batch_size = int(meta["batch_size"])
    done = {int(e["batch"]): e for e in store.journal()}
    exits = [r["customer_id"] for r in plan_rows if r["kind"] == "exited"]
    addresses = load_exit_addresses(lake, exits) if exits and destination.channel != "none" else {}
    destination.open(session)
    dead: list[dict[str, Any]] = []
    for index, rows in enumerate(_batches(plan_rows, batch_size)):
        if index in done:
            entry = done[index]
        else:
            entry = _send_batch(index, rows, destination, audience, addresses, policy, report, meta["sync_id"])
            store.append_journal(entry)
        report.batches += 1
        report.sent += entry["sent"]
        report.failed += len(entry["failed"])
        report.skipped.update(entry.get("skipped", {}))
        dead.extend(entry["failed"])
    destination.close(session)
    failed_ids = {d["customer_id"] for d in dead}
    skipped_ids = {cid for e in store.journal() for cid in e.get("skipped_ids", [])}
    _apply(snapshot, plan_rows, failed_ids | skipped_ids)
    store.commit(meta["sync_id"], version, snapshot, dead)
    if dead:
        report.dead_letter = str(store.root / "dead_letter.jsonl")
    return report


def _journal_outcome(journal: list[dict[str, Any]], batch_size: int,
                     plan_rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], set[str]]:
    delivered: list[dict[str, Any]] = []
    failed: set[str] = set()
    for entry in journal:
        start = int(entry["batch"]) * batch_size
        delivered.extend(plan_rows[start:start + batch_size])
        failed.update(d["customer_id"] for d in entry["failed"])
        failed.update(entry.get("skipped_ids", []))
    return delivered, failed


def _send_batch(index: int, rows: Sequence[dict[str, Any]], destination: Destination, audience: Audience,
                addresses: dict[str, tuple[str | None, str | None]], policy: RetryPolicy, report: SyncReport,
                sync_id: str) -> dict[str, Any]:
    changes: list[Change] = []
    skipped_ids: list[str] = []
    for row in rows:
        cid = row["customer_id"]
        if row["kind"] == "exited":
            email, phone = addresses.get(cid, (None, None))
            changes.append(Change("exited", cid, row["segment"], email=email, phone=phone))
            continue
        member = audience.members.get(cid)
        if member is None or member.segment != row["segment"]:
            skipped_ids.append(cid)  # consent withdrawn or data changed since the plan: the next sync catches up
            continue
        changes.append(Change(row["kind"], cid, row["segment"], previous_segment=row["previous_segment"],
                              member=member, email=member.email, phone=member.phone))
    gave_up = deliver(destination, changes, policy, report) if changes else []
    failed = [{"sync_id": sync_id, "batch": index, "customer_id": c.customer_id, "kind": c.kind,
               "segment": c.segment, "reason": reason} for c, reason in gave_up]
    return {"batch": index, "sent": len(changes) - len(gave_up), "failed": failed,
            "skipped": {SKIP_NO_LONGER_ELIGIBLE: len(skipped_ids)} if skipped_ids else {},
            "skipped_ids": skipped_ids}
