"""Versioned tables with an atomic commit (docs/adr/0002-versioned-tables.md).

A table is a folder `<lake>/<zone>/<table>/` holding immutable versions under `versions/<id>/`
(Parquet files) and a pointer file `_current` naming the committed version. Writers (Spark, DuckDB,
pyarrow) write a new version folder, then `commit` replaces the pointer with an atomic rename. A
crash before the commit leaves an orphan folder that readers never see and `vacuum` removes.
On AWS the same idea is the Glue table's location swapped to the new prefix.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ZONES: tuple[str, ...] = ("bronze", "silver", "gold")
_POINTER = "_current"


@dataclass(frozen=True)
class TableRef:
    zone: str
    name: str
    path: Path  # the committed version folder

    @property
    def qualified_name(self) -> str:
        return f"{self.zone}.{self.name}"

    @property
    def glob(self) -> str:
        return str(self.path / "*.parquet")


def _new_version_id() -> str:
    # Sortable by time; the random suffix keeps two writers in one microsecond apart.
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


class Lake:
    """A local lake rooted at a folder. Cheap to construct; touches the disk only when asked."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # -- layout ---------------------------------------------------------------------------------
    def table_dir(self, zone: str, name: str) -> Path:
        if zone not in ZONES:
            raise ValueError(f"unknown zone {zone!r}; zones are {ZONES}")
        return self.root / zone / name

    @property
    def system_dir(self) -> Path:
        """Lake-internal state: run reports, models, keys, the dbt working database."""
        return self.root / "_system"

    @property
    def runs_dir(self) -> Path:
        return self.system_dir / "runs"

    @property
    def models_dir(self) -> Path:
        return self.system_dir / "models"

    # -- versions -------------------------------------------------------------------------------
    def new_version(self, zone: str, name: str) -> Path:
        """A fresh, not yet existing version folder for a writer to fill (Spark creates it itself)."""
        return self.table_dir(zone, name) / "versions" / _new_version_id()

    def commit(self, zone: str, name: str, version_dir: Path) -> TableRef:
        """Make `version_dir` the table's current version, atomically."""
        version_dir = Path(version_dir)
        if not version_dir.is_dir() or not any(version_dir.glob("*.parquet")):
            raise ValueError(f"refusing to commit {zone}.{name}: {version_dir} holds no Parquet files")
        table_dir = self.table_dir(zone, name)
        pointer = table_dir / _POINTER
        tmp = table_dir / f".{_POINTER}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps({"version": version_dir.name, "committed_at": time.time()}))
        os.replace(tmp, pointer)  # atomic on POSIX: readers see the old or the new version, never half
        return TableRef(zone, name, version_dir)

    def current(self, zone: str, name: str) -> TableRef | None:
        pointer = self.table_dir(zone, name) / _POINTER
        if not pointer.is_file():
            return None
        version = json.loads(pointer.read_text())["version"]
        return TableRef(zone, name, self.table_dir(zone, name) / "versions" / version)

    def require(self, zone: str, name: str) -> TableRef:
        ref = self.current(zone, name)
        if ref is None:
            raise FileNotFoundError(f"table {zone}.{name} does not exist in the lake at {self.root}")
        return ref

    def tables(self, zone: str | None = None) -> list[TableRef]:
        refs: list[TableRef] = []
        for z in (zone,) if zone else ZONES:
            zone_dir = self.root / z
            if not zone_dir.is_dir():
                continue
            for table_dir in sorted(p for p in zone_dir.iterdir() if p.is_dir()):
                ref = self.current(z, table_dir.name)
                if ref is not None:
                    refs.append(ref)
        return refs

    # -- writers --------------------------------------------------------------------------------
    def write_arrow(self, zone: str, name: str, table: pa.Table) -> TableRef:
        """Write an Arrow table as a new version and commit it."""
        version_dir = self.new_version(zone, name)
        version_dir.mkdir(parents=True)
        pq.write_table(table, version_dir / "part-00000.parquet", compression="zstd")
        return self.commit(zone, name, version_dir)

    def vacuum(self, keep: int = 2, min_age_seconds: float = 3600.0) -> list[Path]:
        """Delete versions that are neither current nor among the newest `keep`, and orphans of
        crashed writers older than `min_age_seconds` (a writer still running is younger)."""
        removed: list[Path] = []
        now = time.time()
        for zone in ZONES:
            zone_dir = self.root / zone
            if not zone_dir.is_dir():
                continue
            for table_dir in zone_dir.iterdir():
                versions_dir = table_dir / "versions"
                if not versions_dir.is_dir():
                    continue
                ref = self.current(zone, table_dir.name)
                current = ref.path.name if ref else None
                versions = sorted(p for p in versions_dir.iterdir() if p.is_dir())
                if current is None:
                    stale = versions
                else:
                    older = [v for v in versions if v.name < current]
                    newer = [v for v in versions if v.name > current]  # uncommitted: a crash or a live writer
                    stale = older[: max(0, len(older) - (keep - 1))] + newer
                for version in stale:
                    if now - version.stat().st_mtime >= min_age_seconds or (
                        current is not None and version.name < current
                    ):
                        shutil.rmtree(version, ignore_errors=True)
                        removed.append(version)
        return removed
