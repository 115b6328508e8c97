"""File destination (the local default): CSV and JSON Lines per segment, importable by any email tool.

Output of one sync: `<lake>/gold/_activation/<name>/<as_of>/<sync_id>/<segment>.csv|.jsonl` plus
`_manifest.json`. Each batch is staged as its own file (a replayed batch overwrites itself), and the
folder is published with one rename when the sync completes, so readers never see half an export.
The files hold addresses: the folder is for the activation role only (docs/activation.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rfmlake.activation.destinations.base import Destination, SyncSession
from rfmlake.activation.model import MEMBER_ATTRIBUTES, Change, Channel, RecordFailure, segment_slug

FILE_COLUMNS: tuple[str, ...] = (
    "action", "customer_id", "email", "phone", "segment", "previous_segment",
    *(c for c in MEMBER_ATTRIBUTES if c != "rfm_segment"), "gold_version",
)


def activation_root(lake_root: Path) -> Path:
    return lake_root / "gold" / "_activation"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class FileDestination(Destination):
    def __init__(self, name: str = "file", *, channel: Channel = "email", batch_size: int = 5000) -> None:
        self.name = name
        self.channel = channel
        self.batch_size = batch_size
        self._session: SyncSession | None = None
        self.output_dir: Path | None = None

    def _staging(self, session: SyncSession) -> Path:
        return activation_root(session.lake_root) / self.name / f".staging-{session.sync_id}"

    def open(self, session: SyncSession) -> None:
        self._session = session
        self._staging(session).mkdir(parents=True, exist_ok=True)

    def rows(self, change: Change) -> list[dict[str, Any]]:
        assert self._session is not None
        base = {"customer_id": change.customer_id, "email": change.email, "phone": change.phone,
                "gold_version": self._session.gold_version}
        attrs = {c: (change.member.attributes.get(c) if change.member else None)
                 for c in MEMBER_ATTRIBUTES if c != "rfm_segment"}
        if change.kind == "exited":
            return [{**base, "action": "exited", "segment": change.segment, "previous_segment": None, **attrs}]
        action = "updated" if change.kind == "changed" else "entered"
        out = [{**base, "action": action, "segment": change.segment, "previous_segment": change.previous_segment,
                **attrs}]
        if change.previous_segment:
            out.append({**base, "action": "exited", "segment": change.previous_segment, "previous_segment": None,
                        **attrs})
        return out

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        if self._session is None:
            raise RuntimeError("FileDestination.send before open")
        staging = self._staging(self._session)
        first = batch[0].customer_id if batch else "empty"
        lines = [json.dumps(row, default=str) for change in batch for row in self.rows(change)]
        # Named by the batch's first record: a replay after a crash overwrites, never duplicates.
        name = hashlib.sha256(first.encode()).hexdigest()[:20]
        _write_atomic(staging / f"batch-{name}.jsonl", "".join(line + "\n" for line in lines))
        return []

    def close(self, session: SyncSession) -> None:
        staging = self._staging(session)
        final = activation_root(session.lake_root) / self.name / (session.as_of or "unknown") / session.sync_id
        parts = sorted(staging.glob("batch-*.jsonl"))
        if not parts and final.exists():
            self.output_dir = final  # published already; the crash came before the state commit
            shutil.rmtree(staging, ignore_errors=True)
            return
        by_segment: dict[str, list[dict[str, Any]]] = {}
        for part in parts:
            for line in part.read_text().splitlines():
                row = json.loads(line)
                by_segment.setdefault(row["segment"], []).append(row)
        out = staging / "out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        counts: dict[str, dict[str, int]] = {}
        for segment, rows in sorted(by_segment.items()):
            slug = segment_slug(segment)
            rows.sort(key=lambda r: (r["action"], r["customer_id"]))
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=FILE_COLUMNS, extrasaction="raise", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            (out / f"{slug}.csv").write_text(buffer.getvalue())
            (out / f"{slug}.jsonl").write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
            counts[segment] = {}
            for r in rows:
                counts[segment][r["action"]] = counts[segment].get(r["action"], 0) + 1
        (out / "_manifest.json").write_text(json.dumps({
            "gold_version": session.gold_version, "as_of": session.as_of, "sync_id": session.sync_id,
            "full": session.full, "segments": counts}, indent=2, sort_keys=True))
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)  # a re-run of close after a crash: the staged batches are the truth
        os.rename(out, final)
        shutil.rmtree(staging)
        # Staging folders of other syncs belong to syncs a newer one superseded before they delivered
        # anything (the engine publishes those that delivered before folding them in; one sync of a
        # destination runs at a time): addresses nobody will publish.
        for stale in (activation_root(session.lake_root) / self.name).glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        self.output_dir = final

