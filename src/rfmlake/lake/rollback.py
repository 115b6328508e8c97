"""A run's start pointers, and putting every table back to them (docs/adr/0016).

On AWS each stage of a run is a job of its own and commits when it ends, so a failed execution would
leave the stages before it committed. The state machine records, before the first stage, every
table's pointer (`record_tables`): a lake table's `_current` object (a version, or a partitioned
table's partition -> version map) and its Glue table; a table only Glue knows (the marts
dbt-athena builds) by its Glue definition. After a failure `restore_tables` puts back every table
whose pointer moved: a lake table through the lake's own pointer write (Glue location or partitions
synced from it, as a commit does), a Glue-only table by its recorded definition; a table the run
created is dropped (pointer and Glue table; its data is left to vacuum).

While a run is in flight, `_system/run_in_flight.json` names its record: `Lake.vacuum` keeps the
versions it names (`pinned_versions`), and erasure refuses to run (it would vacuum them). A marker
whose rollback began (`ROLLBACK_STARTED`) and did not finish never expires: the run's writes may
still be in the lake, and only its rollback or an operator resolves that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rfmlake.lake.storage import Storage, StorageError
from rfmlake.lake.tables import _POINTER, ZONES, Lake

IN_FLIGHT = "run_in_flight.json"  # under _system/: the run whose start is recorded and not yet ended
ROLLBACK_STARTED = "rollback_started_at"  # in the marker: its run's rollback began (and has not finished)
ROLLBACK_ERROR = "rollback_error"  # in the marker: why that rollback failed


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)   # "zone.table" put back to its start pointer
    dropped: list[str] = field(default_factory=list)    # created by the run: pointer and Glue table removed
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # "zone.table" -> why it could not be put back

    def to_dict(self) -> dict[str, Any]:
        return {"restored": self.restored, "dropped": self.dropped, "unchanged": self.unchanged,
                "failed": self.failed}


def table_names(lake: Lake) -> list[tuple[str, str]]:
    """Every (zone, table) the lake holds a pointer for or the Glue catalog lists."""
    found: set[tuple[str, str]] = set()
    for zone in ZONES:
        for name, is_dir in lake.storage.children(Storage.join(lake.location, zone)):
            if is_dir and lake.storage.exists(Storage.join(lake.table_uri(zone, name), _POINTER)):
                found.add((zone, name))
        if lake.catalog is not None:
            found |= {(zone, name) for name in lake.catalog.table_names(zone)}
    return sorted(found, key=lambda t: (ZONES.index(t[0]), t[1]))


def table_state(lake: Lake, zone: str, name: str) -> dict[str, Any]:
    """{"pointer": the `_current` content or None, "glue": the Glue definition or None}."""
    raw = lake.storage.read_bytes(Storage.join(lake.table_uri(zone, name), _POINTER))
    glue = lake.catalog.table(zone, name) if lake.catalog is not None else None
    return {"pointer": json.loads(raw) if raw is not None else None, "glue": glue}


def record_tables(lake: Lake) -> dict[str, dict[str, Any]]:
    """"zone.table" -> table_state, for every table."""
    return {f"{zone}.{name}": table_state(lake, zone, name) for zone, name in table_names(lake)}


def _glue_moved(recorded: dict[str, Any] | None, now: dict[str, Any] | None) -> bool:
    """Whether a lake table's Glue table no longer shows what it showed (the location, or the commit
    a partitioned table's partitions were last synced from); the commit time alone does not count."""
    if (recorded is None) != (now is None):
        return True
    if recorded is None or now is None:
        return False

    def shown(table: dict[str, Any]) -> tuple[Any, Any]:
        return (table.get("StorageDescriptor", {}).get("Location"), table.get("Parameters", {}).get("rfmlake_version"))

    return shown(recorded) != shown(now)


