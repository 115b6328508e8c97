"""The journeys' state and journal, under `<lake>/_system/journeys/`, written through the lake's
storage (a local folder or S3) as it goes: the activation journal pattern (docs/adr/0004) with one
object per journaled batch instead of an appended line, so it works the same on S3.

  state.json               the last committed tick: its id and as_of, the dates each journey has
                           processed, the entries file, the ledger files with the latest send date
                           of each (ledger_dates), each journey's digest
  entries-<tick>.parquet   every entry of every journey: group, variant, where it is, how it ended
  sends/<tick>.parquet     the ledger: one row per message a tick planned, with its outcome
  deferred-<tick>.parquet  the ledger rows of the messages deferred for quiet hours and not yet
                           settled (sent, skipped, ...), kept at every commit so that a tick reads
                           what is pending, not the whole ledger; none when nothing is
  sent-<tick>.parquet      the messages sent per journey, variant and day (the ledger's `sent` rows
                           counted), kept at every commit so that gold.journey_results reads these
                           counts, not the whole ledger; none before anything is sent
  inflight/                a tick under way:
    meta.json              tick id, as_of, batch count, replay safety per batch
    plan.parquet           the messages of the tick, each with its batch
    entries.parquet        the entries as they are once the tick is done
    state.json             the state once the tick is done
    journal/<batch>.begun  written before a batch is sent (one that must not be repeated is then
                           in doubt; any other is replayed as it was)
    journal/<batch>.json   written after a batch: which messages went, failed or were skipped

The journal is not kept in a workspace copy (rfmlake.lake.workspace publishes state only when a
stage succeeds): a stage Lambda that dies mid-tick leaves on S3 what it already sent, and the retry
resumes after it instead of sending again (docs/adr: journeys run in the pipeline's stage).

Every tick reads what it needs in bounded files: the entries, the pending deferred messages, and
the ledger files whose send date falls inside the longest frequency cap's window (ledger_dates). A
state committed before the dates and the sent counts were kept has its whole ledger read by the next
tick (by its caps, then by its commit, which records both); from then on it is not.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rfmlake.lake.storage import Storage

STATE_FOLDER = "journeys"  # under the lake's _system/
# Ledger statuses: delivered to the destination; held for quiet hours when its batch came to be sent,
# planned again later.
SENT = "sent"
DEFERRED = "deferred"

ENTRY_SCHEMA = pa.schema([
    ("journey_id", pa.string()), ("customer_id", pa.string()), ("entry_date", pa.date32()),
    ("group", pa.string()), ("variant", pa.string()), ("bucket", pa.float64()), ("salt", pa.string()),
    ("trigger", pa.string()), ("status", pa.string()), ("next_step", pa.string()),
    ("wait_until", pa.date32()), ("exit_date", pa.date32()), ("exit_reason", pa.string()),
])
PLAN_SCHEMA = pa.schema([
    ("message_id", pa.string()), ("batch", pa.int32()), ("destination", pa.string()),
    ("journey_id", pa.string()), ("customer_id", pa.string()), ("entry_date", pa.date32()),
    ("step_id", pa.string()), ("channel", pa.string()), ("variant", pa.string()), ("segment", pa.string()),
    ("status", pa.string()), ("reason", pa.string()),
    ("subject", pa.string()), ("text", pa.string()), ("html", pa.string()), ("template", pa.string()),
    ("campaign_id", pa.string()), ("call_channel", pa.string()), ("template_arn", pa.string()),
    ("detail_type", pa.string()),
])
SEND_SCHEMA = pa.schema([
    ("message_id", pa.string()), ("journey_id", pa.string()), ("customer_id", pa.string()),
    ("entry_date", pa.date32()), ("step_id", pa.string()), ("channel", pa.string()), ("variant", pa.string()),
    ("tick_id", pa.string()), ("tick_date", pa.date32()), ("status", pa.string()), ("reason", pa.string()),
    ("sent_at", pa.timestamp("us", tz="UTC")),
])
SENT_COUNT_KEY = ["journey_id", "variant", "tick_date"]
SENT_COUNT_SCHEMA = pa.schema([
    ("journey_id", pa.string()), ("variant", pa.string()), ("tick_date", pa.date32()), ("sent", pa.int64()),
])


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


class JourneyStore:
    """The files of the journeys' state on one lake (local or S3)."""

    def __init__(self, lake_location: str | Path) -> None:
        self.location = Storage.normalize(lake_location)
        self.storage = Storage.for_location(self.location)
        self.root = Storage.join(self.location, "_system", STATE_FOLDER)
        self.inflight = Storage.join(self.root, "inflight")

    @property
    def is_local(self) -> bool:
        return not self.storage.s3

    # -- raw I/O ---------------------------------------------------------------------------------
    def _put(self, uri: str, data: bytes) -> None:
        """Durable and atomic: a local file is fsynced before it is renamed into place (a journal
        line must survive the crash it is there for); an S3 PUT is both by itself."""
        if self.storage.s3:
            self.storage.write_bytes(uri, data)
            return
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def _json(self, uri: str) -> dict[str, Any] | None:
        data = self.storage.read_bytes(uri)
        return json.loads(data) if data is not None else None

    def _table(self, uri: str, schema: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
        """The file at `uri` as `schema`, or only its `columns` (the others are not decoded)."""
        data = self.storage.read_bytes(uri)
        if data is None:
            raise FileNotFoundError(uri)
        if columns is None:
            return pq.read_table(io.BytesIO(data)).cast(schema)
        return pq.read_table(io.BytesIO(data), columns=list(columns)).cast(
            pa.schema([schema.field(c) for c in columns]))

    # -- committed state -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return self._json(Storage.join(self.root, "state.json")) or {}

    def entries(self, state: dict[str, Any] | None = None) -> pa.Table:
        state = self.state() if state is None else state
        name = state.get("entries")
        return self._table(Storage.join(self.root, name), ENTRY_SCHEMA) if name else ENTRY_SCHEMA.empty_table()

    def ledger_files(self, state: dict[str, Any] | None = None) -> list[str]:
        """The ledger's files, one per committed tick that planned messages (never one of a tick
        that crashed before committing)."""
        state = self.state() if state is None else state
        return [self._ledger_uri(tick) for tick in state.get("ledger", [])]

    def _ledger_uri(self, tick: str) -> str:
        return Storage.join(self.root, "sends", f"{tick}.parquet")

    def sends(self, state: dict[str, Any] | None = None, *, since: date | None = None,
              columns: Sequence[str] | None = None) -> pa.Table:
        """The ledger's rows (with only `columns`, if given), or those sent on `since` or later
        (tick_date): then only the files whose latest send date (ledger_dates) is `since` or later are
        read, so a tick's frequency caps read the days of the longest cap, not every day ever sent."""
        state = self.state() if state is None else state
        wanted = list(columns) if columns is not None else SEND_SCHEMA.names
        read = wanted if since is None or "tick_date" in wanted else [*wanted, "tick_date"]
        schema = pa.schema([SEND_SCHEMA.field(c) for c in wanted])
        dates = state.get("ledger_dates", {})
        tables = []
        for tick in state.get("ledger", []):
            if since is not None and tick in dates and not _sent_since(dates[tick], since):
                continue
            table = self._table(self._ledger_uri(tick), SEND_SCHEMA, None if columns is None else read)
            if since is not None:
                table = table.filter(pc.greater_equal(table.column("tick_date"), pa.scalar(since, pa.date32())))
            tables.append(table.select(wanted))
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def ledger_dates(self, state: dict[str, Any] | None = None) -> dict[str, str | None]:
        """tick -> the latest send date (tick_date) in its ledger file (None: no rows), as the
        commits recorded them; a file committed before they were is read (its tick_date only)."""
        state = self.state() if state is None else state
        recorded = state.get("ledger_dates", {})
        return {tick: recorded[tick] if tick in recorded
                else _latest(self._table(self._ledger_uri(tick), SEND_SCHEMA, ["tick_date"]))
                for tick in state.get("ledger", [])}

    def sent_counts(self, state: dict[str, Any] | None = None) -> pa.Table:
        """The messages sent per journey, variant and day (journey_id, variant, tick_date, sent): the
        file the last commit wrote. A state committed before that file existed has them counted from
        its ledger (four columns of every file)."""
        state = self.state() if state is None else state
        if "sent_counts" in state:
            name = state["sent_counts"]
            if not name:
                return SENT_COUNT_SCHEMA.empty_table()
            return self._table(Storage.join(self.root, name), SENT_COUNT_SCHEMA)
        return count_sent(self.sends(state, columns=["journey_id", "variant", "tick_date", "status"]))

    def deferred(self, state: dict[str, Any] | None = None) -> pa.Table:
        """The ledger rows of the messages deferred and not settled since, oldest first (each
        message's first deferral): the file the last commit wrote. A state committed before that
        file existed has them worked out from its ledger, tick by tick, as the commits would have."""
        state = self.state() if state is None else state
        if "deferred" in state:
            name = state["deferred"]
            return self._table(Storage.join(self.root, name), SEND_SCHEMA) if name else SEND_SCHEMA.empty_table()
        pending = SEND_SCHEMA.empty_table()
        for uri in self.ledger_files(state):
            pending = still_deferred(pending, self._table(uri, SEND_SCHEMA))
        return pending

    # -- a tick under way ------------------------------------------------------------------------
    def meta(self) -> dict[str, Any] | None:
        return self._json(Storage.join(self.inflight, "meta.json"))

    def start(self, meta: dict[str, Any], plan: pa.Table, entries: pa.Table, state: dict[str, Any]) -> None:
        """Write everything a tick needs to finish before its first send; meta.json goes last, so
        a tick exists only once it is complete."""
        self._put(Storage.join(self.inflight, "plan.parquet"), _parquet(plan.cast(PLAN_SCHEMA)))
        self._put(Storage.join(self.inflight, "entries.parquet"), _parquet(entries.cast(ENTRY_SCHEMA)))
        self._put(Storage.join(self.inflight, "state.json"), json.dumps(state, sort_keys=True).encode())
        self._put(Storage.join(self.inflight, "meta.json"), json.dumps(meta, sort_keys=True).encode())

    def plan(self) -> pa.Table:
        return self._table(Storage.join(self.inflight, "plan.parquet"), PLAN_SCHEMA)

    def _journal_uri(self, batch: int, suffix: str) -> str:
        return Storage.join(self.inflight, "journal", f"{batch:07d}.{suffix}")

    def begin(self, batch: int) -> None:
        self._put(self._journal_uri(batch, "begun"), b"")

    def record(self, batch: int, outcome: dict[str, Any]) -> None:
        self._put(self._journal_uri(batch, "json"), json.dumps({**outcome, "batch": batch}, sort_keys=True).encode())

    def journal(self) -> tuple[dict[int, dict[str, Any]], set[int]]:
        """(batch -> recorded outcome, batches begun but not recorded)."""
        done: dict[int, dict[str, Any]] = {}
        begun: set[int] = set()
        for uri in self.storage.walk(Storage.join(self.inflight, "journal")):
            name = uri.rsplit("/", 1)[-1]
            if name.startswith("."):
                continue  # a temporary file of a write a crash interrupted
            stem, _, suffix = name.partition(".")
            if suffix == "json":
                data = self.storage.read_bytes(uri)
                if data:
                    done[int(stem)] = json.loads(data)
            elif suffix == "begun":
                begun.add(int(stem))
        return done, begun - set(done)

    def commit(self, meta: dict[str, Any], sends: pa.Table) -> None:
        """Make the tick's entries, ledger and state current (state.json is the commit point),
        then drop the tick's folder and the replaced entries file."""
        tick = meta["tick"]
        previous = self.state()
        entries_data = self.storage.read_bytes(Storage.join(self.inflight, "entries.parquet"))
        after = self._json(Storage.join(self.inflight, "state.json"))
        if entries_data is None or after is None:
            raise FileNotFoundError(f"tick {tick} is incomplete under {self.inflight}")
        entries_name = f"entries-{tick}.parquet"
        self._put(Storage.join(self.root, entries_name), entries_data)
        ledger = list(previous.get("ledger", []))
        dates = self.ledger_dates(previous)
        pending = self.deferred(previous)
        counts = self.sent_counts(previous)
        if sends.num_rows:
            sends = sends.cast(SEND_SCHEMA)
            self._put(self._ledger_uri(tick), _parquet(sends))
            ledger.append(tick)
            dates[tick] = _latest(sends)
            pending = still_deferred(pending, sends)
            counts = count_sent(sends, counts)
        deferred_name = f"deferred-{tick}.parquet" if pending.num_rows else None
        if deferred_name:
            self._put(Storage.join(self.root, deferred_name), _parquet(pending))
        counts_name = f"sent-{tick}.parquet" if counts.num_rows else None
        if counts_name:
            self._put(Storage.join(self.root, counts_name), _parquet(counts))
        self._put(Storage.join(self.root, "state.json"),
                  json.dumps({**after, "tick": tick, "entries": entries_name, "ledger": ledger,
                              "ledger_dates": dates, "deferred": deferred_name, "sent_counts": counts_name},
                             sort_keys=True, indent=1).encode())
        self.clean(previous.get("entries"), previous.get("deferred"), previous.get("sent_counts"))

    def clean(self, *replaced: str | None) -> None:
        """Drop the tick under way's folder and the files of `replaced` the state no longer names."""
        self.storage.delete_dir(self.inflight)
        state = self.state()
        current = {state.get("entries"), state.get("deferred"), state.get("sent_counts")}
        for name in replaced:
            if name and name not in current:
                self.storage.delete_file(Storage.join(self.root, name))

    def replace_committed(self, entries: pa.Table, sends_by_tick: dict[str, pa.Table],
                          deferred: pa.Table | None = None, sent_counts: pa.Table | None = None) -> None:
        """Rewrite the committed entries, ledger files, pending deferred messages and sent counts in
        place (erasure takes a customer out). Only with no tick under way. A ledger file keeps its
        recorded date: its rows all carry its tick's date, and fewer rows cannot send later."""
        state = self.state()
        if state.get("entries"):
            self._put(Storage.join(self.root, state["entries"]), _parquet(entries.cast(ENTRY_SCHEMA)))
        for tick, table in sends_by_tick.items():
            self._put(self._ledger_uri(tick), _parquet(table.cast(SEND_SCHEMA)))
        if deferred is not None and state.get("deferred"):
            self._put(Storage.join(self.root, state["deferred"]), _parquet(deferred.cast(SEND_SCHEMA)))
        if sent_counts is not None and state.get("sent_counts"):
            self._put(Storage.join(self.root, state["sent_counts"]), _parquet(sent_counts.cast(SENT_COUNT_SCHEMA)))


def _sent_since(latest: str | None, since: date) -> bool:
    """Whether a ledger file whose latest send date is `latest` holds rows of `since` or later."""
    return latest is not None and date.fromisoformat(latest) >= since


def _latest(sends: pa.Table) -> str | None:
    """The latest send date (tick_date) of ledger rows, ISO; None for none."""
    latest = pc.max(sends.column("tick_date")).as_py() if sends.num_rows else None
    return latest.isoformat() if latest is not None else None


def count_sent(sends: pa.Table, counts: pa.Table | None = None) -> pa.Table:
    """`counts` (SENT_COUNT_SCHEMA) plus the `sent` rows of the ledger rows `sends` (which need only
    journey_id, variant, tick_date and status), per journey, variant and day."""
    sent = sends.filter(pc.equal(sends.column("status"), SENT)).select(SENT_COUNT_KEY)
    added = pa.table({**{c: sent.column(c) for c in SENT_COUNT_KEY},
                      "sent": pa.array([1] * sent.num_rows, pa.int64())}, schema=SENT_COUNT_SCHEMA)
    both = pa.concat_tables([counts.cast(SENT_COUNT_SCHEMA), added]) if counts is not None else added
    if both.num_rows == 0:
        return SENT_COUNT_SCHEMA.empty_table()
    summed = both.group_by(SENT_COUNT_KEY).aggregate([("sent", "sum")]).rename_columns({"sent_sum": "sent"})
    return summed.select(SENT_COUNT_SCHEMA.names).sort_by([(c, "ascending") for c in SENT_COUNT_KEY]) \
        .cast(SENT_COUNT_SCHEMA)


def still_deferred(pending: pa.Table, sends: pa.Table) -> pa.Table:
    """The messages deferred and not settled once a tick whose ledger is `sends` commits, from those
    of before it (`pending`): a message leaves once a ledger row says anything else of it (sent,
    skipped, capped, failed, in doubt); one deferred again keeps its first row."""
    settled = {m for m, s in zip(sends.column("message_id").to_pylist(), sends.column("status").to_pylist(),
                                 strict=True) if s != DEFERRED}
    kept = [r for r in pending.to_pylist() if r["message_id"] not in settled]
    known = {r["message_id"] for r in kept}
    for row in sends.filter(pc.equal(sends.column("status"), DEFERRED)).to_pylist():
        if row["message_id"] not in known and row["message_id"] not in settled:
            kept.append(row)
            known.add(row["message_id"])
    return pa.Table.from_pylist(kept, schema=SEND_SCHEMA) if kept else SEND_SCHEMA.empty_table()
