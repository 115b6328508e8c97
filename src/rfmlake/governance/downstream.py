"""Erasure beyond the lake's tables: the profile store and the activation outbox / sync state.

- Profile store: the active generation is rebuilt without the customer's person (their profile,
  found by any of their customer ids through the store's member-id lookup) through the ProfileStore
  API (page through it, load a new generation, activate it, delete every older generation), so
  readers switch atomically and no file still holding the customer stays on disk; removing the
  profile removes its member-id lookup rows with it.
- Activation (rfmlake.activation): the file destination's published exports under
  <lake>/gold/_activation/ (CSV, JSON Lines, the manifest's counts) and each destination's sync
  state under <lake>/_system/activation/<destination>/ (snapshots, dead letters) lose the
  customer's rows. Removing them from the snapshot means later syncs neither re-send nor unsubscribe
  them: the erasure itself took them out.

A sync interrupted mid-way (an `inflight/` folder) holds a positional plan that cannot be edited
without breaking its resumption, so erasure refuses to start until that sync has been finished
(`rfmlake activate`).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from rfmlake.errors import RfmlakeError
from rfmlake.lake.tables import Lake
from rfmlake.profiles.store import MAX_PAGE_SIZE, ProfileQuery, ProfileStore

ACTIVATION_STATE = "activation"  # <lake>/_system/activation/<destination>/


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.erasure.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------- profile store
def erase_from_profile_store(store: ProfileStore, customer_id: str, email_token: str | None) -> int:
    """Profiles removed from the store (0 when it has no active generation or not the customer)."""
    from rfmlake.profiles.indexer import new_generation_id

    if store.active_generation() is None:
        return 0
    # The person's profile, keyed by their primary id: the store's member-id lookup finds it from a
    # secondary id too (docs/identity.md, "Erasure").
    primary = store.primary_id(customer_id)
    present = primary is not None or (
        email_token is not None and store.find_by_email_token(email_token) is not None
    )
    if not present:
        return 0
    # Only the ids to remove are collected (a page at a time); the new generation is the active one
    # without them, so the store is never held in memory.
    removed_ids: list[str] = []
    cursor: str | None = None
    while True:
        page = store.search(ProfileQuery(limit=MAX_PAGE_SIZE, cursor=cursor))
        for doc in page.items:
            by_email = email_token is not None and doc.get("email_token") == email_token
            if doc.get("customer_id") in (customer_id, primary) or by_email:
                removed_ids.append(str(doc["customer_id"]))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    active = store.active_generation()
    generation = new_generation_id()
    removed = store.update_generation([], removed_ids, generation,
                                      source=store.source_of(active) if active is not None else None)
    store.activate(generation)
    store.cleanup(keep=1)  # older generations still hold the customer
    return removed


# ---------------------------------------------------------------------------------- activation
def activation_state_root(lake: Lake) -> Path:
    return lake.system_dir / ACTIVATION_STATE


def activation_outbox_root(lake: Lake) -> Path:
    from rfmlake.activation.destinations.file import activation_root

    return activation_root(lake.root)


def check_no_sync_in_flight(lake: Lake) -> None:
    """Refuse erasure while an interrupted activation sync waits to be resumed."""
    root = activation_state_root(lake)
    inflight = sorted(p.parent.name for p in root.glob("*/inflight") if p.is_dir()) if root.is_dir() else []
    if inflight:
        raise RfmlakeError(
            f"an activation sync was interrupted for destination(s) {inflight}; finish it first with "
            "`rfmlake activate` (it resumes where it stopped), then run the erasure again"
        )


def _is_customer(row: dict[str, Any], customer_id: str, email: str | None) -> bool:
    if str(row.get("customer_id") or "").strip() == customer_id:
        return True
    value = row.get("email")
    return email is not None and isinstance(value, str) and value.strip().lower() == email.strip().lower()


def _scrub_jsonl(path: Path, customer_id: str, email: str | None) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not (line.strip() and _is_customer(json.loads(line), customer_id, email))]
    if len(kept) != len(lines):
        _write_atomic(path, "".join(line + "\n" for line in kept))
    return len(lines) - len(kept)


def _scrub_csv(path: Path, customer_id: str, email: str | None) -> int:
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    rows = list(reader)
    kept = [r for r in rows if not _is_customer(r, customer_id, email)]
    if len(kept) != len(rows):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=reader.fieldnames or [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
        _write_atomic(path, buffer.getvalue())
    return len(rows) - len(kept)


def _scrub_parquet(path: Path, customer_id: str) -> int:
    table = pq.read_table(path)
    if "customer_id" not in table.column_names:
        return 0
    mask = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(table["customer_id"].cast("string")), customer_id), False)
    removed = int(pc.sum(mask.cast("int64")).as_py() or 0)
    if removed:
        tmp = path.with_name(f".{path.name}.erasure.tmp")
        pq.write_table(table.filter(pc.invert(mask)), tmp)
        os.replace(tmp, path)
    return removed


def _recount_manifest(export_dir: Path) -> None:
    """The manifest's per-segment action counts, from the export files that remain; a segment left
    without rows loses its files, as the file destination never writes empty ones."""
    manifest_path = export_dir / "_manifest.json"
    if not manifest_path.is_file():
        return
    counts: dict[str, dict[str, int]] = {}
    for part in sorted(export_dir.glob("*.jsonl")):
        rows = [json.loads(line) for line in part.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not rows:
            part.unlink()
            part.with_suffix(".csv").unlink(missing_ok=True)
            continue
        for row in rows:
            per = counts.setdefault(row["segment"], {})
            per[row["action"]] = per.get(row["action"], 0) + 1
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["segments"] = {segment: dict(sorted(c.items())) for segment, c in sorted(counts.items())}
    _write_atomic(manifest_path, json.dumps(manifest, indent=2, sort_keys=True))


def erase_from_activation(lake: Lake, customer_id: str, email: str | None) -> dict[str, int]:
    """Rows removed per file (paths relative to the lake root; they hold no PII)."""
    removed: dict[str, int] = {}
    outbox = activation_outbox_root(lake)
    touched: set[Path] = set()
    if outbox.is_dir():
        for path in sorted(outbox.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix == ".jsonl":
                n = _scrub_jsonl(path, customer_id, email)
            elif path.suffix == ".csv":
                n = _scrub_csv(path, customer_id, email)
            else:
                continue
            if n:
                removed[path.relative_to(lake.root).as_posix()] = n
                touched.add(path.parent)
    for export_dir in sorted(touched):
        _recount_manifest(export_dir)
    state = activation_state_root(lake)
    if state.is_dir():
        for path in sorted(state.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix == ".parquet":
                n = _scrub_parquet(path, customer_id)
            elif path.suffix == ".jsonl":
                n = _scrub_jsonl(path, customer_id, email)
            else:
                continue
            if n:
                removed[path.relative_to(lake.root).as_posix()] = n
    return removed