def restore_tables(lake: Lake, recorded: dict[str, dict[str, Any]], *, leave: Sequence[str] = ()) -> RestoreReport:
    """Put every table back to its recorded state; drop tables that were not recorded. A table that
    cannot be put back (its start version deleted, Glue refusing) is reported in `failed` and the
    others are still restored. The tables in `leave` ("zone.table") are not the run's to put back
    (another writer's, such as the marketing app's saved audiences): they stay as they are."""
    from rfmlake.errors import RfmlakeError

    report = RestoreReport()
    seen: set[str] = set(leave)
    for zone, name in table_names(lake) + [tuple(q.split(".", 1)) for q in recorded]:  # type: ignore[misc]
        qualified = f"{zone}.{name}"
        if qualified in seen:
            continue
        seen.add(qualified)
        try:
            _restore_table(lake, zone, name, recorded.get(qualified), report)
        except RfmlakeError as exc:
            report.failed[qualified] = str(exc)
    return report


def _restore_table(lake: Lake, zone: str, name: str, start: dict[str, Any] | None, report: RestoreReport) -> None:
    qualified = f"{zone}.{name}"
    now = table_state(lake, zone, name)
    if start is None:  # created by the run
        if now["pointer"] is None and now["glue"] is None:
            return
        if now["pointer"] is not None:
            lake.storage.delete_file(Storage.join(lake.table_uri(zone, name), _POINTER))
        if lake.catalog is not None:
            lake.catalog.drop_table(zone, name)
        report.dropped.append(qualified)
        return
    if start["pointer"] is not None:  # a lake table: its pointer is the commit, Glue follows it
        if now["pointer"] == start["pointer"] and not _glue_moved(start["glue"], now["glue"]):
            report.unchanged += 1
            return
        lake.restore_pointer(zone, name, start["pointer"])
    elif start["glue"] is not None:  # a table only Glue knows (a dbt-athena mart)
        if now["pointer"] is None and now["glue"] == start["glue"]:
            report.unchanged += 1
            return
        if now["pointer"] is not None:
            lake.storage.delete_file(Storage.join(lake.table_uri(zone, name), _POINTER))
        location = str(start["glue"].get("StorageDescriptor", {}).get("Location", ""))
        if location and not lake.storage.files(location.rstrip("/")):
            raise StorageError(f"cannot restore {qualified}: the data of its start location {location} is gone")
        if lake.catalog is not None:
            lake.catalog.put_table(zone, name, start["glue"])
    else:
        return
    report.restored.append(qualified)


def read_marker(lake: Lake) -> dict[str, Any] | None:
    """The in-flight marker ({"run_id", "record", "expires_at"}, and ROLLBACK_STARTED, ROLLBACK_ERROR
    once its run's rollback began), expired or not."""
    raw = lake.read_system(IN_FLIGHT)
    if raw is None:
        return None
    marker = json.loads(raw)
    if not isinstance(marker, dict) or not isinstance(marker.get("run_id"), str):
        raise StorageError(f"{lake.system_uri(IN_FLIGHT)} is not a run marker; delete it only once no run's "
                           "rollback can need it")
    return marker


def read_in_flight(lake: Lake) -> dict[str, Any] | None:
    """The in-flight marker while it has not expired, or while its run's rollback is unfinished."""
    marker = read_marker(lake)
    if marker is None:
        return None
    live = marker.get(ROLLBACK_STARTED) is not None or float(marker.get("expires_at") or 0) > time.time()
    return marker if live else None


def pinned_versions(lake: Lake) -> set[tuple[str, str, str]]:
    """(zone, table, version id) of every version the in-flight run's record names: the start
    versions a rollback would put back, which vacuum keeps. For a partitioned table: each partition's
    version, the versions its commit replaced and its schema file."""
    marker = read_in_flight(lake)
    if marker is None:
        return set()
    raw = lake.read_system(*str(marker["record"]).split("/"))
    if raw is None:
        return set()
    pinned: set[tuple[str, str, str]] = set()
    for qualified, start in json.loads(raw).get("tables", {}).items():
        zone, name = qualified.split(".", 1)
        pointer = start.get("pointer")
        if not pointer:
            continue
        pinned.add((zone, name, pointer["version"]))
        for version in [*pointer.get("partitions", {}).values(), *pointer.get("previous", {}).values()]:
            pinned.add((zone, name, version))
        if pointer.get("schema"):
            pinned.add((zone, name, pointer["schema"]))
    return pinned
