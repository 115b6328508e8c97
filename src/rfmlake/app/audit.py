"""The app's audit log: one JSON object per change (who, role, when, what, on which object, the
details), under `<lake>/_system/app/audit/`. One object per entry rather than an appended file, so
the log works the same on S3 (no appends) and two writers never interleave. Entries name users,
audiences and journeys, never a customer's personal data."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rfmlake.lake import Lake

AUDIT_FOLDER = ("app", "audit")


@dataclass(frozen=True)
class AuditEntry:
    at: str
    actor: str
    role: str
    action: str  # e.g. audience.save, journey.create, journey.start, journey.pause, sign_in
    target: str
    details: dict[str, Any] = field(default_factory=dict)


class AuditLog:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def record(self, actor: str, role: str, action: str, target: str, details: dict[str, Any] | None = None,
               now: datetime | None = None) -> AuditEntry:
        now = now or datetime.now(UTC)
        entry = AuditEntry(now.isoformat(), actor, role, action, target, details or {})
        name = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.json"
        self.lake.write_system(json.dumps(asdict(entry), sort_keys=True, default=str).encode(), *AUDIT_FOLDER, name)
        return entry

    def entries(self, limit: int = 200) -> list[AuditEntry]:
        """The newest entries first."""
        folder = self.lake.system_uri(*AUDIT_FOLDER)
        storage = self.lake.storage
        if not storage.s3 and not storage.is_dir(folder):
            return []
        names = sorted((u for u in storage.files(folder) if u.endswith(".json")), reverse=True)[:limit]
        out = []
        for uri in names:
            data = storage.read_bytes(uri)
            if data:
                out.append(AuditEntry(**json.loads(data)))
        return out
