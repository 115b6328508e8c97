"""Erasure in the journeys' copies (called by rfmlake.governance.erasure): the customer's entries,
ledger rows and messages held for quiet hours in the journey store, and their messages in the
outbox (which hold addresses). gold.journey_assignments is a lake table, swept with the others;
gold.journey_results holds only counts."""

from __future__ import annotations

import json

import pyarrow.compute as pc

from rfmlake.errors import RfmlakeError
from rfmlake.journeys.channels import outbox_location
from rfmlake.journeys.store import SENT_COUNT_SCHEMA, JourneyStore, count_sent
from rfmlake.lake import Lake
from rfmlake.lake.storage import Storage


def check_no_tick_in_flight(lake: Lake) -> None:
    """A tick under way holds a plan with the customer in it: finish it first."""
    store = JourneyStore(lake.location)
    meta = store.meta()
    if meta is not None and meta["tick"] != store.state().get("tick"):
        raise RfmlakeError(f"a journeys run was interrupted (tick {meta['tick']}); finish it with "
                           f"`rfmlake journeys run --lake {lake}` before erasing")


def erase_from_journeys(lake: Lake, customer_id: str) -> dict[str, int]:
    """Rows removed per place: journey entries, ledger rows, outbox messages."""
    store = JourneyStore(lake.location)
    removed: dict[str, int] = {}
    state = store.state()
    if state.get("entries"):
        entries = store.entries(state)
        keep = pc.not_equal(entries.column("customer_id"), customer_id)
        ledger = {}
        dropped = 0
        counts = SENT_COUNT_SCHEMA.empty_table()  # the sent counts, without the customer's
        for tick in state.get("ledger", []):
            sends = store.sends({"ledger": [tick]})
            kept = sends.filter(pc.not_equal(sends.column("customer_id"), customer_id))
            counts = count_sent(kept, counts)
            if kept.num_rows != sends.num_rows:
                ledger[tick] = kept
                dropped += sends.num_rows - kept.num_rows
        gone = entries.num_rows - int(pc.sum(keep.cast("int64")).as_py() or 0)
        pending = store.deferred(state)  # copies of ledger rows: counted there
        held = pending.filter(pc.not_equal(pending.column("customer_id"), customer_id))
        if gone or ledger or held.num_rows != pending.num_rows:
            store.replace_committed(entries.filter(keep), ledger, held, counts if ledger else None)
        if gone:
            removed["journey_entries"] = gone
        if dropped:
            removed["journey_ledger"] = dropped
    outbox = outbox_location(lake.location)
    storage = Storage.for_location(outbox)
    messages = 0
    for uri in storage.walk(outbox):
        if not uri.endswith(".jsonl"):
            continue
        lines = (storage.read_bytes(uri) or b"").decode("utf-8").splitlines()
        kept_lines = [line for line in lines if line and json.loads(line).get("customer_id") != customer_id]
        if len(kept_lines) == len([line for line in lines if line]):
            continue
        messages += len([line for line in lines if line]) - len(kept_lines)
        if kept_lines:
            storage.write_bytes(uri, ("\n".join(kept_lines) + "\n").encode("utf-8"))
        else:
            storage.delete_file(uri)
    if messages:
        removed["journey_outbox"] = messages
    return removed
